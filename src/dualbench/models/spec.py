"""What a model is (:class:`ModelSpec`), its ``model.json``, and the MODEL argument.

Every model of the sweep is described by a small ``model.json`` beside its weights::

    {"kind": "chgnet" | "sevennet" | "ase", "weights": "0.3.0", "modal": null,
     "checkpoint": "checkpoint.pth.tar" | null, "checkpoint_sha256": "…" | null,
     "calculator": null, "options": {}, "n_frames": 10, "seed": 0}

``checkpoint`` is relative to the ``model.json``; null means the pretrained weights that
ship inside the model's package (loaded offline).  A checkpoint this workflow wrote is
recorded with its SHA-256 and refused when the file no longer matches it.
"""

from __future__ import annotations

import hashlib
import json
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


def read_model_spec(path: str | Path) -> ModelSpec:
    """Read a ``model.json``; a checkpoint path is made absolute against its folder and
    checked against its recorded SHA-256."""
    path = Path(path)
    data: dict[str, Any] = json.loads(path.read_text())
    try:
        spec = ModelSpec(**data)
    except TypeError as err:
        raise ValueError(f"{path}: not a model spec ({err})") from None
    if spec.kind not in KINDS:
        raise ValueError(f"{path}: kind {spec.kind!r} is not one of {KINDS}")
    if spec.checkpoint is not None:
        spec.checkpoint = str((path.parent / spec.checkpoint).resolve())
        if not Path(spec.checkpoint).is_file():
            raise FileNotFoundError(f"{path}: checkpoint {spec.checkpoint} does not exist")
        if spec.checkpoint_sha256 is not None:
            actual = sha256_file(spec.checkpoint)
            if actual != spec.checkpoint_sha256:
                raise ValueError(
                    f"{path}: checkpoint {spec.checkpoint} has SHA-256 {actual[:16]}…, not the"
                    f" {spec.checkpoint_sha256[:16]}… recorded when it was written; refusing"
                    " to load a changed file"
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


def parse_model_arg(model: str | Path | ModelSpec) -> ModelSpec:
    """A MODEL argument as a spec.

    ``chgnet`` (0.3.0), ``chgnet:0.2.0``, ``chgnet:r2scan``, ``sevennet`` (SevenNet-0 of
    11 Jul 2024), ``sevennet:NAME`` (``7net-0_22May2024``, ``7net-l3i5``, ``7net-mf-0``,
    ``7net-mf-0@R2SCAN``), a ``model.json``, or a checkpoint that the fine-tuning wrote
    (the ``model.json`` beside it is used when there is one, else the file is read with
    PyTorch's restricted unpickler and its kind recognised from its keys).
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
        return read_model_spec(path)
    beside = path.parent / "model.json"
    if beside.is_file():
        spec = read_model_spec(beside)
        if spec.checkpoint and Path(spec.checkpoint) == path.resolve():
            return spec
    from dualbench.models.checkpoints import checkpoint_kind

    try:
        kind = checkpoint_kind(path)
    except ValueError:
        kind = "chgnet"  # not readable as either: CHGNet's loader refuses it with the reason
    return ModelSpec(kind=kind, weights=PRETRAINED[kind], checkpoint=str(path.resolve()))
