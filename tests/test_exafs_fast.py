"""The fast EXAFS engine against FEFF8L: path tables, the geometry model, the contract.

Oracles: FEFF8L itself (full per-cluster runs through the ``feff`` engine, genfmt of
single paths), ASE's neighbour list, numpy.  Small bcc W inputs with non-SCF potentials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.io import write
from ase.neighborlist import neighbor_list

from dualbench import exafs as ex
from dualbench.exafs import path_geometry_response as response
from dualbench.exafs.engine_fast import chi_of_frame, site_positions
from dualbench.exafs.feff_path_list import (
    RPATH_MARGIN_A,
    FeffPath,
    merge_equivalent,
    parse_list_dat,
    parse_paths_dat,
)
from dualbench.exafs.single_path import run_single_paths

A_W = 3.1652  # Å
SMALL = ex.FeffSettings(edge="L3", rmax_A=4.5, nleg=3, cluster_radius_A=4.6)
# NLEG 4 and RPATH 5.6 Å reach the focusing paths along [111] (reff 5.48 Å).
WIDE = ex.FeffSettings(
    edge="L3", rmax_A=5.6, nleg=4, cluster_radius_A=6.0, criteria_pct=(0.0, 0.0)
)


def bcc_w(repeat: int):
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat((repeat,) * 3)
    atoms.pbc = True
    return atoms


def thermal(atoms, sigma_A: float, seed: int):
    """A copy with independent Gaussian displacements of ``sigma_A`` per component."""
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(0.0, sigma_A, size=(len(atoms), 3))
    return out


def r_factor(reference: np.ndarray, chi: np.ndarray) -> float:
    """sum (k^2 dchi)^2 / sum (k^2 chi_ref)^2 over k = 3-14 1/Å."""
    inside = (ex.K_GRID >= 3.0) & (ex.K_GRID <= 14.0)
    w = ex.K_GRID**2
    diff = np.sum(((chi - reference) * w)[inside] ** 2)
    return float(diff / np.sum((reference * w)[inside] ** 2))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Potentials and path table of 3x3x3 bcc W (RPATH 4.5 Å, NLEG 3)."""
    out = tmp_path_factory.mktemp("small")
    pots = ex.compute_potentials(bcc_w(3), "W", SMALL, out / "pot", work_root=out)
    return pots, ex.build_path_table(bcc_w(3), pots, SMALL, work_root=out)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """Potentials and path table of 4x4x4 bcc W (RPATH 5.6 Å, NLEG 4, all paths kept)."""
    out = tmp_path_factory.mktemp("wide")
    pots = ex.compute_potentials(bcc_w(4), "W", WIDE, out / "pot", work_root=out)
    return pots, ex.build_path_table(bcc_w(4), pots, WIDE, work_root=out)


# ----------------------------------------------------------------------------- FEFF's list


PATHS_DAT = """ PATH  Rmax= 6.000,  Keep_limit= 0.00, Heap_limit 0.00  Pwcrit= 2.50%
 -----------------------------------------------------------------------
     1    2   8.000  index, nleg, degeneracy, r=  2.7411
      x           y           z     ipot  label      rleg      beta        eta
   -1.582600    1.582600    1.582600   1 'W     '     2.7411  180.0000    0.0000
    0.000000    0.000000    0.000000   0 'W     '     2.7411  180.0000    0.0000
     3    3  24.000  index, nleg, degeneracy, r=  4.3237
      x           y           z     ipot  label      rleg      beta        eta
   -1.582600   -1.582600    1.582600   1 'W     '     2.7411  125.2644    0.0000
   -1.582600    1.582600    1.582600   2 'W     '     3.1652  125.2644    0.0000
    0.000000    0.000000    0.000000   0 'W     '     2.7411  109.4712    0.0000
"""
LIST_DAT = """ PATH  Rmax= 6.000,  Keep_limit= 0.00, Heap_limit 0.00  Pwcrit= 2.50%
 -----------------------------------------------------------------------
  pathindex     sig2   amp ratio    deg    nlegs  r effective
        1     0.00000   100.000     8.000     2   2.7411
        3     0.00000    10.752    24.000     3   4.3237
"""


def test_feff_path_files_are_read_with_the_absorber_first():
    paths = parse_paths_dat(PATHS_DAT)
    degeneracy, ipots, vertices = paths[3]
    assert degeneracy == 24.0 and ipots == (0, 1, 2)
    assert np.allclose(vertices[0], 0.0) and np.allclose(vertices[2], [-1.5826, 1.5826, 1.5826])
    assert parse_list_dat(LIST_DAT) == {1: (8.0, 100.0), 3: (24.0, 10.752)}


def test_paths_feff_did_not_see_as_one_are_merged():
    """Same potentials and distances, rotated and walked backwards: one path, degeneracies
    added (as FEFF lists W -> W' -> S -> W of 2H-WS2 twice)."""
    tri = np.array([[0.0, 0.0, 0.0], [1.5, 2.6, 0.0], [0.0, 1.8, 1.6]])
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    a = FeffPath(5, 3, 8.0, 6.0, (0, 2, 1), tri)
    b = FeffPath(6, 3, 16.0, 6.0, (0, 1, 2), (tri @ turn.T)[[0, 2, 1]])
    c = FeffPath(7, 3, 4.0, 6.0, (0, 2, 1), tri * 1.01)
    merged = merge_equivalent([a, b, c])
    assert [(p.index, p.degeneracy) for p in merged] == [(5, 24.0), (7, 4.0)]


def test_single_scattering_instances_are_the_neighbours(small):
    """Every atom within RPATH + margin of an absorber is one single-scattering instance
    (ASE's neighbour list as the oracle); every path has FEFF's degeneracy in instances."""
    _, table = small
    atoms, _, path = table.instances[2]
    counts = np.bincount(atoms[:, 0], minlength=len(table.numbers))
    first, d = neighbor_list("id", bcc_w(3), SMALL.rmax_A + RPATH_MARGIN_A)
    assert np.array_equal(counts, np.bincount(first, minlength=len(table.numbers)))
    per_path = np.bincount(
        np.concatenate([v[2] for v in table.instances.values()]), minlength=len(table.reff)
    )
    assert np.array_equal(per_path, table.degeneracy.astype(int) * len(table.absorbers))
    assert table.meta["path_lists"] == 1  # every site of bcc W is the same


# ----------------------------------------------------------------------------- the model


def test_embedding_gives_back_the_distances():
    points = np.random.default_rng(1).normal(size=(4, 3))
    points -= points[0]
    dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    back = response.embed(dist)
    assert np.allclose(np.linalg.norm(back[:, None] - back[None, :], axis=-1), dist)
    # A straight path: its long side can shrink (the middle atom leaves the line) but
    # cannot grow, so that coordinate takes the one-sided difference.
    line = np.array([[0.0, 0.0, 0.0], [2.74, 0.0, 0.0], [5.48, 0.0, 0.0]])
    pairs, values = response.path_coordinates(line)
    long_side = [tuple(p) for p in pairs].index((0, 2))
    assert np.isclose(values[long_side], 5.48)
    assert response.changed_geometry(line, pairs, long_side, +0.02) is None
    bent = response.changed_geometry(line, pairs, long_side, -0.02)
    assert np.isclose(np.linalg.norm(bent[2] - bent[0]), 5.46)
    assert np.isclose(np.linalg.norm(bent[1] - bent[0]), 2.74)


def test_length_response_of_a_single_scattering_path(small, tmp_path):
    """The first shell moved by -0.12 .. +0.12 Å: the model against genfmt at each
    distance (exact); larch's deltar terms alone are 100x worse."""
    pots, table = small
    (tmp_path / "phase.pad").write_bytes((pots.folder / "phase.pad").read_bytes())
    r0 = A_W * np.sqrt(3) / 2
    shifts = [-0.12, -0.06, 0.06, 0.12]
    arrays = run_single_paths(tmp_path, [[[(r0 + d) / np.sqrt(3)] * 3 + [1]] for d in shifts])
    exact, _ = response.path_arrays_on_grid(arrays)
    q = int(np.argmin(np.abs(table.reff - r0)))
    assert table.nleg[q] == 2 and np.isclose(table.reff[q], r0, atol=1e-4)
    fine = response.spline_matrix()
    for d, chi_exact in zip(shifts, exact, strict=True):
        r = r0 + d
        deltar = table.base[q] * (r0 / r) ** 2 * np.exp(2j * np.interp(
            ex.K_GRID, response.K_COARSE, table.momentum[q]) * d)
        factor = 1 + table.gradient[q, 0] * d
        model = table.base[q] * (fine @ ((r0 / r) ** 2 * np.exp(2j * table.momentum[q] * d)
                                         * factor))
        assert r_factor(chi_exact.imag, model.imag) < 2e-5
        assert r_factor(chi_exact.imag, deltar.imag) > 100 * r_factor(chi_exact.imag, model.imag)


def test_ideal_crystal_equals_feff(small, tmp_path):
    """Undisplaced atoms: the fast engine is FEFF's ff2x sum of the same paths."""
    pots, table = small
    ideal = bcc_w(3)
    fast, _ = chi_of_frame(table, ideal, 0, [0, 7])
    feff = ex.chi_fixed_potentials(ex.cut_cluster(ideal, 7, SMALL.cluster_radius_A), pots,
                                   SMALL, work_root=tmp_path)
    assert np.abs(feff).max() > 0.05
    assert r_factor(feff, fast) < 1e-8


def test_fast_engine_matches_feff_on_disordered_snapshots(wide, tmp_path):
    """The contract: averaged over the same (snapshot, absorber) pairs, the fast engine
    and per-cluster FEFF agree to an R-factor of 1e-3 (k^2, 3-14 1/Å) on independent
    displacements of 0.05 Å per component (neighbours 0.07 Å apart per component, like
    vanilla CHGNet's W at 300 K), with single, triangle and 4-leg focusing paths; without
    the geometry response they do not."""
    pots, table = wide
    frames = {i: thermal(bcc_w(4), 0.05, seed=i) for i in range(2)}
    fast = ex.chunk_fast(frames, table, absorbers_per_snapshot=2, seed=0)
    feff = ex.chunk_feff(frames, pots, WIDE, absorbers_per_snapshot=2, seed=0,
                         work_root=tmp_path)
    avg_fast = ex.average_spectra(fast.chi, fast.frame_index, weights=fast.weights())
    avg_feff = ex.average_spectra(feff.chi, feff.frame_index)
    assert avg_fast.n_spectra == avg_feff.n_spectra == 4
    assert r_factor(avg_feff.chi, avg_fast.chi) < 1e-3
    saved = table.gradient.copy()
    table.gradient[:] = 0.0  # larch's deltar alone
    try:
        bare = ex.chunk_fast(frames, table, absorbers_per_snapshot=2, seed=0)
    finally:
        table.gradient[:] = saved
    avg_bare = ex.average_spectra(bare.chi, bare.frame_index, weights=bare.weights())
    assert r_factor(avg_feff.chi, avg_bare.chi) > 3 * r_factor(avg_feff.chi, avg_fast.chi)


def test_far_atoms_and_other_structures_are_refused(small):
    _, table = small
    moved = bcc_w(3)
    moved.positions[5] += [1.5, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"frame 3: atom 5 is 1\.50 Å from its ideal site"):
        site_positions(table, moved, 3)
    with pytest.raises(ValueError, match="differ from the path table's reference"):
        site_positions(table, bcc_w(2), 0)
    # A whole cell away is the same site (periodic image), not a displacement.
    shifted = bcc_w(3)
    shifted.positions[5] += shifted.cell[0]
    frac, _ = site_positions(table, shifted, 0)
    assert np.allclose(frac, table.frac0)


def test_fast_chunks_average_like_their_pairs(small, tmp_path):
    """One row per frame weighted by its absorbers: the average over chunks equals the
    plain mean over every (frame, absorber) pair computed one at a time."""
    _, table = small
    frames = {i: thermal(bcc_w(3), 0.05, seed=10 + i) for i in range(3)}
    result = ex.chunk_fast(frames, table, absorbers_per_snapshot=0, seed=0)
    assert list(result.frame_index) == [0, 1, 2] and list(result.weights()) == [54] * 3
    ex.write_chunk(tmp_path / "0.npz", result)
    avg = ex.average_chunks([tmp_path / "0.npz"])
    pairs = [chi_of_frame(table, frames[f], f, [a])[0] for f in frames for a in range(54)]
    assert avg.n_spectra == 162 and avg.n_snapshots == 3
    assert np.allclose(avg.chi, np.mean(pairs, axis=0), atol=1e-10)
    means = np.array([np.mean(pairs[54 * f : 54 * (f + 1)], axis=0) for f in range(3)])
    assert np.allclose(avg.chi_stderr, means.std(axis=0, ddof=1) / np.sqrt(3), atol=1e-10)


def test_path_table_file_round_trip(small, tmp_path):
    _, table = small
    ex.write_path_table(tmp_path / "paths.npz", table)
    back = ex.read_path_table(tmp_path / "paths.npz")
    assert np.array_equal(back.base, table.base) and back.n_instances == table.n_instances
    assert back.meta["rmax_A"] == SMALL.rmax_A
    with np.load(tmp_path / "paths.npz") as data:
        arrays = dict(data)
    arrays["meta"] = np.array('{"version": 0}')
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="old.npz: a path table of another version"):
        ex.read_path_table(tmp_path / "old.npz")


# ----------------------------------------------------------------------------- interface


def test_exafs_average_cli_fast_engine(tmp_path):
    from dualbench.cli import main

    ideal = bcc_w(3)
    write(tmp_path / "ideal.extxyz", ideal)
    traj = tmp_path / "snaps.extxyz"
    write(traj, [thermal(ideal, 0.05, seed=s) for s in range(2)], format="extxyz")
    out = tmp_path / "avg"
    args = ["exafs-average", "--snapshots", str(traj), "--absorber", "W", "--edge", "L3",
            "--rmax", "4.3", "--nleg", "2", "--cluster-radius", "4.6", "--n-snapshots", "0",
            "--absorbers-per-snapshot", "0"]
    assert main([*args, "--reference", str(tmp_path / "ideal.extxyz"), "--out", str(out)]) == 0
    chi_k = pd.read_csv(out / "chi_k.csv")
    assert np.abs(chi_k["chi"]).max() > 0.05 and np.all(np.isfinite(chi_k["chi_stderr"]))
    assert ex.read_path_table(out / "paths.npz").meta["absorber"] == "W"
    assert not list(out.glob(".feff-*"))
    # Without --reference and without the MD's supercell.extxyz: a clear refusal.
    assert main([*args, "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad" / "chi_k.csv").exists()


def test_workers_and_average_potentials(small, tmp_path):
    """Two threads give the single thread's rows exactly; `potentials_from: average` takes
    the potentials from the snapshots' mean positions (ASE-built oracle: the mean of two
    displaced copies is the ideal crystal, so its potentials' reference is the ideal one)."""
    _, table = small
    frames = {i: thermal(bcc_w(3), 0.04, seed=20 + i) for i in range(4)}
    one = ex.chunk_fast(frames, table, absorbers_per_snapshot=0, seed=0, workers=1)
    two = ex.chunk_fast(frames, table, absorbers_per_snapshot=0, seed=0, workers=2)
    assert np.array_equal(one.chi, two.chi) and np.array_equal(one.frame_index, two.frame_index)
    ideal = bcc_w(3)
    plus, minus = ideal.copy(), ideal.copy()
    shift = np.random.default_rng(5).normal(0.0, 0.05, size=(len(ideal), 3))
    plus.positions += shift
    minus.positions -= shift
    traj = tmp_path / "snaps.extxyz"
    write(traj, [plus, minus], format="extxyz")
    material = {"structure": {"symbols": ["W"], "basis": [[0, 0, 0]], "spacegroup": 229,
                              "cellpar": [A_W, A_W, A_W, 90, 90, 90]},
                "supercell": [3, 3, 3], "absorber": "W", "edge": "L3"}
    exafs = {"rmax_A": 4.5, "nleg": 2, "cluster_radius_A": 4.6, "potentials_from": "average"}
    pots = ex.potentials_stage(material, exafs, tmp_path / "pot", snapshots_file=traj)
    assert pots.meta["reference"] == "average"
    feff_ideal = ex.cut_cluster(ideal, 0, 4.6)
    assert len(ex.cut_cluster(ex.average_structure([plus, minus]), 0, 4.6)) == len(feff_ideal)
    assert np.allclose(ex.average_structure([plus, minus]).positions, ideal.positions, atol=1e-9)
