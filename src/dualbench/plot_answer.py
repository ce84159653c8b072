"""Fig. 3 of the paper: the study's answer, the EXAFS score and the force error against
N, with the seed intervals, the yardstick band and the convergence decision of
:mod:`dualbench.scoring.convergence`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dualbench.plots import pyplot, save_figure

EXAFS_COLOR = "#1f4e9c"
FORCE_COLOR = "#c0392b"


def fig3(
    summary: pd.DataFrame,
    stem: str | Path,
    exafs_column: str | None = None,
    force_column: str = "force_mae",
    title: str = "",
    record: Mapping | None = None,
) -> list[Path]:
    """EXAFS MSE (left axis, blue circles) and force MAE (right axis, meV/Å, red squares)
    against N: mean over seeds with 95 % Student-t error bars of the seed spread (which
    contains each run's sampling noise; one seed: its sampling interval), one line style
    per model.  Against the experiment, the yardstick's 95 % band (the experiment fit's E0
    and S0^2, common to every model) is shaded apart.  ``record`` is convergence.json
    (:mod:`dualbench.scoring.convergence`, default: computed with the default margins):
    its converged N is marked by a dotted vertical line and its answer (converged,
    unresolved, not converged) is in the legend.  N = 0 (the vanilla model) sits on a
    symmetric-log axis.  ``exafs_column`` defaults to the score against the experiment
    (``exafs_mse_k``) or, without one, against the reference model (``exafs_mse_ref_k``),
    which the axis then calls what it is: convergence of the simulation."""
    from dualbench.scoring.convergence import by_n, convergence_record

    def present(column: str) -> bool:
        return column in summary and summary[column].notna().any()

    if exafs_column is None:
        exafs_column = "exafs_mse_ref_k" if (
            not present("exafs_mse_k") and present("exafs_mse_ref_k")) else "exafs_mse_k"
    to_reference = exafs_column == "exafs_mse_ref_k"
    record = record or convergence_record(summary)
    plt = pyplot()
    fig, ax_left = plt.subplots(figsize=(5.6, 4.2))
    ax_right = ax_left.twinx()
    table, handles = [], []
    has_exafs = present(exafs_column)
    for m, (model, rows) in enumerate(summary.groupby("model")):
        line = ["-", "--", "-.", ":"][m % 4]
        for ax, column, color, marker, name in (
            (ax_left, exafs_column, EXAFS_COLOR, "o",
             "EXAFS MSE to reference" if to_reference else "EXAFS MSE"),
            (ax_right, force_column, FORCE_COLOR, "s", "force MAE"),
        ):
            if column == exafs_column and not has_exafs:
                continue
            data = by_n(rows, column)
            decision = record["models"].get(str(model), {}).get(column, {})
            n_conv, word = decision.get("n_converged"), decision.get("answer", "unresolved")
            label = f"{name} ({model})" if summary["model"].nunique() > 1 else name
            said = f"converged at N={n_conv}" if n_conv is not None else word
            handles.append(ax.errorbar(
                data["n_frames"], data["mean"], yerr=data["half_width"], color=color,
                marker=marker, ls=line, capsize=3, label=f"{label}: {said}"))
            # each seed's own value: with two or three seeds the t interval is wide, the
            # points show what it is made of
            seeds = rows.dropna(subset=[column])
            ax.plot(seeds["n_frames"], seeds[column], ls="none", marker=marker, ms=3,
                    mfc="none", color=color, alpha=0.6)
            _clip_to_data(ax, seeds[column])
            if column == "exafs_mse_k" and "exafs_mse_k_yardstick_sd" in rows:
                band = _yardstick_band(rows, data)
                if band is not None:
                    handles.append(ax.fill_between(
                        data["n_frames"], data["mean"] - band, data["mean"] + band,
                        color=color, alpha=0.12, lw=0,
                        label="experiment fit's E0, S0$^2$ (95 %, common to all)"))
                    data = data.assign(yardstick_half_width=band)
            if n_conv is not None:
                ax.axvline(n_conv, color=color, ls=":", lw=1.0)
            table.append(data.assign(model=model, quantity=column, converged_n=n_conv,
                                     answer=word))
    _exafs_axis(ax_left, summary, has_exafs, to_reference)
    ax_right.set_ylabel("force MAE (meV/Å)", color=FORCE_COLOR)
    ax_right.tick_params(axis="y", colors=FORCE_COLOR)
    ax_left.set_xscale("symlog", linthresh=1.0)
    ns = sorted(summary["n_frames"].unique())
    ax_left.set_xticks(ns)
    ax_left.set_xticklabels(["0\n(vanilla)" if n == 0 else str(n) for n in ns])
    ax_left.set_xlabel("DFT frames used for fine-tuning, N")
    # Below the axes: inside, it would hide the points it explains.
    ax_left.legend(handles=handles, frameon=False, fontsize=7, loc="upper center",
                   bbox_to_anchor=(0.5, -0.25), ncol=1,
                   title="seed mean, 95 % Student t over seeds; open: each seed",
                   title_fontsize=7)
    if title:
        ax_left.set_title(title)
    fig.tight_layout()
    columns = ["model", "quantity", "n_frames", "mean", "half_width", "n_seeds", "interval",
               "converged_n", "answer"]
    frame = pd.concat(table, ignore_index=True)
    extra = [c for c in ("yardstick_half_width",) if c in frame]
    return save_figure(fig, stem, frame[columns + extra])


def _clip_to_data(ax, values: pd.Series) -> None:
    """Scores are >= 0: the axis spans 0 to a margin above the largest seed value, so a
    Student-t bar of two seeds (12.7 standard errors) runs off the axis, not into
    negative scores."""
    top = float(values.max()) * 1.35 if len(values) else 1.0
    ax.set_ylim(0.0, max(top, ax.get_ylim()[1] if top <= 0 else top))


def _yardstick_band(rows: pd.DataFrame, data: pd.DataFrame) -> np.ndarray | None:
    """95 % half-width of the yardstick (the experiment fit's E0 and S0^2) at each N of
    ``data``: the seed mean of each run's propagated standard deviation."""
    sd = rows.groupby("n_frames")["exafs_mse_k_yardstick_sd"].mean()
    band = 1.959964 * sd.reindex(data["n_frames"]).to_numpy(float)
    return band if np.isfinite(band).any() else None


def _exafs_axis(ax, summary: pd.DataFrame, has_exafs: bool, to_reference: bool) -> None:
    """Fig. 3's left axis: the EXAFS MSE against the experiment, against the reference
    model's simulation (said to be convergence, not agreement), or nothing scored."""
    if not has_exafs:
        ax.text(0.03, 0.04, "no experiment given: EXAFS MSE not scored",
                transform=ax.transAxes, ha="left", va="bottom", style="italic", fontsize=8)
        ax.set_yticks([])
        return
    if to_reference:
        reference = summary["reference"].dropna().iloc[0] if "reference" in summary else "?"
        ax.set_ylabel(f"MSE of $k^w\\chi(k)$ to {reference}'s simulation", color=EXAFS_COLOR)
        ax.text(0.03, 0.04, "no experiment: convergence of the simulated EXAFS,\n"
                "not agreement with a measurement", transform=ax.transAxes,
                ha="left", va="bottom", style="italic", fontsize=7)
    else:
        ax.set_ylabel("EXAFS MSE of $k^w\\chi(k)$", color=EXAFS_COLOR)
    ax.tick_params(axis="y", colors=EXAFS_COLOR)
