"""SevenNet: the checkpoints shipped in the sevenn wheel (SevenNet-0 of 11 Jul and of
22 May 2024, SevenNet-l3i5, SevenNet-MF-0 with its PBE or r2SCAN modality), or one that
the fine-tuning wrote.  Every checkpoint is read with the restricted unpickler and built
with SevenNet's own model builder."""

from __future__ import annotations

import logging
from pathlib import Path

from dualbench.models.checkpoints import read_sevennet_checkpoint
from dualbench.models.spec import SEVENNET_WEIGHTS, ModelSpec

log = logging.getLogger(__name__)


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


def checkpoint_file(spec: ModelSpec) -> Path:
    return Path(spec.checkpoint) if spec.checkpoint else pretrained_path(spec.weights)


def sevennet_checkpoint(path: str | Path):
    """A ``sevenn.checkpoint.SevenNetCheckpoint`` filled from the safely read dict (its own
    loader would unpickle the file with ``weights_only=False``)."""
    from sevenn.checkpoint import SevenNetCheckpoint, _config_cp_routine

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
    cp = sevennet_checkpoint(checkpoint_file(spec))
    model = cp.build_model()
    modal_map = getattr(model, "modal_map", None) or {}
    if modal_map and spec.modal not in modal_map:
        raise ValueError(modality_error(spec.weights, spec.modal, sorted(modal_map)))
    if not modal_map and spec.modal:
        raise ValueError(f"sevennet {spec.weights} has no modalities (got modal {spec.modal!r})")
    model.to(device)
    model.eval()
    return model


def sevennet_calculator(model, spec: ModelSpec, device: str):
    """SevenNet's ASE calculator around a loaded model."""
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator(model=model, file_type="model_instance", device=device,
                              modal=spec.modal)
