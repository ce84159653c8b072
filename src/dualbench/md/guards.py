"""The guards every MD step is checked by: a run that left the physical regime stops.

:func:`check_state` raises :class:`MDGuardError` (with the step and the reason) for
non-finite positions, momenta, energy or forces, atoms closer than ``min_distance_A``
(Å), or a kinetic temperature (K) above ``max_temperature_factor`` times the target (or
the target plus ``min_runaway_excess_K``, when that is higher: cold runs).
Its two parts serve the path-integral run (:mod:`dualbench.md.pimd`) on their own:
:func:`check_configuration` (one bead) and :func:`check_temperature` (i-PI's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.md.settings import MDSettings


class MDGuardError(RuntimeError):
    """The MD left the physical regime (non-finite forces, atoms too close, runaway T).

    ``step`` is the step at which the check failed and ``reason`` says which check.
    """

    def __init__(self, step: int, reason: str):
        self.step = step
        self.reason = reason
        super().__init__(f"MD stopped at step {step}: {reason}")


def check_state(atoms: Atoms, step: int, settings: MDSettings) -> None:
    """Raise :class:`MDGuardError` when the state at ``step`` is not physical.

    Checks, in order: finite positions and momenta, finite energy and forces (of the
    attached calculator's last results), no pair closer than ``min_distance_A`` (minimum
    image), and a kinetic temperature below ``max_temperature_factor`` times the target.
    """
    if not np.isfinite(atoms.get_momenta()).all():
        raise MDGuardError(step, "non-finite positions or momenta")
    results = atoms.calc.results if atoms.calc is not None else {}
    check_configuration(atoms, results, step, settings)
    check_temperature(atoms.get_temperature(), step, settings)


def check_configuration(
    atoms: Atoms, results: Mapping[str, Any], step: int, settings: MDSettings,
    distances: bool = True,
) -> None:
    """The checks of one configuration (a classical state or one path-integral bead):
    finite positions, finite energy (eV) and forces (eV/Å) in ``results`` when there,
    and, with ``distances``, no pair closer than ``min_distance_A`` (minimum image)."""
    from ase.neighborlist import neighbor_list

    if not np.isfinite(atoms.positions).all():
        raise MDGuardError(step, "non-finite positions or momenta")
    forces = results.get("forces")
    if forces is not None and not np.isfinite(forces).all():
        bad = np.unique(np.nonzero(~np.isfinite(forces))[0])
        raise MDGuardError(step, f"non-finite forces on atom(s) {bad[:10].tolist()}")
    energy = results.get("energy")
    if energy is not None and not np.isfinite(energy):
        raise MDGuardError(step, f"non-finite potential energy ({energy})")
    if not distances:
        return
    i, j, d = neighbor_list("ijd", atoms, settings.min_distance_A)
    if len(d):
        k = int(np.argmin(d))
        raise MDGuardError(
            step,
            f"atoms {int(i[k])} and {int(j[k])} are {d[k]:.3f} Å apart, closer than"
            f" min_distance_A = {settings.min_distance_A} Å",
        )


def check_temperature(temperature_K: float, step: int, settings: MDSettings) -> None:
    """The runaway check: a kinetic temperature (K) above the larger of
    ``max_temperature_factor`` times the target and the target plus
    ``min_runaway_excess_K`` (or not finite) stops the run.

    The excess keeps a cold run going that relaxes into its model's own minimum or into a
    real low-temperature distortion (SrTiO3's octahedral tilts below 105 K): that releases
    a few meV/atom, about 15 K of kinetic temperature per meV/atom with equipartition,
    which 3 x a 10 K target (30 K) would take for a runaway.  A hole in the potential
    releases eV.  From a 100 K target up (with the defaults) the factor decides.
    """
    factor_limit = settings.max_temperature_factor * settings.temperature_K
    excess_limit = settings.temperature_K + settings.min_runaway_excess_K
    if not math.isfinite(temperature_K) or temperature_K > max(factor_limit, excess_limit):
        limit = (f"{settings.max_temperature_factor} x the target {settings.temperature_K} K"
                 if factor_limit >= excess_limit else
                 f"the target {settings.temperature_K} K + {settings.min_runaway_excess_K} K")
        raise MDGuardError(step, f"temperature {temperature_K:.1f} K exceeds {limit} (runaway)")
