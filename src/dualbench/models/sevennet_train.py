"""SevenNet's trainer: fine-tuning on N DFT frames with SevenNet's own ``Trainer`` and
losses, called by the SevenNet backend (:mod:`dualbench.models.sevennet`).

The starting point is SevenNet's fine-tuning preset (``sevenn/presets/fine_tune.yaml``,
read from the installed package): Huber loss (delta 0.01), Adam, an exponential
learning-rate decay (gamma 0.99), force weight 1 and stress weight 0.01, the shift and
scale of the atomic energies frozen.  The settings every model kind shares override it:
epochs, learning rate, batch size, and the validation split and early stopping of
:func:`dualbench.training.split_validation`, applied the same way at every N.  CHGNet's
``freeze`` groups have no SevenNet counterpart: every weight trains, as in the preset.

Energies of our DFT setup differ from SevenNet's training data by a per-element constant.
As for CHGNet (:mod:`dualbench.models.chgnet_train`), the per-element energy shift of the model is
refitted to the N frames before training (least squares of the per-atom residuals on the
element fractions) and once more after it, so that training learns the physics, not an
offset.  For SevenNet-MF-0 the shift of the chosen modality is refitted and the frames
are trained as that modality.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from ase import Atoms

from dualbench.data import has_stress
from dualbench.io import atomic_path
from dualbench.models.device import resolve_device
from dualbench.models.spec import ModelSpec
from dualbench.training import (
    EarlyStopping,
    FinetuneResult,
    FinetuneSettings,
    composition_shift,
    split_validation,
)

log = logging.getLogger(__name__)


def preset() -> dict[str, Any]:
    """SevenNet's fine-tuning preset (its ``train`` section)."""
    import sevenn

    path = Path(sevenn.__file__).parent / "presets" / "fine_tune.yaml"
    return yaml.safe_load(path.read_text())["train"]


def training_config(settings: FinetuneSettings, use_stress: bool) -> dict[str, Any]:
    """The loss and optimiser config for SevenNet's ``Trainer``: the preset, with our epochs,
    learning rate and force weight."""
    train = preset()
    return {
        "loss": train["loss"],
        "loss_param": dict(train["loss_param"]),
        "optimizer": train["optimizer"],
        "optim_param": {**train["optim_param"], "lr": settings.learning_rate},
        "scheduler": train["scheduler"],
        "scheduler_param": dict(train["scheduler_param"]),
        "force_loss_weight": settings.force_weight,
        "stress_loss_weight": float(train["stress_loss_weight"]) if use_stress else 0.0,
        "is_train_stress": use_stress,
    }


def to_graphs(frames: Sequence[Atoms], cutoff: float, modal: str | None) -> list:
    """SevenNet graphs of labelled frames (energy eV, forces eV/Å, stress from ASE)."""
    import sevenn._keys as KEY
    from ase.calculators.singlepoint import SinglePointCalculator
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph

    graphs = []
    for frame in frames:
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell,
                      pbc=frame.pbc)
        results = {"energy": frame.get_potential_energy(), "forces": frame.get_forces()}
        if "stress" in (frame.calc.results if frame.calc else {}):
            results["stress"] = frame.get_stress(voigt=True)
        atoms.calc = SinglePointCalculator(atoms, **results)
        graph = AtomGraphData.from_numpy_dict(
            atoms_to_graph(atoms, cutoff, transfer_info=False, y_from_calc=True)
        )
        if modal:
            graph[KEY.DATA_MODALITY] = modal
        graphs.append(graph)
    return graphs


def _predict(model, graphs: Sequence, modal: str | None) -> list[dict[str, np.ndarray]]:
    """Per-frame energy (eV/atom) and forces (eV/Å) of the model."""
    import sevenn._keys as KEY

    model.set_is_batch_data(False)
    out = []
    for graph in graphs:
        data = graph.clone()
        if modal:
            data[KEY.DATA_MODALITY] = modal
        result = model(data)
        n = int(result[KEY.NUM_ATOMS])
        out.append({
            "e": float(result[KEY.PRED_TOTAL_ENERGY].detach()) / n,
            "f": result[KEY.PRED_FORCE].detach().cpu().numpy()[:n],
        })
    model.set_is_batch_data(True)
    return out


def _errors(
    model, graphs: Sequence, frames: Sequence[Atoms], modal: str | None
) -> tuple[float, float]:
    """(energy MAE eV/atom, force MAE eV/Å) of the model on labelled frames."""
    preds = _predict(model, graphs, modal)
    e = [abs(p["e"] - a.get_potential_energy() / len(a))
         for p, a in zip(preds, frames, strict=True)]
    f = np.concatenate([np.abs(p["f"] - a.get_forces()).ravel()
                        for p, a in zip(preds, frames, strict=True)])
    return float(np.mean(e)), float(f.mean())


def refit_shift(
    model, graphs: Sequence, frames: Sequence[Atoms], modal: str | None
) -> dict[str, float]:
    """Add to the model's per-element energy shift the constants that zero the frames' mean
    per-atom energy error per element (eV/atom); returns them."""
    import torch
    from ase.data import atomic_numbers

    shifts = composition_shift(frames, [p["e"] for p in _predict(model, graphs, modal)])
    rescale = model._modules["rescale_atomic_energy"]
    with torch.no_grad():
        row = rescale.shift
        if row.dim() == 2:  # one row per modality
            row = row[model.modal_map[modal]]
        for sym, value in shifts.items():
            row[model.type_map[atomic_numbers[sym]]] += value
    log.info("per-element energy shift moved by %s eV/atom", shifts)
    return shifts


def _train(model, graphs: Sequence, frames: Sequence[Atoms], settings: FinetuneSettings,
           seed: int, split: tuple[list[int], list[int]], modal: str | None,
           use_stress: bool, device: str, start: float) -> tuple[list[dict[str, float]], int]:
    """SevenNet's ``Trainer`` epoch by epoch with the shared early stopping; leaves the best
    (or last) weights in ``model``.  Returns the training-curve rows and that epoch."""
    import torch
    from sevenn.train.loss import get_loss_functions_from_config
    from sevenn.train.optim import optim_dict, scheduler_dict
    from sevenn.train.trainer import Trainer
    from torch_geometric.loader import DataLoader

    train_idx, val_idx = split
    config = training_config(settings, use_stress)
    trainer = Trainer(
        model,
        loss_functions=get_loss_functions_from_config(config),
        optimizer_cls=optim_dict[config["optimizer"].lower()],
        optimizer_args=config["optim_param"],
        scheduler_cls=scheduler_dict[config["scheduler"].lower()],
        scheduler_args=config["scheduler_param"],
        device=device,
    )
    loader = DataLoader([graphs[i] for i in train_idx],
                        batch_size=min(settings.batch_size, len(train_idx)), shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    stop = EarlyStopping(settings.early_stopping_patience, bool(val_idx))
    rows: list[dict[str, float]] = []
    for epoch in range(1, settings.epochs + 1):
        trainer.run_one_epoch(loader, is_train=True)
        trainer.scheduler_step()
        e_tr, f_tr = _errors(model, [graphs[i] for i in train_idx],
                             [frames[i] for i in train_idx], modal)
        row = {"epoch": epoch, "train_energy_mae_eV_per_atom": e_tr,
               "train_force_mae_eV_per_A": f_tr}
        e_va, f_va = e_tr, f_tr  # without a split the training frames are the check
        if val_idx:
            e_va, f_va = _errors(model, [graphs[i] for i in val_idx],
                                 [frames[i] for i in val_idx], modal)
            row.update(val_energy_mae_eV_per_atom=e_va, val_force_mae_eV_per_A=f_va)
        rows.append(row)
        log.info("epoch %d/%d: train force MAE %.4f eV/Å, %s force MAE %.4f eV/Å (%.0f s)",
                 epoch, settings.epochs, f_tr, "validation" if val_idx else "training-set",
                 f_va, time.perf_counter() - start)
        if stop.update(epoch, f_va + e_va, model):
            break
    return rows, stop.restore(model, rows[-1]["epoch"] if rows else 0)


def finetune_sevennet(
    cp, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings, seed: int
) -> tuple[FinetuneResult, dict[str, Any]]:
    """Fine-tune the SevenNet of checkpoint ``cp`` (a ``SevenNetCheckpoint``, the model of
    ``spec``) on ``frames``; returns the result and the checkpoint dict to save
    (:func:`save_sevennet_checkpoint`)."""
    import torch

    if not frames:
        raise ValueError("fine-tuning needs at least one frame")
    start = time.perf_counter()
    device = resolve_device(settings.device)
    torch.manual_seed(seed)
    model = cp.build_model()
    modal = spec.modal if getattr(model, "modal_map", None) else None
    use_stress = settings.stress_weight > 0 and has_stress(frames)
    graphs = to_graphs(frames, float(cp.config["cutoff"]), modal)
    shifts = refit_shift(model, graphs, frames, modal)
    train_idx, val_idx = split_validation(len(frames), settings, seed)
    log.info(
        "fine-tuning SevenNet %s on %d frames (%d validation), stress %s, %d epochs, %s",
        spec.label(), len(train_idx), len(val_idx), use_stress, settings.epochs, device,
    )
    rows, best_epoch = _train(model, graphs, frames, settings, seed, (train_idx, val_idx),
                              modal, use_stress, device, start)
    model.eval()
    for element, value in refit_shift(model, graphs, frames, modal).items():
        shifts[element] += value
    result = FinetuneResult(
        model=model, curve=pd.DataFrame(rows, columns=list(rows[0]) if rows else ["epoch"]),
        composition_shift_eV_per_atom=shifts,
        n_train=len(train_idx), n_validation=len(val_idx), best_epoch=best_epoch,
        seconds=time.perf_counter() - start, validation_indices=[int(i) for i in val_idx],
    )
    state = {
        "config": cp._config_original,
        "model_state_dict": model.state_dict(),
        "epoch": best_epoch,
        "time": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "hash": uuid.uuid4().hex,
    }
    return result, state


def save_sevennet_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write a SevenNet checkpoint (config and weights; no optimiser state), atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
