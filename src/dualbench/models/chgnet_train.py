"""CHGNet's trainer: fine-tuning on N DFT frames with CHGNet's own ``Trainer``, called by
the CHGNet backend (:mod:`dualbench.models.chgnet`).  The split, early stopping and
composition shift every kind shares are in :mod:`dualbench.training`.

Energies of a new DFT setup (pseudopotentials, cutoff, code) differ from the MPtrj
reference by a per-element constant.  CHGNet predicts energy as a learned part plus a
linear per-element composition model (``AtomRef``, frozen during training).  Before
training, the composition model is refitted to the N frames: the per-atom residuals
E_DFT - E_CHGNet are regressed on the element fractions (least squares, minimum norm
when the frames cannot separate elements) and the result is added to the AtomRef
weights.  Training then only learns the physics, not an offset; after training the same
refit removes the offset that training left.  Forces and stresses are unaffected by
these shifts.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from dualbench.data import ase_stress_to_gpa_matrix, has_stress
from dualbench.io import atomic_path
from dualbench.models.device import resolve_device
from dualbench.training import (
    EarlyStopping,
    FinetuneResult,
    FinetuneSettings,
    composition_shift,
    split_validation,
)

log = logging.getLogger(__name__)

#: CHGNet module-name prefixes of each freezable group.
FREEZE_GROUPS = {
    "embeddings": (
        "atom_embedding",
        "bond_embedding",
        "angle_embedding",
        "bond_basis_expansion",
        "angle_basis_expansion",
    ),
    "atom_conv": ("atom_conv_layers",),
    "bond_conv": ("bond_conv_layers",),
    "angle_conv": ("angle_layers",),
    "readout": ("site_wise", "readout_norm", "pooling", "mlp"),
}


def to_structure_data(frames: Sequence[Atoms], use_stress: bool):
    """CHGNet ``StructureData`` of frames: energy per atom (eV), forces (eV/Å), stress.

    CHGNet's dataset multiplies stresses by -0.1 (VASP kBar, compression positive, to
    GPa with tension positive), so ASE stresses (GPa after conversion) are handed over
    as -10 x GPa, i.e. VASP's kBar convention.
    """
    from chgnet.data.dataset import StructureData
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [AseAtomsAdaptor.get_structure(a) for a in frames]
    energies = [a.get_potential_energy() / len(a) for a in frames]
    forces = [a.get_forces() for a in frames]
    stresses = None
    if use_stress:
        stresses = [-10.0 * ase_stress_to_gpa_matrix(a.get_stress()) for a in frames]
    with contextlib.redirect_stdout(sys.stderr):
        return StructureData(
            structures=structures,
            energies=energies,
            forces=forces,
            stresses=stresses,
            structure_ids=[a.info.get("frame_id", str(i)) for i, a in enumerate(frames)],
            shuffle=False,
        )


def predict(model, frames: Sequence[Atoms], task: str = "efs", batch_size: int = 1) -> list[dict]:
    """CHGNet predictions of frames: ``e`` eV/atom, ``f`` eV/Å, ``s`` GPa (tension positive).

    One frame per batch by default: on a CPU larger batches are no faster and the force
    and stress graphs of a batch of 8 54-atom W frames take about 9 GB.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [AseAtomsAdaptor.get_structure(a) for a in frames]
    out = model.predict_structure(structures, task=task, batch_size=batch_size)
    return out if isinstance(out, list) else [out]


def refit_composition_model(model, frames: Sequence[Atoms]) -> dict[str, float]:
    """Shift CHGNet's AtomRef so its energies match the frames' DFT on average per element.

    Returns the per-element shifts in eV/atom that were added.
    """
    import torch
    from ase.data import atomic_numbers

    shifts = composition_shift(frames, [p["e"] for p in predict(model, frames, task="e")])
    weight = model.composition_model.fc.weight
    with torch.no_grad():
        for sym, value in shifts.items():
            weight[0, atomic_numbers[sym] - 1] += value
    log.info("composition model shifted by %s eV/atom", shifts)
    return shifts


def freeze(model, groups: Sequence[str]) -> int:
    """Freeze the parameters of the named groups; returns how many tensors were frozen."""
    unknown = sorted(set(groups) - set(FREEZE_GROUPS))
    if unknown:
        raise ValueError(f"unknown freeze group(s) {unknown}; known: {sorted(FREEZE_GROUPS)}")
    prefixes = tuple(p for g in groups for p in FREEZE_GROUPS[g])
    count = 0
    for name, param in model.named_parameters():
        if prefixes and name.startswith(prefixes):
            param.requires_grad = False
            count += 1
    return count


def _curve(history: Mapping[str, Mapping[str, list[float]]], has_val: bool) -> pd.DataFrame:
    names = {"e": "energy_mae_eV_per_atom", "f": "force_mae_eV_per_A", "s": "stress_mae_GPa"}
    columns: dict[str, Any] = {}
    for key, hist in history.items():
        if key not in names:
            continue
        columns[f"train_{names[key]}"] = hist["train"]
        if has_val:
            columns[f"val_{names[key]}"] = hist["val"]
    frame = pd.DataFrame(columns)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame


def finetune(
    base_model,
    frames: Sequence[Atoms],
    settings: FinetuneSettings,
    seed: int,
) -> FinetuneResult:
    """Fine-tune a copy of ``base_model`` (a loaded CHGNet) on ``frames``.

    With at least ``min_frames_for_validation`` frames, a ``validation_fraction`` of them
    (chosen by ``seed``) is kept out of training for early stopping and the best epoch's
    weights are returned; otherwise every frame trains and every epoch runs.  With
    ``epochs`` 0 (a schedule's choice for the smallest N) only the composition model is
    refitted: the energies move to the frames' scale, forces and stresses stay vanilla.
    """
    import torch

    if not frames:
        raise ValueError("fine-tuning needs at least one frame")
    start = time.perf_counter()
    device = resolve_device(settings.device)
    torch.manual_seed(seed)
    model = copy.deepcopy(base_model).to(device)
    shifts = refit_composition_model(model, frames)
    train_idx, val_idx = split_validation(len(frames), settings, seed)
    history: Mapping[str, Mapping[str, list[float]]] = {}
    best_epoch = 0
    if settings.epochs > 0:
        history, best_epoch = _train(model, frames, settings, seed, train_idx, val_idx,
                                     device, start)
        # Training moved the learned energies; refit the constant once more so the frames'
        # mean per-atom energy error is zero again (forces and stresses are unchanged).
        for element, value in refit_composition_model(model, frames).items():
            shifts[element] += value
    else:
        log.info("epochs 0: composition model refitted to %d frames, no training", len(frames))
    model.eval()
    return FinetuneResult(
        model=model,
        curve=_curve(history, bool(val_idx)),
        composition_shift_eV_per_atom=shifts,
        n_train=len(train_idx),
        n_validation=len(val_idx),
        best_epoch=best_epoch,
        seconds=time.perf_counter() - start,
        validation_indices=[int(i) for i in val_idx],
    )


def _loaders(frames: Sequence[Atoms], use_stress: bool, settings: FinetuneSettings,
             seed: int, train_idx: list[int], val_idx: list[int]):
    """CHGNet's (training, validation) loaders; without a validation split the training
    frames are scored in place of one."""
    import torch
    from chgnet.data.dataset import collate_graphs, get_loader
    from torch.utils.data import DataLoader, Subset

    data = to_structure_data(frames, use_stress)
    train_loader = DataLoader(
        Subset(data, train_idx),
        batch_size=min(settings.batch_size, len(train_idx)),
        shuffle=True,
        collate_fn=collate_graphs,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = (
        DataLoader(Subset(data, val_idx), batch_size=settings.batch_size,
                   collate_fn=collate_graphs)
        if val_idx
        else get_loader(Subset(data, train_idx), batch_size=settings.batch_size)
    )
    return train_loader, val_loader


def _train(model, frames: Sequence[Atoms], settings: FinetuneSettings, seed: int,
           train_idx: list[int], val_idx: list[int], device: str, start: float):
    """CHGNet's ``Trainer`` on the frozen-group model, epoch by epoch with early stopping;
    leaves the best (or last) weights in ``model``.  Returns (history, best epoch)."""
    from chgnet.trainer import Trainer

    n_frozen = freeze(model, settings.freeze)
    use_stress = settings.stress_weight > 0 and has_stress(frames)
    targets = "efs" if use_stress else "ef"
    train_loader, val_loader = _loaders(frames, use_stress, settings, seed, train_idx, val_idx)
    n_val = len(val_idx)
    log.info(
        "fine-tuning on %d frames (%d validation), targets %s, %d frozen tensors, %d epochs, %s",
        len(train_idx), n_val, targets, n_frozen, settings.epochs, device,
    )
    with contextlib.redirect_stdout(sys.stderr):
        trainer = Trainer(
            model=model, targets=targets, energy_loss_ratio=settings.energy_weight,
            force_loss_ratio=settings.force_weight, stress_loss_ratio=settings.stress_weight,
            optimizer="Adam", scheduler="CosLR", criterion="MSE", epochs=settings.epochs,
            learning_rate=settings.learning_rate, use_device=device, torch_seed=seed,
            data_seed=seed, print_freq=10**9,
        )
    stop = EarlyStopping(settings.early_stopping_patience, bool(n_val))
    with tempfile.TemporaryDirectory(prefix="dualbench-train-") as scratch:
        for epoch in range(settings.epochs):
            trainer.starting_epoch, trainer.epochs = epoch, epoch + 1
            with contextlib.redirect_stdout(sys.stderr):
                trainer.train(train_loader, val_loader, save_dir=scratch)
            hist = trainer.training_history
            log.info(
                "epoch %d/%d: train force MAE %.4f eV/Å, %s force MAE %.4f eV/Å (%.0f s)",
                epoch + 1, settings.epochs, hist["f"]["train"][-1],
                "validation" if n_val else "training-set", hist["f"]["val"][-1],
                time.perf_counter() - start,
            )
            if stop.update(epoch + 1, hist["f"]["val"][-1] + hist["e"]["val"][-1], model):
                break
    best_epoch = stop.restore(model, len(trainer.training_history["f"]["train"]))
    return trainer.training_history, best_epoch


def save_checkpoint(model, path: str | Path) -> None:
    """Save a CHGNet checkpoint that ``CHGNet.from_file`` (and load_model) read, atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({"model": model.as_dict()}, tmp)
