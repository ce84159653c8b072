"""DFT-arm metrics: energy, force and stress errors on held-out frames, and the softening slope."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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


def dft_metrics(
    model, frames: Sequence[Atoms], batch_size: int = 1
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Errors of a model on DFT ``frames`` (internal form): ``model`` is a loaded CHGNet
    or an ASE calculator (any kind, see :func:`predict_with_calculator`).

    Energies per atom (eV/atom), force components (eV/Å), stress Voigt components (GPa,
    only when every frame has a stress).  ``energy_mae_offset_removed`` drops the mean
    per-atom energy error first, which a different DFT setup shifts.  Returns the metrics
    and the per-component force parity table (frame, atom, element, axis, DFT, predicted).
    """
    from dualbench.finetune import predict

    start = time.perf_counter()
    with_stress = has_stress(frames)
    if hasattr(model, "predict_structure"):
        preds = predict(model, frames, task="efs" if with_stress else "ef", batch_size=batch_size)
    else:
        preds = predict_with_calculator(model, frames, with_stress)
    e_err = np.array(
        [
            float(p["e"]) - a.get_potential_energy() / len(a)
            for a, p in zip(frames, preds, strict=True)
        ]
    )
    f_dft = np.concatenate([a.get_forces() for a in frames])
    f_pred = np.concatenate([np.asarray(p["f"], dtype=float) for p in preds])
    symbols = np.concatenate([a.get_chemical_symbols() for a in frames])
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
    if with_stress:
        idx = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])
        s_dft = np.array([ase_stress_to_gpa_matrix(a.get_stress())[idx] for a in frames])
        s_pred = np.array([np.asarray(p["s"], dtype=float)[idx] for p in preds])
        result["stress_mae_GPa"] = float(np.mean(np.abs(s_pred - s_dft)))
    log.info(
        "%d frames: force MAE %.4f eV/Å, slope %.3f, energy MAE %.4f eV/atom (%.1f s)",
        len(frames), result["force_mae_eV_per_A"], result["force_slope"],
        result["energy_mae_eV_per_atom"], time.perf_counter() - start,
    )
    n_atoms = [len(a) for a in frames]
    parity = pd.DataFrame({
        "frame": np.repeat(np.arange(len(frames)), np.multiply(n_atoms, 3)),
        "atom": np.concatenate([np.repeat(np.arange(n), 3) for n in n_atoms]),
        "element": np.repeat(symbols, 3),
        "axis": np.tile(list("xyz"), len(f_dft)),
        "force_dft_eV_per_A": f_dft.ravel(),
        "force_pred_eV_per_A": f_pred.ravel(),
    })
    return result, parity


def predict_with_calculator(calc, frames: Sequence[Atoms], with_stress: bool) -> list[dict]:
    """Predictions of an ASE calculator in :func:`dualbench.finetune.predict`'s form:
    ``e`` eV/atom, ``f`` eV/Å, ``s`` a 3x3 GPa matrix (tension positive)."""
    out = []
    for frame in frames:
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell,
                      pbc=frame.pbc)
        atoms.calc = calc
        pred = {"e": atoms.get_potential_energy() / len(atoms), "f": atoms.get_forces()}
        if with_stress:
            pred["s"] = ase_stress_to_gpa_matrix(atoms.get_stress(voigt=True))
        out.append(pred)
    return out


def run_dft_metrics(
    model: str,
    frames_file: str,
    out: str,
    frames_format: str | None = None,
    device: str = "auto",
    provenance_extra: dict[str, Any] | None = None,
    parity_out: str | None = None,
) -> dict[str, Any]:
    """Evaluate MODEL (``chgnet``, a model.json or a checkpoint) on a frames file.

    Writes the metrics JSON to ``out`` and, with ``parity_out``, the force parity table CSV.
    """
    from dualbench.data import read_frames
    from dualbench.io import provenance, write_csv, write_json
    from dualbench.models import TRAINED_ON, load_model, make_calculator, parse_model_arg

    spec = parse_model_arg(model)
    frames = read_frames(frames_file, frames_format)
    # CHGNet's batched predictor where there is one; every other kind through its calculator
    native = load_model(spec, device) if spec.kind == "chgnet" else make_calculator(spec, device)
    result, parity = dft_metrics(native, frames)
    if parity_out is not None:
        write_csv(parity_out, parity)
    result["model"] = {"kind": spec.kind, "weights": spec.weights, "modal": spec.modal,
                       "checkpoint": spec.checkpoint, "n_frames": spec.n_frames,
                       "seed": spec.seed,
                       "trained_on": TRAINED_ON.get((spec.kind, spec.weights))}
    if spec.kind == "ase":
        from dualbench.models.ase_kind import describe

        result["model"].update(describe(spec))
    result["frames_file"] = str(frames_file)
    result["provenance"] = provenance(**(provenance_extra or {}))
    write_json(out, result)
    return result
