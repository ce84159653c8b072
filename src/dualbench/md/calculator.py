"""The model of an MD run as an ASE calculator, loaded quietly (its fingerprint is the
spec's own, :meth:`dualbench.models.spec.ModelSpec.fingerprint`)."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

log = logging.getLogger("dualbench.md")


def make_quiet_calculator(model: Any, device: str = "auto"):
    """:func:`dualbench.models.resolve.make_calculator` with the model's stdout chatter
    (CHGNet's) sent to the log."""
    from dualbench.models.resolve import make_calculator

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        calc = make_calculator(model, device)
    for line in buffer.getvalue().splitlines():
        log.debug("model: %s", line)
    return calc
