"""The MD arm's integrators: NVT (Langevin or Bussi) and NPT (Langevin-Hoover barostat).

NVT (``md.ensemble: nvt``, the default) keeps the cell of the starting structure, the
experimental lattice: ASE's :class:`~ase.md.langevin.Langevin` (friction
``friction_per_fs``) or :class:`~ase.md.bussi.Bussi` (time constant ``taut_fs``).

NPT (``md.ensemble: npt``) lets the volume find the model's own lattice at the external
pressure ``pressure_GPa`` with the cell's shape kept (isotropic): ASE's
:class:`~ase.md.langevinbaoab.LangevinBAOAB` with ``hydrostatic=True``, a BAOAB Langevin
integrator for the atoms (time constant ``1 / friction_per_fs``) and the Quigley-Probert
Langevin-Hoover barostat for the volume (J. Chem. Phys. 120, 11432 (2004)), whose cell
momentum has its own Langevin bath of time constant ``barostat_time_fs``.  It samples the
isothermal-isobaric ensemble; the barostat holds the mean pressure *including* the kinetic
(ideal-gas) term at ``pressure_GPa``.  The barostat mass is ASE's heuristic for a volume
oscillation period of about ``barostat_time_fs / 4``; the real period also depends on the
bulk modulus and the number of atoms (about 2.5 x ``barostat_time_fs`` for 128 CHGNet W
atoms and 108 EMT Cu atoms, less for fewer atoms): with 200 fs the volume of 128 W atoms
started at the experimental lattice settles within about 400 fs.

Why not ASE's isotropic MTK integrator (:class:`ase.md.nose_hoover_chain.IsotropicMTKNPT`),
which is canonical too: it refuses constraints, so the centre of mass could not be fixed
as in every other run of the arm, and its Nose-Hoover chain drives the kinetic energy to
``3N kB T / 2`` although a run whose total momentum is zero has ``3N - 3`` degrees of
freedom (``3N / (3N - 3)`` too hot); its state is private attributes, while
LangevinBAOAB draws its noise from the run's random generator (checkpointed already) and
keeps two public numbers (``p_eps``, ``force_eps``), so a restart reproduces the
uninterrupted run.  Berendsen barostats are never used: they do not sample any ensemble.

Every dynamics returned here has ``step(forces) -> forces`` (the forces after the step).
The driver (:mod:`dualbench.md.driver`) sets up its integrator with one call,
:func:`start_classical_dynamics`; a path-integral integrator would sit beside it.

Units: time fs, temperature K, pressure GPa, stress eV/Å^3, volume Å^3.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from ase import Atoms, units

ENSEMBLES = ("nvt", "npt")
THERMOSTATS = ("langevin", "bussi")
#: Settings that only an NPT run uses (they do not change an NVT trajectory).
NPT_ONLY_SETTINGS = ("pressure_GPa", "barostat_time_fs")
#: Extra md_log.csv columns of an NPT run.
NPT_LOG_COLUMNS = ("volume_A3", "pressure_GPa")
NUCLEI = ("classical", "pimd")
#: Settings that only a path-integral run (``nuclei: pimd``) uses.
PIMD_ONLY_SETTINGS = ("beads", "max_phonon_THz", "max_beads", "pimd_tau_fs", "pimd_pile_lambda")


def validate_ensemble(
    ensemble: str, thermostat: str, pressure_GPa: float, barostat_time_fs: float
) -> None:
    """ValueError for an unknown ensemble or thermostat, or NPT settings out of range."""
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble {ensemble!r} is not one of {', '.join(ENSEMBLES)}")
    if thermostat not in THERMOSTATS:
        raise ValueError(f"thermostat {thermostat!r} is not one of {', '.join(THERMOSTATS)}")
    if ensemble == "npt" and thermostat != "langevin":
        raise ValueError(
            f"ensemble npt needs thermostat langevin (Langevin atoms, Langevin-Hoover"
            f" barostat), not {thermostat!r}"
        )
    if not np.isfinite(pressure_GPa):
        raise ValueError(f"pressure_GPa must be finite, not {pressure_GPa}")
    if not barostat_time_fs > 0:
        raise ValueError(f"barostat_time_fs must be positive, not {barostat_time_fs}")


def trajectory_settings(settings: dict[str, Any], non_trajectory: frozenset[str]) -> dict[str, Any]:
    """The settings that determine a trajectory: ``settings`` less ``non_trajectory`` and,
    for NVT (the default when ``ensemble`` is absent), less ``ensemble`` and the NPT-only
    keys, so that an NVT run's identity is what it was before NPT existed; likewise, for
    classical nuclei (the default), less ``nuclei`` and the path-integral keys."""
    kept = {k: v for k, v in settings.items() if k not in non_trajectory}
    if kept.get("ensemble", "nvt") == "nvt":
        for key in ("ensemble", *NPT_ONLY_SETTINGS):
            kept.pop(key, None)
    if kept.get("nuclei", "classical") == "classical":
        for key in ("nuclei", *PIMD_ONLY_SETTINGS):
            kept.pop(key, None)
    return kept


def pressure_GPa(
    stress_voigt: np.ndarray, temperature_K: float, n_atoms: int, volume_A3: float
) -> float:
    """Instantaneous pressure (GPa): minus the mean normal stress (eV/Å^3, ASE's sign:
    tension positive) plus the kinetic term ``N kB T / V``."""
    stress = np.asarray(stress_voigt, dtype=float)
    kinetic = n_atoms * units.kB * temperature_K / volume_A3
    return float((-stress[:3].mean() + kinetic) / units.GPa)


class HydrostaticLangevinNPT:
    """:class:`~ase.md.langevinbaoab.LangevinBAOAB` (hydrostatic) behind the arm's
    ``step(forces) -> forces`` and a checkpointable :meth:`state`."""

    def __init__(self, atoms: Atoms, settings: Any, rng: np.random.Generator):
        from ase.md.langevinbaoab import LangevinBAOAB

        with warnings.catch_warnings():
            # ASE announces its heuristic barostat mass, and that it has not tested
            # constraints: FixCom only removes the centre-of-mass momentum, which the
            # Langevin noise would otherwise give the crystal (tested in tests/test_npt.py).
            warnings.filterwarnings("ignore", message="Using heuristic P_mass")
            warnings.filterwarnings("ignore", message="WARNING: LangevinBAOAB has not been")
            self.dyn = LangevinBAOAB(
                atoms,
                settings.timestep_fs * units.fs,
                temperature_K=settings.temperature_K,
                externalstress=-settings.pressure_GPa * units.GPa,
                hydrostatic=True,
                T_tau=units.fs / settings.friction_per_fs,
                P_tau=settings.barostat_time_fs * units.fs,
                rng=rng,
            )
        self.atoms = atoms
        self.nsteps = 0

    def step(self, forces: np.ndarray | None = None) -> np.ndarray:
        self.dyn.step()
        return self.atoms.get_forces(md=True)

    def state(self) -> dict[str, float]:
        """The barostat's momentum and its force at the end of the last step."""
        return {"p_eps": float(self.dyn.p_eps), "force_eps": float(self.dyn.force_eps)}

    def restore(self, state: dict[str, float]) -> None:
        self.dyn.p_eps = float(state["p_eps"])
        self.dyn.force_eps = float(state["force_eps"])


def make_dynamics(atoms: Atoms, settings: Any, rng: np.random.Generator) -> Any:
    """The integrator of ``settings`` (an :class:`dualbench.md.settings.MDSettings`) for ``atoms``
    (calculator attached, momenta set, FixCom constraint), drawing noise from ``rng``."""
    dt = settings.timestep_fs * units.fs
    if getattr(settings, "ensemble", "nvt") == "npt":
        return HydrostaticLangevinNPT(atoms, settings, rng)
    if settings.thermostat == "langevin":
        from ase.md.langevin import Langevin

        # fixcm=False with the FixCom constraint is ASE's recommended canonical sampling.
        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=settings.temperature_K,
            friction=settings.friction_per_fs / units.fs,
            fixcm=False,
            rng=rng,
        )
    from ase.md.bussi import Bussi

    return Bussi(
        atoms,
        timestep=dt,
        temperature_K=settings.temperature_K,
        taut=settings.taut_fs * units.fs,
        rng=rng,
    )


def dynamics_state(dyn: Any) -> dict[str, float]:
    """What a restart needs besides positions, momenta, cell and the random generator:
    Bussi's transferred energy (0 for the others) and the NPT barostat's state."""
    state = {"transferred_energy": float(getattr(dyn, "transferred_energy", 0.0))}
    if isinstance(dyn, HydrostaticLangevinNPT):
        state.update(dyn.state())
    return state


def restore_dynamics_state(dyn: Any, saved: dict[str, Any]) -> None:
    """Put back what :func:`dynamics_state` saved (keys absent from ``saved`` are kept)."""
    if hasattr(dyn, "transferred_energy") and "transferred_energy" in saved:
        dyn.transferred_energy = float(saved["transferred_energy"])
    if isinstance(dyn, HydrostaticLangevinNPT):
        dyn.restore({k: float(saved[k]) for k in ("p_eps", "force_eps")})


def start_classical_dynamics(
    atoms: Atoms, settings: Any, rng: np.random.Generator, saved: Mapping[str, Any] | None
) -> Any:
    """The classical integrator of ``settings`` for ``atoms`` (calculator attached, FixCom
    constraint), drawing noise from ``rng``: after a Maxwell-Boltzmann start at the target
    temperature with zero total momentum, or, when resuming (positions, momenta and
    ``rng`` already restored), with the integrator state ``saved`` (what
    :func:`dynamics_state` returned; keys absent are kept)."""
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    if saved is None:
        thermalize_momenta(atoms, temperature_K=settings.temperature_K, rng=rng)
        Stationary(atoms)
    dyn = make_dynamics(atoms, settings, rng)
    if saved is not None:
        restore_dynamics_state(dyn, dict(saved))
    return dyn
