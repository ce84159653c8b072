"""The fine-tuning stage: N frames of the pool, the backend of the base model's kind trains
on them (:meth:`dualbench.models.backend.Backend.finetune`), and the model folder is
written.  What every kind's training shares is :mod:`dualbench.training`; each kind's
trainer is beside its backend (:mod:`dualbench.models.chgnet_train`,
:mod:`dualbench.models.sevennet_train`); a kind without one refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dualbench.io import write_csv
from dualbench.training import FinetuneSettings

log = logging.getLogger(__name__)


def write_curve(path: str | Path, curve) -> None:
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
    from dualbench.models.backend import get_backend
    from dualbench.models.resolve import parse_model_arg
    from dualbench.models.spec import ModelSpec, sha256_file, write_model_spec

    out_dir = Path(out_dir)
    base_spec = parse_model_arg(base)
    backend = get_backend(base_spec.kind)
    if not backend.trainable:  # refused before the pool is read or anything is written
        raise backend.no_trainer(base_spec)
    pool = read_frames(pool_file, pool_format, elements)
    frames, record = select_frames(pool, n_frames, seed)
    checkpoint = out_dir / "checkpoint.pth.tar"
    result = backend.finetune(base_spec, frames, settings, seed, checkpoint)
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
