"""The path table of a material: FEFF's paths of the ideal supercell, each with its response
to geometry, and every instance of them around every absorber (see :mod:`.feff_path_list`
for the steps, :mod:`.path_geometry_response` for the model).  Written once per material
as .npz (no pickled objects) and read by every ``fast`` chunk job.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualbench.exafs.clusters import Cluster, cut_cluster
from dualbench.exafs.feff import (
    POTENTIAL_FILES,
    Potentials,
    feff_input,
    no_path_error,
    run_feff_modules,
    work_folder,
)
from dualbench.exafs.feff_path_list import (
    RPATH_MARGIN_A,
    FeffPath,
    counts_match,
    enumerate_instances,
    feff_path_list,
    match_instances,
)
from dualbench.exafs.path_geometry_response import (
    K_COARSE,
    MAX_COORDS,
    gradient_geometries,
    gradients,
    path_arrays_on_grid,
    path_coordinates,
)
from dualbench.exafs.settings import K_GRID, FeffSettings
from dualbench.exafs.single_path import run_single_paths
from dualbench.io import atomic_path, provenance

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)

#: 6: the potentials' fingerprint in ``meta`` (``potentials_sha256``), checked by every job.
PATH_TABLE_VERSION = 6
#: What a damaged .npz raises while it is read (truncated, a flipped byte, an array missing).
_UNREADABLE = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, TypeError,
    AttributeError, IndexError,
)


@dataclass
class PathTable:
    """FEFF's paths of the ideal supercell and their instances around every absorber.

    ``frac0`` (n_atoms, 3) are the ideal fractional positions, ``cell0`` the ideal cell
    (Å), ``numbers`` the atomic numbers.  Path p has half length ``reff[p]`` (Å),
    ``nleg[p]`` legs, FEFF degeneracy ``degeneracy[p]``; ``base[p]`` on
    :data:`K_GRID` and, on :data:`K_COARSE`, ``momentum[p]`` (1/Å) and ``gradient[p, j]``
    (1/Å) for coordinate j = the distance between vertices ``coord_pairs[p, j]`` (Å,
    ``coord_ref[p, j]`` in the ideal path; pair (-1, -1) = half length; (-2, -2) unused).
    ``instances[legs]`` = (atoms (n, legs) supercell indices, absorber first, in FEFF's
    vertex order; cell_shifts (n, legs, 3) whole cells; path (n,)).
    """

    frac0: np.ndarray
    cell0: np.ndarray
    numbers: np.ndarray
    absorbers: np.ndarray
    reff: np.ndarray
    nleg: np.ndarray
    degeneracy: np.ndarray
    base: np.ndarray
    momentum: np.ndarray
    coord_pairs: np.ndarray
    coord_ref: np.ndarray
    gradient: np.ndarray
    instances: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_instances(self) -> int:
        return sum(len(v[2]) for v in self.instances.values())


_ARRAYS = (
    "frac0", "cell0", "numbers", "absorbers", "reff", "nleg", "degeneracy", "base",
    "momentum", "coord_pairs", "coord_ref", "gradient",
)


def write_path_table(target: str | Path, table: PathTable) -> None:
    """Write a :class:`PathTable` as .npz (no pickled objects), atomically."""
    arrays: dict[str, np.ndarray] = {name: getattr(table, name) for name in _ARRAYS}
    arrays["k"] = K_GRID
    arrays["k_coarse"] = K_COARSE
    arrays["meta"] = np.array(json.dumps(table.meta, default=str))
    for legs, (atoms, shifts, path) in table.instances.items():
        arrays[f"atoms_{legs}"] = atoms
        arrays[f"shifts_{legs}"] = shifts.astype(np.int16)
        arrays[f"path_{legs}"] = path
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


class _OtherVersion(ValueError):
    """A readable path table of another format version or k grid."""


def read_path_table(path: str | Path) -> PathTable:
    """A table written by :func:`write_path_table`; refuses another version or k grid, a
    damaged file (truncated, corrupted, an array missing) and a table with no path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such path table")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            same_grids = np.array_equal(data["k"], K_GRID) and np.array_equal(
                data["k_coarse"], K_COARSE
            )
            if not isinstance(meta, dict) or meta.get("version") != PATH_TABLE_VERSION or (
                not same_grids
            ):
                raise _OtherVersion(
                    f"{path}: a path table of another version or k grid; rebuild it"
                )
            instances = {
                int(name.split("_")[1]): (
                    np.array(data[name]),
                    np.array(data[name.replace("atoms", "shifts")]).astype(int),
                    np.array(data[name.replace("atoms", "path")]),
                )
                for name in data.files
                if name.startswith("atoms_")
            }
            arrays = {name: np.array(data[name]) for name in _ARRAYS}
    except _OtherVersion:
        raise
    except _UNREADABLE as err:
        raise ValueError(
            f"{path}: not a readable path table ({type(err).__name__}: {err}); rebuild it"
            " (delete the file and rerun feff_paths)"
        ) from err
    table = PathTable(**arrays, instances=instances, meta=meta)
    if len(table.reff) == 0 or table.n_instances == 0:
        raise ValueError(
            f"{path}: a path table with no path (exafs.criteria_pct"
            f" {meta.get('criteria_pct')}, RPATH {meta.get('rmax_A')} Å): chi(k) would be 0;"
            " rebuild it with importance cuts within 0-100 %"
        )
    return table


def check_path_table(
    table: PathTable, source: str | Path, potentials: Potentials, settings: FeffSettings
) -> None:
    """Refuse a path table made for another absorber, edge, potentials or path settings
    (RPATH, NLEG, criteria) than the job's, naming ``source`` and the field."""
    meta = table.meta
    criteria = None if settings.criteria_pct is None else [float(c) for c in
                                                           settings.criteria_pct]
    wanted = {
        "absorber": (potentials.absorber, f"the potentials' absorber ({potentials.folder})"),
        "edge": (settings.edge, "the job's edge"),
        "potentials_sha256": (
            potentials.fingerprint(), f"the fingerprint of the potentials in {potentials.folder}"
        ),
        "rmax_A": (settings.rmax_A, "exafs.rmax_A"),
        "nleg": (settings.nleg, "exafs.nleg"),
        "criteria_pct": (criteria, "exafs.criteria_pct"),
    }
    for key, (want, what) in wanted.items():
        have = meta.get(key)
        if key == "criteria_pct" and have is not None:
            have = [float(c) for c in have]
        if have != want:
            raise ValueError(
                f"{source}: the path table was made for {key} {have!r}, not {want!r}"
                f" ({what}); rebuild it (feff_paths) for this job"
            )


# ----------------------------------------------------------------------------- building


@dataclass
class _PathList:
    """FEFF's paths around one absorber class, with genfmt's arrays and the model."""

    paths: list[FeffPath]
    reff: np.ndarray
    base: np.ndarray
    momentum: np.ndarray
    coord_pairs: np.ndarray
    coord_ref: np.ndarray
    gradient: np.ndarray


def _feff_path_list(
    cluster: Cluster, potentials: Potentials, settings: FeffSettings, work_root: Path
) -> _PathList:
    """FEFF's path list around one absorber, genfmt on each path and its changed copies."""
    work = work_folder(work_root, ".feff-paths-")
    (work / "feff.inp").write_text(feff_input(cluster, potentials.ipots, settings))
    run_feff_modules(work, ("rdinp",))
    for name in POTENTIAL_FILES:
        shutil.copyfile(potentials.folder / name, work / name)
    run_feff_modules(work, ("pathfinder", "genfmt"))
    paths = feff_path_list(work)
    if not paths:
        shutil.rmtree(work)
        raise ValueError(no_path_error(settings, "the path table's FEFF path list"))
    geometries: list[np.ndarray] = [p.vertices for p in paths]
    owners: list[FeffPath] = list(paths)
    plans = []
    for p in paths:
        pairs, copies = gradient_geometries(p.vertices)
        rows: list[int | None] = []
        for copy in copies:
            rows.append(None if copy is None else len(geometries))
            if copy is not None:
                geometries.append(copy)
                owners.append(p)
        plans.append((pairs, rows))
    scatterers = [
        [[*v, ip] for v, ip in zip(g[1:], o.ipots[1:], strict=True)]
        for g, o in zip(geometries, owners, strict=True)
    ]
    arrays = run_single_paths(work, scatterers)
    shutil.rmtree(work)
    return _path_list_model(paths, plans, arrays)


def _path_list_model(paths: list[FeffPath], plans, arrays) -> _PathList:
    """Base, momentum and gradients of every path from genfmt's rows."""
    n = len(paths)
    base, _ = path_arrays_on_grid({k: v[:n] for k, v in arrays.items()})
    coarse, momentum = path_arrays_on_grid(arrays, K_COARSE)
    reff = arrays["reff"]
    pairs_out = np.full((n, MAX_COORDS, 2), -2, dtype=int)
    ref_out = np.zeros((n, MAX_COORDS))
    grad_out = np.zeros((n, MAX_COORDS, len(K_COARSE)), dtype=complex)
    for i, (p, (pairs, rows)) in enumerate(zip(paths, plans, strict=True)):
        changed = [None if r is None else (coarse[r], float(reff[r])) for r in rows]
        g = gradients(coarse[i], momentum[i], float(reff[i]), changed)
        _, values = path_coordinates(p.vertices)
        pairs_out[i, : len(pairs)] = pairs
        ref_out[i, : len(pairs)] = values
        grad_out[i, : len(pairs)] = g
    return _PathList(paths, reff[:n], base, momentum[:n], pairs_out, ref_out, grad_out)


def build_path_table(
    reference: Atoms,
    potentials: Potentials,
    settings: FeffSettings,
    *,
    work_root: str | Path | None = None,
) -> PathTable:
    """The :class:`PathTable` of every ``potentials.absorber`` atom of ``reference`` (the
    ideal supercell, in the snapshots' atom order), with FEFF's paths up to RPATH +
    :data:`~dualbench.exafs.feff_path_list.RPATH_MARGIN_A`."""
    start = time.perf_counter()
    symbols = reference.get_chemical_symbols()
    absorbers = [i for i, s in enumerate(symbols) if s == potentials.absorber]
    if not absorbers:
        raise ValueError(f"the reference structure has no {potentials.absorber} atom")
    reach = settings.rmax_A + RPATH_MARGIN_A
    wide = FeffSettings(
        edge=settings.edge,
        rmax_A=reach,
        nleg=settings.nleg,
        cluster_radius_A=max(settings.cluster_radius_A, reach),
        scf_radius_A=potentials.scf_radius_A,
        criteria_pct=settings.criteria_pct,
    )
    root = Path(work_root) if work_root is not None else Path.cwd()
    lists: list[_PathList] = []
    rows: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for done, a in enumerate(absorbers):
        cluster = cut_cluster(reference, a, wide.cluster_radius_A)
        found = enumerate_instances(cluster, wide.rmax_A, wide.nleg)
        which, owner = None, -1
        for c, plist in enumerate(lists):
            which = match_instances(cluster, found, potentials.ipots, plist.paths)
            if counts_match(which, plist.paths):
                owner = c
                break
        if owner < 0:
            plist = _feff_path_list(cluster, potentials, wide, root)
            which = match_instances(cluster, found, potentials.ipots, plist.paths)
            if not counts_match(which, plist.paths):
                raise ValueError(_degeneracy_error(a, which, plist.paths))
            lists.append(plist)
            owner = len(lists) - 1
            log.info(
                "absorber %d: FEFF path list %d: %d paths, %d instances",
                a, owner, len(plist.paths), int(sum(p.degeneracy for p in plist.paths)),
            )
        offset = sum(len(pl.paths) for pl in lists[:owner])
        for legs, assigned in which.items():
            keep = assigned >= 0
            verts = found[legs][keep]
            rows.setdefault(legs, []).append(
                (cluster.owners[verts], cluster.cell_shifts[verts], assigned[keep] + offset)
            )
        if (done + 1) % 16 == 0 or done + 1 == len(absorbers):
            log.info("paths mapped for %d/%d absorbers", done + 1, len(absorbers))
    table = _assemble(reference, absorbers, lists, rows)
    table.meta.update(
        absorber=potentials.absorber,
        edge=settings.edge,
        rmax_A=settings.rmax_A,
        rpath_margin_A=RPATH_MARGIN_A,
        nleg=settings.nleg,
        cluster_radius_A=settings.cluster_radius_A,
        criteria_pct=settings.criteria_pct,
        potentials=str(potentials.folder),
        potentials_sha256=potentials.fingerprint(),
        seconds=round(time.perf_counter() - start, 3),
        provenance=provenance(),
    )
    log.info(
        "path table: %d absorbers, %d FEFF path list(s), %d paths, %d instances, %.1f s",
        len(absorbers), len(lists), len(table.reff), table.n_instances, table.meta["seconds"],
    )
    return table


def _degeneracy_error(absorber: int, which, paths: list[FeffPath]) -> str:
    counts = np.zeros(len(paths), dtype=int)
    for assigned in which.values():
        counts += np.bincount(assigned[assigned >= 0], minlength=len(paths))
    bad = [
        f"path {p.index} ({p.nleg} legs, reff {p.reff_A:.4f} Å): FEFF degeneracy"
        f" {p.degeneracy:g}, {n} instances found"
        for p, n in zip(paths, counts, strict=True)
        if n != round(p.degeneracy)
    ]
    return (
        f"absorber {absorber}: FEFF's paths do not match the instances around it ("
        + "; ".join(bad[:5])
        + "). FEFF's importance cut (exafs.criteria_pct) may have kept only some of several"
        " paths of the same length and atoms, which the fast engine cannot tell apart: keep"
        " every path with exafs.criteria_pct: [0, 0]; if they still differ, the reference"
        " structure may be slightly off its symmetry: use exafs.engine: feff"
    )


def _by_path(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The instances of all absorbers, ordered by path (the engine sums path by path)."""
    atoms, shifts, path = (np.concatenate([part[i] for part in parts]) for i in range(3))
    order = np.argsort(path, kind="stable")
    return atoms[order], shifts[order], path[order]


def _assemble(
    reference: Atoms,
    absorbers: list[int],
    lists: list[_PathList],
    rows: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
) -> PathTable:
    """One table from the path lists and the instances of every absorber."""
    from ase.neighborlist import neighbor_list

    def stack(name: str) -> np.ndarray:
        return np.concatenate([getattr(pl, name) for pl in lists])

    paths = [p for pl in lists for p in pl.paths]
    distances = neighbor_list("d", reference, 6.0)
    table = PathTable(
        frac0=reference.get_scaled_positions(wrap=False),
        cell0=np.asarray(reference.cell.array, dtype=float),
        numbers=np.asarray(reference.numbers),
        absorbers=np.asarray(absorbers),
        reff=stack("reff"),
        nleg=np.array([p.nleg for p in paths]),
        degeneracy=np.array([p.degeneracy for p in paths]),
        base=stack("base"),
        momentum=stack("momentum"),
        coord_pairs=stack("coord_pairs"),
        coord_ref=stack("coord_ref"),
        gradient=stack("gradient"),
        instances={legs: _by_path(parts) for legs, parts in sorted(rows.items())},
    )
    table.meta = {
        "version": PATH_TABLE_VERSION,
        "path_lists": len(lists),
        "feff_path_index": [p.index for p in paths],
        "paths": len(paths),
        "instances": table.n_instances,
        "nearest_neighbour_A": float(distances.min()) if len(distances) else float("inf"),
    }
    return table
