"""The model of an MD run: its ASE calculator, loaded quietly, and its fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from dataclasses import asdict
from typing import Any

log = logging.getLogger("dualbench.md")


def make_quiet_calculator(model: Any, device: str = "auto"):
    """:func:`dualbench.models.make_calculator` with CHGNet's stdout chatter sent to the log."""
    from dualbench.models import make_calculator

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        calc = make_calculator(model, device)
    for line in buffer.getvalue().splitlines():
        log.debug("model: %s", line)
    return calc


def model_fingerprint(model: Any) -> str:
    """A short hash of what a MODEL argument loads (spec and checkpoint file contents)."""
    from dualbench.models import parse_model_arg

    spec = asdict(parse_model_arg(model))
    checkpoint = spec.pop("checkpoint", None)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    if checkpoint:
        with open(checkpoint, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
