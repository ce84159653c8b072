"""Crystal structures: the material's cell from the config, supercells, geometry helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

FORMAT_TO_ASE = {"cif": "cif", "poscar": "vasp", "extxyz": "extxyz"}


def build_structure(structure: Mapping[str, Any], source_file: str | Path | None = None) -> Atoms:
    """The unit cell of a material's ``structure`` config entry.

    Either a space-group description (``symbols``, ``basis``, ``spacegroup``, ``cellpar``
    in Å and degrees) built with :func:`ase.spacegroup.crystal`, or a structure file
    (``source``), read from ``source_file`` (the fetched copy).
    """
    if "source" in structure:

        if source_file is None:
            raise ValueError("a structure `source` needs its fetched file")
        fmt = FORMAT_TO_ASE.get(structure["source"]["format"])
        if fmt is None:
            raise ValueError(
                f"{source_file}: structure format {structure['source']['format']!r} is not one"
                f" of {', '.join(FORMAT_TO_ASE)}"
            )
        atoms = read_structure_file(source_file, fmt)
    else:
        from ase.spacegroup import crystal

        problem = cellpar_problem(int(structure["spacegroup"]), structure["cellpar"])
        if problem:
            raise ValueError(f"structure.cellpar: {problem}")
        atoms = crystal(
            symbols=list(structure["symbols"]),
            basis=[tuple(b) for b in structure["basis"]],
            spacegroup=int(structure["spacegroup"]),
            cellpar=list(structure["cellpar"]),
            primitive_cell=False,
        )
    atoms.pbc = True
    return atoms


def read_structure_file(path: str | Path, fmt: str | None = None) -> Atoms:
    """The first structure of a file; an empty, unreadable or atom-less file is a
    ValueError naming the file (ASE raises StopIteration, UnknownFileTypeError, ...)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: structure file does not exist")
    try:
        atoms = read(str(path), format=fmt)
    except StopIteration:
        raise ValueError(f"{path}: holds no structure (empty, or a header only)") from None
    except Exception as err:  # ASE's readers raise many kinds
        kind = type(err).__name__
        raise ValueError(f"{path}: cannot be read as a structure ({kind}: {err})") from None
    if isinstance(atoms, list):
        atoms = atoms[0] if atoms else Atoms()
    if len(atoms) == 0:
        raise ValueError(f"{path}: holds no atoms")
    if abs(atoms.cell.volume) < 1e-6:
        raise ValueError(f"{path}: has no periodic cell (cell volume 0)")
    return atoms


#: Lattice systems by space-group number: (last number, system).
_SYSTEMS = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
            (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))
#: Trigonal groups with an R lattice, which ASE also takes in the rhombohedral setting.
_RHOMBOHEDRAL = {146, 148, 155, 160, 161, 166, 167}


def cellpar_problem(
    spacegroup: int, cellpar: Sequence[float], tol_A: float = 1e-3, tol_deg: float = 1e-2
) -> str | None:
    """What makes ``cellpar`` [a, b, c (Å), alpha, beta, gamma (degrees)] impossible, or
    contradict the lattice system of ``spacegroup`` (None when it fits).

    ASE's ``crystal`` builds whatever cell the numbers give (gamma = 200 becomes 160), so
    the lattice system's equalities (a = b, gamma = 120, ...) are checked here, within
    ``tol_A`` and ``tol_deg``.  Monoclinic cells are taken b-unique, as ASE does.
    """
    a, b, c, alpha, beta, gamma = (float(x) for x in cellpar)
    angles = {"alpha": alpha, "beta": beta, "gamma": gamma}
    for name, angle in angles.items():
        if not 0 < angle < 180:
            return f"{name} = {angle:g} degrees is not between 0 and 180"
    if alpha + beta + gamma >= 360 or max(angles.values()) >= 0.5 * (alpha + beta + gamma):
        return f"the angles {alpha:g}, {beta:g}, {gamma:g} degrees form no cell"
    system = next(name for last, name in _SYSTEMS if spacegroup <= last)

    def same(x: float, y: float, tol: float) -> bool:
        return abs(x - y) <= tol

    right = [n for n, v in angles.items() if not same(v, 90.0, tol_deg)]
    need: list[tuple[bool, str]] = []
    if system == "monoclinic":
        need = [(same(alpha, 90, tol_deg) and same(gamma, 90, tol_deg), "alpha = gamma = 90")]
    elif system == "orthorhombic":
        need = [(not right, "alpha = beta = gamma = 90")]
    elif system == "tetragonal":
        need = [(same(a, b, tol_A) and not right, "a = b and alpha = beta = gamma = 90")]
    elif system in ("trigonal", "hexagonal"):
        hexagonal = same(a, b, tol_A) and same(alpha, 90, tol_deg) and same(beta, 90, tol_deg)
        hexagonal = hexagonal and same(gamma, 120, tol_deg)
        rhombohedral = spacegroup in _RHOMBOHEDRAL and same(a, b, tol_A) and same(b, c, tol_A)
        rhombohedral = rhombohedral and same(alpha, beta, tol_deg) and same(beta, gamma, tol_deg)
        setting = " (or a = b = c, alpha = beta = gamma)" if spacegroup in _RHOMBOHEDRAL else ""
        need = [(hexagonal or rhombohedral, f"a = b, alpha = beta = 90, gamma = 120{setting}")]
    elif system == "cubic":
        cubic = same(a, b, tol_A) and same(b, c, tol_A) and not right
        need = [(cubic, "a = b = c and alpha = beta = gamma = 90")]
    for ok, rule in need:
        if not ok:
            return (
                f"{list(cellpar)} contradicts space group {spacegroup} ({system}: {rule})"
            )
    return None


def build_supercell(unit: Atoms, repeat: Sequence[int]) -> Atoms:
    """``unit`` repeated ``repeat`` = (a, b, c) times."""
    return unit.repeat(tuple(int(r) for r in repeat))


def inscribed_radius(cell: np.ndarray) -> float:
    """Radius (Å) of the largest sphere that fits the periodic cell: half its smallest height.

    A cluster of radius r around an absorber holds no periodic image of the absorber's
    own displacement only while r is below this value.
    """
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    heights = [
        volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)
    ]
    return 0.5 * min(heights)
