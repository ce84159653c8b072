"""Model specs and loading: the vanilla pretrained uMLIP or a fine-tuned checkpoint.

Every model of the sweep is described by a small ``model.json`` beside its weights::

    {"kind": "chgnet", "weights": "0.3.0", "checkpoint": "checkpoint.pth.tar" | null,
     "n_frames": 10, "seed": 0}

``checkpoint`` is relative to the ``model.json``; null means the pretrained weights that
ship inside the chgnet package (loaded offline).  Every stage loads models through
:func:`load_model`, so a MODEL argument may be ``chgnet`` (pretrained 0.3.0),
``chgnet:0.2.0``, a ``model.json`` or a ``.pth.tar`` checkpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dualbench.io import write_json

log = logging.getLogger(__name__)

PRETRAINED = {"chgnet": "0.3.0"}


@dataclass
class ModelSpec:
    """What a model is: family, base weights, and the fine-tuned checkpoint if any."""

    kind: str = "chgnet"
    weights: str = "0.3.0"
    checkpoint: str | None = None
    n_frames: int = 0
    seed: int | None = None


def write_model_spec(path: str | Path, spec: ModelSpec) -> None:
    """Write ``model.json`` atomically."""
    write_json(path, asdict(spec))


def read_model_spec(path: str | Path) -> ModelSpec:
    """Read a ``model.json``; a checkpoint path is made absolute against its folder."""
    path = Path(path)
    data: dict[str, Any] = json.loads(path.read_text())
    try:
        spec = ModelSpec(**data)
    except TypeError as err:
        raise ValueError(f"{path}: not a model spec ({err})") from None
    if spec.checkpoint is not None:
        spec.checkpoint = str((path.parent / spec.checkpoint).resolve())
        if not Path(spec.checkpoint).is_file():
            raise FileNotFoundError(f"{path}: checkpoint {spec.checkpoint} does not exist")
    return spec


def parse_model_arg(model: str | Path | ModelSpec) -> ModelSpec:
    """A MODEL argument (``chgnet``, ``chgnet:0.2.0``, a model.json or a .pth.tar) as a spec."""
    if isinstance(model, ModelSpec):
        return model
    text = str(model)
    family, _, weights = text.partition(":")
    if family in PRETRAINED and not Path(text).exists():
        return ModelSpec(kind=family, weights=weights or PRETRAINED[family])
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"model {text!r} is neither a pretrained name ({', '.join(PRETRAINED)}) nor a file"
        )
    if path.suffix == ".json":
        return read_model_spec(path)
    return ModelSpec(kind="chgnet", checkpoint=str(path.resolve()))


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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The ``model`` dict ({model_args, state_dict}) of a CHGNet checkpoint, read safely.

    ``torch.load(weights_only=True)`` unpickles only tensors and plain containers, so a
    file with a pickled code payload is refused instead of run (CHGNet.from_file would run
    it: it loads with ``weights_only=False``).  Anything that is not a CHGNet checkpoint is
    refused with a message naming the file.
    """
    import pickle

    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: not a loadable CHGNet checkpoint; only tensors and plain containers are"
            f" read from a checkpoint, nothing that runs code ({first})"
        ) from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not {"model_args", "state_dict"} <= set(model):
        raise ValueError(
            f"{path}: not a CHGNet checkpoint (expected a dict with model.model_args and"
            " model.state_dict)"
        )
    return model


def load_model(model: str | Path | ModelSpec, device: str = "auto"):
    """Load a CHGNet model (pretrained or fine-tuned) onto ``device``; returns the torch model."""
    from chgnet.model import CHGNet

    spec = parse_model_arg(model)
    if spec.kind != "chgnet":
        raise ValueError(f"unknown model kind {spec.kind!r}")
    dev = resolve_device(device)
    if spec.checkpoint is None:
        net = CHGNet.load(model_name=spec.weights, use_device=dev, verbose=False)
    else:
        net = CHGNet.from_dict(read_checkpoint(spec.checkpoint)).to(dev)
    net.eval()
    log.info(
        "loaded %s %s%s on %s",
        spec.kind,
        spec.weights,
        f" fine-tuned ({spec.checkpoint})" if spec.checkpoint else " (pretrained)",
        dev,
    )
    return net


def make_calculator(model: str | Path | ModelSpec, device: str = "auto"):
    """An ASE calculator of the model (energy eV, forces eV/Å, stress eV/Å^3)."""
    from chgnet.model.dynamics import CHGNetCalculator

    dev = resolve_device(device)
    return CHGNetCalculator(load_model(model, dev), use_device=dev)
