"""Reading checkpoints without running code from them.

``torch.load(weights_only=True)`` unpickles only tensors, plain containers and the globals
allowed here (numpy's array reconstruction, which SevenNet checkpoints use for their
per-element shift and scale), so a file with a pickled code payload is refused instead of
run.  CHGNet's ``from_file`` and SevenNet's ``SevenNetCheckpoint`` would load with
``weights_only=False``; this module loads the dict safely and each backend
(:mod:`dualbench.models.chgnet`, :mod:`dualbench.models.sevennet`) checks its shape and
hands it to its builder.
"""

from __future__ import annotations

import io
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


def safe_load(path: str | Path, what: str = "checkpoint", data: bytes | None = None) -> Any:
    """The object in a torch checkpoint file, read with the restricted unpickler; ``what``
    names the expected content in the error of a file that holds more than data.  With
    ``data`` (the file's contents, read once by the spec) the file is not read again.

    A file that cannot be read as a PyTorch archive at all (truncated, empty, corrupt) is
    refused as such, naming no model kind: nothing of it was read, so it is neither a
    CHGNet nor a SevenNet checkpoint as far as anyone can tell.
    """
    import torch

    source = io.BytesIO(data) if data is not None else str(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: not a loadable {what}; only tensors, numpy arrays and plain"
            f" containers are read from a checkpoint, nothing that runs code ({first})"
        ) from None
    except (RuntimeError, EOFError) as err:
        if data is not None:
            size = len(data)
        else:
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
