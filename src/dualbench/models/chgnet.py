"""The CHGNet backend: the pretrained weights shipped in the chgnet package (0.3.0 and 0.2.0
trained on MPtrj PBE(+U), r2scan transfer-learned on MP-r2SCAN), or a fine-tuned checkpoint
(read with the restricted unpickler); fine-tuned by :mod:`dualbench.models.chgnet_train`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from dualbench.data import has_stress
from dualbench.models import chgnet_train
from dualbench.models.backend import Backend, check_shipped, log_loaded
from dualbench.models.checkpoints import safe_load
from dualbench.models.device import resolve_device
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneResult, FinetuneSettings

log = logging.getLogger(__name__)

#: Pretrained weights shipped inside the chgnet package; the first is the default.
CHGNET_WEIGHTS = ("0.3.0", "0.2.0", "r2scan")
#: Level of theory of each shipped weights' training data (README, summary).
TRAINED_ON = {
    "0.3.0": "PBE(+U), MPtrj",
    "0.2.0": "PBE(+U), MPtrj",
    "r2scan": "r2SCAN, MP-r2SCAN (transfer-learned from 0.3.0)",
}


def is_chgnet(state: Any) -> bool:
    model = state.get("model") if isinstance(state, dict) else None
    return isinstance(model, dict) and {"model_args", "state_dict"} <= set(model)


def read_checkpoint(path: str | Path, data: bytes | None = None) -> dict[str, Any]:
    """The ``model`` dict ({model_args, state_dict}) of a CHGNet checkpoint, read safely
    (from ``data``, the file's contents, when given).

    Anything that is not a CHGNet checkpoint is refused with a message naming the file.
    """
    state = safe_load(path, "CHGNet checkpoint", data)
    if not is_chgnet(state):
        raise ValueError(
            f"{path}: not a CHGNet checkpoint (expected a dict with model.model_args and"
            " model.state_dict)"
        )
    return state["model"]


def load_chgnet(spec: ModelSpec, device: str):
    """The CHGNet model of ``spec`` on ``device`` (eval mode)."""
    from chgnet.model import CHGNet

    if spec.checkpoint is None:
        if spec.weights not in CHGNET_WEIGHTS:
            # CHGNet.load would say only "Unknown model_name"
            raise ValueError(
                f"chgnet has no weights {spec.weights!r}: the installed chgnet package ships"
                f" {', '.join(CHGNET_WEIGHTS)} (nothing is downloaded); a fine-tuned model is"
                " given by its checkpoint or model.json"
            )
        net = CHGNet.load(model_name=spec.weights, use_device=device, verbose=False)
    else:
        net = CHGNet.from_dict(read_checkpoint(spec.checkpoint, spec.checkpoint_bytes()))
        net = net.to(device)
    net.eval()
    return net


def predictions(net, frames: Sequence[Atoms], with_stress: bool | None = None) -> list[dict]:
    """Predictions of a loaded CHGNet in :meth:`Backend.predict`'s form (stresses when
    ``with_stress``, by default when every frame has one)."""
    if with_stress is None:
        with_stress = has_stress(frames)
    return chgnet_train.predict(net, frames, task="efs" if with_stress else "ef")


class CHGNetBackend(Backend):
    kind = "chgnet"
    conda_env = "envs/ml.yaml"
    default_weights = CHGNET_WEIGHTS[0]
    trainable = True

    def pretrained_spec(self, weights: str) -> ModelSpec:
        if weights not in CHGNET_WEIGHTS:
            raise ValueError(
                f"chgnet has no shipped weights {weights!r}; known: {', '.join(CHGNET_WEIGHTS)}"
            )
        return ModelSpec(kind=self.kind, weights=weights)

    def owns_checkpoint(self, state: Any) -> bool:
        return is_chgnet(state)

    def load(self, spec: ModelSpec, device: str):
        net = load_chgnet(spec, device)
        log_loaded(spec, device)
        return net

    def calculator(self, spec: ModelSpec, device: str):
        """CHGNet's calculator, with the stress on demand
        (:class:`dualbench.models.chgnet_calculator.StressOnDemandCalculator`)."""
        from dualbench.models.chgnet_calculator import StressOnDemandCalculator

        return StressOnDemandCalculator(self.load(spec, device), use_device=device)

    def predict(self, spec: ModelSpec, frames: Sequence[Atoms], device: str,
                with_stress: bool) -> list[dict[str, Any]]:
        """CHGNet's batched predictor (one frame per batch), not its calculator."""
        return predictions(self.load(spec, device), frames, with_stress)

    def finetune(self, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings,
                 seed: int, checkpoint: Path) -> FinetuneResult:
        base = self.load(spec, resolve_device(settings.device))
        result = chgnet_train.finetune(base, frames, settings, seed)
        chgnet_train.save_checkpoint(result.model, checkpoint)
        return result

    def describe(self, spec: ModelSpec) -> dict[str, Any]:
        return {"trained_on": TRAINED_ON.get(spec.weights)}

    def check_config(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        problem = check_shipped(self.kind, entry, CHGNET_WEIGHTS)
        if problem is None and entry.get("modal") is not None:
            return "modal", "only sevennet 7net-mf-0 has modalities (PBE, R2SCAN)"
        return problem


BACKEND = CHGNetBackend()
