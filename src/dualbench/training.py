"""What every model kind's fine-tuning shares: the settings (and their per-N schedule),
the result, the validation split, early stopping and the per-element composition shift.

This module sits below the backends (:mod:`dualbench.models.chgnet_train`,
:mod:`dualbench.models.sevennet_train`) and imports none of them: each kind's trainer
takes its split, stop rule and energy refit from here, so every kind splits, stops and
refits the same way at every N.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger(__name__)


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


def model_section(section: Mapping[str, Any], own: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``finetune`` section one model trains with: the study's, with the model's own
    ``finetune`` keys (its config entry's) in their place at every N.  A ``schedule`` of the
    model's replaces the study's; otherwise the study's schedule no longer sets the keys the
    model gives (a kind whose optimiser wants another learning rate keeps it at every N)."""
    own = dict(own or {})
    merged = {**section, **own}
    if own and "schedule" not in own:
        merged["schedule"] = [
            {k: v for k, v in entry.items() if k not in own}
            for entry in section.get("schedule") or []
        ]
    return merged


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
