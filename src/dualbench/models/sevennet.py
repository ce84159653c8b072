"""The SevenNet backend: the checkpoints shipped in the sevenn wheel (SevenNet-0 of 11 Jul and of
22 May 2024, SevenNet-l3i5, SevenNet-MF-0 with its PBE or r2SCAN modality), or one that
the fine-tuning wrote.  Every checkpoint is read with the restricted unpickler and built
with SevenNet's own model builder; fine-tuned by :mod:`dualbench.models.sevennet_train`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from dualbench.models import sevennet_train
from dualbench.models.backend import Backend, check_shipped, log_loaded
from dualbench.models.checkpoints import safe_load
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneResult, FinetuneSettings

log = logging.getLogger(__name__)

#: SevenNet checkpoints shipped in the sevenn wheel: name -> (sevenn._const attribute, level
#: of theory of its training data).  SevenNet-MF-0 has a PBE and an r2SCAN modality.
SEVENNET_WEIGHTS = {
    "7net-0": ("SEVENNET_0_11Jul2024", "PBE(+U), MPtrj"),
    "7net-0_22May2024": ("SEVENNET_0_22May2024", "PBE(+U), MPtrj"),
    "7net-mf-0": ("SEVENNET_MF_0", "PBE(+U) MPtrj and r2SCAN MP-r2SCAN, one modality each"),
    "7net-l3i5": ("SEVENNET_l3i5", "PBE(+U), MPtrj"),
}
#: The shipped checkpoint with modalities, and the one a spec without ``modal`` takes.
MULTI_FIDELITY, DEFAULT_MODAL = "7net-mf-0", "PBE"


def is_sevennet(state: Any) -> bool:
    return isinstance(state, dict) and {"config", "model_state_dict"} <= set(state)


def read_sevennet_checkpoint(path: str | Path, data: bytes | None = None) -> dict[str, Any]:
    """The dict ({config, model_state_dict, …}) of a SevenNet checkpoint, read safely (from
    ``data``, the file's contents, when given)."""
    state = safe_load(path, "SevenNet checkpoint", data)
    if not is_sevennet(state):
        raise ValueError(
            f"{path}: not a SevenNet checkpoint (expected a dict with config and"
            " model_state_dict)"
        )
    return state


def pretrained_path(weights: str) -> Path:
    """The file of a shipped SevenNet checkpoint; refused when the wheel lacks it (nothing
    is downloaded)."""
    import sevenn._const as const

    if weights not in SEVENNET_WEIGHTS:
        known = list(SEVENNET_WEIGHTS)
        raise ValueError(f"sevennet has no shipped weights {weights!r}; known: {known}")
    path = Path(getattr(const, SEVENNET_WEIGHTS[weights][0]))
    if not path.is_file():
        raise FileNotFoundError(
            f"sevennet {weights}: {path} is not in the installed sevenn package (this workflow"
            " never downloads weights at run time)"
        )
    return path


def sevennet_checkpoint(spec: ModelSpec):
    """A ``sevenn.checkpoint.SevenNetCheckpoint`` of ``spec`` (its fine-tuned checkpoint, as
    read once by the spec, or the shipped one) filled from the safely read dict (its own
    loader would unpickle the file with ``weights_only=False``)."""
    from sevenn.checkpoint import SevenNetCheckpoint, _config_cp_routine

    if spec.checkpoint:
        path, state = Path(spec.checkpoint), read_sevennet_checkpoint(spec.checkpoint,
                                                                spec.checkpoint_bytes())
    else:
        path = pretrained_path(spec.weights)
        state = read_sevennet_checkpoint(path)
    cp = SevenNetCheckpoint(path)
    cp._config_original = state["config"]
    cp._model_state_dict = state["model_state_dict"]
    cp._optimizer_state_dict = state.get("optimizer_state_dict") or {}
    cp._scheduler_state_dict = state.get("scheduler_state_dict") or {}
    cp._epoch = state.get("epoch")
    cp._time = state.get("time", "Not found")
    cp._hash = state.get("hash", "Not found")
    cp._config = _config_cp_routine(state["config"])
    cp._loaded = True
    return cp


def modality_error(weights: str, modal: str | None, valid: list[str]) -> str:
    """Why a modality is refused, for a config entry and a command line alike."""
    what = "needs a modality" if modal is None else f"has no modality {modal!r}"
    return (
        f"sevennet {weights} {what}: its modalities are {', '.join(valid)} (case-sensitive;"
        f" `modal: {valid[0]}` in a config's model entry, sevennet:{weights}@{valid[0]} as a"
        " MODEL argument)"
    )


def load_sevennet(spec: ModelSpec, device: str):
    """The SevenNet model (``AtomGraphSequential``) of ``spec`` on ``device``, eval mode."""
    cp = sevennet_checkpoint(spec)
    model = cp.build_model()
    modal_map = getattr(model, "modal_map", None) or {}
    if modal_map and spec.modal not in modal_map:
        raise ValueError(modality_error(spec.weights, spec.modal, sorted(modal_map)))
    if not modal_map and spec.modal:
        raise ValueError(f"sevennet {spec.weights} has no modalities (got modal {spec.modal!r})")
    model.to(device)
    model.eval()
    return model


class SevenNetBackend(Backend):
    kind = "sevennet"
    conda_env = "envs/sevennet.yaml"
    default_weights = "7net-0"
    trainable = True

    def pretrained_spec(self, weights: str) -> ModelSpec:
        weights, _, modal = weights.partition("@")
        if weights not in SEVENNET_WEIGHTS:
            known = ", ".join(SEVENNET_WEIGHTS)
            raise ValueError(f"sevennet has no shipped weights {weights!r}; known: {known}")
        if weights == MULTI_FIDELITY:
            return ModelSpec(kind=self.kind, weights=weights, modal=modal or DEFAULT_MODAL)
        if modal:
            raise ValueError(f"sevennet:{weights} has no modalities (got @{modal})")
        return ModelSpec(kind=self.kind, weights=weights)

    def owns_checkpoint(self, state: Any) -> bool:
        return is_sevennet(state)

    def load(self, spec: ModelSpec, device: str):
        model = load_sevennet(spec, device)
        log_loaded(spec, device)
        return model

    def calculator(self, spec: ModelSpec, device: str):
        """SevenNet's ASE calculator around the loaded model."""
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(model=self.load(spec, device), file_type="model_instance",
                                  device=device, modal=spec.modal)

    def finetune(self, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings,
                 seed: int, checkpoint: Path) -> FinetuneResult:
        result, state = sevennet_train.finetune_sevennet(sevennet_checkpoint(spec), spec,
                                                         frames, settings, seed)
        sevennet_train.save_sevennet_checkpoint(state, checkpoint)
        return result

    def describe(self, spec: ModelSpec) -> dict[str, Any]:
        shipped = SEVENNET_WEIGHTS.get(spec.weights)
        return {"trained_on": shipped[1] if shipped else None}

    def check_config(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        problem = check_shipped(self.kind, entry, tuple(SEVENNET_WEIGHTS))
        if problem is None and entry.get("modal") is not None \
                and entry.get("weights") != MULTI_FIDELITY:
            return "modal", "only sevennet 7net-mf-0 has modalities (PBE, R2SCAN)"
        return problem

    def config_defaults(self, entry: dict[str, Any]) -> None:
        super().config_defaults(entry)
        if entry.get("weights") == MULTI_FIDELITY and entry.get("modal") is None:
            entry["modal"] = DEFAULT_MODAL


BACKEND = SevenNetBackend()
