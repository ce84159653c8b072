"""The settings of the EXAFS arm: FEFF8L's, the arm's (:class:`ExafsSettings`: engine,
snapshot sampling, potentials), the Fourier transform's, the k grid.

Every job and the ``exafs-average`` command build one :class:`ExafsSettings` from a
config's ``exafs`` section (:meth:`ExafsSettings.from_config`) and pass it on; nothing
downstream reads the section's dict.

Units: distances in Å, k in 1/Å.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualbench.schema import SettingError, section_defaults

K_STEP = 0.05
K_MAX = 20.0
K_GRID = np.round(np.arange(0.0, K_MAX + 0.5 * K_STEP, K_STEP), 6)

#: Highest R (Å) written to chi_r.csv.
R_OUT_MAX = 10.0

#: The engines of the ``snapshot_chi`` jobs (``exafs.engine``).
ENGINES = ("fast", "feff")
#: What the fixed potentials are computed from (``exafs.potentials_from``).
POTENTIALS_FROM = ("ideal", "average")


@dataclass(frozen=True)
class FeffSettings:
    """FEFF8L settings of one calculation.

    ``rmax_A`` is FEFF's RPATH (longest half path length, Å), ``nleg`` its NLEG (most legs
    per path; 2 = single scattering only), ``cluster_radius_A`` the radius of the cluster
    cut around the absorber (Å) and ``scf_radius_A`` the radius of FEFF's self-consistent
    potential (SCF card), or None for overlapped-atom potentials without SCF.
    ``criteria_pct`` = (curved-wave, plane-wave) importance cuts of FEFF's CRITERIA card in
    % of the strongest path, None for FEFF's defaults (4, 2.5).  FEFF applies them to the
    paths of the cluster it is given: in a disordered snapshot every path stands alone,
    so a multiple-scattering path that the ideal crystal keeps through its degeneracy can
    fall below the cut; (0, 0) keeps every path up to RPATH and NLEG.
    """

    edge: str = "L3"
    rmax_A: float = 6.0
    nleg: int = 4
    cluster_radius_A: float = 7.0
    scf_radius_A: float | None = None
    criteria_pct: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.edge not in ("K", "L1", "L2", "L3"):
            raise ValueError(f"edge {self.edge!r} is not one of K, L1, L2, L3")
        if not 2 <= int(self.nleg) <= 8:
            raise ValueError(f"nleg {self.nleg} must be between 2 and 8")
        if self.rmax_A <= 0 or self.cluster_radius_A <= 0:
            raise ValueError("rmax_A and cluster_radius_A must be positive")
        if self.rmax_A > self.cluster_radius_A:
            raise ValueError(
                f"rmax_A {self.rmax_A} Å exceeds cluster_radius_A {self.cluster_radius_A} Å:"
                " paths would leave the cluster"
            )

def _criteria(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    critcw, critpw = (float(v) for v in value)
    return critcw, critpw


@dataclass(frozen=True)
class SnapshotSampling:
    """Which snapshots and absorbers a run uses and how its snapshots are chunked.

    ``snapshots`` evenly spaced over the production (0: all), ``absorbers_per_snapshot``
    drawn by the seed (0: all), ``chunk_size`` snapshots per ``snapshot_chi`` job.
    """

    snapshots: int = 0
    absorbers_per_snapshot: int = 0
    chunk_size: int = 50

    def __post_init__(self) -> None:
        if self.snapshots < 0:
            raise ValueError(f"exafs.snapshots {self.snapshots} must be >= 0 (0: all)")
        if self.absorbers_per_snapshot < 0:
            raise ValueError(
                f"exafs.absorbers_per_snapshot {self.absorbers_per_snapshot} must be >= 0"
                " (0: all)"
            )
        if self.chunk_size < 1:
            raise ValueError(f"exafs.chunk_size {self.chunk_size} must be >= 1")

    @classmethod
    def from_config(cls, exafs: Mapping[str, Any]) -> SnapshotSampling:
        """From a config's ``exafs`` section; keys it lacks take the schema's defaults."""
        values = _with_defaults(exafs)
        return cls(
            snapshots=int(values["snapshots"]),
            absorbers_per_snapshot=int(values["absorbers_per_snapshot"]),
            chunk_size=int(values["chunk_size"]),
        )


@dataclass(frozen=True)
class ExafsSettings:
    """The EXAFS arm's settings of one material: FEFF8L's (``feff``, with the edge and the
    cluster radius), the ``engine`` of the chunks (:data:`ENGINES`), the snapshot
    ``sampling``, what the fixed potentials come from (``potentials_from``, the jobs'
    choice; ``exafs-average`` takes its ``--reference`` or the snapshots' mean) and
    whether a cluster beyond the snapshots' inscribed radius is accepted
    (``allow_periodic_images``), and how far (Å) RPATH and the cluster radius must stay
    from a shell of the ideal crystal (``shell_margin_A``, 0: not checked;
    :mod:`.shells`)."""

    feff: FeffSettings
    engine: str = "fast"
    sampling: SnapshotSampling = field(default_factory=SnapshotSampling)
    potentials_from: str = "ideal"
    allow_periodic_images: bool = False
    shell_margin_A: float = 0.1

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"exafs.engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.potentials_from not in POTENTIALS_FROM:
            raise ValueError(
                f"exafs.potentials_from {self.potentials_from!r} is not one of"
                f" {', '.join(POTENTIALS_FROM)}"
            )
        if not self.shell_margin_A >= 0:
            raise SettingError("exafs.shell_margin_A", f"({self.shell_margin_A}) must be >= 0")

    @property
    def edge(self) -> str:
        return self.feff.edge

    @property
    def cluster_radius_A(self) -> float:
        return self.feff.cluster_radius_A

    @classmethod
    def from_config(cls, exafs: Mapping[str, Any], edge: str) -> ExafsSettings:
        """From a config's ``exafs`` section and the material's edge.

        Keys the section lacks take the schema's defaults: each Snakemake rule passes its
        job only the keys it depends on (so that, e.g., a new S0^2 reruns no FEFF job).
        """
        values = _with_defaults(exafs)
        feff = FeffSettings(
            edge=edge,
            rmax_A=float(values["rmax_A"]),
            nleg=int(values["nleg"]),
            cluster_radius_A=float(values["cluster_radius_A"]),
            scf_radius_A=values["scf_radius_A"],
            criteria_pct=_criteria(values["criteria_pct"]),
        )
        return cls(
            feff=feff,
            engine=str(values["engine"]),
            sampling=SnapshotSampling.from_config(values),
            potentials_from=str(values["potentials_from"]),
            allow_periodic_images=bool(values["allow_periodic_images"]),
            shell_margin_A=float(values["shell_margin_A"]),
        )


def _with_defaults(exafs: Mapping[str, Any]) -> dict[str, Any]:
    return {**section_defaults("exafs"), **exafs}


@dataclass(frozen=True)
class FTSettings:
    """The one Fourier transform (larch ``xftf``) and the ranges scored in the comparison.

    k in 1/Å, R in Å; ``window`` is a larch window name, ``kweight`` the w of k^w chi(k).
    Its ranges are checked here, once (0 <= kmin < kmax, dk >= 0, 0 <= kweight <= 3,
    0 <= rmin < rmax): a ValueError names the ``ft`` key.
    """

    kmin: float = 3.0
    kmax: float = 14.0
    dk: float = 1.0
    window: str = "hanning"
    kweight: int = 2
    rmin: float = 1.0
    rmax: float = 5.0

    def __post_init__(self) -> None:
        # Written so that a NaN fails each check; the one place these ranges are checked
        # (a config's check turns a SettingError into an error naming the file).
        checks = [
            (self.kmin >= 0, "ft.kmin", f"({self.kmin}) must be >= 0"),
            (self.kmin < self.kmax, "ft.kmax", f"must exceed ft.kmin ({self.kmin})"),
            (self.dk >= 0, "ft.dk", f"({self.dk}) must be >= 0"),
            (0 <= self.kweight <= 3, "ft.kweight", f"({self.kweight}) must be between 0 and 3"),
            (self.rmin >= 0, "ft.rmin", f"({self.rmin}) must be >= 0"),
            (self.rmin < self.rmax, "ft.rmax", f"must exceed ft.rmin ({self.rmin})"),
        ]
        for ok, key, message in checks:
            if not ok:
                raise SettingError(key, message)

    @classmethod
    def from_config(cls, ft: Mapping[str, Any]) -> FTSettings:
        return cls(
            kmin=float(ft["kmin"]),
            kmax=float(ft["kmax"]),
            dk=float(ft["dk"]),
            window=str(ft["window"]),
            kweight=int(ft["kweight"]),
            rmin=float(ft["rmin"]),
            rmax=float(ft["rmax"]),
        )

    @property
    def window_end(self) -> float:
        """Where larch's k window reaches zero (1/Å): kmax + dk/2."""
        return self.kmax + 0.5 * self.dk


_LARCH_LOCK = threading.Lock()


def import_larch() -> None:
    """Import larch, keeping the root logger's level (importing larch resets it to WARNING,
    which would hide the progress lines of the stages).  Thread-safe."""
    with _LARCH_LOCK:
        root = logging.getLogger()
        level = root.level
        import larch  # noqa: F401

        root.setLevel(level)
