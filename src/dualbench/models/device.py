"""Where a model runs: the torch device and CPU threads."""

from __future__ import annotations


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
