"""The leaderboard's figure: models x materials heat maps of the first-shell sigma^2 ratio
(MD over the experiment's fit, text: ratio ± 95 % half-width; colour: log2 of the ratio,
white at 1) and of the EXAFS MSE_k (text: value ± half-width).  A row whose MD was unstable
(``md_status`` unstable) is a grey hatched cell reading "MD unstable" in both maps, with
its failure text in the CSV.  PNG + PDF + CSV through :func:`dualbench.plots.save_figure`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dualbench.plots import pyplot, save_figure
from dualbench.scoring.md_status import is_unstable


def row_label(model: str, n_frames: int) -> str:
    """``chgnet`` (vanilla) or ``chgnet N=10`` (fine-tuned)."""
    return model if n_frames == 0 else f"{model} N={n_frames}"


def _grid(table: pd.DataFrame, value: str, lo: str, hi: str
          ) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    keys = sorted(set(zip(table["model"], table["n_frames"], strict=True)))
    labels = [row_label(*key) for key in keys]
    materials = list(dict.fromkeys(table["material"]))
    values = np.full((len(labels), len(materials)), np.nan)
    halves = np.full_like(values, np.nan)
    for row in table.itertuples():
        i = labels.index(row_label(row.model, row.n_frames))
        j = materials.index(row.material)
        values[i, j] = getattr(row, value)
        halves[i, j] = (getattr(row, hi) - getattr(row, lo)) / 2
    return labels, materials, values, halves


def unstable_cells(table: pd.DataFrame, labels: list[str], materials: list[str]
                   ) -> np.ndarray:
    """(row label, material) cells whose MD was unstable."""
    cells = np.zeros((len(labels), len(materials)), dtype=bool)
    if "md_status" not in table:
        return cells
    for row in table.itertuples():
        if is_unstable(row.md_status):
            cells[labels.index(row_label(row.model, row.n_frames)),
                  materials.index(row.material)] = True
    return cells


def _unstable_cell(ax, i: int, j: int) -> None:
    """A grey hatched cell reading "MD unstable"."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, facecolor="0.85", edgecolor="0.55",
                           hatch="///", lw=0.0))
    ax.text(j, i, "MD unstable", ha="center", va="center", fontsize=8, color="black",
            bbox={"facecolor": "0.85", "edgecolor": "none", "pad": 1.0})


def _heatmap(ax, labels, materials, values, halves, colours, cmap, norm, title, digits,
             unstable):
    image = ax.imshow(np.ma.masked_invalid(colours), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(labels)):
        for j in range(len(materials)):
            if unstable[i, j]:
                _unstable_cell(ax, i, j)
            elif math.isfinite(values[i, j]):
                half = f" ± {halves[i, j]:.{digits}f}" if math.isfinite(halves[i, j]) else ""
                red, green, blue, _ = image.cmap(image.norm(colours[i, j]))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(j, i, f"{values[i, j]:.{digits}f}{half}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")
            else:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="0.5")
    ax.set_xticks(range(len(materials)), materials, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title(title, fontsize=10)
    return image


def leaderboard_figure(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Write ``stem``.png/.pdf/.csv: the two heat maps of the leaderboard ``table``."""
    plt = pyplot()
    from matplotlib.colors import Normalize, TwoSlopeNorm

    labels, materials, ratio, ratio_half = _grid(table, "sigma2_ratio", "sigma2_ratio_lo",
                                                 "sigma2_ratio_hi")
    _, _, mse, mse_half = _grid(table, "exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi")
    unstable = unstable_cells(table, labels, materials)
    # the two maps one above the other: a column of about 1.3 inch holds "0.123 ± 0.012"
    height = 1.6 + 0.4 * len(labels)
    fig, axes = plt.subplots(2, 1, figsize=(4.0 + 1.3 * len(materials), 2 * height),
                             constrained_layout=True)
    log_ratio = np.log2(np.where(ratio > 0, ratio, np.nan))
    span = max(float(np.nanmax(np.abs(log_ratio))) if np.isfinite(log_ratio).any() else 1.0,
               0.1)
    image = _heatmap(axes[0], labels, materials, ratio, ratio_half, log_ratio, "RdBu_r",
                     TwoSlopeNorm(0.0, -span, span), "MD / fitted first-shell σ²", 2,
                     unstable)
    fig.colorbar(image, ax=axes[0], label="log2 ratio")
    top = float(np.nanmax(mse)) if np.isfinite(mse).any() else 1.0
    image = _heatmap(axes[1], labels, materials, mse, mse_half, mse, "viridis_r",
                     Normalize(0.0, top), "EXAFS MSE of k^w χ(k)", 3, unstable)
    fig.colorbar(image, ax=axes[1], label="MSE_k")
    numbers = table[["material", "model", "row_kind", "n_frames", "sigma2_ratio",
                     "sigma2_ratio_lo", "sigma2_ratio_hi", "exafs_mse_k", "exafs_mse_k_lo",
                     "exafs_mse_k_hi", *[c for c in ("md_status", "md_failure") if c in table]]]
    return save_figure(fig, stem, numbers)
