"""Coordination shells of an ideal crystal, and path-length cuts that keep clear of them.

The engines cut per snapshot: the ``fast`` engine keeps a path instance when its half
length in that snapshot is at most ``exafs.rmax_A``, the ``feff`` engine cuts a cluster of
radius ``exafs.cluster_radius_A`` from each snapshot (and FEFF applies RPATH).  A cut
within a thermal width of a shell of the ideal crystal keeps a model-dependent share of
that shell in each snapshot, so :func:`check_cut_between_shells` refuses a cut within
``exafs.shell_margin_A`` of a shell (single-scattering distances only: cheap enough to
run at every config load).

Distances in Å.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dualbench.exafs.clusters import cut_cluster
from dualbench.schema import SettingError

if TYPE_CHECKING:
    from ase import Atoms

#: Distances (Å) closer than this to a shell's shortest distance are that shell.
SHELL_TOLERANCE_A = 0.02
#: How far beyond a refused cut (Å) shells are listed, to suggest the gap above it.
LOOKAHEAD_A = 3.0


@dataclass(frozen=True)
class Shell:
    """Neighbours of one absorber at one distance: ``distance_A`` is the shortest of them,
    ``spread_A`` the longest minus the shortest (0 in an ideal crystal), ``species`` the
    (element, count) pairs, most numerous first."""

    distance_A: float
    spread_A: float
    count: int
    species: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        """E.g. ``12 S at 5.554 Å`` or ``4 W + 2 S at 3.200 Å``."""
        who = " + ".join(f"{n} {element}" for element, n in self.species)
        return f"{who} at {self.distance_A:.3f} Å"


@dataclass(frozen=True)
class SiteShells:
    """The shells around absorber ``site`` (an atom index of the structure) and the
    number of absorber ``sites`` that have the same shells (symmetry-equivalent ones)."""

    site: int
    sites: int
    shells: tuple[Shell, ...]


def group_shells(
    distances_A: Sequence[float], symbols: Sequence[str], tolerance_A: float = SHELL_TOLERANCE_A
) -> list[Shell]:
    """Neighbours (their distances in Å and elements) grouped into shells: a distance
    within ``tolerance_A`` of a shell's shortest distance belongs to that shell."""
    order = np.argsort(np.asarray(distances_A, dtype=float), kind="stable")
    groups: list[list[int]] = []
    for i in order:
        if not groups or distances_A[i] - distances_A[groups[-1][0]] > tolerance_A:
            groups.append([])
        groups[-1].append(int(i))
    shells = []
    for members in groups:
        d = [float(distances_A[i]) for i in members]
        species = Counter(symbols[i] for i in members).most_common()
        shells.append(Shell(min(d), max(d) - min(d), len(members), tuple(species)))
    return shells


def absorber_shells(
    reference: Atoms, index: int, radius_A: float, tolerance_A: float = SHELL_TOLERANCE_A
) -> list[Shell]:
    """The shells (Å) around atom ``index`` of ``reference`` up to ``radius_A``, periodic
    images included."""
    cluster = cut_cluster(reference, index, radius_A)
    return group_shells(cluster.distances[1:], cluster.symbols[1:], tolerance_A)


def shells_around(
    reference: Atoms,
    absorber_symbol: str,
    radius_A: float,
    tolerance_A: float = SHELL_TOLERANCE_A,
) -> list[SiteShells]:
    """The shells (distance in Å, count, species) up to ``radius_A`` around every
    distinct absorber site of ``reference`` (an ideal cell or supercell): absorbers with
    the same shells (to ``tolerance_A``) are one site.  Empty when ``reference`` has no
    ``absorber_symbol`` atom."""
    symbols = reference.get_chemical_symbols()
    found: dict[tuple, list] = {}
    for index, symbol in enumerate(symbols):
        if symbol != absorber_symbol:
            continue
        shells = absorber_shells(reference, index, radius_A, tolerance_A)
        key = tuple((round(s.distance_A / tolerance_A), s.count, s.species) for s in shells)
        if key in found:
            found[key][1] += 1
        else:
            found[key] = [index, 1, tuple(shells)]
    return [SiteShells(site, n, shells) for site, n, shells in found.values()]


def _forbidden(shells: Sequence[Shell], margin_A: float) -> list[tuple[float, float]]:
    """The open intervals (Å) within ``margin_A`` of a shell, merged where they touch."""
    spans = sorted((s.distance_A - margin_A, s.distance_A + s.spread_A + margin_A)
                   for s in shells)
    merged: list[tuple[float, float]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def allowed_ranges(
    shells: Sequence[Shell], margin_A: float, upto_A: float
) -> list[tuple[float, float]]:
    """The closed ranges (Å) of cuts up to ``upto_A`` at least ``margin_A`` from every
    shell: the gaps between shells less the margin on either side."""
    ranges, start = [], 0.0
    for low, high in _forbidden(shells, margin_A):
        if low > start:
            ranges.append((start, low))
        start = max(start, high)
    if start < upto_A:
        ranges.append((start, upto_A))
    return ranges


def _nearest_ranges(value: float, ranges: Sequence[tuple[float, float]], upto_A: float) -> str:
    """The allowed range just below ``value`` and the one just above it, as text."""
    below = [r for r in ranges if r[1] <= value]
    above = [r for r in ranges if r[0] >= value]
    words = []
    for low, high in ([below[-1]] if below else []) + ([above[0]] if above else []):
        if high >= upto_A:
            words.append(f"{low:.3f} Å or more (no shell up to {upto_A:.2f} Å)")
        else:
            words.append(f"{low:.3f}-{high:.3f} Å")
    return " or ".join(words) if words else "none"


def _hits(shells: Sequence[Shell], value_A: float, margin_A: float) -> list[Shell]:
    """The shells within ``margin_A`` of a cut at ``value_A`` (Å), nearest first."""
    hit = [s for s in shells
           if s.distance_A - margin_A < value_A < s.distance_A + s.spread_A + margin_A]
    return sorted(hit, key=lambda s: abs(s.distance_A - value_A))


def _cut_error(
    key: str, value_A: float, hit: Sequence[Shell], ranges: str, around: str, crystal: str,
    margin_A: float,
) -> SettingError:
    return SettingError(
        key,
        f"{value_A:g} Å lies within {margin_A:g} Å (exafs.shell_margin_A) of the shell of "
        + " and of ".join(s.describe() for s in hit)
        + f" around {around} in {crystal}: each snapshot would keep a share of that shell"
        " that depends on its disorder, i.e. on the model. Nearest values between shells"
        f" (their gaps less the margin): {ranges}; or set exafs.shell_margin_A: 0 to accept"
        " the cut",
    )


def check_cut_between_shells(
    reference: Atoms,
    absorber_symbol: str,
    rmax_A: float,
    cluster_radius_A: float,
    margin_A: float,
    tolerance_A: float = SHELL_TOLERANCE_A,
    crystal: str = "the ideal crystal",
) -> None:
    """Refuse a path-length cut ``rmax_A`` (``exafs.rmax_A``) or cluster radius
    ``cluster_radius_A`` (``exafs.cluster_radius_A``), both in Å, within ``margin_A`` of a
    shell around an ``absorber_symbol`` atom of the ideal crystal ``reference``: a
    :class:`~dualbench.schema.SettingError` names the key, the value, the shell (its
    distance, count and species) and the nearest ranges between shells; ``crystal``
    names the reference in it.  ``margin_A`` 0 checks nothing; a reference without that
    absorber is not checked here."""
    if margin_A <= 0:
        return
    reach = max(rmax_A, cluster_radius_A) + margin_A + tolerance_A
    sites = shells_around(reference, absorber_symbol, reach, tolerance_A)
    for key, value in (("exafs.rmax_A", rmax_A), ("exafs.cluster_radius_A", cluster_radius_A)):
        for site in sites:
            hit = _hits(site.shells, float(value), margin_A)
            if not hit:
                continue
            # only now the shells beyond, for the range above the cut
            upto = float(value) + margin_A + LOOKAHEAD_A
            wider = absorber_shells(reference, site.site, upto, tolerance_A)
            ranges = _nearest_ranges(float(value), allowed_ranges(wider, margin_A, upto), upto)
            around = f"{absorber_symbol} (site {site.site})" if len(sites) > 1 else (
                absorber_symbol)
            raise _cut_error(key, float(value), hit, ranges, around, crystal, margin_A)
