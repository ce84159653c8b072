"""Configuration-averaged EXAFS from MD snapshots with larch's bundled FEFF8L, and the FT.

The scattering potentials (FEFF8L modules ``pot`` and ``xsph``: ``phase.pad`` and
``xsect.json``) are computed once per (material, absorber) from a reference structure
(the ideal crystal or the MD-average structure).  Every (snapshot, absorber) pair then
runs only ``rdinp``, ``pathfinder``, ``genfmt`` and ``ff2x`` on its own cluster, with the
same POTENTIALS list, so the paths (single and multiple scattering, RPATH and NLEG of the
config) follow the snapshot's geometry while the phase shifts stay fixed.  FEFF's chi(k)
is summed with S0^2 = 1 and no Debye-Waller factor: the disorder comes from the
configurations.  S0^2 is applied only in the comparison (:mod:`dualbench.compare`).

FEFF runs in a temporary work folder; its output goes to a log file there.  The folder
is removed after success and kept (and named in the error) after a failure.

Units: distances in Å, k in 1/Å, energies in eV.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualbench.io import atomic_path, provenance, write_csv, write_json
from dualbench.md import read_snapshots

if TYPE_CHECKING:
    import pandas as pd
    from ase import Atoms

log = logging.getLogger(__name__)

#: Step (1/Å) and end of the k grid every simulated chi(k) is put on (FEFF's own grid).
K_STEP = 0.05
K_MAX = 20.0
K_GRID = np.round(np.arange(0.0, K_MAX + 0.5 * K_STEP, K_STEP), 6)

#: Highest R (Å) written to chi_r.csv.
R_OUT_MAX = 10.0

FEFF_MODULES = ("rdinp", "pot", "xsph", "pathfinder", "genfmt", "ff2x")
#: Modules run per snapshot cluster once the potentials are fixed.
FIXED_POTENTIAL_MODULES = ("rdinp", "pathfinder", "genfmt", "ff2x")
#: Files of the potentials (pot + xsph) that pathfinder, genfmt and ff2x read.
POTENTIAL_FILES = ("phase.pad", "xsect.json")
POTENTIALS_META = "potentials.json"
#: What each module must leave behind; FEFF8L exits 0 even when it failed to read input.
_MODULE_OUTPUTS = {
    "rdinp": ("geom.json", "global.json"),
    "pot": ("pot.pad",),
    "xsph": ("phase.pad", "xsect.json"),
    "pathfinder": ("paths.dat",),
    "genfmt": ("list.dat", "feff.pad"),
    "ff2x": ("chi.dat",),
}
FEFF_LOG = "feff.log"


class FeffError(RuntimeError):
    """A FEFF8L module failed; the message names the work folder and the module."""


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class FeffSettings:
    """FEFF8L settings of one calculation.

    ``rmax_A`` is FEFF's RPATH (longest half path length, Å), ``nleg`` its NLEG (most legs
    per path; 2 = single scattering only), ``cluster_radius_A`` the radius of the cluster
    cut around the absorber (Å) and ``scf_radius_A`` the radius of FEFF's self-consistent
    potential (SCF card), or None for overlapped-atom potentials without SCF.
    """

    edge: str = "L3"
    rmax_A: float = 6.0
    nleg: int = 4
    cluster_radius_A: float = 7.0
    scf_radius_A: float | None = None

    def __post_init__(self) -> None:
        if self.edge not in ("K", "L1", "L2", "L3"):
            raise ValueError(f"edge {self.edge!r} is not one of K, L1, L2, L3")
        if not 2 <= int(self.nleg) <= 8:
            raise ValueError(f"nleg {self.nleg} must be between 2 and 8")
        if self.rmax_A <= 0 or self.cluster_radius_A <= 0:
            raise ValueError("rmax_A and cluster_radius_A must be positive")
        if self.rmax_A > self.cluster_radius_A:
            raise ValueError(
                f"rmax_A {self.rmax_A} Å exceeds cluster_radius_A {self.cluster_radius_A} Å:"
                " paths would leave the cluster"
            )

    @classmethod
    def from_config(cls, exafs: Mapping[str, Any], edge: str) -> FeffSettings:
        """From the config's ``exafs`` section and the material's edge."""
        return cls(
            edge=edge,
            rmax_A=float(exafs["rmax_A"]),
            nleg=int(exafs["nleg"]),
            cluster_radius_A=float(exafs["cluster_radius_A"]),
            scf_radius_A=exafs.get("scf_radius_A"),
        )


@dataclass(frozen=True)
class FTSettings:
    """The one Fourier transform (larch ``xftf``) and the ranges scored in the comparison.

    k in 1/Å, R in Å; ``window`` is a larch window name, ``kweight`` the w of k^w chi(k).
    """

    kmin: float = 3.0
    kmax: float = 14.0
    dk: float = 1.0
    window: str = "hanning"
    kweight: int = 2
    rmin: float = 1.0
    rmax: float = 5.0

    @classmethod
    def from_config(cls, ft: Mapping[str, Any]) -> FTSettings:
        return cls(
            kmin=float(ft["kmin"]),
            kmax=float(ft["kmax"]),
            dk=float(ft["dk"]),
            window=str(ft["window"]),
            kweight=int(ft["kweight"]),
            rmin=float(ft["rmin"]),
            rmax=float(ft["rmax"]),
        )

    @property
    def window_end(self) -> float:
        """Where larch's k window reaches zero (1/Å): kmax + dk/2."""
        return self.kmax + 0.5 * self.dk


_LARCH_LOCK = threading.Lock()


def import_larch() -> None:
    """Import larch, keeping the root logger's level (importing larch resets it to WARNING,
    which would hide the progress lines of the stages).  Thread-safe."""
    with _LARCH_LOCK:
        root = logging.getLogger()
        level = root.level
        import larch  # noqa: F401

        root.setLevel(level)


def section_defaults(section: str) -> dict[str, Any]:
    """The schema defaults of a flat config section (``exafs``, ``experiment``, ``ft``)."""
    from dualbench.config import load_schema

    props = load_schema()["properties"][section]["properties"]
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}


# ----------------------------------------------------------------------------- FT


def fourier_transform(
    k: np.ndarray, chi: np.ndarray, ft: FTSettings, rmax_out: float = R_OUT_MAX
) -> tuple[np.ndarray, np.ndarray]:
    """chi(R) of chi(k) with larch ``xftf``: returns (R in Å, complex chi(R) in Å^-(w+1)).

    ``k`` must be uniform (the larch 0.05 1/Å grid); the same call serves experiment and
    simulation.
    """
    import_larch()
    from larch import Group
    from larch.xafs import xftf

    group = Group()
    xftf(
        np.asarray(k, dtype=float),
        np.asarray(chi, dtype=float),
        group=group,
        kmin=ft.kmin,
        kmax=ft.kmax,
        dk=ft.dk,
        window=ft.window,
        kweight=ft.kweight,
        rmax_out=rmax_out,
    )
    return np.asarray(group.r), np.asarray(group.chir)


def write_chi_k(
    target: str | Path, k: np.ndarray, chi: np.ndarray, chi_stderr: np.ndarray | None = None
) -> None:
    """Write ``chi_k.csv``: columns k (1/Å), chi (and chi_stderr), atomically."""
    import pandas as pd

    data = {"k": np.asarray(k), "chi": np.asarray(chi)}
    if chi_stderr is not None:
        data["chi_stderr"] = np.asarray(chi_stderr)
    write_csv(target, pd.DataFrame(data))


def write_chi_r(target: str | Path, r: np.ndarray, chir: np.ndarray) -> None:
    """Write ``chi_r.csv``: columns r (Å), chir_mag (|chi(R)|), atomically."""
    import pandas as pd

    write_csv(target, pd.DataFrame({"r": np.asarray(r), "chir_mag": np.abs(chir)}))


def read_chi_k(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(k, chi) of a ``chi_k.csv``; a missing file or column is an error naming it."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chi(k) file")
    frame = pd.read_csv(path)
    for column in ("k", "chi"):
        if column not in frame.columns:
            raise ValueError(f"{path}: column {column!r} missing (have {list(frame.columns)})")
    return frame["k"].to_numpy(float), frame["chi"].to_numpy(float)


# ----------------------------------------------------------------------------- clusters


@dataclass(frozen=True)
class Cluster:
    """Atoms around one absorber: the absorber first, at the origin, then by distance (Å)."""

    symbols: tuple[str, ...]
    positions: np.ndarray

    @property
    def distances(self) -> np.ndarray:
        return np.linalg.norm(self.positions, axis=1)

    def __len__(self) -> int:
        return len(self.symbols)


def cut_cluster(atoms: Atoms, index: int, radius_A: float) -> Cluster:
    """Every atom (periodic images included) within ``radius_A`` of atom ``index``.

    The absorber is put at the origin and listed first; the others follow by distance
    (ties in a fixed order of their coordinates).  Directions without periodicity take
    no images.
    """
    cell = np.asarray(atoms.cell.array, dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    rel = atoms.positions - atoms.positions[index]
    reps = []
    volume = abs(np.linalg.det(cell)) if pbc.any() else 0.0
    for i in range(3):
        if not pbc[i]:
            reps.append(np.zeros(1, dtype=int))
            continue
        height = volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
        n = int(math.ceil(radius_A / height)) + 1
        reps.append(np.arange(-n, n + 1))
    shifts = np.stack(np.meshgrid(*reps, indexing="ij"), axis=-1).reshape(-1, 3) @ cell
    candidates = (rel[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    owner = np.tile(np.arange(len(atoms)), len(shifts))
    dist = np.linalg.norm(candidates, axis=1)
    keep = dist <= radius_A
    candidates, owner, dist = candidates[keep], owner[keep], dist[keep]
    is_absorber = dist < 1e-8
    if is_absorber.sum() != 1:
        raise ValueError(f"atom {index} overlaps one of its periodic images")
    others = ~is_absorber
    pos, own, d = candidates[others], owner[others], dist[others]
    order = np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0], np.round(d, 6)))
    symbols = atoms.get_chemical_symbols()
    return Cluster(
        symbols=(symbols[index],) + tuple(symbols[i] for i in own[order]),
        positions=np.vstack([np.zeros((1, 3)), pos[order]]),
    )


def potential_indices(scatterers: Sequence[str]) -> dict[str, int]:
    """FEFF ipot of every scattering element: 1, 2, ... by atomic number (absorber is 0).

    ``scatterers`` are the symbols of a cluster's atoms other than the absorber; atoms of
    the absorber's element other than the absorber share its element's ipot.  FEFF wants
    at least one atom of every listed potential in each cluster.
    """
    from ase.data import atomic_numbers

    elements = sorted(set(scatterers), key=lambda s: atomic_numbers[s])
    return {el: i + 1 for i, el in enumerate(elements)}


def feff_input(
    cluster: Cluster,
    ipots: Mapping[str, int],
    settings: FeffSettings,
    title: str = "dualbench",
) -> str:
    """The text of a feff.inp (FEFF8L) for ``cluster``: S02 1, no Debye-Waller factor."""
    from ase.data import atomic_numbers

    absorber = cluster.symbols[0]
    missing = sorted(set(cluster.symbols[1:]) - set(ipots))
    if missing:
        raise ValueError(
            f"elements {missing} of the cluster have no potential (potentials: {sorted(ipots)})"
        )
    lines = [
        f"TITLE {title}",
        f"EDGE {settings.edge}",
        "S02 1.0",
        "CONTROL 1 1 1 1 1 1",
        "PRINT 0 0 0 0 0 0",
    ]
    if settings.scf_radius_A is not None:
        lines.append(f"SCF {float(settings.scf_radius_A):.4f}")
    lines += [
        f"RPATH {settings.rmax_A:.4f}",
        f"NLEG {int(settings.nleg)}",
        "",
        "POTENTIALS",
        f"  0 {atomic_numbers[absorber]:3d} {absorber}",
    ]
    for el, ip in sorted(ipots.items(), key=lambda item: item[1]):
        lines.append(f"  {ip} {atomic_numbers[el]:3d} {el}")
    lines += ["", "ATOMS"]
    for i, (sym, pos, d) in enumerate(
        zip(cluster.symbols, cluster.positions, cluster.distances, strict=True)
    ):
        ip = 0 if i == 0 else ipots[sym]
        lines.append(f"{pos[0]:13.6f} {pos[1]:13.6f} {pos[2]:13.6f} {ip:3d} {sym:<3s} {d:10.5f}")
    lines.append("END")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- running FEFF


def feff_executable(module: str) -> Path:
    """Path of larch's bundled FEFF8L module executable (``feff8l_<module>``)."""
    import_larch()
    from larch.xafs.feffrunner import find_exe

    exe = find_exe(f"feff8l_{module}")
    if exe is None:
        raise FeffError(f"larch's FEFF8L module feff8l_{module} was not found")
    return Path(exe)


def run_feff_modules(folder: str | Path, modules: Sequence[str]) -> None:
    """Run FEFF8L ``modules`` in ``folder`` (holding feff.inp), output to ``feff.log`` there.

    Raises :class:`FeffError` naming the folder, the module and the log's last lines when
    a module exits non-zero or does not write its output.
    """
    folder = Path(folder)
    logfile = folder / FEFF_LOG
    for module in modules:
        exe = feff_executable(module)
        with logfile.open("a") as fh:
            fh.write(f"\n=== feff8l_{module}\n")
            fh.flush()
            proc = subprocess.run(
                [str(exe)], cwd=folder, stdout=fh, stderr=subprocess.STDOUT, check=False
            )
        missing = [f for f in _MODULE_OUTPUTS[module] if not (folder / f).is_file()]
        if proc.returncode != 0 or missing:
            tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
            why = f"exit status {proc.returncode}" if proc.returncode else f"no {missing}"
            raise FeffError(
                f"{folder}: FEFF8L module {module} failed ({why}); log {logfile}:\n{tail}"
            )


def read_feff_chi(folder: str | Path) -> np.ndarray:
    """FEFF's chi(k) (chi.dat of ff2x) on :data:`K_GRID`."""
    path = Path(folder) / "chi.dat"
    data = np.loadtxt(path, comments="#")
    k, chi = data[:, 0], data[:, 1]
    if k[-1] < K_MAX - 1e-6:
        raise FeffError(f"{path}: FEFF's chi(k) ends at k = {k[-1]} 1/Å, below {K_MAX}")
    return np.interp(K_GRID, k, chi)


@dataclass(frozen=True)
class Potentials:
    """Fixed FEFF8L scattering potentials: a folder holding phase.pad and xsect.json.

    ``ipots`` maps each scattering element to its FEFF ipot (the absorber is ipot 0).
    """

    folder: Path
    absorber: str
    edge: str
    ipots: dict[str, int]
    scf_radius_A: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def check(self, absorber: str, edge: str) -> None:
        if absorber != self.absorber or edge != self.edge:
            raise ValueError(
                f"{self.folder}: potentials are for {self.absorber} {self.edge},"
                f" not {absorber} {edge}"
            )


def load_potentials(folder: str | Path) -> Potentials:
    """The potentials written by :func:`compute_potentials` into ``folder``."""
    folder = Path(folder)
    meta_file = folder / POTENTIALS_META
    for name in (POTENTIALS_META, *POTENTIAL_FILES):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: potentials file missing")
    meta = json.loads(meta_file.read_text())
    return Potentials(
        folder=folder,
        absorber=meta["absorber"],
        edge=meta["edge"],
        ipots={str(k): int(v) for k, v in meta["ipots"].items()},
        scf_radius_A=meta.get("scf_radius_A"),
        meta=meta,
    )


def _work_folder(work_root: str | Path | None, prefix: str) -> Path:
    root = Path(work_root) if work_root is not None else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def compute_potentials(
    reference: Atoms,
    absorber: str,
    settings: FeffSettings,
    out_dir: str | Path,
    *,
    absorber_index: int | None = None,
    label: str = "ideal",
    work_root: str | Path | None = None,
) -> Potentials:
    """Run FEFF8L rdinp, pot and xsph once on the cluster around an absorber of ``reference``.

    ``out_dir`` receives phase.pad, xsect.json, the reference feff.inp and potentials.json
    (ipots, edge, SCF radius, provenance), each written atomically.  ``absorber_index``
    defaults to the first atom of element ``absorber``; ``label`` says what the reference
    is (``ideal`` or ``average``).
    """
    symbols = reference.get_chemical_symbols()
    if absorber_index is None:
        if absorber not in symbols:
            raise ValueError(f"the reference structure has no {absorber} atom")
        absorber_index = symbols.index(absorber)
    if symbols[absorber_index] != absorber:
        raise ValueError(f"atom {absorber_index} of the reference is not {absorber}")
    cluster = cut_cluster(reference, absorber_index, settings.cluster_radius_A)
    ipots = potential_indices(cluster.symbols[1:])
    missing = sorted(set(symbols) - set(ipots) - {absorber})
    if missing:
        raise ValueError(
            f"no {missing} atom within {settings.cluster_radius_A} Å of the absorber in the"
            " reference structure: raise exafs.cluster_radius_A"
        )
    out_dir = Path(out_dir)
    work = _work_folder(work_root if work_root is not None else out_dir.parent, ".feff-pot-")
    start = time.perf_counter()
    log.info(
        "FEFF potentials for %s %s from the %s structure: %d-atom cluster, ipots %s (work %s)",
        absorber, settings.edge, label, len(cluster), ipots, work,
    )
    text = feff_input(cluster, ipots, settings, title=f"dualbench potentials {label}")
    (work / "feff.inp").write_text(text)
    run_feff_modules(work, ("rdinp", "pot", "xsph"))
    meta = {
        "absorber": absorber,
        "edge": settings.edge,
        "ipots": ipots,
        "scf_radius_A": settings.scf_radius_A,
        "reference": label,
        "reference_absorber_index": int(absorber_index),
        "cluster_radius_A": settings.cluster_radius_A,
        "cluster_atoms": len(cluster),
        "seconds": round(time.perf_counter() - start, 3),
        "provenance": provenance(),
    }
    for name in POTENTIAL_FILES:
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(work / name, tmp)
    with atomic_path(out_dir / "feff.inp") as tmp:
        tmp.write_text(text)
    write_json(out_dir / POTENTIALS_META, meta)
    shutil.rmtree(work)
    log.info("potentials done in %.1f s -> %s", meta["seconds"], out_dir)
    return load_potentials(out_dir)


def chi_fixed_potentials(
    cluster: Cluster,
    potentials: Potentials,
    settings: FeffSettings,
    work_root: str | Path | None = None,
) -> np.ndarray:
    """FEFF chi(k) on :data:`K_GRID` of one cluster with the fixed ``potentials``.

    Writes a feff.inp with the potentials' POTENTIALS list, runs rdinp (geometry and
    path settings of this cluster), copies phase.pad and xsect.json, then pathfinder,
    genfmt and ff2x.  The work folder is removed after success.
    """
    potentials.check(cluster.symbols[0], settings.edge)
    absent = sorted(set(potentials.ipots) - set(cluster.symbols[1:]))
    if absent:
        raise ValueError(
            f"the cluster has no {absent} atom but FEFF needs one of every potential"
            f" {sorted(potentials.ipots)}: raise the cluster radius"
        )
    if settings.scf_radius_A != potentials.scf_radius_A:
        settings = FeffSettings(**{**asdict(settings), "scf_radius_A": potentials.scf_radius_A})
    work = _work_folder(work_root, ".feff-path-")
    (work / "feff.inp").write_text(feff_input(cluster, potentials.ipots, settings))
    run_feff_modules(work, ("rdinp",))
    for name in POTENTIAL_FILES:
        shutil.copyfile(potentials.folder / name, work / name)
    run_feff_modules(work, FIXED_POTENTIAL_MODULES[1:])
    chi = read_feff_chi(work)
    shutil.rmtree(work)
    return chi


def chi_full_feff(
    cluster: Cluster,
    settings: FeffSettings,
    ipots: Mapping[str, int] | None = None,
    work_root: str | Path | None = None,
) -> np.ndarray:
    """FEFF chi(k) on :data:`K_GRID` of a full, independent FEFF8L run (potentials included)."""
    if ipots is None:
        ipots = potential_indices(cluster.symbols[1:])
    work = _work_folder(work_root, ".feff-full-")
    (work / "feff.inp").write_text(feff_input(cluster, ipots, settings))
    run_feff_modules(work, FEFF_MODULES)
    chi = read_feff_chi(work)
    shutil.rmtree(work)
    return chi


# ----------------------------------------------------------------------------- snapshots


def planned_snapshots(config: Mapping[str, Any]) -> int:
    """Snapshots the EXAFS arm plans to use per run (known before the MD runs).

    ``exafs.snapshots``, or when 0 (all) the production snapshots the MD saves:
    ``md.production_steps // md.snapshot_every``.
    """
    n = int(config["exafs"]["snapshots"])
    if n > 0:
        return n
    md = config["md"]
    return max(1, int(md["production_steps"]) // int(md["snapshot_every"]))


def chunk_count(config: Mapping[str, Any]) -> int:
    """Number of snapshot chunks (FEFF jobs) per run: ceil(planned snapshots / chunk_size)."""
    return max(1, math.ceil(planned_snapshots(config) / int(config["exafs"]["chunk_size"])))


def select_snapshots(n_frames: int, n_used: int) -> np.ndarray:
    """Indices of ``n_used`` frames evenly spaced over ``n_frames`` (all when 0 or more)."""
    if n_frames <= 0:
        return np.zeros(0, dtype=int)
    if n_used <= 0 or n_used >= n_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, n_used)).astype(int))


def chunk_of(selected: Sequence[int], chunk: int, n_chunks: int, chunk_size: int) -> list[int]:
    """The selected frame indices of chunk ``chunk``; the last chunk takes the remainder."""
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"chunk {chunk} is outside 0..{n_chunks - 1}")
    stop = None if chunk == n_chunks - 1 else (chunk + 1) * chunk_size
    return [int(i) for i in list(selected)[chunk * chunk_size : stop]]


def select_absorbers(
    atoms: Atoms, absorber: str, n: int, seed: int, frame_index: int
) -> list[int]:
    """``n`` atoms of element ``absorber`` (all when 0), drawn by (seed, frame index).

    The draw depends only on the seed and the frame, not on the chunking.
    """
    candidates = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == absorber]
    if not candidates:
        raise ValueError(f"frame {frame_index} has no {absorber} atom")
    if n <= 0 or n >= len(candidates):
        return candidates
    rng = np.random.default_rng([int(seed), int(frame_index)])
    return sorted(int(i) for i in rng.choice(candidates, size=n, replace=False))


def average_structure(frames: Sequence[Atoms]) -> Atoms:
    """Mean positions of ``frames`` (unwrapped against the first frame), mean cell."""
    first = frames[0]
    cell0 = np.asarray(first.cell.array)
    frac0 = first.get_scaled_positions(wrap=False)
    fracs = []
    for atoms in frames:
        if len(atoms) != len(first) or atoms.get_chemical_symbols() != first.get_chemical_symbols():
            raise ValueError("frames differ in their atoms: cannot average positions")
        frac = np.linalg.solve(np.asarray(atoms.cell.array).T, atoms.positions.T).T
        delta = frac - frac0
        delta -= np.round(delta) * np.asarray(atoms.pbc, dtype=float)
        fracs.append(frac0 + delta)
    cell = np.mean([np.asarray(a.cell.array) for a in frames], axis=0) if len(frames) else cell0
    mean = first.copy()
    mean.set_cell(cell)
    mean.set_scaled_positions(np.mean(fracs, axis=0))
    mean.wrap()
    return mean


@dataclass
class ChunkResult:
    """chi(k) on :data:`K_GRID` of each (frame, absorber) pair of one chunk."""

    chi: np.ndarray  # (n_pairs, len(K_GRID))
    frame_index: np.ndarray  # (n_pairs,)
    absorber_index: np.ndarray  # (n_pairs,)
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def compute_chunk(
    frames: Mapping[int, Atoms],
    potentials: Potentials,
    settings: FeffSettings,
    *,
    absorbers_per_snapshot: int,
    seed: int,
    work_root: str | Path | None = None,
    workers: int = 1,
) -> ChunkResult:
    """Fixed-potential chi(k) of every chosen absorber of every frame (index -> Atoms).

    ``workers`` FEFF runs go at once (they are subprocesses).  Logs a progress line per
    snapshot (done / total, seconds per run, ETA).
    """
    absorber = potentials.absorber
    pairs: list[tuple[int, int]] = []
    for fi, atoms in frames.items():
        for ai in select_absorbers(atoms, absorber, absorbers_per_snapshot, seed, fi):
            pairs.append((fi, ai))
    for fi, atoms in frames.items():
        inscribed = _inscribed(atoms)
        if inscribed is not None and settings.cluster_radius_A > inscribed:
            log.warning(
                "cluster radius %.2f Å exceeds the cell's inscribed radius %.2f Å (frame %d):"
                " the cluster holds periodic images of the absorber's own displacement",
                settings.cluster_radius_A, inscribed, fi,
            )
            break
    for module in FIXED_POTENTIAL_MODULES:
        feff_executable(module)  # fail early, and import larch outside the threads
    chi = np.zeros((len(pairs), len(K_GRID)))
    start = time.perf_counter()
    total_frames = len(frames)
    remaining = {fi: sum(1 for p in pairs if p[0] == fi) for fi in frames}
    frames_done = 0
    runs_done = 0

    def one(i: int) -> int:
        fi, ai = pairs[i]
        cluster = cut_cluster(frames[fi], ai, settings.cluster_radius_A)
        chi[i] = chi_fixed_potentials(cluster, potentials, settings, work_root=work_root)
        return i

    log.info(
        "FEFF on %d snapshots x %s absorbers = %d runs (RPATH %.2f Å, NLEG %d, cluster %.2f Å)",
        total_frames, absorbers_per_snapshot or "all", len(pairs),
        settings.rmax_A, settings.nleg, settings.cluster_radius_A,
    )
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for i in pool.map(one, range(len(pairs))):
            runs_done += 1
            fi = pairs[i][0]
            remaining[fi] -= 1
            if remaining[fi] == 0:
                frames_done += 1
                elapsed = time.perf_counter() - start
                rate = elapsed / runs_done
                log.info(
                    "snapshot %d/%d done (frame %d): %d FEFF runs, %.2f s/run, ETA %.0f s",
                    frames_done, total_frames, fi, runs_done, rate,
                    rate * (len(pairs) - runs_done),
                )
    seconds = time.perf_counter() - start
    return ChunkResult(
        chi=chi,
        frame_index=np.array([p[0] for p in pairs], dtype=int),
        absorber_index=np.array([p[1] for p in pairs], dtype=int),
        seconds=seconds,
    )


def _inscribed(atoms: Atoms) -> float | None:
    if not np.all(atoms.pbc):
        return None
    from dualbench.structure import inscribed_radius

    return inscribed_radius(atoms.cell.array)


def write_chunk(target: str | Path, result: ChunkResult) -> None:
    """Write a chunk as .npz (k, chi, frame_index, absorber_index, meta JSON) atomically."""
    meta = {**result.meta, "seconds": round(result.seconds, 3)}
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        np.savez(
            fh,
            k=K_GRID,
            chi=result.chi.reshape(-1, len(K_GRID)),
            frame_index=result.frame_index,
            absorber_index=result.absorber_index,
            meta=np.array(json.dumps(meta, default=str)),
        )


def read_chunk(path: str | Path) -> ChunkResult:
    """A chunk written by :func:`write_chunk`."""
    with np.load(path) as data:
        if not np.allclose(data["k"], K_GRID):
            raise ValueError(f"{path}: k grid differs from dualbench's FEFF grid")
        meta = json.loads(str(data["meta"]))
        return ChunkResult(
            chi=np.array(data["chi"]),
            frame_index=np.array(data["frame_index"]),
            absorber_index=np.array(data["absorber_index"]),
            seconds=float(meta.get("seconds", 0.0)),
            meta=meta,
        )


# ----------------------------------------------------------------------------- averaging


@dataclass
class AveragedChi:
    """Configuration average of chi(k) on ``k`` (1/Å).

    ``chi_stderr`` is the standard error of the mean on each k: the spread of the
    per-snapshot means over sqrt(number of snapshots) (absorbers of one snapshot are not
    independent); with one snapshot, the spread over its absorbers; NaN for one spectrum.
    """

    k: np.ndarray
    chi: np.ndarray
    chi_stderr: np.ndarray
    n_snapshots: int
    n_spectra: int
    snapshot_means: np.ndarray  # (n_snapshots, nk), in frame order


def average_spectra(
    chi: np.ndarray, frame_index: Sequence[int], k: np.ndarray | None = None
) -> AveragedChi:
    """Average spectra (rows of ``chi``, on ``k``: default :data:`K_GRID`) over absorbers
    and snapshots."""
    k = K_GRID if k is None else k
    chi = np.asarray(chi, dtype=float)
    frame_index = np.asarray(frame_index)
    if chi.shape[0] == 0:
        raise ValueError("no spectra to average")
    frames = np.unique(frame_index)
    means = np.array([chi[frame_index == f].mean(axis=0) for f in frames])
    mean = chi.mean(axis=0)
    if len(frames) >= 2:
        stderr = means.std(axis=0, ddof=1) / np.sqrt(len(frames))
    elif chi.shape[0] >= 2:
        stderr = chi.std(axis=0, ddof=1) / np.sqrt(chi.shape[0])
    else:
        stderr = np.full_like(mean, np.nan)
    return AveragedChi(
        k=np.asarray(k, dtype=float),
        chi=mean,
        chi_stderr=stderr,
        n_snapshots=len(frames),
        n_spectra=chi.shape[0],
        snapshot_means=means,
    )


def average_chunks(paths: Sequence[str | Path]) -> AveragedChi:
    """Gather the chunk files of one run and average them."""
    chunks = [read_chunk(path) for path in paths]
    chunks = [c for c in chunks if c.chi.shape[0]]
    if not chunks:
        raise ValueError(f"no spectra in the chunks {[str(p) for p in paths]}")
    frame_index = np.concatenate([c.frame_index for c in chunks])
    absorber_index = np.concatenate([c.absorber_index for c in chunks])
    pairs = set(zip(frame_index.tolist(), absorber_index.tolist(), strict=True))
    if len(pairs) != len(frame_index):
        raise ValueError(f"chunks {[str(p) for p in paths]} overlap: a (frame, absorber) repeats")
    return average_spectra(np.vstack([c.chi for c in chunks]), frame_index)


def convergence_record(avg: AveragedChi, ft: FTSettings) -> pd.DataFrame:
    """The running average against the number of snapshots (in frame order).

    Columns: n_snapshots; rms_dev_kw, the RMS of k^w (chi_n - chi_final) inside
    [kmin, kmax]; chir_max, max |chi(R)| of the running average; chir_max_dev, its
    difference from the final average's.
    """
    import pandas as pd

    k = avg.k
    inside = (k >= ft.kmin) & (k <= ft.kmax)
    kw = k**ft.kweight
    final_kw = avg.chi * kw
    _, final_r = fourier_transform(k, avg.chi, ft)
    final_max = float(np.abs(final_r).max())
    rows = []
    running = np.cumsum(avg.snapshot_means, axis=0)
    for n in range(1, avg.n_snapshots + 1):
        chi_n = running[n - 1] / n
        _, chir = fourier_transform(k, chi_n, ft)
        chir_max = float(np.abs(chir).max())
        rows.append(
            {
                "n_snapshots": n,
                "rms_dev_kw": float(np.sqrt(np.mean((chi_n * kw - final_kw)[inside] ** 2))),
                "chir_max": chir_max,
                "chir_max_dev": chir_max - final_max,
            }
        )
    return pd.DataFrame(rows)


def write_average(
    avg: AveragedChi,
    ft: FTSettings,
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path | None = None,
) -> None:
    """Write chi_k.csv (k, chi, chi_stderr), chi_r.csv (r, chir_mag) and convergence.csv."""
    write_chi_k(out_chi_k, avg.k, avg.chi, avg.chi_stderr)
    r, chir = fourier_transform(avg.k, avg.chi, ft)
    write_chi_r(out_chi_r, r, chir)
    if out_convergence is not None:
        write_csv(out_convergence, convergence_record(avg, ft))
    log.info(
        "average of %d spectra from %d snapshots: max |chi(R)| %.3f at %.2f Å",
        avg.n_spectra, avg.n_snapshots, float(np.abs(chir).max()), float(r[np.argmax(abs(chir))]),
    )


# ----------------------------------------------------------------------------- stages


def potentials_stage(
    material: Mapping[str, Any],
    exafs: Mapping[str, Any],
    out_dir: str | Path,
    *,
    structure_file: str | Path | None = None,
    snapshots_file: str | Path | None = None,
) -> Potentials:
    """The `feff_potentials` job: potentials of a material from its ideal crystal (the
    config structure and supercell) or, with ``exafs.potentials_from: average``, from the
    mean positions of ``snapshots_file``."""
    from dualbench.structure import build_structure, build_supercell

    settings = FeffSettings.from_config(exafs, material["edge"])
    if exafs["potentials_from"] == "average":
        if snapshots_file is None:
            raise ValueError("exafs.potentials_from: average needs an MD snapshots file")
        frames = read_snapshots(snapshots_file)
        reference, label = average_structure(frames), "average"
        log.info("reference: mean positions of %d frames of %s", len(frames), snapshots_file)
    else:
        unit = build_structure(material["structure"], structure_file)
        reference = build_supercell(unit, material.get("supercell", (1, 1, 1)))
        label = "ideal"
    return compute_potentials(reference, material["absorber"], settings, out_dir, label=label)


def chunk_stage(
    snapshots_file: str | Path,
    potentials_dir: str | Path,
    out: str | Path,
    *,
    exafs: Mapping[str, Any],
    edge: str,
    chunk: int,
    n_chunks: int,
    seed: int,
    workers: int = 1,
) -> ChunkResult:
    """The `snapshot_chi` job: FEFF on the snapshots of chunk ``chunk`` of one run.

    The snapshots used are ``exafs.snapshots`` frames evenly spaced over the file (all when
    0); chunk ``chunk`` of ``n_chunks`` takes ``exafs.chunk_size`` of them, the last chunk
    the rest.  FEFF works in folders beside ``out``, or under $DUALBENCH_FEFF_WORK (e.g. a
    node-local disk) when set.
    """
    settings = FeffSettings.from_config(exafs, edge)
    potentials = load_potentials(potentials_dir)
    potentials.check(potentials.absorber, edge)
    frames = read_snapshots(snapshots_file)
    selected = select_snapshots(len(frames), int(exafs["snapshots"]))
    if int(exafs["snapshots"]) > len(frames):
        log.warning(
            "%s has %d frames, fewer than exafs.snapshots = %d: using all",
            snapshots_file, len(frames), exafs["snapshots"],
        )
    mine = chunk_of(selected, chunk, n_chunks, int(exafs["chunk_size"]))
    log.info("chunk %d/%d: frames %s of %d", chunk + 1, n_chunks, mine, len(frames))
    out = Path(out)
    work_root = Path(os.environ.get("DUALBENCH_FEFF_WORK", out.parent))
    result = compute_chunk(
        {fi: frames[fi] for fi in mine},
        potentials,
        settings,
        absorbers_per_snapshot=int(exafs["absorbers_per_snapshot"]),
        seed=seed,
        work_root=work_root,
        workers=workers,
    )
    result.meta = {
        "snapshots_file": str(snapshots_file),
        "n_frames_in_file": len(frames),
        "chunk": chunk,
        "n_chunks": n_chunks,
        "settings": asdict(settings),
        "potentials": str(potentials_dir),
        "seed": seed,
        "provenance": provenance(),
    }
    write_chunk(out, result)
    return result


def average_stage(
    chunk_files: Sequence[str | Path],
    ft: Mapping[str, Any],
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path,
) -> AveragedChi:
    """The `average_chi` job: gather the chunks of a run, write the averaged outputs."""
    avg = average_chunks(chunk_files)
    write_average(avg, FTSettings.from_config(ft), out_chi_k, out_chi_r, out_convergence)
    return avg


def average_snapshots(
    snapshots_file: str | Path,
    absorber: str,
    settings: FeffSettings,
    ft: FTSettings,
    out_dir: str | Path,
    *,
    snapshots: int = 0,
    absorbers_per_snapshot: int = 0,
    seed: int = 0,
    potentials_dir: str | Path | None = None,
    reference_file: str | Path | None = None,
    workers: int = 1,
) -> AveragedChi:
    """All of it in one process (the ``exafs-average`` command).

    Potentials: ``potentials_dir`` when given (computed earlier), else computed into
    ``out_dir/potentials`` from ``reference_file`` (a structure file) or, without one,
    from the mean positions of the snapshots.  Writes chi_k.csv, chi_r.csv and
    convergence.csv into ``out_dir``.
    """
    out_dir = Path(out_dir)
    frames = read_snapshots(snapshots_file)
    if potentials_dir is not None:
        potentials = load_potentials(potentials_dir)
        potentials.check(absorber, settings.edge)
    else:
        if reference_file is not None:
            from ase.io import read

            reference, label = read(reference_file), "reference"
        else:
            reference, label = average_structure(frames), "average"
        potentials = compute_potentials(
            reference, absorber, settings, out_dir / "potentials", label=label,
            work_root=out_dir,
        )
    selected = select_snapshots(len(frames), snapshots)
    result = compute_chunk(
        {int(fi): frames[fi] for fi in selected},
        potentials,
        settings,
        absorbers_per_snapshot=absorbers_per_snapshot,
        seed=seed,
        work_root=out_dir,
        workers=workers,
    )
    avg = average_spectra(result.chi, result.frame_index)
    write_average(
        avg, ft, out_dir / "chi_k.csv", out_dir / "chi_r.csv", out_dir / "convergence.csv"
    )
    return avg
