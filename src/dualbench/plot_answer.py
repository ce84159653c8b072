"""Fig. 3 of the paper: the study's answer, the EXAFS score and the force error against
N, with the seed intervals, the yardstick band and the convergence decision of
:mod:`dualbench.scoring.convergence`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dualbench.plots import failure_handles, pyplot, save_figure
from dualbench.scoring.convergence import by_n
from dualbench.scoring.md_status import grouped_failures, summary_failures

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
    which the axis then calls what it is: convergence of the simulation.  A run whose MD
    failed (``md_status`` unstable) has no EXAFS point, whatever its row holds, and the
    legend names it; its force MAE (no MD needed) is drawn."""
    from dualbench.scoring.convergence import convergence_record

    failures = summary_failures(summary)
    summary = _without_failed_exafs(summary, failures)

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
    quantities = [(ax_right, force_column, FORCE_COLOR, "s", "force MAE")]
    if has_exafs:
        quantities.insert(0, (ax_left, exafs_column, EXAFS_COLOR, "o",
                              "EXAFS MSE to reference" if to_reference else "EXAFS MSE"))
    several = summary["model"].nunique() > 1
    for m, (model, rows) in enumerate(summary.groupby("model")):
        for ax, column, color, marker, name in quantities:
            style = {"color": color, "marker": marker, "ls": ["-", "--", "-.", ":"][m % 4]}
            label = f"{name} ({model})" if several else name
            decision = record["models"].get(str(model), {}).get(column, {})
            drawn = _quantity(ax, rows, column, style, label, decision, handles)
            if drawn is not None:
                table.append(drawn.assign(model=model, quantity=column))
    for ax, column, *_ in quantities:
        _clip_to_data(ax, summary[column].dropna() if column in summary
                      else pd.Series(dtype=float))
    handles += failure_handles(ax_left, grouped_failures(failures), reason=True)
    _exafs_axis(ax_left, summary, has_exafs, to_reference,
                bool(failures) and exafs_column in summary)
    _n_axis(ax_left, ax_right, summary)
    # Below the axes: inside, it would hide the points it explains; the figure grows with it
    lines = 1 + sum(h.get_label().count("\n") + 1 for h in handles)
    fig.set_size_inches(5.6, max(4.2, 3.4 + 0.17 * lines))
    ax_left.legend(handles=handles, frameon=False, fontsize=7, loc="upper center",
                   bbox_to_anchor=(0.5, -0.25), ncol=1,
                   title="seed mean, 95 % Student t over seeds; open: each seed",
                   title_fontsize=7)
    if title:
        ax_left.set_title(title)
    fig.tight_layout()
    columns = ["model", "quantity", "n_frames", "mean", "half_width", "n_seeds", "interval",
               "converged_n", "answer"]
    frame = pd.concat(table, ignore_index=True) if table else pd.DataFrame(columns=columns)
    extra = [c for c in ("yardstick_half_width",) if c in frame]
    return save_figure(fig, stem, frame[columns + extra])


def _without_failed_exafs(summary: pd.DataFrame, failures: Mapping) -> pd.DataFrame:
    """The summary with every EXAFS number of a failed run (``exafs_*``, ``s02*``) NaN:
    the model left the crystal or blew up, its spectrum is not a result."""
    if not failures:
        return summary
    keys = zip(summary["model"].astype(str), summary["n_frames"].astype(int),
               summary["seed"].astype(int), strict=True)
    failed = np.array([key in failures for key in keys], dtype=bool)
    summary = summary.copy()
    for column in summary.columns:
        if column.startswith(("exafs_", "s02")) and column != "exafs_arm":
            summary[column] = summary[column].where(~failed)
    return summary


def _quantity(ax, rows: pd.DataFrame, column: str, style: dict, label: str,
              decision: Mapping, handles: list) -> pd.DataFrame | None:
    """One model's line of one quantity: seed means with their bars, each seed's value,
    the yardstick band and the converged N (None when the model has no value)."""
    data = by_n(rows, column)
    if data.empty:
        return None
    color, marker = style["color"], style["marker"]
    n_conv, word = decision.get("n_converged"), decision.get("answer", "unresolved")
    said = f"converged at N={n_conv}" if n_conv is not None else word
    handles.append(ax.errorbar(data["n_frames"], data["mean"], yerr=data["half_width"],
                               capsize=3, label=f"{label}: {said}", **style))
    # each seed's own value: with two or three seeds the t interval is wide, the points
    # show what it is made of
    seeds = rows.dropna(subset=[column])
    ax.plot(seeds["n_frames"], seeds[column], ls="none", marker=marker, ms=3, mfc="none",
            color=color, alpha=0.6)
    if column == "exafs_mse_k" and "exafs_mse_k_yardstick_sd" in rows:
        band = _yardstick_band(rows, data)
        if band is not None:
            handles.append(ax.fill_between(
                data["n_frames"], data["mean"] - band, data["mean"] + band, color=color,
                alpha=0.12, lw=0, label="experiment fit's E0, S0$^2$ (95 %, common to all)"))
            data = data.assign(yardstick_half_width=band)
    if n_conv is not None:
        ax.axvline(n_conv, color=color, ls=":", lw=1.0)
    return data.assign(converged_n=n_conv, answer=word)


def _n_axis(ax_left, ax_right, summary: pd.DataFrame) -> None:
    """The N axis (symmetric log, N = 0 called vanilla) and the force axis's colours."""
    ax_right.set_ylabel("force MAE (meV/Å)", color=FORCE_COLOR)
    ax_right.tick_params(axis="y", colors=FORCE_COLOR)
    ax_left.set_xscale("symlog", linthresh=1.0)
    ns = sorted(summary["n_frames"].unique())
    ax_left.set_xticks(ns)
    ax_left.set_xticklabels(["0\n(vanilla)" if n == 0 else str(n) for n in ns])
    ax_left.set_xlabel("DFT frames used for fine-tuning, N")


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


def _exafs_axis(ax, summary: pd.DataFrame, has_exafs: bool, to_reference: bool,
                failed: bool = False) -> None:
    """Fig. 3's left axis: the EXAFS MSE against the experiment, against the reference
    model's simulation (said to be convergence, not agreement), or nothing scored (no
    experiment, or, with ``failed``, no run whose MD ran fine)."""
    if not has_exafs:
        why = "every run's MD unstable" if failed else "no experiment given"
        ax.text(0.03, 0.04, f"{why}: EXAFS MSE not scored",
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
