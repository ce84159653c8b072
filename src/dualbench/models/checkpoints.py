"""Reading checkpoints without running code from them.

``torch.load(weights_only=True)`` unpickles only tensors, plain containers and the globals
allowed here (numpy's array reconstruction, which SevenNet checkpoints use for their
per-element shift and scale), so a file with a pickled code payload is refused instead of
run.  CHGNet's ``from_file`` and SevenNet's ``SevenNetCheckpoint`` would load with
``weights_only=False``; this module loads the dict safely and hands it to their builders.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


def _numpy_globals() -> list[Any]:
    import numpy as np
    from numpy._core.multiarray import _reconstruct

    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),
        _reconstruct,
        np.ndarray,
        np.dtype,
        *dtypes,
    ]


def _first_line(err: BaseException) -> str:
    """The first sentence of an error's first line (torch appends paragraphs of advice)."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    line = text.splitlines()[0]
    return line.split(". ")[0].rstrip(".")


def safe_load(path: str | Path, what: str = "checkpoint") -> Any:
    """The object in a torch checkpoint file, read with the restricted unpickler; ``what``
    names the expected content in the error of a file that holds more than data.

    A file that cannot be read as a PyTorch archive at all (truncated, empty, corrupt) is
    refused as such, naming no model kind: nothing of it was read, so it is neither a
    CHGNet nor a SevenNet checkpoint as far as anyone can tell.
    """
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: not a loadable {what}; only tensors, numpy arrays and plain"
            f" containers are read from a checkpoint, nothing that runs code ({first})"
        ) from None
    except (RuntimeError, EOFError) as err:
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        state = "empty" if size == 0 else f"truncated or corrupt ({size} bytes)"
        raise ValueError(
            f"{path}: unreadable: the file is {state}, not a complete PyTorch checkpoint"
            f" ({_first_line(err)}): torch.load (the restricted unpickler) cannot read it,"
            " so no CHGNet or SevenNet model can be loaded from it; write or copy the"
            " checkpoint again"
        ) from None
    except OSError as err:
        raise ValueError(f"{path}: cannot be read as a checkpoint ({err})") from None


def is_chgnet(state: Any) -> bool:
    model = state.get("model") if isinstance(state, dict) else None
    return isinstance(model, dict) and {"model_args", "state_dict"} <= set(model)


def is_sevennet(state: Any) -> bool:
    return isinstance(state, dict) and {"config", "model_state_dict"} <= set(state)


def checkpoint_kind(path: str | Path) -> str:
    """``chgnet`` or ``sevennet``, from the keys of a checkpoint read safely."""
    state = safe_load(path)
    if is_chgnet(state):
        return "chgnet"
    if is_sevennet(state):
        return "sevennet"
    raise ValueError(
        f"{path}: neither a CHGNet checkpoint (model.model_args, model.state_dict) nor a"
        " SevenNet one (config, model_state_dict)"
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The ``model`` dict ({model_args, state_dict}) of a CHGNet checkpoint, read safely.

    Anything that is not a CHGNet checkpoint is refused with a message naming the file.
    """
    state = safe_load(path, "CHGNet checkpoint")
    if not is_chgnet(state):
        raise ValueError(
            f"{path}: not a CHGNet checkpoint (expected a dict with model.model_args and"
            " model.state_dict)"
        )
    return state["model"]


def read_sevennet_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict ({config, model_state_dict, …}) of a SevenNet checkpoint, read safely."""
    state = safe_load(path, "SevenNet checkpoint")
    if not is_sevennet(state):
        raise ValueError(
            f"{path}: not a SevenNet checkpoint (expected a dict with config and"
            " model_state_dict)"
        )
    return state
