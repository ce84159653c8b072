"""The study's answer: from how many DFT frames on does each arm stop improving?

An equivalence decision on paired seeds, per model and metric (``force_mae`` of the DFT
arm; ``exafs_mse_k`` against the experiment or ``exafs_mse_ref_k`` against the reference
model's simulation for the EXAFS arm):

* **Pairing.** A seed's training subsets are nested and its MD seed is the sweep seed, so
  each N is compared with the arm's largest N seed by seed: d_s = x(N, s) - x(N_max, s).
  The mean difference has Student-t intervals with n_pairs - 1 degrees of freedom (the
  seed variance is not pooled across N: fine-tuning's spread differs from N to N).
* **Margin.** ``convergence.margin`` declares, per metric, the difference that does not
  matter: ``relative`` times the change of the seed mean from the smallest N (the vanilla
  model) to the largest, or an ``absolute`` value in the metric's units; with both, the
  larger.  The default, a tenth of the vanilla-to-largest-N change, reads "within 10 % of
  the whole fine-tuning effect"; a model that barely changes needs an absolute margin.
* **Three words per N.** *equivalent*: the two one-sided tests at level alpha (the
  (1 - 2 alpha) interval of the mean difference lies inside +-margin); else *different*:
  the (1 - alpha) interval excludes zero; else *unresolved*.  For ``exafs_mse_k`` the
  interval is widened by the yardstick's effect on the difference (the experiment fit's
  E0 and S0^2, :mod:`dualbench.scoring.yardstick`, fully correlated between the two N),
  since a systematic shift that large would turn the decision.
* **The converged N** is the smallest N from which every N below the largest is
  equivalent to it.  When the N just below the largest is not equivalent, the answer is
  ``not converged`` (different) or ``unresolved``, never an N: noise cannot make a sweep
  converge.  An unresolved N says how many seeds the observed mean and spread would need
  to become equivalent or different (``seeds_needed``, ``toward``).
* **Sizing the MD.** For every EXAFS-arm run, the production time its score's sampling
  noise (the larger of the standard error of its bootstrap interval and its noise floor)
  would need to sit below a tenth of the margin (``md_sizing``).

``results/{material}/convergence.json`` holds, per model and metric, the per-N table
(mean over seeds with its Student-t half-width, the paired difference and its intervals,
the decision), the margin, the answer and ``n_converged_<metric>`` (null unless
converged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualbench.io import provenance, write_json
from dualbench.stats import t_half_width, t_quantile

#: force_mae (DFT arm), exafs_mse_k (against the experiment), exafs_mse_ref_k (against the
#: reference model's simulation, for a material without an experiment)
METRICS = ("force_mae", "exafs_mse_k", "exafs_mse_ref_k")
DEFAULT_MARGIN = {"relative": 0.1, "absolute": None}
#: Seeds beyond which seeds_needed gives up (the difference is then too small to matter).
MAX_SEEDS = 1000
Z95 = 1.959964


@dataclass(frozen=True)
class Settings:
    """``convergence`` config section: the test level alpha and the margin per metric."""

    alpha: float = 0.05
    margin: Mapping[str, Mapping[str, float | None]] | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> Settings:
        section = dict(section or {})
        return cls(alpha=float(section.get("alpha", 0.05)), margin=section.get("margin"))

    def margin_of(self, metric: str, means: pd.Series) -> tuple[float, str]:
        """(margin, how it was set) of ``metric`` from the per-N seed means."""
        spec = {**DEFAULT_MARGIN, **((self.margin or {}).get(metric) or {})}
        parts, values = [], [0.0]
        if spec.get("relative") is not None and len(means) >= 2:
            change = abs(float(means.iloc[0] - means.iloc[-1]))
            values.append(float(spec["relative"]) * change)
            parts.append(f"{spec['relative']:g} x |change from N={means.index[0]} to"
                         f" N={means.index[-1]}| = {values[-1]:.4g}")
        if spec.get("absolute") is not None:
            values.append(float(spec["absolute"]))
            parts.append(f"absolute {float(spec['absolute']):.4g}")
        rule = " and ".join(parts) if parts else "none declared"
        return max(values), f"the larger of {rule}" if len(parts) > 1 else rule


def by_n(rows: pd.DataFrame, column: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per N: mean over seeds, its Student-t half-width at ``confidence`` (seed spread,
    which contains each run's sampling noise; with one seed, that run's own sampling
    interval when it has one, else 0), the seed count and what the half-width is."""
    data = rows.dropna(subset=[column])
    out = []
    for n, group in data.groupby("n_frames"):
        values = group[column].to_numpy(float)
        if len(values) >= 2:
            half, kind = t_half_width(values, confidence), "seeds (Student t)"
        elif {f"{column}_lo", f"{column}_hi"} <= set(group) and group[
                [f"{column}_lo", f"{column}_hi"]].notna().all().all():
            half = float((group[f"{column}_hi"] - group[f"{column}_lo"]).iloc[0] / 2.0)
            kind = "one seed: sampling only"
        else:
            half, kind = 0.0, "one seed: none"
        out.append({"n_frames": int(n), "mean": float(values.mean()), "half_width": half,
                    "n_seeds": len(values), "interval": kind})
    return pd.DataFrame(out, columns=["n_frames", "mean", "half_width", "n_seeds", "interval"])


def seeds_needed(mean: float, sd: float, margin: float, alpha: float) -> tuple[int | None, str]:
    """The fewest seeds at which a paired difference of this mean and spread would be
    declared equivalent or different (whichever comes first), and which; (None, '') when
    neither happens within :data:`MAX_SEEDS`."""
    for n in range(2, MAX_SEEDS + 1):
        se = sd / np.sqrt(n)
        if abs(mean) + t_quantile(1 - 2 * alpha, n - 1) * se < margin:
            return n, "equivalent"
        if abs(mean) > t_quantile(1 - alpha, n - 1) * se:
            return n, "different"
    return None, ""


def decide(diffs: np.ndarray, margin: float, alpha: float, systematic_sd: float = 0.0
           ) -> dict[str, Any]:
    """The three-word decision on paired differences (module text)."""
    diffs = np.asarray(diffs, dtype=float)
    n = len(diffs)
    row: dict[str, Any] = {"n_pairs": n, "diff_mean": float(diffs.mean()) if n else np.nan}
    if n < 2:
        return {**row, "decision": "unresolved", "reason": "fewer than two paired seeds",
                "seeds_needed": None, "toward": ""}
    sd = float(diffs.std(ddof=1))
    se = sd / np.sqrt(n)
    syst = float(systematic_sd) if np.isfinite(systematic_sd) else 0.0
    tost = float(np.hypot(t_quantile(1 - 2 * alpha, n - 1) * se, 1.644854 * syst))
    two_sided = float(np.hypot(t_quantile(1 - alpha, n - 1) * se, Z95 * syst))
    mean = row["diff_mean"]
    row.update(diff_sd=sd, equivalence_lo=mean - tost, equivalence_hi=mean + tost,
               ci_lo=mean - two_sided, ci_hi=mean + two_sided, systematic_sd=syst)
    if abs(mean) + tost < margin:
        decision = "equivalent"
    elif abs(mean) > two_sided:
        decision = "different"
    else:
        decision = "unresolved"
    needed, toward = (None, "") if decision != "unresolved" else seeds_needed(
        mean, sd, margin, alpha)
    return {**row, "decision": decision, "seeds_needed": needed, "toward": toward}


def _systematic_sd(rows: pd.DataFrame, n: int, largest: int, fits: Mapping[str, float] | None
                   ) -> float:
    """The yardstick's standard deviation of the mean difference N - largest (fully
    correlated between the two N): sqrt(dg^T C dg) from the mean gradients."""
    if fits is None or "exafs_mse_k_d_s02" not in rows:
        return 0.0
    grad = rows.groupby("n_frames")[["exafs_mse_k_d_s02", "exafs_mse_k_d_e0"]].mean()
    if n not in grad.index or largest not in grad.index:
        return 0.0
    da, de = (grad.loc[n] - grad.loc[largest]).to_numpy(float)
    sa, se, rho = (float(fits.get(key, 0.0) or 0.0)
                   for key in ("s02_err", "e0_shift_eV_err", "correl_s02_e0"))
    var = (da * sa) ** 2 + (de * se) ** 2 + 2 * rho * da * de * sa * se
    return float(np.sqrt(max(var, 0.0))) if np.isfinite(var) else 0.0


def largest_n(rows: pd.DataFrame, column: str) -> int:
    """The largest N a metric's arm ran at: every N for the DFT arm, the N of rows with
    ``exafs_arm`` for an EXAFS score (the EXAFS arm may run at fewer N than the DFT arm)."""
    if column.startswith("exafs") and "exafs_arm" in rows and rows["exafs_arm"].any():
        rows = rows[rows["exafs_arm"].astype(bool)]
    return int(rows["n_frames"].max())


def answer(table: pd.DataFrame, largest: int) -> tuple[int | None, str, str]:
    """(converged N or None, one of converged / not converged / unresolved, why)."""
    below = table[table["n_frames"] < largest].sort_values("n_frames", ascending=False)
    if largest not in set(table["n_frames"]):
        return None, "unresolved", f"no score at the arm's largest N = {largest}"
    if below.empty:
        return None, "unresolved", "only one N: nothing to compare"
    equivalent = (below["decision"] == "equivalent").to_numpy()
    if not equivalent[0]:
        top = below.iloc[0]
        if top["decision"] == "different":
            return None, "not converged", (
                f"N={top['n_frames']} differs from N={largest}: still improving (or"
                " changing) at the sweep's largest N")
        needed = "" if top["seeds_needed"] is None or pd.isna(top["seeds_needed"]) else (
            f"; the observed spread would need {int(top['seeds_needed'])} seeds to be"
            f" {top['toward']}")
        return None, "unresolved", (
            f"N={top['n_frames']} is neither equivalent to nor different from"
            f" N={largest}{needed}")
    run = int(np.argmin(equivalent)) if not equivalent.all() else len(equivalent)
    n_conv = int(below["n_frames"].iloc[run - 1])
    rest = ""
    if run < len(below):
        rest = f"; N={below['n_frames'].iloc[run]} is {below['decision'].iloc[run]}"
    return n_conv, "converged", (
        f"N={n_conv} and every larger N below {largest} are equivalent to N={largest}{rest}")


def metric_record(rows: pd.DataFrame, column: str, settings: Settings,
                  fit: Mapping[str, float] | None = None) -> dict[str, Any]:
    """One model's decision record of one metric (module text)."""
    largest = largest_n(rows, column)
    data = rows.dropna(subset=[column])
    data = data[data["n_frames"] <= largest]
    means = data.groupby("n_frames")[column].mean().sort_index()
    margin, margin_rule = settings.margin_of(column, means)
    table = by_n(data, column, 1 - settings.alpha)
    top = data[data["n_frames"] == largest].set_index("seed")[column]
    decisions = []
    for n, group in data.groupby("n_frames"):
        if n == largest:
            decisions.append({"decision": "largest N"})
            continue
        pairs = group.set_index("seed")[column]
        common = pairs.index.intersection(top.index)
        syst = _systematic_sd(data, int(n), largest, fit) if column == "exafs_mse_k" else 0.0
        decisions.append(decide((pairs[common] - top[common]).to_numpy(float), margin,
                                settings.alpha, syst))
    table = pd.concat([table, pd.DataFrame(decisions)], axis=1)
    n_conv, word, why = answer(table, largest)
    return {"largest_n": largest, "margin": margin, "margin_rule": margin_rule,
            "answer": word, "n_converged": n_conv, "why": why,
            "table": _records(table)}


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN and missing as null)."""
    return [{key: (None if isinstance(v, float) and not np.isfinite(v) else v)
             for key, v in row.items()} for row in table.astype(object).where(
                 table.notna(), None).to_dict(orient="records")]


def md_sizing(rows: pd.DataFrame, column: str, margin: float, production_ps: float | None
              ) -> list[dict[str, Any]]:
    """Per EXAFS-arm run: its score's sampling noise and the production time (ps) that
    would put that noise below a tenth of the margin (noise^2 and the floor both fall as
    1 / production time).  Without a margin (a sweep of one N and no absolute margin)
    nothing sizes the MD: ``production_ps_needed`` is None."""
    floor_col = {"exafs_mse_k": "exafs_noise_floor_k",
                 "exafs_mse_ref_k": "exafs_ref_noise_floor_k"}[column]
    out = []
    for row in rows.dropna(subset=[column]).itertuples(index=False):
        row = row._asdict()
        lo, hi = row.get(f"{column}_lo"), row.get(f"{column}_hi")
        se = (hi - lo) / (2 * Z95) if lo is not None and hi is not None else np.nan
        floor = row.get(floor_col, np.nan)
        target = margin / 10.0
        factor = 0.0 if target <= 0 else max(
            (se / target) ** 2 if np.isfinite(se) else 0.0,
            floor / target if np.isfinite(floor) else 0.0)
        out.append({"n_frames": int(row["n_frames"]), "seed": int(row["seed"]),
                    "score_se": _finite(se), "noise_floor": _finite(floor),
                    "production_ps": production_ps,
                    "production_ps_needed": (None if production_ps is None or factor == 0
                                             else production_ps * factor)})
    return out


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def convergence_record(summary: pd.DataFrame, metrics: Sequence[str] = METRICS,
                       settings: Settings | None = None, fit: Mapping[str, float] | None = None,
                       production_ps: float | None = None) -> dict[str, Any]:
    """Per model: each metric's decision record and ``n_converged_<metric>``, and the runs
    whose MD was unstable (``unstable_runs``: no EXAFS score, so fewer paired seeds)."""
    settings = settings or Settings()
    out: dict[str, Any] = {
        "method": "paired seeds (Student t), two one-sided tests against a declared margin",
        "alpha": settings.alpha, "models": {},
    }
    for model, rows in summary.groupby("model"):
        entry: dict[str, Any] = {}
        for metric in metrics:
            if metric not in rows or rows[metric].isna().all():
                continue
            record = metric_record(rows, metric, settings, fit)
            if metric.startswith("exafs"):
                record["md_sizing"] = md_sizing(rows, metric, record["margin"], production_ps)
            entry[metric] = record
            entry[f"n_converged_{metric}"] = record["n_converged"]
        if "md_status" in rows and (rows["md_status"] == "unstable").any():
            # their EXAFS scores are NaN, so the decisions above stand on the stable seeds
            unstable = rows[rows["md_status"] == "unstable"]
            entry["unstable_runs"] = [
                {"n_frames": int(r.n_frames), "seed": int(r.seed), "failure": str(r.md_failure)}
                for r in unstable.itertuples(index=False)]
        out["models"][str(model)] = entry
    return out


def convergence_stage(summary_csv: str | Path, out: str | Path, *,
                      config: Mapping[str, Any] | None = None,
                      experiment_fit: str | Path | None = None,
                      production_ps: float | None = None) -> dict[str, Any]:
    """The `convergence` job: convergence.json from the material's summary.csv, the
    ``convergence`` config section and the experiment's fit.json (its E0 and S0^2
    errors), when there is one."""
    from dualbench.io import read_json
    from dualbench.scoring.fit_record import check_fit_values

    fit = read_json(experiment_fit) if experiment_fit is not None else None
    if fit is not None:
        check_fit_values(fit, str(experiment_fit))
    record = convergence_record(pd.read_csv(summary_csv), settings=Settings.from_config(config),
                                fit=fit, production_ps=production_ps)
    write_json(out, {**record, "summary": str(summary_csv), "provenance": provenance()})
    return record
