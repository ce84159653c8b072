"""The one Fourier transform (larch ``xftf``) and the chi(k) / |chi(R)| files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dualbench.exafs.settings import R_OUT_MAX, FTSettings, import_larch
from dualbench.io import write_csv


def fourier_transform(
    k: np.ndarray, chi: np.ndarray, ft: FTSettings, rmax_out: float = R_OUT_MAX
) -> tuple[np.ndarray, np.ndarray]:
    """chi(R) of chi(k) with larch ``xftf``: returns (R in Å, complex chi(R) in Å^-(w+1)).

    ``k`` must be uniform (the larch 0.05 1/Å grid); the same call serves experiment and
    simulation.
    """
    import_larch()
    from larch import Group
    from larch.xafs import xftf

    group = Group()
    xftf(
        np.asarray(k, dtype=float),
        np.asarray(chi, dtype=float),
        group=group,
        kmin=ft.kmin,
        kmax=ft.kmax,
        dk=ft.dk,
        window=ft.window,
        kweight=ft.kweight,
        rmax_out=rmax_out,
    )
    return np.asarray(group.r), np.asarray(group.chir)


def write_chi_k(
    target: str | Path, k: np.ndarray, chi: np.ndarray, chi_stderr: np.ndarray | None = None
) -> None:
    """Write ``chi_k.csv``: columns k (1/Å), chi (and chi_stderr), atomically."""
    import pandas as pd

    data = {"k": np.asarray(k), "chi": np.asarray(chi)}
    if chi_stderr is not None:
        data["chi_stderr"] = np.asarray(chi_stderr)
    write_csv(target, pd.DataFrame(data))


def write_chi_r(target: str | Path, r: np.ndarray, chir: np.ndarray) -> None:
    """Write ``chi_r.csv``: columns r (Å), chir_mag (|chi(R)|), atomically."""
    import pandas as pd

    write_csv(target, pd.DataFrame({"r": np.asarray(r), "chir_mag": np.abs(chir)}))


def read_chi_k(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(k, chi) of a ``chi_k.csv``; a missing file or column is an error naming it."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chi(k) file")
    frame = pd.read_csv(path)
    for column in ("k", "chi"):
        if column not in frame.columns:
            raise ValueError(f"{path}: column {column!r} missing (have {list(frame.columns)})")
    if frame.empty:
        raise ValueError(f"{path}: no rows (an unstable run's chi(k) is empty; its"
                         " chi_snapshots.npz says why)")
    return frame["k"].to_numpy(float), frame["chi"].to_numpy(float)
