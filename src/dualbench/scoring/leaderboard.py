"""The leaderboard: every (model, material) at N = 0 and at the largest N, both yardsticks.

One row per (material, model, row kind): ``vanilla`` (N = 0) and ``fine-tuned`` (the largest
N of the material's EXAFS arm, for a model that has it).  Read from a material's results
folder: ``summary.csv``, ``experiment/fit.json`` and every EXAFS run's ``md/sigma2.csv``.

* ``sigma2_ratio``: the MD first-shell sigma^2 (seed mean) over the experiment's fitted
  first-shell sigma^2, with a 95 % interval from first-order propagation of both relative
  standard errors, ``(se_r / r)^2 = (se_md / md)^2 + (se_fit / fit)^2``.  The MD standard
  error is the seeds' (sd / sqrt(m), m - 1 degrees of freedom) with several seeds, else
  the run's autocorrelation-aware ``sigma2_stderr_A2`` (normal); the fit's is larch's
  ``sigma2_shell1_A2_err`` (taken as normal).  The quantile is Student t at the
  Welch-Satterthwaite degrees of freedom of the sum (infinite: 1.96).
* ``exafs_mse_k``: the seed mean with its Student-t 95 % interval with several seeds, else
  the run's basic bootstrap interval (``exafs_mse_k_lo/_hi``); ``exafs_mse_k_yardstick_sd``
  (common to every model of the material) is reported beside it, not added.
* ``s02_fitted`` (the model's own least-squares S0^2), ``exafs_rfactor``: seed means.
* ``force_mae``, ``force_slope``: seed means of the material's
  ``dft.experiment_condition`` (``force_mae[AIMD]``) when the summary has it, else of the
  condition matching its temperature (``force_mae[300K]``), else the overall columns;
  empty without a DFT arm.
* ``nuclei``: how the MD treated the nuclei, read from the runs' ``md/md_run.json``:
  ``classical`` or ``pimd P=<beads>`` (path-integral MD), so that a 10 K entry scored
  with classical nuclei says so.
* Ranks (:func:`rank_bands`): a row is ahead of another only when its whole interval lies
  below the other's; its band is [1 + rows surely ahead, rows not surely behind].  Per
  material by ``exafs_mse_k``; overall by the same rule on the per-material bands averaged
  over the rows ``in_overall``: every row but one whose MD ran classical nuclei below
  :data:`CLASSICAL_MIN_TEMPERATURE_K` (there the missing zero-point motion, not the model,
  sets most of sigma^2, the same for every model; such rows keep their per-material rank).
* ``md_status`` (``ok`` or ``unstable``) and ``md_failure``: a run whose MD failed (a
  temperature runaway, atoms too close, an atom off its lattice site in a crystal) says so
  in ``summary.csv`` (``md_status``, ``md_failure``; a summary without them is all ok) or
  in its run folder (:mod:`dualbench.scoring.md_status`).  A row is unstable when any of its
  seeds is (the stable seeds alone would be the survivors, not the model).  An unstable
  row keeps its DFT-arm numbers (force MAE and slope need no MD) and has no MD sigma^2,
  ratio or EXAFS numbers: its ``md/sigma2.csv`` is never read, even when it has rows (an
  atom that left its site makes sigma^2 meaningless).

Ranking of unstable rows (a penalty, not a skip).  A model whose MD is unstable at the
experiment's condition is ranked behind every stable model of its material: with k stable
rows ranked by the interval rule and n = k + the unstable rows, each unstable row's band
is [k + 1, n], for the EXAFS rank and the sigma^2 rank alike, and it enters the overall
rank with that band.  A material with no stable row at all gives every row [1, n].  The
stable rows' bands are those of :func:`rank_bands` over the stable rows alone, the same as
without the unstable rows.  When stable rows exist but none has an interval for a rank
(no experiment fit for sigma^2, say), the unstable rows stay unranked too.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from dualbench.scoring.md_status import (
    STABLE,
    UNSTABLE,
    is_unstable,
    run_folder,
    summary_failures,
)
from dualbench.stats import t_half_width, t_quantile

CONFIDENCE = 0.95
#: Below this temperature a classical MD misses most of a shell's sigma^2 (an Einstein
#: oscillator's classical / quantum sigma^2 is tanh(x) / x with x = theta_E / 2T: 0.95 at
#: 300 K, 0.85 at 200 K and 0.68 at 100 K for theta_E = 250 K, 0.08 at 10 K), so its rows
#: stay out of the overall rank unless the MD ran path-integral nuclei.
CLASSICAL_MIN_TEMPERATURE_K = 200.0
VANILLA, TUNED = "vanilla", "fine-tuned"
COLUMNS = (
    "material", "model", "row_kind", "n_frames", "n_seeds", "temperature_K", "nuclei",
    "md_status", "md_failure",
    "sigma2_md_A2", "sigma2_md_se_A2", "sigma2_exp_A2", "sigma2_exp_se_A2",
    "sigma2_ratio", "sigma2_ratio_lo", "sigma2_ratio_hi", "sigma2_ratio_dof",
    "exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi", "exafs_mse_k_yardstick_sd",
    "s02_fitted", "s02_experiment", "exafs_rfactor",
    "force_mae", "force_slope", "force_column",
    "rank_best", "rank_worst", "rank", "rank_sigma2_best", "rank_sigma2_worst",
    "in_overall", "overall_best", "overall_worst", "overall_rank", "sources",
)


@dataclass
class MaterialInputs:
    """A material's files: its summary, the experiment's fit (None without one) and the
    MD sigma^2 table of each stable EXAFS run, keyed by (model, N, seed); ``failures``
    gives each unstable run's failure text under the same key."""

    name: str
    summary: Path
    fit: Path | None = None
    sigma2: dict[tuple[str, int, int], Path] = field(default_factory=dict)
    temperature_K: float | None = None
    failures: dict[tuple[str, int, int], str] = field(default_factory=dict)
    condition: str | None = None  # dft.experiment_condition: the force columns' condition


@dataclass
class Estimate:
    """A value with its 95 % interval (NaN when unknown)."""

    value: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    dof: float = math.nan


def material_inputs(folder: str | Path, name: str | None = None,
                    temperature_K: float | None = None,
                    condition: str | None = None) -> MaterialInputs:
    """The inputs of ``results/<material>/`` found on disk (the temperature, when not
    given, from the first run's ``md/md_run.json``).  An unstable run
    (:func:`~dualbench.scoring.md_status.summary_failures`) has its failure text and no
    sigma^2 table."""
    folder = Path(folder)
    summary = pd.read_csv(folder / "summary.csv")
    fit = folder / "experiment" / "fit.json"
    failures = summary_failures(summary, folder)
    sigma2 = {}
    for row in summary.itertuples():
        key = (str(row.model), int(row.n_frames), int(row.seed))
        path = run_folder(folder, *key) / "md" / "sigma2.csv"
        if path.is_file() and key not in failures:
            sigma2[key] = path
    if temperature_K is None:
        for row in summary.itertuples():
            run = run_folder(folder, str(row.model), int(row.n_frames), int(row.seed))
            if (run / "md" / "md_run.json").is_file():
                temperature_K = json.loads((run / "md" / "md_run.json").read_text())[
                    "settings"].get("temperature_K")
                break
    return MaterialInputs(name or folder.name, folder / "summary.csv",
                          fit if fit.is_file() else None, sigma2, temperature_K, failures,
                          condition)


def seed_estimate(values: Sequence[float], lo: Sequence[float] = (),
                  hi: Sequence[float] = ()) -> Estimate:
    """Seed mean with its Student-t 95 % interval; one seed: its own interval (``lo``,
    ``hi``, NaN when not given)."""
    x = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return Estimate()
    if x.size == 1:
        low = float(lo[0]) if len(lo) else math.nan
        high = float(hi[0]) if len(hi) else math.nan
        return Estimate(float(x[0]), low, high, math.inf)
    half = t_half_width(x, CONFIDENCE)
    mean = float(x.mean())
    return Estimate(mean, mean - half, mean + half, float(x.size - 1))


def md_sigma2(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float, float]:
    """(mean, standard error, degrees of freedom) of a first-shell sigma^2 over seeds:
    the seeds' sd / sqrt(m) with m - 1 dof, or one run's own standard error (infinite dof)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    if x.size == 1:
        return float(x[0]), float(stderrs[0]), math.inf
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)), float(x.size - 1)


def ratio_estimate(md: float, md_se: float, md_dof: float, exp: float, exp_se: float,
                   exp_dof: float = math.inf) -> Estimate:
    """``md / exp`` with the 95 % interval of first-order propagation of both relative
    errors, Student t at the Welch-Satterthwaite degrees of freedom."""
    if not all(np.isfinite([md, md_se, exp, exp_se])) or exp <= 0:
        return Estimate()
    ratio = md / exp
    a, b = (md_se / md) ** 2, (exp_se / exp) ** 2
    parts = [p ** 2 / d for p, d in ((a, md_dof), (b, exp_dof)) if math.isfinite(d)]
    dof = (a + b) ** 2 / sum(parts) if parts and sum(parts) > 0 else math.inf
    quantile = stats.norm.ppf(0.5 + CONFIDENCE / 2) if math.isinf(dof) else \
        t_quantile(CONFIDENCE, dof)
    half = quantile * ratio * math.sqrt(a + b)
    return Estimate(ratio, ratio - half, ratio + half, dof)


def rank_bands(lo: Sequence[float], hi: Sequence[float]) -> tuple[list[float], list[float]]:
    """Rank bands, lower is better: row i is surely ahead of j when hi_i < lo_j.  Best
    rank = 1 + rows surely ahead of i; worst = rows not surely behind i (itself included).
    Rows with no interval (NaN) get NaN."""
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    ok = np.isfinite(lo_a) & np.isfinite(hi_a)
    best, worst = [math.nan] * len(lo_a), [math.nan] * len(lo_a)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        best[i] = float(1 + np.sum(hi_a[others] < lo_a[i]))
        worst[i] = float(np.sum(ok) - np.sum(lo_a[others] > hi_a[i]))
    return best, worst


def band_text(best: float, worst: float) -> str:
    """'2' or '1-3' (empty when unranked)."""
    if not (np.isfinite(best) and np.isfinite(worst)):
        return ""
    fmt = (lambda v: f"{v:g}") if best == round(best) else (lambda v: f"{v:.1f}")
    return fmt(best) if best == worst else f"{fmt(best)}-{fmt(worst)}"


def condition_column(columns: Sequence[str], metric: str, temperature_K: float | None,
                     condition: str | None = None) -> str:
    """``metric[<condition>]`` (``dft.experiment_condition``) when the summary has it, else
    ``metric[<T>K]`` (or ``metric[<T>]``) when it has the condition matching the
    temperature, else ``metric``."""
    if condition is not None and f"{metric}[{condition}]" in columns:
        return f"{metric}[{condition}]"
    if temperature_K is not None:
        for label in (f"{temperature_K:g}K", f"{temperature_K:g}", f"{temperature_K:g}_K"):
            for name in columns:
                if name.lower() == f"{metric}[{label}]".lower():
                    return name
    return metric


def nuclei_label(sigma2_csv: Path) -> str:
    """``classical`` or ``pimd P=8``: the nuclei of the run whose ``md/sigma2.csv`` this
    is, from its ``md/md_run.json`` (empty when that file is missing)."""
    path = Path(sigma2_csv).parent / "md_run.json"
    if not path.is_file():
        return ""
    info = json.loads(path.read_text())
    if info.get("settings", {}).get("nuclei", "classical") != "pimd":
        return "classical"
    return f"pimd P={info.get('result', {}).get('nbeads')}"


def _mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _shell1(path: Path) -> tuple[float, float]:
    table = pd.read_csv(path)
    row = table[table["shell"] == 1].iloc[0]
    return float(row["sigma2_A2"]), float(row["sigma2_stderr_A2"])


def _row_kinds(summary: pd.DataFrame) -> list[tuple[str, int]]:
    """(row kind, N): vanilla at N = 0 and fine-tuned at the EXAFS arm's largest N (the
    summary's largest N without an EXAFS arm)."""
    arm = summary
    if "exafs_arm" in summary and summary["exafs_arm"].astype(bool).any():
        arm = summary[summary["exafs_arm"].astype(bool)]
    kinds = [(VANILLA, 0)] if (arm["n_frames"] == 0).any() else []
    largest = int(arm["n_frames"].max()) if len(arm) else 0
    return kinds + ([(TUNED, largest)] if largest > 0 else [])


def _sigma2_part(files: Sequence[Path], fit: dict | None) -> dict[str, float]:
    shells = [_shell1(path) for path in files]
    md, md_se, md_dof = md_sigma2([s[0] for s in shells], [s[1] for s in shells])
    exp = float(fit["sigma2_shell1_A2"]) if fit else math.nan
    exp_se = float(fit["sigma2_shell1_A2_err"]) if fit else math.nan
    ratio = ratio_estimate(md, md_se, md_dof, exp, exp_se)
    return {
        "sigma2_md_A2": md, "sigma2_md_se_A2": md_se, "sigma2_exp_A2": exp,
        "sigma2_exp_se_A2": exp_se, "sigma2_ratio": ratio.value, "sigma2_ratio_lo": ratio.lo,
        "sigma2_ratio_hi": ratio.hi, "sigma2_ratio_dof": ratio.dof,
    }


def _exafs_part(runs: pd.DataFrame, fit: dict | None) -> dict[str, float]:
    if "exafs_mse_k" not in runs:
        mse = Estimate()
    else:
        finite = runs[np.isfinite(pd.to_numeric(runs["exafs_mse_k"], errors="coerce"))]
        mse = seed_estimate(finite["exafs_mse_k"].tolist(),
                            finite.get("exafs_mse_k_lo", pd.Series(dtype=float)).tolist(),
                            finite.get("exafs_mse_k_hi", pd.Series(dtype=float)).tolist())
    return {
        "exafs_mse_k": mse.value, "exafs_mse_k_lo": mse.lo, "exafs_mse_k_hi": mse.hi,
        "exafs_mse_k_yardstick_sd": _mean(runs, "exafs_mse_k_yardstick_sd"),
        "s02_fitted": _mean(runs, "s02_fitted"),
        "s02_experiment": float(fit["s02"]) if fit else math.nan,
        "exafs_rfactor": _mean(runs, "exafs_rfactor"),
    }


def _row_failure(failures: dict[tuple[str, int, int], str], keys: Sequence[tuple[str, int, int]]
                 ) -> str:
    """The failure text of a row's unstable seeds ('' when every seed is stable); with
    several seeds each text says its seed."""
    failed = [key for key in keys if key in failures]
    if len(keys) == 1 or not failed:
        return failures.get(keys[0], "") if failed else ""
    return "; ".join(f"seed {key[2]}: {failures[key]}" for key in failed)


def material_rows(inputs: MaterialInputs) -> list[dict[str, object]]:
    """The leaderboard rows of one material (unranked); an unstable row (module text)
    keeps its force numbers and has NaN sigma^2 and EXAFS numbers."""
    summary = pd.read_csv(inputs.summary)
    fit = json.loads(inputs.fit.read_text()) if inputs.fit else None
    force_col, slope_col = (
        condition_column(list(summary.columns), metric, inputs.temperature_K, inputs.condition)
        for metric in ("force_mae", "force_slope"))
    rows = []
    for kind, n in _row_kinds(summary):
        for model in dict.fromkeys(summary["model"].astype(str)):
            runs = summary[(summary["model"].astype(str) == model) & (summary["n_frames"] == n)]
            if "exafs_arm" in runs and runs["exafs_arm"].astype(bool).any():
                runs = runs[runs["exafs_arm"].astype(bool)]
            if runs.empty:
                continue
            keys = [(model, n, int(seed)) for seed in runs["seed"]]
            failure = _row_failure(inputs.failures, keys)
            files = [] if failure else [inputs.sigma2[key] for key in keys
                                        if key in inputs.sigma2]
            nuclei = sorted({nuclei_label(run_folder(inputs.summary.parent, *key) / "md"
                                          / "sigma2.csv") for key in keys} - {""})
            force = _mean(runs, force_col)
            rows.append({
                "material": inputs.name, "model": model, "row_kind": kind, "n_frames": n,
                "n_seeds": len(runs), "temperature_K": inputs.temperature_K,
                "nuclei": ", ".join(nuclei),
                "md_status": UNSTABLE if failure else STABLE, "md_failure": failure,
                **_sigma2_part(files, fit), **_exafs_part(runs.iloc[:0] if failure else runs,
                                                          fit),
                "force_mae": force, "force_slope": _mean(runs, slope_col),
                "force_column": force_col if np.isfinite(force) else "",
                "sources": ";".join(str(p) for p in
                                    [inputs.summary, *([inputs.fit] if inputs.fit else []),
                                     *files]),
            })
    return rows


def _sigma2_distance(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Interval of |log(ratio)| (0 when the ratio's interval holds 1)."""
    lo = np.log(table["sigma2_ratio_lo"].where(table["sigma2_ratio_lo"] > 0).to_numpy(float))
    hi = np.log(table["sigma2_ratio_hi"].where(table["sigma2_ratio_hi"] > 0).to_numpy(float))
    holds_one = (lo <= 0) & (hi >= 0)
    near = np.where(holds_one, 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    far = np.maximum(np.abs(lo), np.abs(hi))
    return near, far


def in_overall(nuclei: object, temperature_K: object) -> bool:
    """Whether a row counts in the overall rank: path-integral MD, or classical at or above
    :data:`CLASSICAL_MIN_TEMPERATURE_K` (an unknown temperature counts)."""
    if isinstance(nuclei, str) and nuclei.startswith("pimd"):
        return True
    try:
        temperature = float(temperature_K)
    except (TypeError, ValueError):
        return True
    return not math.isfinite(temperature) or temperature >= CLASSICAL_MIN_TEMPERATURE_K


def bands_with_unstable(lo: Sequence[float], hi: Sequence[float], unstable: Sequence[bool]
                        ) -> tuple[list[float], list[float]]:
    """:func:`rank_bands` of the stable rows alone; each unstable row behind them all:
    [k + 1, n] with k stable rows ranked and n = k + the unstable rows, or [1, n] when no
    row is stable.  Unstable rows stay unranked (NaN) when stable rows exist but none has
    an interval."""
    flags = np.asarray(unstable, dtype=bool)
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    best, worst = [math.nan] * len(flags), [math.nan] * len(flags)
    stable = np.flatnonzero(~flags)
    stable_best, stable_worst = rank_bands(lo_a[stable], hi_a[stable])
    for i, b, w in zip(stable, stable_best, stable_worst, strict=True):
        best[i], worst[i] = b, w
    ranked = int(np.sum(np.isfinite(stable_best)))
    if ranked == 0 and stable.size:
        return best, worst
    total = ranked + int(flags.sum())
    for i in np.flatnonzero(flags):
        best[i], worst[i] = float(ranked + 1), float(total)
    return best, worst


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """Per-material rank bands by EXAFS MSE_k (and, beside them, by |log sigma^2 ratio|),
    unstable rows behind the stable ones (:func:`bands_with_unstable`), then the overall
    band by the per-material bands averaged over each row's materials."""
    table = table.copy()
    for name in ("rank_best", "rank_worst", "rank_sigma2_best", "rank_sigma2_worst"):
        table[name] = math.nan
    if "md_status" not in table:
        table["md_status"] = STABLE
    for _, index in table.groupby("material").groups.items():
        sub = table.loc[index]
        unstable = [is_unstable(status) for status in sub["md_status"]]
        best, worst = bands_with_unstable(sub["exafs_mse_k_lo"], sub["exafs_mse_k_hi"],
                                          unstable)
        table.loc[index, "rank_best"], table.loc[index, "rank_worst"] = best, worst
        best, worst = bands_with_unstable(*_sigma2_distance(sub), unstable)
        table.loc[index, "rank_sigma2_best"] = best
        table.loc[index, "rank_sigma2_worst"] = worst
    table["rank"] = [band_text(b, w) for b, w in zip(table["rank_best"], table["rank_worst"],
                                                       strict=True)]
    table["in_overall"] = [in_overall(n, t) for n, t in zip(table["nuclei"],
                                                             table["temperature_K"], strict=True)]
    counted = table[table["in_overall"]] if table["in_overall"].any() else table
    means = counted.groupby(["model", "row_kind"])[["rank_best", "rank_worst"]].mean()
    best, worst = rank_bands(means["rank_best"], means["rank_worst"])
    overall = pd.DataFrame({"overall_best": best, "overall_worst": worst}, index=means.index)
    overall = overall.assign(overall_rank=[band_text(*bw) for bw in
                                           zip(overall["overall_best"],
                                               overall["overall_worst"], strict=True)])
    table = table.join(overall, on=["model", "row_kind"])
    return table


def build_leaderboard(materials: Sequence[MaterialInputs]) -> pd.DataFrame:
    """Every material's rows, ranked, in :data:`COLUMNS` order."""
    rows = [row for inputs in materials for row in material_rows(inputs)]
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if not c.startswith(
        ("rank", "overall"))])
    table = rank(table).sort_values(
        ["material", "rank_best", "rank_worst", "exafs_mse_k", "model", "n_frames"])
    return table[list(COLUMNS)].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dualbench.scoring.leaderboard results/W ... --out leaderboard.csv``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="results/<material> folders")
    parser.add_argument("--out", required=True, help="the leaderboard CSV to write")
    args = parser.parse_args(argv)
    from dualbench.io import write_csv

    write_csv(args.out, build_leaderboard([material_inputs(f) for f in args.folders]))


if __name__ == "__main__":
    main()
