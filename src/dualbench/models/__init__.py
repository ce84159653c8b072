"""Model specs and loading: CHGNet, SevenNet and any ASE calculator, vanilla or fine-tuned.

Every stage loads models through :func:`load_model` (the native model, for the kinds that
have one) or :func:`make_calculator` (an ASE calculator, for every kind), so a MODEL
argument may be ``chgnet`` (pretrained 0.3.0), ``chgnet:0.2.0``, ``chgnet:r2scan``,
``sevennet`` (SevenNet-0 of 11 Jul 2024), ``sevennet:NAME``, a ``model.json`` or a
checkpoint the fine-tuning wrote.  No model file is unpickled with code: shipped weights
and checkpoints alike go through PyTorch's restricted unpickler
(:mod:`dualbench.models.checkpoints`), and a ``model.json`` that names a checkpoint must
pin it by the SHA-256 it still has.  A model file is data: ``kind: ase`` (a calculator
imported by its path) comes only from the config or an explicit command-line flag, and a
checkpoint is read on its own, never with a file beside it (:mod:`dualbench.models.spec`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from dualbench.models.checkpoints import read_checkpoint, safe_load
from dualbench.models.spec import (
    CHGNET_WEIGHTS,
    KINDS,
    PRETRAINED,
    SEVENNET_WEIGHTS,
    TRAINABLE,
    TRAINED_ON,
    ModelSpec,
    parse_model_arg,
    read_model_spec,
    sha256_file,
    trust_config_models,
    write_model_spec,
)

__all__ = [
    "CHGNET_WEIGHTS", "KINDS", "PRETRAINED", "SEVENNET_WEIGHTS", "TRAINABLE", "TRAINED_ON",
    "ModelSpec", "load_model", "make_calculator", "parse_model_arg", "read_checkpoint",
    "read_model_spec", "resolve_device", "safe_load", "set_threads", "sha256_file",
    "trust_config_models", "write_model_spec",
]

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no GPU")
    return device


def set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads (a Snakemake job's ``threads``)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def load_model(model: str | Path | ModelSpec, device: str = "auto"):
    """Load the native model (CHGNet or SevenNet, pretrained or fine-tuned) onto ``device``.

    ``kind: ase`` has no native model here: use :func:`make_calculator`.
    """
    spec = parse_model_arg(model)
    dev = resolve_device(device)
    if spec.kind == "chgnet":
        from dualbench.models.chgnet import load_chgnet

        net = load_chgnet(spec, dev)
    elif spec.kind == "sevennet":
        from dualbench.models.sevennet import load_sevennet

        net = load_sevennet(spec, dev)
    elif spec.kind == "ase":
        raise ValueError(f"model {spec.label()}: kind 'ase' is used through make_calculator")
    else:
        raise ValueError(f"unknown model kind {spec.kind!r}; known: {KINDS}")
    log.info(
        "loaded %s%s on %s", spec.label(),
        f" fine-tuned ({spec.checkpoint})" if spec.checkpoint else " (pretrained)", dev,
    )
    return net


def make_calculator(model: str | Path | ModelSpec, device: str = "auto"):
    """An ASE calculator of the model (energy eV, forces eV/Å, stress eV/Å^3)."""
    spec = parse_model_arg(model)
    dev = resolve_device(device)
    if spec.kind == "chgnet":
        from dualbench.models.chgnet import chgnet_calculator

        return chgnet_calculator(load_model(spec, dev), dev)
    if spec.kind == "sevennet":
        from dualbench.models.sevennet import sevennet_calculator

        return sevennet_calculator(load_model(spec, dev), spec, dev)
    if spec.kind == "ase":
        from dualbench.models.ase_kind import ase_calculator

        return ase_calculator(spec)
    raise ValueError(f"unknown model kind {spec.kind!r}; known: {KINDS}")
