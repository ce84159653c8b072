"""DFT frames: readers of every format into one internal form, and its validation.

Internal form: a list of ASE ``Atoms`` with a single-point calculator holding

- ``energy``: total energy in eV,
- ``forces``: eV/Å, shape (n_atoms, 3),
- ``stress`` (optional): ASE's convention, eV/Å^3, Voigt order (xx, yy, zz, yz, xz, xy),
  positive when the cell is under tension (the negative of VASP's "pressure" sign),

and ``atoms.info["frame_id"]`` naming the frame's origin (``file:index``).  Frames are
stored as extended XYZ, which keeps exactly these fields.  While read, a frame also carries
its source's own metadata as ``atoms.info["record"]`` (a pymatgen-JSON record's keys other
than ``structure`` and ``outputs``, an ASE database row's key-value pairs; for the other
formats ``atoms.info`` itself is the record): :mod:`dualbench.data.selection` selects and
groups frames by it, and :func:`write_frames` leaves it out.

VASP reports stress in kBar, order (xx, yy, zz, xy, yz, zx), positive under compression:
:func:`vasp_kbar_to_ase_stress` converts it explicitly for the pymatgen-JSON records of
the SNAP/mlearn sets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

log = logging.getLogger(__name__)

FRAME_FORMATS = ("extxyz", "vasprun", "outcar", "pymatgen-json", "ase-db")
_ASE_FORMATS = {"extxyz": "extxyz", "vasprun": "vasp-xml", "outcar": "vasp-out"}


class FrameError(ValueError):
    """A DFT frame that cannot be used; the message names the file and the frame index."""


def vasp_kbar_to_ase_stress(stress_kbar: Sequence[float] | np.ndarray) -> np.ndarray:
    """VASP stress (kBar; xx, yy, zz, xy, yz, zx; compression positive) to ASE Voigt eV/Å^3.

    A 3x3 matrix is accepted too.  ASE's order is (xx, yy, zz, yz, xz, xy) and its sign
    is the opposite of VASP's: 1 kBar = 0.1 GPa.
    """
    s = np.asarray(stress_kbar, dtype=float)
    if s.shape == (3, 3):
        s = np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[1, 2], s[2, 0]])
    if s.shape != (6,):
        raise ValueError(f"stress must have 6 components or be 3x3, got shape {s.shape}")
    xx, yy, zz, xy, yz, zx = s
    return -0.1 * units.GPa * np.array([xx, yy, zz, yz, zx, xy])


def ase_stress_to_gpa_matrix(stress: np.ndarray) -> np.ndarray:
    """ASE Voigt stress (eV/Å^3) to a symmetric 3x3 matrix in GPa, same sign convention."""
    xx, yy, zz, yz, xz, xy = np.asarray(stress, dtype=float) / units.GPa
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


#: Largest force component (eV/Å) a frame may hold unless the config says otherwise.
MAX_FORCE_EV_PER_A = 100.0


def _number_array(value, what: str, where: str) -> np.ndarray:
    """``value`` as a float array; a ragged or non-numeric one is a FrameError at ``where``."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        rows = value if isinstance(value, (list, tuple)) else []
        short = [i for i, row in enumerate(rows)
                 if isinstance(row, (list, tuple)) and len(row) != 3]
        detail = f" (row {short[0]} has {len(rows[short[0]])} components)" if short else ""
        raise FrameError(f"{where}: {what} is not an array of numbers{detail}") from None


def _attach(
    atoms: Atoms, energy, forces, stress, frame_id: str, where: str | None = None
) -> Atoms:
    """Put energy (eV), forces (eV/Å) and stress on ``atoms``; a value that is not a number
    (or a ragged force array) is refused naming ``where`` (file and frame; default: the
    frame id)."""
    where = where if where is not None else f"frame {frame_id}"
    if energy is not None:
        try:
            energy = float(energy)
        except (TypeError, ValueError):
            raise FrameError(f"{where}: energy {energy!r} is not a number") from None
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=energy,
        forces=None if forces is None else _number_array(forces, "forces", where),
        stress=None if stress is None else _number_array(stress, "stress", where),
    )
    atoms.info["frame_id"] = frame_id
    return atoms


def _results(atoms: Atoms) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    calc = atoms.calc
    if calc is None:
        return None, None, None
    res = calc.results
    stress = res.get("stress")
    if stress is not None and np.shape(stress) == (3, 3):
        stress = np.asarray(stress)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return res.get("energy", res.get("free_energy")), res.get("forces"), stress


def _read_pymatgen_json(path: Path) -> list[Atoms]:
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FrameError(f"{path}: not valid JSON ({err})") from None
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise FrameError(f"{path}: not a list of {{structure, outputs}} records")
    frames: list[Atoms] = []
    stress_keys: set[str | None] = set()
    for i, rec in enumerate(records):
        try:
            structure = Structure.from_dict(rec["structure"])
            outputs = rec["outputs"]
        except (KeyError, TypeError, ValueError) as err:
            raise FrameError(
                f"{path}: frame {i}: not a {{structure, outputs}} record ({err})"
            ) from None
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.info.clear()
        atoms.info["record"] = {
            k: v for k, v in rec.items() if k not in ("structure", "outputs")
        }
        where = f"{path}: frame {i}"
        stress, key = _pymatgen_stress(outputs, where)
        stress_keys.add(key)
        frames.append(_attach(atoms, outputs.get("energy"), outputs.get("forces"), stress,
                              f"{path.name}:{i}", where))
    used = sorted(k for k in stress_keys if k)
    log.info("%s: stress read from %s", path, " and ".join(f"outputs.{k}" for k in used)
             if used else "no key (no frame has outputs.stress or outputs.virial_stress)")
    return frames


#: Keys of a pymatgen-JSON record's `outputs` holding VASP's stress (kBar, compression
#: positive): SNAP's sets say `stress`, the mlearn sets `virial_stress`.
STRESS_KEYS = ("stress", "virial_stress")


def _pymatgen_stress(outputs: dict, where: str) -> tuple[np.ndarray | None, str | None]:
    """The record's stress in ASE's convention and the key it came from (None, None if absent)."""
    given = [key for key in STRESS_KEYS if outputs.get(key) is not None]
    if len(given) > 1:
        raise FrameError(f"{where}: gives both outputs.stress and outputs.virial_stress")
    if not given:
        return None, None
    key = given[0]
    try:
        return vasp_kbar_to_ase_stress(outputs[key]), key
    except (TypeError, ValueError) as err:
        raise FrameError(f"{where}: outputs.{key}: {err}") from None


def _read_ase_db(path: Path) -> list[Atoms]:
    import ase.db

    frames = []
    with ase.db.connect(str(path)) as db:
        for i, row in enumerate(db.select()):
            atoms = row.toatoms()
            energy, forces, stress = _results(atoms)
            frame = _attach(atoms.copy(), energy, forces, stress, f"{path.name}:{i}",
                            f"{path}: frame {i}")
            frame.info["record"] = dict(row.key_value_pairs)
            frames.append(frame)
    return frames


def _read_with_ase(path: Path, fmt: str) -> list[Atoms]:
    """Frames of a file ASE reads; a frame it cannot parse is refused naming the file and
    the frame index (and, for extended XYZ, the line)."""
    from ase.io import iread

    frames: list[Atoms] = []
    try:
        for i, atoms in enumerate(iread(str(path), index=":", format=_ASE_FORMATS[fmt])):
            energy, forces, stress = _results(atoms)
            frame_id = atoms.info.get("frame_id", f"{path.name}:{i}")
            plain = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                          pbc=atoms.pbc)
            plain.info.update(atoms.info)  # provenance such as a labelled frame's origin
            frames.append(_attach(plain, energy, forces, stress, str(frame_id),
                                  f"{path}: frame {i}"))
    except FrameError:
        raise
    except Exception as err:  # ASE's readers raise many kinds
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, KeyError):  # e.g. a species that is no element
            detail = f"unknown symbol or key {err.args[0]!r}"
        detail = detail if len(detail) <= 120 else detail[:117] + "..."
        where = _xyz_count_problem(path) if fmt == "extxyz" else None
        if where is None and (frames or fmt == "extxyz"):
            # extended XYZ is scanned for its frames first, then parsed one by one
            where = f"frame {len(frames)}"
        where = f"{where}: " if where else ""
        raise FrameError(f"{path}: {where}cannot read as {fmt}: {detail}") from err
    return frames


def _xyz_count_problem(path: Path) -> str | None:
    """Where an (extended) XYZ file's frames stop matching their atom-count lines: a frame
    with another number of atom rows than its first line says (an atom added or removed
    by hand) shifts every later frame.  None when the counts are consistent."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    start, frame = 0, 0
    previous: tuple[int, int] | None = None  # (line index, count) of the frame before
    while start < len(lines) and lines[start].strip():
        try:
            count = int(lines[start])
        except ValueError:
            if previous is None:
                return f"line 1 ({lines[0].strip()[:40]!r}) is not an atom count"
            line, n = previous
            return (
                f"frame {frame - 1} (line {line + 1}) has another number of atom rows than"
                f" the {n} its first line says (line {start + 1} should start frame {frame})"
            )
        rows = len(lines) - start - 2
        if rows < count:
            return (
                f"frame {frame} (line {start + 1}) says {count} atom(s), but the file ends"
                f" after {max(rows, 0)} atom rows"
            )
        previous = (start, count)
        start, frame = start + 2 + count, frame + 1
    return None


def guess_format(path: str | Path) -> str:
    """The frame format implied by a file name."""
    name = Path(path).name.lower()
    if name.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if name.startswith("vasprun") or name.endswith(".xml"):
        return "vasprun"
    if "outcar" in name:
        return "outcar"
    if name.endswith(".json"):
        return "pymatgen-json"
    if name.endswith(".db"):
        return "ase-db"
    raise FrameError(f"{path}: cannot tell the frame format from the name; give `format`")


def read_frames(
    path: str | Path,
    fmt: str | None = None,
    elements: Iterable[str] | None = None,
    max_force_eV_per_A: float = MAX_FORCE_EV_PER_A,
) -> list[Atoms]:
    """Read and validate every frame of a DFT file into the internal form.

    ``fmt`` is one of :data:`FRAME_FORMATS` (guessed from the name when None).  With
    ``elements``, a frame holding another species is refused, and so is a frame with a
    force component beyond ``max_force_eV_per_A``.  Any refusal raises
    :class:`FrameError` naming the file and the frame index.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"{path}: no such file")
    fmt = fmt or guess_format(path)
    if fmt not in FRAME_FORMATS:
        raise FrameError(f"{path}: format {fmt!r} is not one of {', '.join(FRAME_FORMATS)}")
    if fmt == "pymatgen-json":
        frames = _read_pymatgen_json(path)
    elif fmt == "ase-db":
        frames = _read_ase_db(path)
    else:
        try:
            frames = _read_with_ase(path, fmt)
        except FrameError:
            raise
        except Exception as err:  # ASE's readers raise many kinds
            raise FrameError(f"{path}: cannot read as {fmt}: {err}") from err
    if not frames:
        raise FrameError(f"{path}: holds no frames")
    allowed = set(elements) if elements is not None else None
    for i, atoms in enumerate(frames):
        validate_frame(atoms, f"{path}: frame {i}", allowed, max_force_eV_per_A)
    log.info("read %d frames from %s (%s)", len(frames), path, fmt)
    return frames


def validate_frame(
    atoms: Atoms,
    where: str,
    elements: set[str] | None = None,
    max_force_eV_per_A: float = MAX_FORCE_EV_PER_A,
) -> None:
    """Refuse a frame without finite energy and forces of the right shape, with a force
    component beyond ``max_force_eV_per_A`` (eV/Å), or of foreign species."""
    energy, forces, stress = _results(atoms)
    n = len(atoms)
    if n == 0:
        raise FrameError(f"{where}: has no atoms")
    if forces is None:
        raise FrameError(f"{where}: has no forces")
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (n, 3):
        raise FrameError(f"{where}: forces have shape {forces.shape}, expected ({n}, 3)")
    if not np.all(np.isfinite(forces)):
        raise FrameError(f"{where}: forces contain NaN or infinity")
    largest = float(np.max(np.abs(forces)))
    if largest > max_force_eV_per_A:
        atom = int(np.argmax(np.max(np.abs(forces), axis=1)))
        raise FrameError(
            f"{where}: force component {largest:.4g} eV/Å on atom {atom} exceeds"
            f" dft.max_force_eV_per_A = {max_force_eV_per_A:g} (a failed calculation or wrong"
            " units?)"
        )
    if energy is None or not np.isfinite(energy):
        raise FrameError(f"{where}: has no finite energy")
    if stress is not None and not np.all(np.isfinite(stress)):
        raise FrameError(f"{where}: stress contains NaN or infinity")
    if elements is not None:
        foreign = sorted(set(atoms.get_chemical_symbols()) - elements)
        if foreign:
            raise FrameError(
                f"{where}: holds {', '.join(foreign)}, not among the material's elements "
                f"{', '.join(sorted(elements))}"
            )


def has_stress(frames: Sequence[Atoms]) -> bool:
    """True when every frame carries a stress."""
    return all(_results(a)[2] is not None for a in frames)


def write_frames(path: str | Path, frames: Sequence[Atoms]) -> None:
    """Write frames as extended XYZ atomically (energy, forces, stress and the scalar
    ``info`` keys such as frame_id and condition kept; a read record left out)."""
    from ase.io import write

    from dualbench.io import atomic_path

    plain = []
    for atoms in frames:
        if "record" in atoms.info:
            copy = atoms.copy()
            copy.calc = atoms.calc
            del copy.info["record"]
            atoms = copy
        plain.append(atoms)
    with atomic_path(path) as tmp:
        write(str(tmp), plain, format="extxyz")


def load_frames(path: str | Path) -> list[Atoms]:
    """Read frames written by :func:`write_frames`."""
    from ase.io import read

    return read(str(path), index=":", format="extxyz")
