"""From a MODEL argument or a ``model.json`` to a spec, and from a spec to its model.

Every stage loads models through :func:`load_model` (the native model, for the kinds that
have one) or :func:`make_calculator` (an ASE calculator, for every kind), each asking the
kind's backend (:mod:`dualbench.models.backend`), so a MODEL argument may be ``chgnet``
(pretrained 0.3.0), ``chgnet:0.2.0``, ``chgnet:r2scan``, ``sevennet`` (SevenNet-0 of 11 Jul
2024), ``sevennet:NAME``, a ``model.json`` or a checkpoint the fine-tuning wrote.  No model
file is unpickled with code: shipped weights and checkpoints alike go through PyTorch's
restricted unpickler (:mod:`dualbench.models.checkpoints`), and a ``model.json`` that names
a checkpoint must pin it by the SHA-256 it still has.  A model file is data: a kind whose
spec names code (``kind: ase``, a calculator imported by its path) comes only from the
config or an explicit command-line flag, and a checkpoint is read on its own, never with a
file beside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dualbench.models.backend import get_backend, kinds
from dualbench.models.checkpoints import safe_load
from dualbench.models.device import resolve_device
from dualbench.models.spec import ModelSpec

#: The kind a checkpoint that no backend recognises is handed to (its loader names why).
UNRECOGNISED_CHECKPOINT_KIND = "chgnet"

#: (calculator, options) of each ``kind: ase`` entry of the study config's ``models:``,
#: declared by a workflow job at its start (:func:`trust_config_models`).
_CONFIG_CALCULATORS: list[tuple[str | None, dict[str, Any]]] = []


def trust_config_models(models: Mapping[str, Mapping[str, Any]]) -> None:
    """Declare the config's ``models:`` the source of the calculators this process may
    import: a ``model.json`` of ``kind: ase`` is then read when its ``calculator`` and
    ``options`` are exactly those of one of these entries (the ``vanilla_model`` rule
    writes them so), so the code that runs is the config's, never the file's.  Every
    workflow job calls this at its start (:func:`dualbench.workflow.start_script`)."""
    _CONFIG_CALCULATORS[:] = [
        (entry.get("calculator"), dict(entry.get("options") or {}))
        for entry in models.values()
        if entry.get("kind") in kinds() and get_backend(entry["kind"]).runs_code
    ]


def _declared_by_config(spec: ModelSpec) -> bool:
    return (spec.calculator, dict(spec.options or {})) in _CONFIG_CALCULATORS


def read_model_spec(path: str | Path, *, trust_calculator: bool = False) -> ModelSpec:
    """Read a ``model.json`` as data.

    ``kind: ase`` names a calculator that would be imported and called: it is refused
    unless the study's config declares that calculator with those options
    (:func:`trust_config_models`) or ``trust_calculator`` is given (the command line's
    ``--trust-ase-model``, for a file the user vouches for).  A checkpoint path is made
    absolute against the file's folder and must be pinned by ``checkpoint_sha256``, which
    it must still match.  Every refusal is a ``ValueError`` naming the file and the key.
    """
    path = Path(path)
    try:
        data: Any = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a model spec: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a model spec: a JSON object is expected")
    try:
        spec = ModelSpec(**data)
    except TypeError as err:
        raise ValueError(f"{path}: not a model spec ({err})") from None
    if spec.kind not in kinds():
        raise ValueError(f"{path}: kind {spec.kind!r} is not one of {kinds()}")
    if get_backend(spec.kind).runs_code and not (trust_calculator or _declared_by_config(spec)):
        raise ValueError(
            f"{path}: kind {spec.kind!r} is refused in a model file: its calculator"
            f" {spec.calculator!r} would be imported and called, and a model file is data,"
            " not code. A kind ase model comes from the config's `models:` section (the"
            " workflow reads the file only when its calculator and options are the"
            " config's), or from a file given with --trust-ase-model (dualbench md,"
            " dft-metrics)"
        )
    if spec.checkpoint is not None:
        if not isinstance(spec.checkpoint, str) or not spec.checkpoint:
            raise ValueError(f"{path}: checkpoint {spec.checkpoint!r} is not a file name")
        sha = spec.checkpoint_sha256
        if sha is None:
            raise ValueError(
                f"{path}: checkpoint {spec.checkpoint!r} has no checkpoint_sha256; a model"
                " file that names a checkpoint must pin it by its SHA-256 (as the fine-tuning"
                " writes it), so that a changed or swapped file is refused"
            )
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValueError(
                f"{path}: checkpoint_sha256 {sha!r} is not a SHA-256 (64 lowercase hex digits)"
            )
        spec.checkpoint = str((path.parent / spec.checkpoint).resolve())
        if not Path(spec.checkpoint).is_file():
            raise FileNotFoundError(f"{path}: checkpoint {spec.checkpoint} does not exist")
        actual = spec.checkpoint_digest()
        if actual != sha:
            raise ValueError(
                f"{path}: checkpoint {spec.checkpoint} has SHA-256 {actual[:16]}…, not the"
                f" checkpoint_sha256 {sha[:16]}… recorded when it was written; refusing to"
                " load a changed file"
            )
    return spec


def parse_model_arg(
    model: str | Path | ModelSpec, *, trust_calculator: bool = False
) -> ModelSpec:
    """A MODEL argument as a spec.

    ``chgnet`` (0.3.0), ``chgnet:0.2.0``, ``chgnet:r2scan``, ``sevennet`` (SevenNet-0 of
    11 Jul 2024), ``sevennet:NAME`` (``7net-0_22May2024``, ``7net-l3i5``, ``7net-mf-0``,
    ``7net-mf-0@R2SCAN``), a ``model.json`` (read as data: see :func:`read_model_spec`
    for ``trust_calculator``), or a checkpoint that the fine-tuning wrote, read on its own
    with PyTorch's restricted unpickler and its kind recognised from its keys (no file
    beside it is looked at).  A :class:`ModelSpec` is the caller's own (from the config or
    the command line) and is returned as it is.
    """
    if isinstance(model, ModelSpec):
        return model
    text = str(model)
    family, _, weights = text.partition(":")
    pretrained = pretrained_kinds()
    if family in pretrained and not Path(text).exists():
        backend = get_backend(family)
        return backend.pretrained_spec(weights or backend.default_weights)
    path = Path(text)
    if not path.is_file():
        names = ", ".join(f"{k}[:WEIGHTS]" for k in pretrained)
        raise FileNotFoundError(f"model {text!r} is neither a pretrained name ({names}) nor a file")
    if path.suffix == ".json":
        return read_model_spec(path, trust_calculator=trust_calculator)
    spec = ModelSpec(checkpoint=str(path.resolve()))
    spec.kind = checkpoint_kind(spec)
    spec.weights = get_backend(spec.kind).default_weights
    return spec


def pretrained_kinds() -> tuple[str, ...]:
    """The kinds that ship weights: a bare ``KIND[:WEIGHTS]`` is a MODEL argument."""
    return tuple(k for k in kinds() if get_backend(k).default_weights is not None)


def checkpoint_kind(spec: ModelSpec) -> str:
    """The kind whose backend owns the checkpoint of ``spec`` (read safely, once).  A file
    that no backend recognises, or that cannot be read, is taken as CHGNet's, whose loader
    then refuses it naming the reason."""
    try:
        state = safe_load(spec.checkpoint, data=spec.checkpoint_bytes())
    except ValueError:
        return UNRECOGNISED_CHECKPOINT_KIND
    for kind in kinds():
        if get_backend(kind).owns_checkpoint(state):
            return kind
    return UNRECOGNISED_CHECKPOINT_KIND


def load_model(model: str | Path | ModelSpec, device: str = "auto"):
    """The native model of a MODEL argument on ``device`` (a kind that is only a
    calculator has none: use :func:`make_calculator`)."""
    spec = parse_model_arg(model)
    return get_backend(spec.kind).load(spec, resolve_device(device))


def make_calculator(model: str | Path | ModelSpec, device: str = "auto"):
    """An ASE calculator of a MODEL argument (energy eV, forces eV/Å, stress eV/Å^3)."""
    spec = parse_model_arg(model)
    return get_backend(spec.kind).calculator(spec, resolve_device(device))
