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
        from ase.io import read

        if source_file is None:
            raise ValueError("a structure `source` needs its fetched file")
        fmt = FORMAT_TO_ASE.get(structure["source"]["format"])
        if fmt is None:
            raise ValueError(
                f"{source_file}: structure format {structure['source']['format']!r} is not one"
                f" of {', '.join(FORMAT_TO_ASE)}"
            )
        atoms = read(source_file, format=fmt)
    else:
        from ase.spacegroup import crystal

        atoms = crystal(
            symbols=list(structure["symbols"]),
            basis=[tuple(b) for b in structure["basis"]],
            spacegroup=int(structure["spacegroup"]),
            cellpar=list(structure["cellpar"]),
            primitive_cell=False,
        )
    atoms.pbc = True
    return atoms


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
