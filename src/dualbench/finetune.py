"""Fine-tuning on N DFT frames: CHGNet with CHGNet's own ``Trainer`` (here), SevenNet with
SevenNet's (:mod:`dualbench.finetune_sevennet`); other kinds have no trainer.

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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from dualbench.data import ase_stress_to_gpa_matrix, has_stress
from dualbench.io import atomic_path, write_csv

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


@dataclass
class FinetuneSettings:
    """Training settings; see the ``finetune:`` section of the config schema."""

    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 4
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 0.1
    freeze: list[str] = field(default_factory=lambda: ["embeddings"])
    validation_fraction: float = 0.2
    min_frames_for_validation: int = 10
    early_stopping_patience: int = 5
    device: str = "auto"

    @classmethod
    def from_config(cls, section: Mapping[str, Any], n_frames: int | None = None
                    ) -> FinetuneSettings:
        """Settings of a ``finetune`` config section; with ``n_frames``, its ``schedule``
        applied for that N (:func:`scheduled`)."""
        names = {f.name for f in fields(cls)}
        if n_frames is not None:
            section = scheduled(section, n_frames)
        return cls(**{k: v for k, v in section.items() if k in names})


def scheduled(section: Mapping[str, Any], n_frames: int) -> dict[str, Any]:
    """The ``finetune`` section as it applies to N = ``n_frames``: the first ``schedule``
    entry with ``max_n >= n_frames`` replaces ``epochs`` and ``learning_rate``; the
    schedule itself is left out."""
    out = {k: v for k, v in section.items() if k != "schedule"}
    for entry in sorted(section.get("schedule") or [], key=lambda e: e["max_n"]):
        if n_frames <= entry["max_n"]:
            out.update({k: v for k, v in entry.items() if k != "max_n"})
            break
    return out


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced."""

    model: Any
    curve: pd.DataFrame
    composition_shift_eV_per_atom: dict[str, float]
    n_train: int
    n_validation: int
    best_epoch: int
    seconds: float
    validation_indices: list[int] = field(default_factory=list)  # into the frames given


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


def composition_shift(frames: Sequence[Atoms], predicted_eV_per_atom: Sequence[float]
                      ) -> dict[str, float]:
    """Per-element constants (eV/atom) that zero the frames' mean per-atom energy error: the
    residuals E_DFT - E_model per atom regressed on the element fractions (least squares,
    minimum norm where the frames cannot tell elements apart).  Shared by every kind's
    refit (CHGNet's AtomRef, SevenNet's per-element shift)."""
    symbols = sorted({s for a in frames for s in a.get_chemical_symbols()})
    residual = np.array([
        a.get_potential_energy() / len(a) - float(e)
        for a, e in zip(frames, predicted_eV_per_atom, strict=True)
    ])
    fractions = np.array(
        [[a.get_chemical_symbols().count(s) / len(a) for s in symbols] for a in frames]
    )
    shift, *_ = np.linalg.lstsq(fractions, residual, rcond=None)
    return {s: float(v) for s, v in zip(symbols, shift, strict=True)}


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


@dataclass
class EarlyStopping:
    """The best epoch so far and the stop rule every kind's training loop shares: keep the
    weights of the lowest score (validation force + energy MAE, or the training set's when
    there is no validation split); with a split, stop after ``patience`` epochs without
    improvement."""

    patience: int
    with_validation: bool
    score: float = np.inf
    epoch: int = 0
    state: dict[str, Any] | None = None

    def update(self, epoch: int, score: float, model) -> bool:
        """Record epoch ``epoch``'s score; True when training should stop."""
        if score < self.score:
            self.score, self.epoch = score, epoch
            self.state = copy.deepcopy(model.state_dict())
            return False
        if self.with_validation and epoch - self.epoch >= self.patience:
            log.info("early stop: no validation improvement for %d epochs", epoch - self.epoch)
            return True
        return False

    def restore(self, model, last_epoch: int) -> int:
        """Load the best weights when there was a validation split; returns the epoch whose
        weights the model now holds."""
        if self.with_validation and self.state is not None:
            model.load_state_dict(self.state)
            return self.epoch
        return last_epoch


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


def split_validation(n: int, settings: FinetuneSettings, seed: int) -> tuple[list[int], list[int]]:
    """(training, validation) indices of ``n`` frames: with at least
    ``min_frames_for_validation`` frames a ``validation_fraction`` of them (at least one,
    chosen by ``seed``) is held out for early stopping, else none.  Every model kind splits
    the same way at every N."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = (
        max(1, round(settings.validation_fraction * n))
        if n >= settings.min_frames_for_validation and settings.validation_fraction > 0
        else 0
    )
    return order[n_val:].tolist(), order[:n_val].tolist()


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

    from dualbench.models import resolve_device

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


def write_curve(path: str | Path, curve: pd.DataFrame) -> None:
    """Write the training curve CSV."""
    write_csv(path, curve)


def run_finetune(
    pool_file: str | Path,
    n_frames: int,
    seed: int,
    settings: FinetuneSettings,
    out_dir: str | Path,
    base: str | Any = "chgnet",
    pool_format: str | None = "extxyz",
    elements: Sequence[str] | None = None,
    provenance_extra: Mapping[str, Any] | None = None,
) -> Path:
    """Fine-tune ``base`` on the sweep's N frames of ``pool_file``; write the model folder.

    ``out_dir`` receives ``checkpoint.pth.tar``, ``model.json``, ``training_curve.csv``
    and ``frame_ids.json`` (written last, each atomically).  Returns the model.json path.
    """
    from dualbench.data import read_frames, select_frames
    from dualbench.io import provenance, write_json
    from dualbench.models import (
        TRAINABLE,
        ModelSpec,
        load_model,
        parse_model_arg,
        sha256_file,
        write_model_spec,
    )

    out_dir = Path(out_dir)
    base_spec = parse_model_arg(base)
    if base_spec.kind not in TRAINABLE:
        raise ValueError(
            f"model {base_spec.label()}: kind {base_spec.kind!r} has no fine-tuning trainer here"
            f" (only {', '.join(TRAINABLE)}); benchmark it vanilla (N = 0)"
        )
    pool = read_frames(pool_file, pool_format, elements)
    frames, record = select_frames(pool, n_frames, seed)
    checkpoint = out_dir / "checkpoint.pth.tar"
    if base_spec.kind == "sevennet":
        from dualbench.finetune_sevennet import finetune_sevennet, save_sevennet_checkpoint

        result, state = finetune_sevennet(base_spec, frames, settings, seed)
        save_sevennet_checkpoint(state, checkpoint)
    else:
        result = finetune(load_model(base_spec, settings.device), frames, settings, seed)
        save_checkpoint(result.model, checkpoint)
    write_curve(out_dir / "training_curve.csv", result.curve)
    record.update(
        n_train=result.n_train,
        n_validation=result.n_validation,
        validation_frame_ids=[record["frame_ids"][i] for i in result.validation_indices],
        best_epoch=result.best_epoch,
        seconds=round(result.seconds, 2),
        composition_shift_eV_per_atom=result.composition_shift_eV_per_atom,
        settings=asdict(settings),
        provenance=provenance(**(provenance_extra or {}), seed=seed),
    )
    write_json(out_dir / "frame_ids.json", record)
    spec = ModelSpec(
        kind=base_spec.kind,
        weights=base_spec.weights,
        modal=base_spec.modal,
        checkpoint=checkpoint.name,
        checkpoint_sha256=sha256_file(checkpoint),
        n_frames=n_frames,
        seed=seed,
    )
    write_model_spec(out_dir / "model.json", spec)
    log.info("fine-tuned model written to %s in %.0f s", out_dir, result.seconds)
    return out_dir / "model.json"
