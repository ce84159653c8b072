"""What a model is (:class:`ModelSpec`, with its checkpoint read and hashed once) and its
``model.json``; reading one and the MODEL argument are :mod:`dualbench.models.resolve`.

Every model of the sweep is described by a small ``model.json`` beside its weights::

    {"kind": "chgnet" | "sevennet" | "ase", "weights": "0.3.0", "modal": null,
     "checkpoint": "checkpoint.pth.tar" | null, "checkpoint_sha256": "…" | null,
     "calculator": null, "options": {}, "n_frames": 10, "seed": 0}

``checkpoint`` is relative to the ``model.json``; null means the pretrained weights that
ship inside the model's package (loaded offline).  A checkpoint this workflow wrote is
recorded with its SHA-256 and refused when the file no longer matches it.

A model file is data, never code.  What names code to import and call (``kind: ase``,
its ``calculator``) is trusted only from the study's config (the ``models:`` section, see
:func:`dualbench.models.resolve.trust_config_models`) and from an explicit command-line flag
(``--trust-ase-model``); :func:`dualbench.models.resolve.read_model_spec` refuses it in
a file otherwise.  A ``model.json`` that names a checkpoint must pin it by
``checkpoint_sha256``, and a checkpoint given as the model is read on its own, never
with a file found beside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dualbench.io import write_json


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
        """A short name for logs: ``chgnet 0.3.0``, ``sevennet 7net-mf-0 (PBE)``,
        ``ase ase.calculators.emt:EMT`` (a model named by its calculator), …"""
        if self.calculator:
            return f"{self.kind} {self.calculator}"
        modal = f" ({self.modal})" if self.modal else ""
        return f"{self.kind} {self.weights}{modal}"

    def checkpoint_bytes(self) -> bytes:
        """The contents of the checkpoint file, read once per spec: its SHA-256, the
        fingerprint and the model's weights all come from these same bytes (a file changed
        on disk after it was checked is not what gets loaded)."""
        if self.checkpoint is None:
            raise ValueError(f"model {self.label()} has no checkpoint file")
        cached = self.__dict__.get("_checkpoint_read")
        if cached is None or cached[0] != self.checkpoint:
            cached = (self.checkpoint, Path(self.checkpoint).read_bytes())
            self.__dict__["_checkpoint_read"] = cached
        return cached[1]

    def checkpoint_digest(self) -> str:
        """SHA-256 (hex) of the checkpoint file's contents, computed once per spec."""
        data = self.checkpoint_bytes()
        cached = self.__dict__.get("_checkpoint_digest")
        if cached is None or cached[0] is not data:
            cached = (data, hashlib.sha256(data).hexdigest())
            self.__dict__["_checkpoint_digest"] = cached
        return cached[1]

    def fingerprint(self) -> str:
        """A short hash of what this spec loads: its fields but the checkpoint's path, and
        the checkpoint's contents (an MD run resumes only a checkpoint of the same model)."""
        fields = asdict(self)
        fields.pop("checkpoint", None)
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
        if self.checkpoint:
            digest.update(self.checkpoint_bytes())
        return digest.hexdigest()[:16]


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
