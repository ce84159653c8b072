"""Inputs that gave silently wrong results, or a traceback, and are now refused (issue 27,
item 3): a NaN atom in an MD snapshot, an importance cut that keeps no path, a path table
of another edge, absorber, potentials or settings (or a damaged one), a fit.json of
another experiment or with unphysical values.

Each refusal names the file and the key, frame or field.  Cheap: a 16-atom bcc W cell,
non-SCF potentials, RPATH 3 Å, single scattering (FEFF8L runs of about a second).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from dualbench import exafs as ex
from dualbench.exafs.engine_fast import site_positions
from dualbench.fetch import sha256_of
from dualbench.scoring.against_experiment import compare_dirs, compare_spectra, compare_stage
from dualbench.scoring.fit_record import read_fit

A_W = 3.1652  # Å
SETTINGS = ex.FeffSettings(edge="L3", rmax_A=3.0, nleg=2, cluster_radius_A=3.5)
EXAFS = {"engine": "fast", "cluster_radius_A": 3.5, "rmax_A": 3.0, "nleg": 2,
         "criteria_pct": None, "snapshots": 0, "absorbers_per_snapshot": 2, "chunk_size": 4}
MATERIAL = {"structure": {"symbols": ["W"], "basis": [[0, 0, 0]], "spacegroup": 229,
                          "cellpar": [A_W, A_W, A_W, 90, 90, 90]},
            "supercell": [2, 2, 2], "absorber": "W", "edge": "L3"}
FT = ex.FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0,
                   rmax=5.0)
K_EXP = np.round(np.arange(0, 17.0 + 1e-9, 0.05), 6)


def bcc_w(a: float = A_W):
    atoms = bulk("W", "bcc", a=a, cubic=True).repeat((2, 2, 2))
    atoms.pbc = True
    return atoms


def thermal(seed: int):
    atoms = bcc_w()
    atoms.positions += np.random.default_rng(seed).normal(0.0, 0.04, size=(len(atoms), 3))
    return atoms


@pytest.fixture(scope="module")
def w16(tmp_path_factory):
    """L3 potentials and path table of the 16-atom cell, and a clean snapshots file."""
    out = tmp_path_factory.mktemp("w16")
    pots = ex.compute_potentials(bcc_w(), "W", SETTINGS, out / "pot", work_root=out)
    table = ex.build_path_table(bcc_w(), pots, SETTINGS, work_root=out)
    ex.write_path_table(out / "paths.npz", table)
    write(out / "snaps.extxyz", [thermal(s) for s in range(3)], format="extxyz")
    return {"dir": out, "pots": pots, "table": table, "paths": out / "paths.npz",
            "snaps": out / "snaps.extxyz"}


def run_chunk(w16, tmp_path, *, snaps=None, pots=None, paths=None, exafs=None, edge="L3"):
    out = tmp_path / "chunk.npz"
    ex.chunk_stage(snaps or w16["snaps"], pots or w16["pots"].folder, out,
                   exafs=exafs or EXAFS, edge=edge, chunk=0, n_chunks=1, seed=0,
                   paths_file=paths or w16["paths"])
    return out


# ----------------------------------------------------------------------------- a) NaN atoms


def snapshots_with(tmp_path: Path, fault: str) -> Path:
    frames = [thermal(s) for s in range(3)]
    if fault == "nan":
        frames[1].positions[5, 1] = np.nan
    elif fault == "inf":
        frames[1].positions[5, 0] = np.inf
    else:
        frames[1].cell[0, 0] = np.nan
    path = tmp_path / f"snaps_{fault}.extxyz"
    write(path, frames, format="extxyz")
    return path


@pytest.mark.parametrize("fault, says", [
    ("nan", r"snaps_nan.extxyz: frame 1: atom 5 \(W\) has a non-finite position"),
    ("inf", r"snaps_inf.extxyz: frame 1: atom 5 \(W\) has a non-finite position"),
    ("cell", r"snaps_cell.extxyz: frame 1: the cell is not finite"),
])
def test_non_finite_snapshot_is_refused_by_the_chunk_job(w16, tmp_path, fault, says):
    """Before: the NaN atom's paths were dropped (r <= RPATH is False for NaN) and the
    frame's chi moved silently."""
    with pytest.raises(ValueError, match=says):
        run_chunk(w16, tmp_path, snaps=snapshots_with(tmp_path, fault))
    assert not (tmp_path / "chunk.npz").exists()
    with pytest.raises(ValueError, match=r"frame 7: atom 5 \(W\) has a non-finite"):
        bad = thermal(0)
        bad.positions[5] = np.nan
        site_positions(w16["table"], bad, 7)


def test_non_finite_snapshot_is_refused_by_exafs_average_and_average_potentials(
        w16, tmp_path, capsys):
    from dualbench.cli import main

    snaps = snapshots_with(tmp_path, "nan")
    write(tmp_path / "supercell.extxyz", bcc_w())
    assert main(["exafs-average", "--snapshots", str(snaps), "--absorber", "W", "--edge", "L3",
                 "--rmax", "3.0", "--nleg", "2", "--cluster-radius", "3.1",
                 "--potentials", str(w16["pots"].folder), "--out", str(tmp_path / "avg")]) == 2
    assert "snaps_nan.extxyz: frame 1: atom 5 (W) has a non-finite position" in (
        capsys.readouterr().err)
    assert not (tmp_path / "avg" / "chi_k.csv").exists()
    with pytest.raises(ValueError, match=r"snaps_nan.extxyz: frame 1: atom 5"):
        ex.potentials_stage(MATERIAL, {**EXAFS, "potentials_from": "average"},
                            tmp_path / "pot", snapshots_file=snaps)


# ----------------------------------------------------------------------------- b) no path


def test_a_cut_that_keeps_no_path_is_refused_by_the_paths_job(w16, tmp_path):
    """Before: an empty path table, chi = 0 everywhere, scored by compare with exit 0."""
    exafs = {**EXAFS, "criteria_pct": [200, 200]}
    with pytest.raises(ValueError, match=r"kept no path \(exafs.criteria_pct \[200.0, 200.0\]"):
        ex.paths_stage(MATERIAL, exafs, w16["pots"].folder, tmp_path / "paths.npz")
    assert not (tmp_path / "paths.npz").exists()
    assert not list(tmp_path.glob(".feff-*"))


@pytest.mark.parametrize("criteria", [[200, 200], [0, 200]])
def test_a_cut_that_keeps_no_path_is_refused_by_the_feff_engine(w16, tmp_path, criteria):
    exafs = {**EXAFS, "engine": "feff", "criteria_pct": criteria, "absorbers_per_snapshot": 1,
             "snapshots": 1}
    with pytest.raises(ValueError, match=r"kept no path \(exafs.criteria_pct \["
                       + rf"{criteria[0]:.1f}, {criteria[1]:.1f}\]"):
        ex.chunk_stage(w16["snaps"], w16["pots"].folder, tmp_path / "c.npz", exafs=exafs,
                       edge="L3", chunk=0, n_chunks=1, seed=0)
    assert not (tmp_path / "c.npz").exists()
    assert not list(tmp_path.glob(".feff-*"))


def test_a_path_table_with_no_path_is_refused(w16, tmp_path):
    table = w16["table"]
    empty = dataclasses.replace(
        table, reff=table.reff[:0], nleg=table.nleg[:0], degeneracy=table.degeneracy[:0],
        base=table.base[:0], momentum=table.momentum[:0], coord_pairs=table.coord_pairs[:0],
        coord_ref=table.coord_ref[:0], gradient=table.gradient[:0], instances={},
        meta={**table.meta, "criteria_pct": [200.0, 200.0]},
    )
    ex.write_path_table(tmp_path / "empty.npz", empty)
    with pytest.raises(ValueError, match=r"empty.npz: a path table with no path"
                                         r" \(exafs.criteria_pct \[200.0, 200.0\]"):
        ex.read_path_table(tmp_path / "empty.npz")


# ----------------------------------------------------------------------------- c) identity


def test_the_chunk_job_runs_with_its_own_table(w16, tmp_path):
    result = ex.read_chunk(run_chunk(w16, tmp_path))
    assert len(result.frame_index) == 3 and np.abs(result.chi).max() > 0.01
    assert w16["table"].meta["potentials_sha256"] == w16["pots"].fingerprint()


def test_a_table_of_another_edge_is_refused(w16, tmp_path):
    """A W L1 table in an L3 job: before, the L3 job took the L1 spectrum silently."""
    l1 = dataclasses.replace(SETTINGS, edge="L1")
    pots = ex.compute_potentials(bcc_w(), "W", l1, tmp_path / "pot_l1", work_root=tmp_path)
    ex.write_path_table(tmp_path / "paths_l1.npz",
                        ex.build_path_table(bcc_w(), pots, l1, work_root=tmp_path))
    with pytest.raises(ValueError, match=r"paths_l1.npz: the path table was made for edge"
                                         r" 'L1', not 'L3'"):
        run_chunk(w16, tmp_path, paths=tmp_path / "paths_l1.npz")
    assert not (tmp_path / "chunk.npz").exists()


def test_a_table_of_other_potentials_or_settings_is_refused(w16, tmp_path):
    other = ex.compute_potentials(bcc_w(3.10), "W", SETTINGS, tmp_path / "pot_b",
                                  work_root=tmp_path)
    with pytest.raises(ValueError, match=r"paths.npz: the path table was made for"
                                         r" potentials_sha256 .*pot_b"):
        run_chunk(w16, tmp_path, pots=other.folder)
    with pytest.raises(ValueError, match=r"paths.npz: .* made for rmax_A 3.0, not 2.9"
                                         r" \(exafs.rmax_A\)"):
        run_chunk(w16, tmp_path, exafs={**EXAFS, "rmax_A": 2.9})
    with pytest.raises(ValueError, match=r"made for criteria_pct None, not \[0.0, 0.0\]"):
        run_chunk(w16, tmp_path, exafs={**EXAFS, "criteria_pct": [0, 0]})
    tampered = dataclasses.replace(w16["table"], meta={**w16["table"].meta, "absorber": "Mo"})
    ex.write_path_table(tmp_path / "mo.npz", tampered)
    with pytest.raises(ValueError, match=r"mo.npz: the path table was made for absorber 'Mo'"):
        run_chunk(w16, tmp_path, paths=tmp_path / "mo.npz")


def damage(source: Path, target: Path, how: str) -> None:
    data = source.read_bytes()
    if how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "text":
        target.write_text("not a table\n")
    elif how == "flipped":
        with zipfile.ZipFile(source) as zf:
            info = zf.getinfo("base.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        middle = start + info.compress_size // 2
        blob = bytearray(data)
        blob[middle : middle + 8] = bytes(b ^ 0xFF for b in blob[middle : middle + 8])
        target.write_bytes(bytes(blob))
    else:  # an array missing
        with np.load(source) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "gradient"}
        with target.open("wb") as fh:
            np.savez_compressed(fh, **arrays)


@pytest.mark.parametrize("how", ["truncated", "text", "flipped", "missing"])
def test_a_damaged_table_is_named_not_a_traceback(w16, tmp_path, how):
    """Before: BadZipFile, zlib.error or KeyError from deep inside numpy."""
    damage(w16["paths"], tmp_path / "bad.npz", how)
    with pytest.raises(ValueError, match=r"bad.npz: not a readable path table .*rebuild it"):
        run_chunk(w16, tmp_path, paths=tmp_path / "bad.npz")


# ----------------------------------------------------------------------------- d) the fit


def spectrum(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=float)
    return np.exp(-0.008 * k**2) * (0.3 * np.sin(5.48 * k - 1.2) + 0.2 * np.sin(6.33 * k)) / (
        k + 1)


@pytest.fixture
def scored(tmp_path):
    """An experiment, another one, a simulation and a good fit.json of the first."""
    for name, scale in (("exp", 0.9), ("other", 0.7)):
        ex.write_chi_k(tmp_path / name / "chi_k.csv", K_EXP, scale * spectrum(K_EXP))
    ex.write_chi_k(tmp_path / "sim" / "chi_k.csv", ex.K_GRID, spectrum(ex.K_GRID))
    fit = {"s02": 0.9, "s02_err": 0.04, "e0_shift_eV": 0.5, "e0_shift_eV_err": 0.6,
           "correl_s02_e0": 0.3, "experiment": str(tmp_path / "exp" / "chi_k.csv"),
           "experiment_sha256": sha256_of(tmp_path / "exp" / "chi_k.csv")}
    return tmp_path, fit


def compare_with(folder: Path, fit, text: str | None = None, experiment: str = "exp"):
    path = folder / "fit.json"
    path.write_text(text if text is not None else json.dumps(fit))
    return compare_dirs(folder / experiment, [folder / "sim"], folder / "m.json", FT,
                        s02="experiment", e0_shift="experiment", experiment_fit=path)


def test_a_good_fit_scores(scored):
    folder, fit = scored
    (res,) = compare_with(folder, fit)
    assert res.s02 == 0.9 and res.e0_shift_eV == 0.5 and np.isfinite(res.exafs_mse_k)


@pytest.mark.parametrize("change, says", [
    ({"s02": -0.4}, r"s02 -0.4 is not a physical S0\^2"),
    ({"s02": 3.0}, r"s02 3 is not a physical S0\^2"),
    ({"e0_shift_eV": 40.0}, r"e0_shift_eV 40 lies outside the fit's bounds"),
    ({"e0_shift_eV": float("nan")}, r"e0_shift_eV is nan"),
    ({"s02_err": float("nan")}, r"s02_err is nan"),
    ({"s02": "0.9"}, r"s02 '0.9' is not a number"),
    ({"correl_s02_e0": 1.5}, r"correl_s02_e0 1.5 is not a correlation"),
])
def test_an_unphysical_fit_is_refused(scored, change, says):
    """Before: a negative S0^2 scored every model against a flipped spectrum, exit 0."""
    folder, fit = scored
    with pytest.raises(ValueError, match=r"fit.json: " + says):
        compare_with(folder, {**fit, **change})
    assert not (folder / "m.json").exists()


def test_an_unphysical_fit_given_in_memory_is_refused():
    sim = {"sim": (ex.K_GRID, spectrum(ex.K_GRID))}
    with pytest.raises(ValueError, match=r"the experiment's fit: s02 -1 is not a physical"):
        compare_spectra((K_EXP, spectrum(K_EXP)), sim, FT, s02="experiment",
                        e0_shift="experiment", experiment_fit={"s02": -1.0, "e0_shift_eV": 0})


def test_a_fit_of_another_experiment_is_refused(scored, capsys):
    from dualbench.cli import main

    folder, fit = scored
    with pytest.raises(ValueError, match=r"fit.json: experiment_sha256 .* is not that of"
                                         r" .*other/chi_k.csv"):
        compare_with(folder, fit, experiment="other")
    # An older record without the SHA-256: checked by its path.
    old = {k: v for k, v in fit.items() if k != "experiment_sha256"}
    with pytest.raises(ValueError, match=r"fit.json: experiment .*exp/chi_k.csv is not"
                                         r" .*other/chi_k.csv"):
        compare_with(folder, old, experiment="other")
    assert compare_with(folder, old)[0].s02 == 0.9
    del old["experiment"]
    with pytest.raises(ValueError, match=r"fit.json: key experiment_sha256 missing"):
        compare_with(folder, old)
    # The command line and the compare_exafs job say the same.
    (folder / "fit.json").write_text(json.dumps(fit))
    assert main(["compare", "--experiment", str(folder / "other"), "--simulation",
                 str(folder / "sim"), "--fit", str(folder / "fit.json"),
                 "--out", str(folder / "cli.json")]) == 2
    assert "experiment_sha256" in capsys.readouterr().err
    run = {"material": "W", "model": "m", "n": 0, "seed": 0}
    with pytest.raises(ValueError, match=r"fit.json: experiment_sha256"):
        compare_stage(folder / "other" / "chi_k.csv", [run], [folder / "sim" / "chi_k.csv"],
                      exafs={"s02": "experiment", "e0_shift": "experiment"}, ft=vars(FT),
                      out_csv=folder / "c.csv", experiment_fit=folder / "fit.json")
    assert not (folder / "c.csv").exists()


@pytest.mark.parametrize("text, says", [
    ("{ not json", r"fit.json: not a fit record: not JSON"),
    ("[1, 2]", r"fit.json: not a fit record: a JSON list"),
    (json.dumps({"s02": 0.9, "e0_shift_eV": 0.5, "s02_err": 0.1}),
     r"fit.json: key e0_shift_eV_err missing"),
])
def test_a_malformed_fit_names_the_file_and_key(scored, text, says):
    folder, fit = scored
    with pytest.raises(ValueError, match=says):
        compare_with(folder, fit, text=text)


def test_the_fit_stage_records_its_experiment(w16, tmp_path):
    """fit.json from the fit_experiment job carries the chi_k.csv's SHA-256, which the
    comparison accepts for that experiment and refuses for another."""
    from dualbench.scoring.experiment_fit import fit_stage

    # A 'measurement': the fast engine's chi(k) of a thermal frame (the potentials' paths).
    k = K_EXP
    model = ex.chunk_fast({0: thermal(0)}, w16["table"], absorbers_per_snapshot=0,
                                  seed=0).chi[0]
    ex.write_chi_k(tmp_path / "exp" / "chi_k.csv", k, 0.9 * np.interp(k, ex.K_GRID, model))
    ex.write_chi_k(tmp_path / "other" / "chi_k.csv", k, 0.5 * np.interp(k, ex.K_GRID, model))
    fit_stage(tmp_path / "exp" / "chi_k.csv", bcc_w(), w16["pots"].folder,
              exafs={"cluster_radius_A": 3.5}, ft=vars(FT),
              fit={"shells": 1, "rmin_A": 1.5, "rmax_A": 3.0}, out=tmp_path / "fit.json")
    record = json.loads((tmp_path / "fit.json").read_text())
    assert record["experiment_sha256"] == sha256_of(tmp_path / "exp" / "chi_k.csv")
    assert read_fit(tmp_path / "fit.json", tmp_path / "exp" / "chi_k.csv")["s02"] > 0
    with pytest.raises(ValueError, match="experiment_sha256"):
        read_fit(tmp_path / "fit.json", tmp_path / "other" / "chi_k.csv")


def test_snapshots_with_other_atoms_name_the_file_and_frame():
    """Potentials from the mean positions of snapshots whose second frame has another
    atom count: refused naming the file and the frame (issue 27 item 7)."""
    from ase.build import bulk

    from dualbench.exafs.clusters import average_structure

    cell = bulk("W", "bcc", a=3.1652, cubic=True).repeat((2, 2, 2))
    with pytest.raises(ValueError, match=r"snaps\.extxyz: frame 1: 15 atoms"):
        average_structure([cell, cell[:-1]], "snaps.extxyz")
