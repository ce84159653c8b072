"""Thermodynamic observables of MD snapshots (the part of :mod:`dualbench.diagnostics`
that is not structure): kinetic temperature, pressure (virial plus kinetic
``N kB T / V``) and the mean cell, each with a block-average standard error
(:func:`dualbench.stats.block_standard_error`).  Units: K, GPa, Å, Å^3, degrees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms, units

from dualbench.stats import block_standard_error


def kinetic_temperature(frame: Atoms, n_dof: int | None = None) -> float:
    """Kinetic temperature (K) of a frame with momenta, with ``3N - 3`` dof by default."""
    n_dof = n_dof if n_dof is not None else 3 * len(frame) - 3
    return 2.0 * frame.get_kinetic_energy() / (n_dof * units.kB)


def frame_pressures_GPa(frames: Sequence[Atoms], n_dof: int | None = None) -> np.ndarray | None:
    """Pressure (GPa) of each frame with stress and momenta: virial plus kinetic term
    ``N kB T / V``; None when a frame has no finite stress."""
    values = []
    for frame in frames:
        try:
            stress = frame.get_stress(voigt=True)
        except Exception:
            return None
        if not np.isfinite(stress).all():
            return None
        kinetic = len(frame) * units.kB * kinetic_temperature(frame, n_dof) / frame.get_volume()
        values.append(-stress[:3].mean() + kinetic)
    return np.asarray(values) / units.GPa if values else None


def mean_pressure_GPa(frames: Sequence[Atoms], n_dof: int | None = None) -> float | None:
    """Mean pressure (GPa) of frames with stress and momenta: virial plus kinetic term."""
    values = frame_pressures_GPa(frames, n_dof)
    return float(values.mean()) if values is not None else None


def pressure_stats(frames: Sequence[Atoms], log_table: Any | None, n_dof: int) -> dict[str, Any]:
    """Mean pressure (GPa) and its block standard error: from the production rows of an
    NPT md_log (its pressure_GPa column, every step), else from the snapshots."""
    if log_table is not None and "pressure_GPa" in log_table:
        values: np.ndarray | None = log_table["pressure_GPa"].to_numpy(dtype=float)
        source = "md_log production rows"
    else:
        values = frame_pressures_GPa(frames, n_dof)
        source = "snapshots"
    if values is None or values.size == 0:
        return {"mean_pressure_GPa": None, "sem_pressure_GPa": None, "pressure_source": None}
    return {
        "mean_pressure_GPa": float(values.mean()),
        "sem_pressure_GPa": block_standard_error(values),
        "pressure_source": source,
    }


def _mean_and_sem(values: np.ndarray) -> tuple[Any, Any]:
    """Mean over axis 0 and block standard error of each column (or of a 1-D series)."""
    if values.ndim == 1:
        return float(values.mean()), block_standard_error(values)
    return values.mean(axis=0).tolist(), [block_standard_error(c) for c in values.T]


def cell_stats(frames: Sequence[Atoms], supercell: Sequence[int] | None = None) -> dict[str, Any]:
    """Mean cell of the snapshots with block standard errors: lengths (Å), angles
    (degrees), volume per atom (Å^3) and, with the ``supercell`` repetitions, the lattice
    lengths per repetition (Å) and, when those are equal and the angles 90 degrees (a
    cubic crystal), the lattice parameter (the mean of the three)."""
    lengths = np.array([f.cell.lengths() for f in frames])
    angles = np.array([f.cell.angles() for f in frames])
    volumes = np.array([f.get_volume() / len(f) for f in frames])
    result: dict[str, Any] = {"cell_source": "snapshots"}
    for name, values in (
        ("cell_lengths_A", lengths),
        ("cell_angles_deg", angles),
        ("volume_A3_per_atom", volumes),
    ):
        result[f"mean_{name}"], result[f"sem_{name}"] = _mean_and_sem(values)
    result.update(
        supercell=None, mean_lattice_A=None, sem_lattice_A=None,
        mean_lattice_parameter_A=None, sem_lattice_parameter_A=None,
    )
    if supercell is None:
        return result
    reps = np.asarray(supercell, dtype=float)
    lattice = lengths / reps
    result["supercell"] = [int(r) for r in supercell]
    result["mean_lattice_A"], result["sem_lattice_A"] = _mean_and_sem(lattice)
    first = lattice[0]
    if np.allclose(first, first.mean(), rtol=1e-6) and np.allclose(angles[0], 90.0, atol=1e-6):
        mean_a, sem_a = _mean_and_sem(lattice.mean(axis=1))
        result["mean_lattice_parameter_A"], result["sem_lattice_parameter_A"] = mean_a, sem_a
    return result
