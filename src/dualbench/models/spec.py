"""What a model is (:class:`ModelSpec`), its ``model.json``, and the MODEL argument.

Every model of the sweep is described by a small ``model.json`` beside its weights::

    {"kind": "chgnet" | "sevennet" | "ase", "weights": "0.3.0", "modal": null,
     "checkpoint": "checkpoint.pth.tar" | null, "checkpoint_sha256": "…" | null,
     "calculator": null, "options": {}, "n_frames": 10, "seed": 0}

``checkpoint`` is relative to the ``model.json``; null means the pretrained weights that
ship inside the model's package (loaded offline).  A checkpoint this workflow wrote is
recorded with its SHA-256 and refused when the file no longer matches it.

A model file is data, never code.  What names code to import and call (``kind: ase``,
its ``calculator``) is trusted only from the study's config (the ``models:`` section, see
:func:`trust_config_models`) and from an explicit command-line flag
(``--trust-ase-model``); :func:`read_model_spec` refuses it in a file otherwise.  A
``model.json`` that names a checkpoint must pin it by ``checkpoint_sha256``, and a
checkpoint given as the model is read on its own, never with a file found beside it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dualbench.io import write_json

#: Pretrained weights shipped inside each kind's pip package; the first is the default.
CHGNET_WEIGHTS = ("0.3.0", "0.2.0", "r2scan")
#: SevenNet checkpoints shipped in the sevenn wheel: name -> (sevenn._const attribute, level
#: of theory of its training data).  SevenNet-MF-0 has a PBE and an r2SCAN modality.
SEVENNET_WEIGHTS = {
    "7net-0": ("SEVENNET_0_11Jul2024", "PBE(+U), MPtrj"),
    "7net-0_22May2024": ("SEVENNET_0_22May2024", "PBE(+U), MPtrj"),
    "7net-mf-0": ("SEVENNET_MF_0", "PBE(+U) MPtrj and r2SCAN MP-r2SCAN, one modality each"),
    "7net-l3i5": ("SEVENNET_l3i5", "PBE(+U), MPtrj"),
}
PRETRAINED = {"chgnet": CHGNET_WEIGHTS[0], "sevennet": "7net-0"}
#: Level of theory of each kind's pretrained training data (README, summary).
TRAINED_ON = {
    ("chgnet", "0.3.0"): "PBE(+U), MPtrj",
    ("chgnet", "0.2.0"): "PBE(+U), MPtrj",
    ("chgnet", "r2scan"): "r2SCAN, MP-r2SCAN (transfer-learned from 0.3.0)",
    **{("sevennet", name): theory for name, (_, theory) in SEVENNET_WEIGHTS.items()},
}
KINDS = ("chgnet", "sevennet", "ase")
#: Kinds that have a fine-tuning trainer here.
TRAINABLE = ("chgnet", "sevennet")


@dataclass
class ModelSpec:
    """What a model is: family, base weights, and the fine-tuned checkpoint if any.

    ``modal`` picks the modality of a multi-fidelity SevenNet (``PBE`` or ``R2SCAN``);
    ``calculator`` and ``options`` describe a ``kind: ase`` model (an import path such as
    ``mace.calculators:MACECalculator`` and its keyword arguments).
    """

    kind: str = "chgnet"
    weights: str = "0.3.0"
    checkpoint: str | None = None
    n_frames: int = 0
    seed: int | None = None
    modal: str | None = None
    checkpoint_sha256: str | None = None
    calculator: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """A short name for logs: ``chgnet 0.3.0``, ``sevennet 7net-mf-0 (PBE)``, …"""
        if self.kind == "ase":
            return f"ase {self.calculator}"
        modal = f" ({self.modal})" if self.modal else ""
        return f"{self.kind} {self.weights}{modal}"


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_model_spec(path: str | Path, spec: ModelSpec) -> None:
    """Write ``model.json`` atomically."""
    write_json(path, asdict(spec))


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
        if entry.get("kind") == "ase"
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
    if spec.kind not in KINDS:
        raise ValueError(f"{path}: kind {spec.kind!r} is not one of {KINDS}")
    if spec.kind == "ase" and not (trust_calculator or _declared_by_config(spec)):
        raise ValueError(
            f"{path}: kind 'ase' is refused in a model file: its calculator"
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
        actual = sha256_file(spec.checkpoint)
        if actual != sha:
            raise ValueError(
                f"{path}: checkpoint {spec.checkpoint} has SHA-256 {actual[:16]}…, not the"
                f" checkpoint_sha256 {sha[:16]}… recorded when it was written; refusing to"
                " load a changed file"
            )
    return spec


def _pretrained_spec(kind: str, weights: str) -> ModelSpec:
    modal = None
    if kind == "sevennet" and "@" in weights:
        weights, modal = weights.split("@", 1)
    known = CHGNET_WEIGHTS if kind == "chgnet" else tuple(SEVENNET_WEIGHTS)
    if weights not in known:
        raise ValueError(f"{kind} has no shipped weights {weights!r}; known: {', '.join(known)}")
    if kind == "sevennet" and weights == "7net-mf-0":
        modal = modal or "PBE"
    elif modal:
        raise ValueError(f"{kind}:{weights} has no modalities (got @{modal})")
    return ModelSpec(kind=kind, weights=weights, modal=modal)


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
    if family in PRETRAINED and not Path(text).exists():
        return _pretrained_spec(family, weights or PRETRAINED[family])
    path = Path(text)
    if not path.is_file():
        names = ", ".join(f"{k}[:WEIGHTS]" for k in PRETRAINED)
        raise FileNotFoundError(f"model {text!r} is neither a pretrained name ({names}) nor a file")
    if path.suffix == ".json":
        return read_model_spec(path, trust_calculator=trust_calculator)
    from dualbench.models.checkpoints import checkpoint_kind

    try:
        kind = checkpoint_kind(path)
    except ValueError:
        kind = "chgnet"  # not readable as either: CHGNet's loader refuses it with the reason
    return ModelSpec(kind=kind, weights=PRETRAINED[kind], checkpoint=str(path.resolve()))
