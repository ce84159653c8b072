"""An exact oracle for path-integral MD: the Einstein crystal, every atom tethered to its
own lattice site by an isotropic harmonic spring.

:class:`EinsteinCalculator` (ASE): energy ``k/2 sum |r - r0|^2`` (eV), forces
``-k (r - r0)`` (eV/Å), with ``r0`` the sites (Å) and ``k`` (eV/Å^2) the stiffness; no
periodic images (each atom sees only its own site).  :func:`einstein_u2_A2` is the exact
mean-square displacement per Cartesian direction (Å^2) of such an atom,
``hbar / (2 m omega) coth(hbar omega / (2 kB T))`` (quantum) or ``kB T / (m omega^2)``
(classical), with ``omega = sqrt(k / m)``; :func:`stiffness_for` gives ``k`` for an
Einstein temperature ``hbar omega / kB``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

_HBAR_eV_s = 6.582119569e-16
_KB_eV_K = 8.617333262e-5
_AMU_kg = 1.66053906660e-27
_eV_J = 1.602176634e-19


def _omega_per_s(stiffness_eV_A2: float, mass_amu: float) -> float:
    """omega (rad/s) of a spring of k eV/Å^2 and a mass of m amu."""
    return math.sqrt(stiffness_eV_A2 * _eV_J * 1e20 / (mass_amu * _AMU_kg))


def stiffness_for(einstein_temperature_K: float, mass_amu: float) -> float:
    """The stiffness k (eV/Å^2) whose hbar omega / kB is ``einstein_temperature_K``."""
    omega = _KB_eV_K * einstein_temperature_K / _HBAR_eV_s
    return mass_amu * _AMU_kg * omega**2 / (_eV_J * 1e20)


def einstein_u2_A2(
    stiffness_eV_A2: float, mass_amu: float, temperature_K: float, quantum: bool = True
) -> float:
    """Exact mean-square displacement (Å^2) per Cartesian direction of a harmonic atom."""
    omega = _omega_per_s(stiffness_eV_A2, mass_amu)
    classical = _KB_eV_K * temperature_K / stiffness_eV_A2
    if not quantum:
        return classical
    x = _HBAR_eV_s * omega / (_KB_eV_K * temperature_K)
    return classical * (x / 2) / math.tanh(x / 2)


class EinsteinCalculator(Calculator):
    """Each atom on a harmonic spring of ``stiffness_eV_A2`` to its site ``sites_A``."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, sites_A: np.ndarray, stiffness_eV_A2: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.sites_A = np.array(sites_A, dtype=float)
        self.stiffness_eV_A2 = float(stiffness_eV_A2)

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        displacement = self.atoms.positions - self.sites_A
        energy = 0.5 * self.stiffness_eV_A2 * float(np.sum(displacement**2))
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": -self.stiffness_eV_A2 * displacement}
