"""FEFF8L's path list of the ideal crystal and the instances of its paths around an absorber.

The steps of a path table (:mod:`.path_table`), built once per material from the ideal
supercell (the MD's starting structure, atom for atom) and the fixed potentials:

1. FEFF8L ``rdinp``, ``pathfinder`` and ``genfmt`` on the cluster around one absorber give
   FEFF's own path list: geometry and degeneracy (``paths.dat``) and curved-wave
   importance (``list.dat``), filtered as ``ff2x`` filters it (``critcw``).
2. Each kept path's amplitude, phase, mean free path and real momentum come from FEFF's
   genfmt on the same ``phase.pad`` (:mod:`.single_path`), with the copies that give its
   response to geometry (:mod:`.path_geometry_response`).
3. FEFF's list reaches :data:`RPATH_MARGIN_A` beyond RPATH, and the instances are cut at
   RPATH on their length in each snapshot, as FEFF cuts each snapshot's own paths:
   a path near RPATH counts in the snapshots where it is shorter.
4. Every instance of every path around every absorber of the supercell is listed
   (:func:`enumerate_instances`, :func:`match_instances`): the sequences absorber ->
   scatterers -> absorber inside the cluster, up to NLEG legs and RPATH, matched to
   FEFF's paths by their scatterer potentials and the distances between all their
   vertices (either direction).  Each path must have exactly FEFF's degeneracy in
   instances.  An absorber whose instances do not match the paths of an earlier absorber
   (an inequivalent site) gets FEFF paths of its own.

Distances in Å, k in 1/Å.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dualbench.exafs.clusters import Cluster

#: Largest difference (Å) between two vertex distances of paths taken as the same path.
MATCH_TOLERANCE_A = 2e-3
#: FEFF's default curved-wave importance cut of ff2x (%), when ff2x.json does not say.
DEFAULT_CRITCW = 4.0
#: How far beyond RPATH (Å) the table's paths reach, for instances that come inside RPATH
#: in a snapshot (a half-length change larger than this is warned about).
RPATH_MARGIN_A = 0.5


@dataclass(frozen=True)
class FeffPath:
    """One path of FEFF's list: ``vertices`` (nleg, 3) in Å, absorber first, with their
    FEFF potentials ``ipots`` (absorber 0); ``degeneracy`` and ``crit`` (curved-wave
    amplitude ratio, %) as FEFF gives them."""

    index: int
    nleg: int
    degeneracy: float
    crit: float
    ipots: tuple[int, ...]
    vertices: np.ndarray

    @property
    def reff_A(self) -> float:
        """Half the length of the closed path (Å)."""
        legs = np.roll(self.vertices, -1, axis=0) - self.vertices
        return 0.5 * float(np.linalg.norm(legs, axis=1).sum())


# ----------------------------------------------------------------------------- FEFF's list


def parse_paths_dat(text: str) -> dict[int, tuple[float, tuple[int, ...], np.ndarray]]:
    """FEFF's ``paths.dat``: {index: (degeneracy, vertex ipots, vertices (nleg, 3) Å)}.

    FEFF lists a path's scatterers, then the absorber; the vertices here start with the
    absorber.
    """
    lines = text.splitlines()
    out: dict[int, tuple[float, tuple[int, ...], np.ndarray]] = {}
    i = 0
    while i < len(lines):
        if "index, nleg, degeneracy" not in lines[i]:
            i += 1
            continue
        words = lines[i].split()
        index, nleg, degeneracy = int(words[0]), int(words[1]), float(words[2])
        rows = [lines[i + 2 + j].split() for j in range(nleg)]
        xyz = np.array([[float(w) for w in row[:3]] for row in rows])
        ipots = [int(row[3]) for row in rows]
        out[index] = (
            degeneracy,
            (ipots[-1], *ipots[:-1]),
            np.vstack([xyz[-1:], xyz[:-1]]),
        )
        i += 2 + nleg
    return out


def parse_list_dat(text: str) -> dict[int, tuple[float, float]]:
    """FEFF's ``list.dat``: {path index: (degeneracy, curved-wave amplitude ratio in %)}."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 6 and words[0].isdigit():
            out[int(words[0])] = (float(words[3]), float(words[2]))
    return out


def feff_path_list(folder: Path) -> list[FeffPath]:
    """The paths ``ff2x`` would sum in a FEFF folder after pathfinder and genfmt."""
    geometry = parse_paths_dat((folder / "paths.dat").read_text())
    importance = parse_list_dat((folder / "list.dat").read_text())
    critcw = DEFAULT_CRITCW
    if (folder / "ff2x.json").is_file():
        critcw = float(json.loads((folder / "ff2x.json").read_text()).get("critcw", critcw))
    paths = []
    for index, (degeneracy, crit) in sorted(importance.items()):
        if crit < critcw:
            continue
        _, ipots, vertices = geometry[index]
        paths.append(FeffPath(index, len(ipots), degeneracy, crit, ipots, vertices))
    return merge_equivalent(paths)


def merge_equivalent(paths: Sequence[FeffPath]) -> list[FeffPath]:
    """FEFF's list with paths of the same potentials and vertex distances (either
    direction) merged into the first, degeneracies added.

    FEFF's pathfinder does not always see that two paths are the same (in 2H-WS2 it
    lists W -> W' -> S -> W in two entries of degeneracy 8 and 16); genfmt gives both the
    same amplitude and phase.
    """
    merged: list[FeffPath] = []
    for path in paths:
        for i, kept in enumerate(merged):
            if _same_path(kept, path):
                merged[i] = replace(kept, degeneracy=kept.degeneracy + path.degeneracy)
                break
        else:
            merged.append(path)
    return merged


def _same_path(a: FeffPath, b: FeffPath) -> bool:
    if a.nleg != b.nleg:
        return False
    want = vertex_distances(a.vertices)
    for order in (np.arange(b.nleg), _reverse(b.nleg)):
        if tuple(np.asarray(b.ipots)[order]) == tuple(a.ipots) and np.all(
            np.abs(vertex_distances(b.vertices[order]) - want) <= MATCH_TOLERANCE_A
        ):
            return True
    return False


# ----------------------------------------------------------------------------- instances


def enumerate_instances(cluster: Cluster, rmax_A: float, nleg: int) -> dict[int, np.ndarray]:
    """Every closed path absorber -> scatterers -> absorber in ``cluster`` of 2..``nleg``
    legs and half length at most ``rmax_A``: {legs: (n, legs) vertex indices into the
    cluster, absorber (0) first}.  Consecutive vertices differ; the absorber may be an
    inner vertex.
    """
    limit = 2.0 * rmax_A + 1e-6
    candidates = np.flatnonzero(cluster.distances <= rmax_A + 1e-6)
    pos = cluster.positions[candidates]
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    back = dist[:, 0]  # candidates[0] is the absorber (distance 0)
    partial = np.zeros((1, 1), dtype=int)
    length = np.zeros(1)
    out: dict[int, np.ndarray] = {}
    for legs in range(2, nleg + 1):
        last = partial[:, -1]
        grown = length[:, None] + dist[last]
        other = np.arange(len(candidates))[None, :] != last[:, None]
        ok = (grown + back[None, :] <= limit) & other
        rows, cols = np.nonzero(ok)
        partial = np.hstack([partial[rows], cols[:, None]])
        length = grown[rows, cols]
        closed = partial[:, -1] != 0
        if closed.any():
            out[legs] = candidates[partial[closed]]
        if legs == nleg or len(partial) == 0:
            break
    return out


def vertex_distances(vertices: np.ndarray) -> np.ndarray:
    """Distances between all vertex pairs (i < j) of paths (..., legs, 3): (..., pairs)."""
    legs = vertices.shape[-2]
    i, j = np.triu_indices(legs, k=1)
    return np.linalg.norm(vertices[..., i, :] - vertices[..., j, :], axis=-1)


def _reverse(legs: int) -> np.ndarray:
    return np.concatenate([[0], np.arange(legs - 1, 0, -1)])


def match_instances(
    cluster: Cluster,
    instances: Mapping[int, np.ndarray],
    ipot_of: Mapping[str, int],
    paths: Sequence[FeffPath],
) -> dict[int, np.ndarray]:
    """{legs: (n,) index into ``paths`` of each instance, -1 where FEFF kept no such path}.

    An instance found in FEFF's path's reverse direction is reversed in ``instances``
    (in place), so that its vertices follow FEFF's path vertex by vertex.
    """
    symbols = np.array(cluster.symbols)
    vertex_ipot = np.array([0] + [ipot_of[s] for s in symbols[1:]])
    out = {}
    for legs, verts in instances.items():
        ipots = vertex_ipot[verts]
        dist = vertex_distances(cluster.positions[verts])
        which = np.full(len(verts), -1)
        reverse = np.zeros(len(verts), dtype=bool)
        for p, path in enumerate(paths):
            if path.nleg != legs:
                continue
            for backwards, order in ((False, np.arange(legs)), (True, _reverse(legs))):
                want_ipots = np.asarray(path.ipots)[order]
                want = vertex_distances(path.vertices[order])
                hit = (which < 0) & np.all(ipots == want_ipots, axis=1)
                hit &= np.all(np.abs(dist - want) <= MATCH_TOLERANCE_A, axis=1)
                which[hit] = p
                reverse[hit] = backwards
        verts[reverse] = verts[reverse][:, _reverse(legs)]
        out[legs] = which
    return out


def counts_match(which: Mapping[int, np.ndarray], paths: Sequence[FeffPath]) -> bool:
    counts = np.zeros(len(paths), dtype=int)
    for assigned in which.values():
        counts += np.bincount(assigned[assigned >= 0], minlength=len(paths))
    return bool(np.all(counts == np.round([p.degeneracy for p in paths]).astype(int)))


