"""Running larch's bundled FEFF8L: feff.inp, the modules, fixed potentials, chi(k).

FEFF runs in a temporary work folder; its output goes to a log file there.  The folder
is removed after success and kept (and named in the error) after a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualbench.exafs.clusters import Cluster, cut_cluster, potential_indices
from dualbench.exafs.settings import K_GRID, K_MAX, FeffSettings, import_larch
from dualbench.io import atomic_path, provenance, write_json

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)

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
    if settings.criteria_pct is not None:
        critcw, critpw = settings.criteria_pct
        lines.append(f"CRITERIA {float(critcw):.4f} {float(critpw):.4f}")
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


def no_path_error(settings: FeffSettings, where: str) -> str:
    """The refusal of a FEFF run that kept no path (its chi(k) would be 0)."""
    criteria = "FEFF's default [4, 2.5]" if settings.criteria_pct is None else (
        f"{[float(c) for c in settings.criteria_pct]}")
    return (
        f"{where}: FEFF kept no path (exafs.criteria_pct {criteria} %, RPATH"
        f" {settings.rmax_A:g} Å, NLEG {settings.nleg}): chi(k) would be 0. The importance"
        " cuts are in % of the strongest path: keep them within 0-100 (e.g. [4, 2.5], FEFF's"
        " default; [0, 0] keeps every path), and RPATH beyond the first shell"
    )


def require_paths(folder: str | Path, settings: FeffSettings) -> None:
    """Refuse (ValueError, the work folder removed) an ff2x run that summed no path: its
    chi.dat says ``0/ N paths used``."""
    folder = Path(folder)
    text = (folder / "chi.dat").read_text(errors="replace")
    used = re.search(r"^#\s*(\d+)/\s*(\d+)\s+paths used", text, flags=re.MULTILINE)
    if used is not None and int(used.group(1)) == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(no_path_error(settings, "a cluster's FEFF run (ff2x: 0 paths used)"))


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

    def fingerprint(self) -> str:
        """SHA-256 of the potentials' files (phase.pad, xsect.json) and their ipots: what
        a path table built with them records and is checked against."""
        digest = hashlib.sha256(json.dumps(self.ipots, sort_keys=True).encode())
        for name in POTENTIAL_FILES:
            digest.update(name.encode())
            digest.update((self.folder / name).read_bytes())
        return digest.hexdigest()

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


def work_folder(work_root: str | Path | None, prefix: str) -> Path:
    """A new temporary folder under ``work_root`` (default: the system temporary folder)."""
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
    work = work_folder(work_root if work_root is not None else out_dir.parent, ".feff-pot-")
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
    work = work_folder(work_root, ".feff-path-")
    (work / "feff.inp").write_text(feff_input(cluster, potentials.ipots, settings))
    run_feff_modules(work, ("rdinp",))
    for name in POTENTIAL_FILES:
        shutil.copyfile(potentials.folder / name, work / name)
    run_feff_modules(work, FIXED_POTENTIAL_MODULES[1:])
    require_paths(work, settings)
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
    work = work_folder(work_root, ".feff-full-")
    (work / "feff.inp").write_text(feff_input(cluster, ipots, settings))
    run_feff_modules(work, FEFF_MODULES)
    require_paths(work, settings)
    chi = read_feff_chi(work)
    shutil.rmtree(work)
    return chi
