"""DFT-arm metrics: energy, force and stress errors on held-out frames, and the softening slope."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from dualbench.data import ase_stress_to_gpa_matrix, has_stress

log = logging.getLogger(__name__)


def parity_slope(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Least-squares slope through the origin of ``predicted`` against ``reference``.

    For forces this is the softening factor: below 1 the model's forces are too weak.
    """
    predicted, reference = np.ravel(predicted), np.ravel(reference)
    denom = float(reference @ reference)
    if denom == 0.0:
        raise ValueError("reference values are all zero: the slope is undefined")
    return float(predicted @ reference) / denom


def _forces(
    frames: Sequence[Atoms], preds: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DFT and predicted force components (n_atoms_total, 3), eV/Å, and each atom's element."""
    f_dft = np.concatenate([a.get_forces() for a in frames])
    f_pred = np.concatenate([np.asarray(p["f"], dtype=float) for p in preds])
    symbols = np.concatenate([a.get_chemical_symbols() for a in frames])
    return f_dft, f_pred, symbols


def _errors(frames: Sequence[Atoms], preds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Energy (eV/atom), force (eV/Å) and stress (GPa) errors and the force slope of
    ``preds`` on ``frames`` (stress only when every frame has one)."""
    e_err = np.array(
        [
            float(p["e"]) - a.get_potential_energy() / len(a)
            for a, p in zip(frames, preds, strict=True)
        ]
    )
    f_dft, f_pred, symbols = _forces(frames, preds)
    f_abs = np.abs(f_pred - f_dft)
    result: dict[str, Any] = {
        "n_frames": len(frames),
        "n_atoms": int(len(f_dft)),
        "energy_mae_eV_per_atom": float(np.mean(np.abs(e_err))),
        "energy_mean_error_eV_per_atom": float(np.mean(e_err)),
        "energy_mae_offset_removed_eV_per_atom": float(np.mean(np.abs(e_err - e_err.mean()))),
        "force_mae_eV_per_A": float(f_abs.mean()),
        "force_rmse_eV_per_A": float(np.sqrt(np.mean((f_pred - f_dft) ** 2))),
        "force_slope": parity_slope(f_pred, f_dft),
        "force_mae_per_element_eV_per_A": {
            str(s): float(f_abs[symbols == s].mean()) for s in sorted(set(symbols))
        },
        "stress_mae_GPa": None,
    }
    if has_stress(frames):
        idx = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])
        s_dft = np.array([ase_stress_to_gpa_matrix(a.get_stress())[idx] for a in frames])
        s_pred = np.array([np.asarray(p["s"], dtype=float)[idx] for p in preds])
        result["stress_mae_GPa"] = float(np.mean(np.abs(s_pred - s_dft)))
    return result


def _by_condition(
    frames: Sequence[Atoms], preds: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """:func:`_errors` per condition (``info["condition"]``, :mod:`dualbench.data.selection`)
    of the frames; empty unless every frame has one."""
    labels = [a.info.get("condition") for a in frames]
    if not frames or any(c is None for c in labels):
        return {}
    labels = [str(c) for c in labels]
    groups: dict[str, dict[str, Any]] = {}
    for name in sorted(set(labels)):
        members = [i for i, c in enumerate(labels) if c == name]
        groups[name] = _errors([frames[i] for i in members], [preds[i] for i in members])
    return groups


def dft_metrics(
    frames: Sequence[Atoms], preds: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Errors of a model's predictions ``preds`` of DFT ``frames`` (internal form; the
    predictions as :meth:`dualbench.models.backend.Backend.predict` gives them).

    Energies per atom (eV/atom), force components (eV/Å), stress Voigt components (GPa,
    only when every frame has a stress).  ``energy_mae_offset_removed`` drops the mean
    per-atom energy error first, which a different DFT setup shifts.  When every frame has
    a condition (``dft.conditions``), ``by_condition`` gives the same errors per condition.
    Returns the metrics and the per-component force parity table (frame, condition when
    known, atom, element, axis, DFT, predicted).
    """
    start = time.perf_counter()
    result = _errors(frames, preds)
    result["by_condition"] = _by_condition(frames, preds)
    log.info(
        "%d frames: force MAE %.4f eV/Å, slope %.3f, energy MAE %.4f eV/atom (%.1f s)",
        len(frames), result["force_mae_eV_per_A"], result["force_slope"],
        result["energy_mae_eV_per_atom"], time.perf_counter() - start,
    )
    for name, group in result["by_condition"].items():
        log.info("  %s (%d frames): force MAE %.4f eV/Å, slope %.3f", name,
                 group["n_frames"], group["force_mae_eV_per_A"], group["force_slope"])
    f_dft, f_pred, symbols = _forces(frames, preds)
    n_atoms = [len(a) for a in frames]
    columns: dict[str, Any] = {
        "frame": np.repeat(np.arange(len(frames)), np.multiply(n_atoms, 3)),
    }
    if result["by_condition"]:
        columns["condition"] = np.repeat([str(a.info["condition"]) for a in frames],
                                         np.multiply(n_atoms, 3))
    parity = pd.DataFrame({
        **columns,
        "atom": np.concatenate([np.repeat(np.arange(n), 3) for n in n_atoms]),
        "element": np.repeat(symbols, 3),
        "axis": np.tile(list("xyz"), len(f_dft)),
        "force_dft_eV_per_A": f_dft.ravel(),
        "force_pred_eV_per_A": f_pred.ravel(),
    })
    return result, parity


def run_dft_metrics(
    model: str,
    frames_file: str,
    out: str,
    frames_format: str | None = None,
    device: str = "auto",
    provenance_extra: dict[str, Any] | None = None,
    parity_out: str | None = None,
) -> dict[str, Any]:
    """Evaluate MODEL (``chgnet``, a model.json, a checkpoint or a spec of any registered
    kind) on a frames file, with the predictions of its kind's backend.

    Writes the metrics JSON to ``out`` and, with ``parity_out``, the force parity table CSV.
    """
    from dualbench.data import read_frames
    from dualbench.io import provenance, write_csv, write_json
    from dualbench.models.backend import get_backend
    from dualbench.models.device import resolve_device
    from dualbench.models.resolve import parse_model_arg

    spec = parse_model_arg(model)
    backend = get_backend(spec.kind)
    frames = read_frames(frames_file, frames_format)
    preds = backend.predict(spec, frames, resolve_device(device), has_stress(frames))
    result, parity = dft_metrics(frames, preds)
    if parity_out is not None:
        write_csv(parity_out, parity)
    result["model"] = {"kind": spec.kind, "weights": spec.weights, "modal": spec.modal,
                       "checkpoint": spec.checkpoint, "n_frames": spec.n_frames,
                       "seed": spec.seed, **backend.describe(spec)}
    result["frames_file"] = str(frames_file)
    # the labels' level of theory where the frames record it (dft.label's frames do:
    # "gpaw PBE 400 eV k 4x4x4 spin Fe 2.5"); null for files that do not say
    result["frames_dft"] = sorted({str(f.info["dft"]) for f in frames if "dft" in f.info}
                                  ) or None
    result["provenance"] = provenance(**(provenance_extra or {}))
    write_json(out, result)
    return result
