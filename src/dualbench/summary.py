"""The per-material summary table: one row per (model, N, seed) with both arms' scores.

Columns and units: ``energy_mae`` meV/atom, ``force_mae`` meV/Å, ``stress_mae`` GPa,
``force_slope`` (predicted vs DFT forces through the origin; 1 is unsoftened), and, when
the material has an experiment, the EXAFS arm's ``exafs_mse_k``, ``exafs_mse_r``,
``exafs_rfactor``, ``e0_shift_eV`` and ``s02``; without one, when a reference model is
set, ``exafs_mse_ref_k`` and its interval and noise floor
(:mod:`dualbench.scoring.against_reference_model`: convergence of the simulation, not
agreement with a measurement).  ``exafs_arm`` says whether the run has an EXAFS score at
all (``sweep.exafs_n_frames`` may run MD at a few N only); its EXAFS columns are empty
when not.  ``md_status`` is ``ok`` or ``unstable`` for a run with an EXAFS arm (empty
without one): an unstable run's MD left the physical regime (:mod:`dualbench.runstatus`;
``md_failure`` says where and why), its EXAFS columns are empty and its DFT columns stand.

When the test frames carry conditions (``dft.conditions``), the DFT columns are repeated
per condition of the test set as ``force_mae[300K]``, ``force_slope[300K]``,
``energy_mae[300K]`` and ``stress_mae[300K]`` (same units): the error at the experiment's
condition beside the overall one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

KEYS = ["material", "model", "n_frames", "seed"]
DFT_COLUMNS = ["energy_mae", "energy_mae_offset_removed", "force_mae", "stress_mae", "force_slope"]


def dft_row(path: str | Path, material: str, model: str, n_frames: int, seed: int) -> dict:
    """A summary row from a run's ``dft_metrics.json``."""
    m = json.loads(Path(path).read_text())
    stress = m.get("stress_mae_GPa")
    row = {
        "material": material,
        "model": model,
        "n_frames": int(n_frames),
        "seed": int(seed),
        "energy_mae": 1000.0 * m["energy_mae_eV_per_atom"],
        "energy_mae_offset_removed": 1000.0 * m["energy_mae_offset_removed_eV_per_atom"],
        "force_mae": 1000.0 * m["force_mae_eV_per_A"],
        "stress_mae": stress,
        "force_slope": m["force_slope"],
    }
    for name, group in (m.get("by_condition") or {}).items():
        row[f"energy_mae[{name}]"] = 1000.0 * group["energy_mae_eV_per_atom"]
        row[f"force_mae[{name}]"] = 1000.0 * group["force_mae_eV_per_A"]
        row[f"stress_mae[{name}]"] = group.get("stress_mae_GPa")
        row[f"force_slope[{name}]"] = group["force_slope"]
    return row


def build_summary(
    material: str,
    dft_metrics: Sequence[tuple[str, str, int, int]],
    exafs_comparison: str | Path | None = None,
    reference_comparison: str | Path | None = None,
) -> pd.DataFrame:
    """Rows from ``(path, model, n_frames, seed)`` metric files, joined with the EXAFS scores
    against the experiment and/or the reference model."""
    table = pd.DataFrame([dft_row(p, material, mo, n, s) for p, mo, n, s in dft_metrics])
    table["exafs_arm"] = False
    table["md_status"], table["md_failure"] = pd.NA, ""
    for scores in (exafs_comparison, reference_comparison):
        if scores is None:
            continue
        exafs = pd.read_csv(scores)
        exafs["material"] = exafs["material"].astype(str)
        status = exafs.pop("status") if "status" in exafs else pd.Series("ok", exafs.index)
        failure = exafs.pop("failure") if "failure" in exafs else pd.Series("", exafs.index)
        exafs["_status"] = status
        exafs["_failure"] = failure.astype(object).where(failure.notna(), "")
        table = table.merge(exafs, on=KEYS, how="left", validate="one_to_one", indicator=True)
        table["exafs_arm"] |= table.pop("_merge") == "both"
        _take_status(table, table.pop("_status"), table.pop("_failure"))
    return table.sort_values(["model", "n_frames", "seed"]).reset_index(drop=True)


def _take_status(table: pd.DataFrame, status: pd.Series, failure: pd.Series) -> None:
    """Fold one score table's run status into ``md_status`` / ``md_failure`` (unstable
    wins over ok; NaN: the run has no EXAFS arm)."""
    unstable = status == "unstable"
    table.loc[unstable, "md_failure"] = failure[unstable]
    table.loc[unstable, "md_status"] = "unstable"
    table.loc[status.eq("ok") & table["md_status"].isna(), "md_status"] = "ok"
