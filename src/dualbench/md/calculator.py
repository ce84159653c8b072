"""The model of an MD run as an ASE calculator, loaded quietly (its fingerprint is the
spec's own, :meth:`dualbench.models.spec.ModelSpec.fingerprint`)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def stress_on_demand(calc: Any) -> Iterator[Callable[[bool], None]]:
    """For a calculator that computes the stress on demand (one with ``stress_wanted``,
    :class:`dualbench.models.chgnet_calculator.StressOnDemandCalculator`): a function
    ``ask(wanted)`` that says whether its next evaluation needs the stress; on exit it is
    back to computing it on every call. Any other calculator computes it anyway."""
    if not hasattr(calc, "stress_wanted"):
        yield lambda wanted: None
        return
    before = calc.stress_wanted

    def ask(wanted: bool) -> None:
        calc.stress_wanted = wanted

    try:
        yield ask
    finally:
        calc.stress_wanted = before
