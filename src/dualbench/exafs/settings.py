"""The settings of the EXAFS arm: FEFF8L's, the Fourier transform's, the k grid.

Units: distances in Å, k in 1/Å.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

K_STEP = 0.05
K_MAX = 20.0
K_GRID = np.round(np.arange(0.0, K_MAX + 0.5 * K_STEP, K_STEP), 6)

#: Highest R (Å) written to chi_r.csv.
R_OUT_MAX = 10.0


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

    @classmethod
    def from_config(cls, exafs: Mapping[str, Any], edge: str) -> FeffSettings:
        """From the config's ``exafs`` section and the material's edge."""
        return cls(
            edge=edge,
            rmax_A=float(exafs["rmax_A"]),
            nleg=int(exafs["nleg"]),
            cluster_radius_A=float(exafs["cluster_radius_A"]),
            scf_radius_A=exafs.get("scf_radius_A"),
            criteria_pct=_criteria(exafs.get("criteria_pct")),
        )


def _criteria(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    critcw, critpw = (float(v) for v in value)
    return critcw, critpw


@dataclass(frozen=True)
class FTSettings:
    """The one Fourier transform (larch ``xftf``) and the ranges scored in the comparison.

    k in 1/Å, R in Å; ``window`` is a larch window name, ``kweight`` the w of k^w chi(k).
    """

    kmin: float = 3.0
    kmax: float = 14.0
    dk: float = 1.0
    window: str = "hanning"
    kweight: int = 2
    rmin: float = 1.0
    rmax: float = 5.0

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


def section_defaults(section: str) -> dict[str, Any]:
    """The schema defaults of a flat config section (``exafs``, ``experiment``, ``ft``)."""
    from dualbench.config import load_schema

    props = load_schema()["properties"][section]["properties"]
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}
