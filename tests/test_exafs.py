"""EXAFS arm, simulation side: clusters, FEFF8L with fixed potentials, averaging, FT.

FEFF tests use small clusters (radius 4.6 Å: 27 atoms of bcc W, RPATH 4.5 Å, NLEG 2;
one test NLEG 3) and non-SCF potentials so that all of them take seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.io import write

from dualbench import exafs as ex

A_W = 3.1652  # Å, bcc W at room temperature
RADIUS = 4.6
SMALL = ex.FeffSettings(edge="L3", rmax_A=4.5, nleg=2, cluster_radius_A=RADIUS)
FT = ex.FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)


def bcc_w(repeat: int = 1) -> object:
    return bulk("W", "bcc", a=A_W, cubic=True).repeat((repeat,) * 3)


def rattled(repeat: int, seed: int, amplitude: float = 0.05):
    atoms = bcc_w(repeat)
    atoms.rattle(amplitude, seed=seed)
    return atoms


def r_factor(chi_ref: np.ndarray, chi: np.ndarray, ft: ex.FTSettings = FT) -> float:
    """sum |chi_ref(R) - chi(R)|^2 / sum |chi_ref(R)|^2 over [rmin, rmax] (complex)."""
    r, x_ref = ex.fourier_transform(ex.K_GRID, chi_ref, ft)
    _, x = ex.fourier_transform(ex.K_GRID, chi, ft)
    inside = (r >= ft.rmin) & (r <= ft.rmax)
    return float(np.sum(np.abs(x_ref - x)[inside] ** 2) / np.sum(np.abs(x_ref[inside]) ** 2))


@pytest.fixture(scope="module")
def potentials(tmp_path_factory) -> ex.Potentials:
    """Fixed potentials from the ideal 3x3x3 bcc W crystal (non-SCF)."""
    out = tmp_path_factory.mktemp("potentials")
    return ex.compute_potentials(bcc_w(3), "W", SMALL, out / "pot", work_root=out)


# ----------------------------------------------------------------------------- no FEFF


def test_cut_cluster_bcc_shells():
    cluster = ex.cut_cluster(bcc_w(2), 5, RADIUS)
    d = cluster.distances
    assert cluster.symbols[0] == "W" and np.allclose(cluster.positions[0], 0)
    assert len(cluster) == 1 + 8 + 6 + 12  # shells at a*sqrt(3)/2, a, a*sqrt(2)
    assert np.all(np.diff(d) >= -1e-9)
    assert np.isclose(d[1], A_W * np.sqrt(3) / 2) and np.isclose(d[-1], A_W * np.sqrt(2))
    # Periodic images: a 2-atom cell gives the same cluster as a large supercell.
    small = ex.cut_cluster(bcc_w(1), 1, RADIUS)
    assert np.allclose(np.sort(small.distances), np.sort(d))


def test_feff_input_lists_potentials_and_atoms():
    cluster = ex.cut_cluster(bcc_w(2), 0, RADIUS)
    text = ex.feff_input(cluster, {"W": 1}, SMALL)
    assert "EDGE L3" in text and "S02 1.0" in text and "NLEG 2" in text and "RPATH 4.5" in text
    assert "DEBYE" not in text and "SCF" not in text
    atoms = text.split("ATOMS\n")[1].splitlines()[:-1]
    assert len(atoms) == 27 and atoms[0].split()[3] == "0"
    assert {line.split()[3] for line in atoms[1:]} == {"1"}
    with pytest.raises(ValueError, match="no potential"):
        ex.feff_input(cluster, {"Mo": 1}, SMALL)


def test_potential_indices_and_missing_potential_atoms(tmp_path):
    assert ex.potential_indices(["O", "W", "O"]) == {"O": 1, "W": 2}  # by atomic number
    potentials = ex.Potentials(folder=tmp_path, absorber="W", edge="L3",
                               ipots={"W": 1, "Re": 2})
    cluster = ex.cut_cluster(bcc_w(1), 0, RADIUS)
    with pytest.raises(ValueError, match=r"no \['Re'\] atom"):
        ex.chi_fixed_potentials(cluster, potentials, SMALL, work_root=tmp_path)


def test_settings_refuse_paths_beyond_cluster():
    with pytest.raises(ValueError, match="rmax_A 6.0 Å exceeds cluster_radius_A 5.0"):
        ex.FeffSettings(rmax_A=6.0, cluster_radius_A=5.0)


def test_snapshot_selection_and_chunks():
    assert list(ex.select_snapshots(20, 5)) == [0, 5, 10, 14, 19]
    assert list(ex.select_snapshots(4, 0)) == [0, 1, 2, 3]
    assert list(ex.select_snapshots(3, 10)) == [0, 1, 2]
    selected = ex.select_snapshots(25, 0)
    chunks = [ex.chunk_of(selected, c, 3, 10) for c in range(3)]
    assert sum(chunks, []) == list(range(25)) and len(chunks[2]) == 5
    # The last chunk takes any frames beyond the planned count.
    assert ex.chunk_of(ex.select_snapshots(23, 0), 1, 2, 10) == list(range(10, 23))
    config = {"exafs": {"snapshots": 0, "chunk_size": 4},
              "md": {"production_steps": 300, "snapshot_every": 15}}
    assert ex.planned_snapshots(config) == 20 and ex.chunk_count(config) == 5
    config["exafs"]["snapshots"] = 2
    assert ex.chunk_count(config) == 1


def test_absorber_draw_depends_on_seed_and_frame_only():
    atoms = bcc_w(2)
    a = ex.select_absorbers(atoms, "W", 4, seed=0, frame_index=3)
    assert a == ex.select_absorbers(atoms, "W", 4, seed=0, frame_index=3)
    assert len(set(a)) == 4
    assert a != ex.select_absorbers(atoms, "W", 4, seed=1, frame_index=3)
    assert ex.select_absorbers(atoms, "W", 0, seed=0, frame_index=0) == list(range(16))


def test_average_spectra_standard_error():
    rng = np.random.default_rng(0)
    chi = rng.normal(size=(6, 5))
    frames = np.array([0, 0, 1, 1, 2, 2])
    avg = ex.average_spectra(chi, frames, k=np.arange(5.0))
    means = np.array([chi[2 * i : 2 * i + 2].mean(axis=0) for i in range(3)])
    assert np.allclose(avg.chi, chi.mean(axis=0))
    assert np.allclose(avg.chi_stderr, means.std(axis=0, ddof=1) / np.sqrt(3))
    assert (avg.n_snapshots, avg.n_spectra) == (3, 6)
    one_frame = ex.average_spectra(chi[:2], [7, 7], k=np.arange(5.0))
    assert np.allclose(one_frame.chi_stderr, chi[:2].std(axis=0, ddof=1) / np.sqrt(2))
    assert np.all(np.isnan(ex.average_spectra(chi[:1], [0], k=np.arange(5.0)).chi_stderr))


def test_average_structure_unwraps_periodic_images():
    a = bcc_w(2)
    b = a.copy()
    b.positions[0] += [-0.1, 0, 0]  # crosses the cell boundary
    b.wrap()
    c = a.copy()
    c.positions[0] += [0.1, 0, 0]
    mean = ex.average_structure([b, c])
    assert np.allclose(mean.positions[0], a.positions[0], atol=1e-9)


def test_fourier_transform_is_larch_xftf():
    from larch import Group
    from larch.xafs import xftf

    k = ex.K_GRID
    chi = np.sin(2 * 2.7 * k) * np.exp(-0.006 * k**2) / (k + 1)
    r, chir = ex.fourier_transform(k, chi, FT)
    g = Group()
    xftf(k, chi, group=g, kmin=3, kmax=14, dk=1, window="hanning", kweight=2)
    assert np.allclose(r, g.r) and np.allclose(np.abs(chir), g.chir_mag)


# ----------------------------------------------------------------------------- FEFF


def test_fixed_potentials_equal_plain_feff8l_on_ideal_crystal(potentials, tmp_path):
    """Ideal crystal: chi(k) with the fixed potentials = a plain full larch feff8l run."""
    from larch.xafs import feff8l

    # Potentials came from the 3x3x3 crystal around atom 0; the snapshot is the 2x2x2
    # crystal around atom 5: the same cluster geometry, a different input file.
    cluster = ex.cut_cluster(bcc_w(2), 5, RADIUS)
    fixed = ex.chi_fixed_potentials(cluster, potentials, SMALL, work_root=tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "feff.inp").write_text(ex.feff_input(cluster, {"W": 1}, SMALL))
    feff8l(folder=str(plain), feffinp="feff.inp", verbose=False)
    data = np.loadtxt(plain / "chi.dat")
    full = np.interp(ex.K_GRID, data[:, 0], data[:, 1])
    assert np.abs(full).max() > 0.1
    assert r_factor(full, fixed) < 1e-3
    assert not list(tmp_path.glob(".feff-*")), "work folders are removed after success"


def test_multiple_scattering_paths_with_nleg3(potentials, tmp_path):
    """NLEG 3 adds triangle paths (reff 4.3 Å in bcc W); still equal to a full run."""
    nleg3 = ex.FeffSettings(edge="L3", rmax_A=4.5, nleg=3, cluster_radius_A=RADIUS)
    cluster = ex.cut_cluster(bcc_w(2), 0, RADIUS)
    chi2 = ex.chi_fixed_potentials(cluster, potentials, SMALL, work_root=tmp_path)
    chi3 = ex.chi_fixed_potentials(cluster, potentials, nleg3, work_root=tmp_path)
    assert r_factor(chi3, chi2) > 1e-3  # the multiple-scattering paths are there
    full3 = ex.chi_full_feff(cluster, nleg3, work_root=tmp_path)
    assert r_factor(full3, chi3) < 1e-3


def test_fixed_potentials_close_to_full_run_on_a_disordered_cluster(potentials, tmp_path):
    cluster = ex.cut_cluster(rattled(2, seed=3), 0, RADIUS)
    fixed = ex.chi_fixed_potentials(cluster, potentials, SMALL, work_root=tmp_path)
    full = ex.chi_full_feff(cluster, SMALL, work_root=tmp_path)
    assert r_factor(full, fixed) < 0.01


def test_average_of_copies_is_the_snapshot(potentials, tmp_path):
    """N copies of one snapshot, in two chunks, average to that snapshot (stderr 0)."""
    snap = bcc_w(1).repeat((2, 1, 1))  # 4 atoms, all of them absorbers
    snap.rattle(0.08, seed=11)
    copies = tmp_path / "copies.extxyz"
    write(copies, [snap] * 3, format="extxyz")
    exafs = {"engine": "feff", "cluster_radius_A": RADIUS, "rmax_A": 4.5, "nleg": 2,
             "snapshots": 0, "absorbers_per_snapshot": 0, "chunk_size": 2}
    chunks = []
    for c in range(2):
        out = tmp_path / "chunks" / f"{c}.npz"
        ex.chunk_stage(copies, potentials.folder, out, exafs=exafs, edge="L3", chunk=c,
                       n_chunks=2, seed=0)
        chunks.append(out)
    assert [len(ex.read_chunk(c).frame_index) for c in chunks] == [8, 4]
    avg = ex.average_stage(chunks, vars(FT), tmp_path / "chi_k.csv", tmp_path / "chi_r.csv",
                           tmp_path / "convergence.csv")
    single = [ex.chi_fixed_potentials(ex.cut_cluster(snap, i, RADIUS), potentials, SMALL,
                                      work_root=tmp_path) for i in range(4)]
    assert np.allclose(avg.chi, np.mean(single, axis=0), atol=1e-12)
    assert np.abs(single[0] - single[2]).max() > 1e-3  # the absorbers differ
    assert np.allclose(avg.chi_stderr, 0, atol=1e-12)
    table = pd.read_csv(tmp_path / "chi_k.csv")
    assert list(table.columns) == ["k", "chi", "chi_stderr"]
    assert np.allclose(table["chi"], avg.chi)
    assert list(pd.read_csv(tmp_path / "chi_r.csv").columns) == ["r", "chir_mag"]
    conv = pd.read_csv(tmp_path / "convergence.csv")
    assert list(conv["n_snapshots"]) == [1, 2, 3]
    assert np.allclose(conv["rms_dev_kw"], 0, atol=1e-9)
    assert not list((tmp_path / "chunks").glob(".feff-*"))


def test_exafs_average_cli(tmp_path):
    from dualbench.cli import main

    traj = tmp_path / "snaps.extxyz"
    write(traj, [rattled(1, seed=s) for s in range(2)], format="extxyz")
    out = tmp_path / "avg"
    code = main(["exafs-average", "--snapshots", str(traj), "--absorber", "W", "--edge", "L3",
                 "--engine", "feff", "--rmax", "4.3", "--nleg", "2", "--cluster-radius",
                 str(RADIUS), "--n-snapshots", "0", "--absorbers-per-snapshot", "1", "--out",
                 str(out), "--allow-periodic-images"])
    assert code == 0
    chi_k = pd.read_csv(out / "chi_k.csv")
    assert list(chi_k.columns) == ["k", "chi", "chi_stderr"]
    assert np.isclose(chi_k["k"].iloc[-1], 20.0) and np.abs(chi_k["chi"]).max() > 0.05
    assert list(pd.read_csv(out / "chi_r.csv").columns) == ["r", "chir_mag"]
    meta = ex.load_potentials(out / "potentials").meta
    assert meta["reference"] == "average" and meta["ipots"] == {"W": 1}
    assert not list(out.glob(".feff-*"))
    # Refusal: an absorber with no atoms in the snapshots.
    code = main(["exafs-average", "--snapshots", str(traj), "--absorber", "Mo", "--edge", "K",
                 "--engine", "feff", "--rmax", "4.3", "--nleg", "2", "--cluster-radius",
                 str(RADIUS), "--out", str(tmp_path / "bad"), "--allow-periodic-images"])
    assert code == 2


def test_failed_feff_run_keeps_its_work_folder(potentials, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("potentials.json", "xsect.json"):
        (broken / name).write_bytes((potentials.folder / name).read_bytes())
    (broken / "phase.pad").write_text("not a PAD file\n")
    cluster = ex.cut_cluster(bcc_w(1), 0, RADIUS)
    with pytest.raises(ex.FeffError, match="module pathfinder failed") as err:
        ex.chi_fixed_potentials(cluster, ex.load_potentials(broken), SMALL, work_root=tmp_path)
    kept = list(tmp_path.glob(".feff-path-*"))
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert (kept[0] / ex.FEFF_LOG).is_file()


# ----------------------------------------------------------------------------- workflow


def test_dry_run_exafs_rules(repo, tmp_path):
    """One potentials job per material, one FEFF job per chunk, comparison only with data."""
    import copy

    import yaml

    config = yaml.safe_load((Path(repo) / "config" / "test.yaml").read_text())
    config["materials"]["Wx"] = copy.deepcopy(config["materials"]["W"])
    del config["materials"]["Wx"]["experiment"]
    cfg = tmp_path / "two.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(Path(repo) / "Snakefile"), "--directory",
         str(tmp_path), "-n", "--configfile", str(cfg)],
        capture_output=True, text=True, timeout=300, env={**os.environ},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {}
    for line in proc.stdout.split("Job stats:", 1)[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    n_runs = 2  # test.yaml: N in {0, 2}, one seed
    assert counts["feff_potentials"] == 2
    assert counts["feff_paths"] == 2  # the fast engine's path table, once per material
    assert counts["snapshot_chi"] == 2 * n_runs  # 2 snapshots / chunk_size 2 = 1 chunk per run
    assert counts["average_chi"] == 2 * n_runs
    assert counts["experiment_chi"] == 1
    assert counts["compare_exafs"] == 1
    assert "results/W/exafs/comparison.csv" in proc.stdout
    assert "results/Wx/chgnet/n0/seed0/exafs/chi_k.csv" in proc.stdout
    assert "results/Wx/exafs/comparison.csv" not in proc.stdout
