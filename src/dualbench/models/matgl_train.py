"""matgl's trainer: fine-tuning a matgl potential on N DFT frames with matgl's own
``PotentialLightningModule`` (its losses, Adam and cosine learning-rate schedule) under a
Lightning ``Trainer``, called by the matgl backend (:mod:`dualbench.models.matgl_kind`).

The settings every model kind shares apply: epochs, learning rate, batch size, energy,
force and stress weights, and the validation split and early stopping of
:func:`dualbench.training.split_validation`, scored after every epoch on the same frames
(energy + force MAE).  ``freeze: [embeddings]`` freezes the element-embedding tables
(TensorNet's ``tensor_embedding.emb``, M3GNet's ``embedding.layer_node_embedding``), the
counterpart of CHGNet's atom embedding; CHGNet's other groups have none here.

As for CHGNet and SevenNet, the per-element energy offsets (matgl's ``element_refs``) are
refitted to the N frames before training and once more after it, so that training learns
the forces, not an offset between our DFT setup and the model's training data.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from dualbench.data import ase_stress_to_gpa_matrix, has_stress
from dualbench.io import atomic_path
from dualbench.models.spec import ModelSpec
from dualbench.training import (
    EarlyStopping,
    FinetuneResult,
    FinetuneSettings,
    composition_shift,
    split_validation,
)

log = logging.getLogger(__name__)


def dataset(potential, frames: Sequence[Atoms], use_stress: bool, root: str):
    """matgl's ``MGLDataset`` of labelled frames (total energy eV, forces eV/Å, stress GPa
    with ASE's sign: matgl's own units), graphs built with the potential's cutoff."""
    from matgl.ext.ase import Atoms2Graph
    from matgl.graph.data import MGLDataset

    labels: dict[str, list] = {
        "energies": [float(a.get_potential_energy()) for a in frames],
        "forces": [np.asarray(a.get_forces()).tolist() for a in frames],
    }
    if use_stress:
        labels["stresses"] = [
            ase_stress_to_gpa_matrix(a.get_stress(voigt=True)).tolist() for a in frames
        ]
    converter = Atoms2Graph(potential.model.element_types, potential.model.cutoff)
    return MGLDataset(structures=list(frames), labels=labels, converter=converter, root=root,
                      save_cache=False)


def loader(data, indices: Sequence[int], batch_size: int, use_stress: bool, seed: int | None):
    """A DataLoader of ``indices`` of a dataset (shuffled with ``seed`` unless None)."""
    from functools import partial

    import torch
    from matgl.graph.data import collate_fn_pes
    from torch.utils.data import DataLoader, Subset

    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(Subset(data, list(indices)), batch_size=max(1, min(batch_size, len(indices))),
                      shuffle=seed is not None, generator=generator,
                      collate_fn=partial(collate_fn_pes, include_stress=use_stress))


def predict_batches(potential, batches) -> tuple[list[float], list[np.ndarray]]:
    """(energy eV/atom per frame, forces eV/Å per frame) of a potential over a loader."""
    was_training = potential.training
    potential.eval()
    device = next(potential.parameters()).device
    energies, forces = [], []
    for g, lat, state_attr, *_ in batches:
        e, f, *_ = potential(g=g.to(device), lat=lat.to(device), state_attr=state_attr.to(device))
        counts = np.bincount(g.batch.cpu().numpy())
        energies += (e.detach().cpu().numpy().reshape(-1) / counts).tolist()
        forces += np.split(f.detach().cpu().numpy(), np.cumsum(counts)[:-1])
    potential.train(was_training)
    return energies, forces


def errors(potential, batches, frames: Sequence[Atoms]) -> tuple[float, float]:
    """(energy MAE eV/atom, force MAE eV/Å) of a potential on labelled frames in loader
    order."""
    e, f = predict_batches(potential, batches)
    de = [abs(p - a.get_potential_energy() / len(a)) for p, a in zip(e, frames, strict=True)]
    df = np.concatenate([np.abs(p - a.get_forces()).ravel()
                         for p, a in zip(f, frames, strict=True)])
    return float(np.mean(de)), float(df.mean())


def refit_element_refs(potential, batches, frames: Sequence[Atoms]) -> dict[str, float]:
    """Add to the potential's per-element energy offsets the constants that zero the
    frames' mean per-atom energy error (eV/atom); returns them."""
    import torch

    shifts = composition_shift(frames, predict_batches(potential, batches)[0])
    types = list(potential.model.element_types)
    with torch.no_grad():
        offset = potential.element_refs.property_offset
        for symbol, value in shifts.items():
            offset.view(-1)[types.index(symbol)] += value
    log.info("per-element energy offsets moved by %s eV/atom", shifts)
    return shifts


def freeze(potential, groups: Sequence[str]) -> list[str]:
    """Freeze the element-embedding tables when ``embeddings`` is among ``groups``; returns
    the frozen parameters' names."""
    import torch

    if "embeddings" not in groups:
        return []
    names = []
    for name, module in potential.model.named_modules():
        if isinstance(module, torch.nn.Embedding):
            for pname, param in module.named_parameters():
                param.requires_grad_(False)
                names.append(f"{name}.{pname}")
    return names


def _epoch_scorer(potential, checks, stop: EarlyStopping, rows: list, settings, start: float):
    """A Lightning callback that scores every epoch (training frames, and the validation
    frames when split) and stops the trainer by the shared early-stopping rule."""
    import lightning.pytorch as pl

    train_check, val_check = checks

    class EpochScore(pl.Callback):
        def on_train_epoch_end(self, trainer, module) -> None:
            epoch = trainer.current_epoch + 1
            e_tr, f_tr = errors(potential, *train_check)
            row = {"epoch": epoch, "train_energy_mae_eV_per_atom": e_tr,
                   "train_force_mae_eV_per_A": f_tr}
            e_va, f_va = e_tr, f_tr  # without a split the training frames are the check
            if val_check is not None:
                e_va, f_va = errors(potential, *val_check)
                row.update(val_energy_mae_eV_per_atom=e_va, val_force_mae_eV_per_A=f_va)
            rows.append(row)
            log.info("epoch %d/%d: train force MAE %.4f eV/Å, %s force MAE %.4f eV/Å (%.0f s)",
                     epoch, settings.epochs, f_tr, "validation" if val_check else "training-set",
                     f_va, time.perf_counter() - start)
            if stop.update(epoch, f_va + e_va, potential):
                trainer.should_stop = True

    return EpochScore()


def _lightning_module(potential, settings: FinetuneSettings, use_stress: bool):
    """matgl's ``PotentialLightningModule`` around the potential's model, starting from its
    weights and (refitted) element offsets."""
    from matgl.utils.training import PotentialLightningModule

    module = PotentialLightningModule(
        model=potential.model,
        element_refs=potential.element_refs.property_offset.detach().cpu().numpy(),
        data_mean=potential.data_mean, data_std=potential.data_std,
        energy_weight=settings.energy_weight, force_weight=settings.force_weight,
        stress_weight=settings.stress_weight if use_stress else 0.0,
        lr=settings.learning_rate,
    )
    module.model.load_state_dict(potential.state_dict())
    module.train()  # the base was loaded for inference (eval mode)
    return module


def _train(potential, data, frames, settings: FinetuneSettings, seed: int, split,
           use_stress: bool, start: float) -> tuple[list[dict[str, float]], int]:
    """matgl's ``PotentialLightningModule`` under Lightning, epoch by epoch with the shared
    early stopping; leaves the best (or last) weights in ``potential``.  Returns the
    training-curve rows and that epoch."""
    import lightning.pytorch as pl

    train_idx, val_idx = split
    module = _lightning_module(potential, settings, use_stress)
    trained = module.model

    def check(indices):
        return (loader(data, indices, settings.batch_size, use_stress, None),
                [frames[i] for i in indices])

    checks = (check(train_idx), check(val_idx) if val_idx else None)
    stop = EarlyStopping(settings.early_stopping_patience, bool(val_idx))
    rows: list[dict[str, float]] = []
    trainer = pl.Trainer(
        max_epochs=settings.epochs, accelerator="gpu" if _on_gpu(potential) else "cpu",
        devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[_epoch_scorer(trained, checks, stop, rows, settings, start)],
    )
    train = loader(data, train_idx, settings.batch_size, use_stress, seed)
    trainer.fit(module, train_dataloaders=train)
    best = stop.restore(trained, rows[-1]["epoch"] if rows else 0)
    potential.load_state_dict(trained.state_dict())
    return rows, best


def _on_gpu(potential) -> bool:
    return next(potential.parameters()).device.type == "cuda"


def finetune_matgl(base, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings,
                   seed: int) -> tuple[FinetuneResult, dict[str, Any]]:
    """Fine-tune a copy of the loaded matgl potential ``base`` (the model of ``spec``) on
    ``frames``; returns the result and the checkpoint body (:func:`save_matgl_checkpoint`)."""
    import lightning.pytorch as pl

    if not frames:
        raise ValueError("fine-tuning needs at least one frame")
    start = time.perf_counter()
    pl.seed_everything(seed, workers=True, verbose=False)
    potential = copy.deepcopy(base)
    use_stress = settings.stress_weight > 0 and has_stress(frames)
    frozen = freeze(potential, settings.freeze)
    train_idx, val_idx = split_validation(len(frames), settings, seed)
    log.info(
        "fine-tuning matgl %s on %d frames (%d validation), stress %s, %d epochs; frozen: %s",
        spec.label(), len(train_idx), len(val_idx), use_stress, settings.epochs,
        ", ".join(frozen) or "nothing",
    )
    with tempfile.TemporaryDirectory(prefix="matgl-data-") as root:
        data = dataset(potential, frames, use_stress, root)
        everything = loader(data, range(len(frames)), settings.batch_size, use_stress, None)
        shifts = refit_element_refs(potential, everything, frames)
        rows, best_epoch = _train(potential, data, frames, settings, seed, (train_idx, val_idx),
                                  use_stress, start)
        for element, value in refit_element_refs(potential, everything, frames).items():
            shifts[element] += value
    potential.eval()
    result = FinetuneResult(
        model=potential, curve=pd.DataFrame(rows, columns=list(rows[0]) if rows else ["epoch"]),
        composition_shift_eV_per_atom=shifts,
        n_train=len(train_idx), n_validation=len(val_idx), best_epoch=best_epoch,
        seconds=time.perf_counter() - start, validation_indices=[int(i) for i in val_idx],
    )
    return result, checkpoint_body(potential, spec, best_epoch)


def checkpoint_body(potential, spec: ModelSpec, epoch: int) -> dict[str, Any]:
    """What a fine-tuned matgl checkpoint holds: the model entry it was built from, the
    Potential's arguments and its weights (tensors and plain values only)."""
    return {"matgl": {
        "architecture": potential.dualbench_architecture,
        "potential": {
            "data_mean": potential.data_mean.detach().cpu(),
            "data_std": potential.data_std.detach().cpu(),
            "element_refs": potential.element_refs.property_offset.detach().cpu().view(-1),
            "calc_forces": True, "calc_stresses": True,
        },
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
        "base": spec.weights if not spec.checkpoint else spec.label(),
        "epoch": int(epoch),
    }}


def save_matgl_checkpoint(body: dict[str, Any], path: str | Path) -> None:
    """Write a matgl checkpoint of this workflow (no optimiser state), atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(body, tmp)
