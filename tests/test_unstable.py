"""A model whose MD leaves the physical regime is scored as "MD unstable", not a crash.

The run's guard stop is written as its result (md_run.json ``status`` unstable), every
later stage writes its outputs for it (header-only tables, the failure in the .npz and
JSON), the scoring jobs leave it out of the E0 fit and give it NaN scores with its
failure beside them, and the summary keeps its DFT-arm scores.  An atom that leaves its
lattice site (the fast engine's check) is the same kind of failure, found later.

Oracles: the guard itself (the step at which ``run_md`` raises for the same trajectory),
the E0 shift put into a hand-made "experiment" (7 eV), and the same comparison without
the unstable run (a run that is left out cannot change the others' scores).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.io import read, write

from dualbench import exafs as ex
from dualbench.diagnostics import SIGMA2_COLUMNS, md_diagnostics
from dualbench.exafs import K_GRID, write_chi_k
from dualbench.exafs.engine_fast import SiteHopError
from dualbench.md.driver import run_md, run_md_job
from dualbench.md.guards import MDGuardError
from dualbench.md.settings import NON_TRAJECTORY_SETTINGS, md_defaults, md_settings
from dualbench.runstatus import RunFailure, file_failure, md_failure
from dualbench.scoring.against_experiment import compare_stage
from dualbench.scoring.against_reference_model import reference_stage
from dualbench.scoring.convergence import convergence_record
from dualbench.summary import build_summary

A_W = 3.1652  # Å
FT = ex.FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0,
                   rmax=5.0)
K_EXP = np.round(np.arange(0, 17.0 + 1e-9, 0.05), 6)
ETOK = 0.2624682843  # 2 m_e / hbar^2, 1/(Å^2 eV)


def hot_w16():
    """16 bcc W atoms with 0.2 Å random displacements: with 4 fs steps its potential
    energy heats the run far past twice the target within a few steps."""
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat(2)
    atoms.positions += np.random.default_rng(1).normal(0.0, 0.2, atoms.positions.shape)
    return atoms


def hot_settings(on_unstable: str):
    return md_settings({}, temperature_K=300.0, seed=0, equilibration_steps=2,
                       production_steps=6, snapshot_every=3, checkpoint_every=3,
                       device="cpu", timestep_fs=4.0, max_temperature_factor=2.0,
                       on_unstable=on_unstable)


@pytest.fixture(scope="module")
def unstable_run(tmp_path_factory):
    """A real CHGNet run a guard stops, recorded (md.on_unstable: record), and the step
    at which ``run_md`` itself raises on the same trajectory."""
    from dualbench.md.calculator import make_quiet_calculator
    from dualbench.models.device import set_threads

    set_threads(1)
    base = tmp_path_factory.mktemp("unstable")
    with pytest.raises(MDGuardError, match="runaway") as err:
        run_md(hot_w16(), make_quiet_calculator("chgnet", "cpu"), hot_settings("stop"),
               base / "oracle")
    md_dir = base / "run" / "md"
    result = run_md_job(model="chgnet", unit_cell=hot_w16(), supercell=(1, 1, 1),
                        settings=hot_settings("record"), out_dir=md_dir, threads=1)
    return {"dir": md_dir, "result": result, "step": err.value.step, "reason": err.value.reason}


# ----------------------------------------------------------------------------- settings


def test_on_unstable_is_a_study_setting_that_defaults_to_record():
    assert md_defaults()["on_unstable"] == "record"
    assert "on_unstable" in NON_TRAJECTORY_SETTINGS  # changing it reruns no finished MD
    with pytest.raises(ValueError, match="on_unstable 'ignore' is not one of record, stop"):
        md_settings({"on_unstable": "ignore"}, temperature_K=300.0)


def test_failure_text_and_round_trip():
    md = RunFailure(stage="md", reason="temperature 900.0 K exceeds (runaway)", step=9)
    hop = RunFailure(stage="exafs", reason="atom 5 is 1.50 Å from its ideal site",
                     snapshot=2)
    assert md.text() == "MD unstable at step 9: temperature 900.0 K exceeds (runaway)"
    assert hop.text().startswith("MD left the crystal at snapshot 2: atom 5")
    assert RunFailure.from_json(md.to_json()) == md and RunFailure.from_json(hop.to_json()) == hop


# ----------------------------------------------------------------------------- the MD


def test_a_guard_stop_is_recorded_as_the_run_result(unstable_run):
    md_dir, result = unstable_run["dir"], unstable_run["result"]
    info = json.loads((md_dir / "md_run.json").read_text())
    assert info["status"] == "unstable" and result.status == "unstable"
    assert info["failure"] == {"stage": "md", "reason": unstable_run["reason"],
                               "step": unstable_run["step"]}
    assert 0 < unstable_run["step"] < 8
    assert md_failure(md_dir) == RunFailure("md", unstable_run["reason"], unstable_run["step"])
    # every output of the rule exists, so the study goes on; nothing claims a trajectory
    assert (md_dir / "snapshots.extxyz").read_text() == ""
    log = pd.read_csv(md_dir / "md_log.csv")
    assert log.empty and list(log.columns[:3]) == ["step", "time_fs", "temperature_K"]
    assert len(read(md_dir / "supercell.extxyz", index=":")) == 1
    assert not (md_dir / "md_checkpoint.npz").exists()
    assert (md_dir / "md_guard_failure.extxyz").exists()  # the failing state, to look at


def test_stop_still_fails_the_job(tmp_path):
    with pytest.raises(MDGuardError, match="runaway"):
        run_md_job(model="chgnet", unit_cell=hot_w16(), supercell=(1, 1, 1),
                   settings=hot_settings("stop"), out_dir=tmp_path, threads=1)
    assert not (tmp_path / "md_run.json").exists()


def test_diagnostics_of_an_unstable_run_are_header_only(unstable_run, tmp_path):
    md_dir = unstable_run["dir"]
    out = md_diagnostics(md_dir / "snapshots.extxyz", md_dir / "supercell.extxyz", "W", 300.0,
                         tmp_path, md_log=md_dir / "md_log.csv")
    sigma2 = pd.read_csv(tmp_path / "sigma2.csv")
    assert sigma2.empty and tuple(sigma2.columns) == SIGMA2_COLUMNS
    assert pd.read_csv(tmp_path / "rdf.csv").empty
    saved = json.loads((tmp_path / "diagnostics.json").read_text())
    assert saved["status"] == out["status"] == "unstable"
    assert saved["failure"]["step"] == unstable_run["step"]


# ----------------------------------------------------------------------------- EXAFS

SETTINGS = ex.FeffSettings(edge="L3", rmax_A=3.0, nleg=2, cluster_radius_A=3.5)
EXAFS = {"engine": "fast", "cluster_radius_A": 3.5, "rmax_A": 3.0, "nleg": 2,
         "criteria_pct": None, "snapshots": 0, "absorbers_per_snapshot": 2, "chunk_size": 4}


def bcc_w16():
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat(2)
    atoms.pbc = True
    return atoms


@pytest.fixture(scope="module")
def w16_paths(tmp_path_factory):
    """Potentials and the fast engine's path table of the 16-atom cell (RPATH 3 Å)."""
    out = tmp_path_factory.mktemp("w16")
    pots = ex.compute_potentials(bcc_w16(), "W", SETTINGS, out / "pot", work_root=out)
    ex.write_path_table(out / "paths.npz",
                        ex.build_path_table(bcc_w16(), pots, SETTINGS, work_root=out))
    return pots.folder, out / "paths.npz"


def hopping_run(md_dir, on_unstable: str | None):
    """Three snapshots; in the third, atom 5 sits 1.5 Å off its site (half the
    nearest-neighbour distance is 1.37 Å)."""
    md_dir.mkdir(parents=True)
    frames = []
    for i in range(3):
        atoms = bcc_w16()
        atoms.positions += np.random.default_rng(i).normal(0.0, 0.04, atoms.positions.shape)
        frames.append(atoms)
    frames[2].positions[5] += [1.5, 0.0, 0.0]
    write(md_dir / "snapshots.extxyz", frames, format="extxyz")
    if on_unstable is not None:
        (md_dir / "md_run.json").write_text(json.dumps(
            {"status": "ok", "settings": {"on_unstable": on_unstable}}))
    return md_dir / "snapshots.extxyz"


def chunk(snapshots, out, pots="/nonexistent", paths=None):
    return ex.chunk_stage(snapshots, pots, out, exafs=EXAFS, edge="L3", chunk=0, n_chunks=1,
                          seed=0, paths_file=paths)


def test_chunk_of_an_unstable_md_has_no_spectra(unstable_run, tmp_path):
    # no potentials or path table is read for it (there may be none: the material's may
    # have failed for other reasons, and none is needed)
    chunk(unstable_run["dir"] / "snapshots.extxyz", tmp_path / "0.npz")
    back = ex.read_chunk(tmp_path / "0.npz")
    assert back.chi.shape == (0, len(K_GRID))
    assert back.failure == md_failure(unstable_run["dir"])


@pytest.mark.parametrize("recorded", [None, "record"])
def test_an_atom_off_its_site_is_recorded_as_left_the_crystal(w16_paths, tmp_path, recorded):
    pots, paths = w16_paths
    snaps = hopping_run(tmp_path / "md", recorded)  # None: a run from before the setting
    chunk(snaps, tmp_path / "0.npz", pots, paths)
    failure = ex.read_chunk(tmp_path / "0.npz").failure
    assert failure.stage == "exafs" and failure.snapshot == 2
    assert failure.reason.startswith("atom 5 is 1.50 Å from its ideal site")


def test_an_atom_off_its_site_fails_the_job_with_stop(w16_paths, tmp_path):
    pots, paths = w16_paths
    snaps = hopping_run(tmp_path / "md", "stop")
    with pytest.raises(SiteHopError, match=r"frame 2: atom 5 is 1\.50 Å from its ideal site"):
        chunk(snaps, tmp_path / "0.npz", pots, paths)
    assert not (tmp_path / "0.npz").exists()


def test_average_of_a_failed_chunk_is_header_only(w16_paths, tmp_path):
    pots, paths = w16_paths
    good = hopping_run(tmp_path / "good" / "md", "record")
    frames = read(good, index=":2")
    write(good, frames, format="extxyz")  # no hop left
    chunk(good, tmp_path / "0.npz", pots, paths)
    chunk(hopping_run(tmp_path / "bad" / "md", "record"), tmp_path / "1.npz", pots, paths)
    assert ex.read_chunk(tmp_path / "0.npz").failure is None
    out = {name: tmp_path / "avg" / name for name in
           ("chi_k.csv", "chi_r.csv", "convergence.csv", "chi_snapshots.npz")}
    assert ex.average_stage([tmp_path / "0.npz", tmp_path / "1.npz"], vars(FT),
                            out["chi_k.csv"], out["chi_r.csv"], out["convergence.csv"],
                            out["chi_snapshots.npz"]) is None
    assert list(pd.read_csv(out["chi_k.csv"]).columns) == ["k", "chi", "chi_stderr"]
    for name in ("chi_k.csv", "chi_r.csv", "convergence.csv"):
        assert pd.read_csv(out[name]).empty
    assert file_failure(out["chi_snapshots.npz"]).snapshot == 2
    with pytest.raises(ValueError, match=r"chi_k.csv: no rows \(an unstable run"):
        ex.read_chi_k(out["chi_k.csv"])


# ----------------------------------------------------------------------------- scoring


def two_shells(k, sigma2):
    k = np.asarray(k, dtype=float)
    amp = 8 * np.exp(-2 * k**2 * sigma2) / (k * 2.74**2 + 1) * np.exp(-2 * 2.74 / 8)
    phase = -1.2 - 0.08 * k
    return amp * np.sin(2 * k * 2.74 + phase)


def write_run(folder, sigma2, failure=None):
    """chi_k.csv and chi_snapshots.npz of a run (20 noisy snapshots), or of a failed one."""
    folder.mkdir(parents=True)
    if failure is not None:
        pd.DataFrame(columns=["k", "chi", "chi_stderr"]).to_csv(folder / "chi_k.csv",
                                                                index=False)
        np.savez(folder / "chi_snapshots.npz", k=K_GRID, snapshot_means=np.zeros((0, 1)),
                 failure=np.array(failure.to_json()))
        return folder
    rng = np.random.default_rng(int(sigma2 * 1e4))
    snaps = two_shells(K_GRID, sigma2) + rng.normal(0, 0.002, (20, len(K_GRID)))
    write_chi_k(folder / "chi_k.csv", K_GRID, snaps.mean(axis=0), snaps.std(axis=0) / 4.5)
    np.savez(folder / "chi_snapshots.npz", k=K_GRID, snapshot_means=snaps)
    return folder


HOT = RunFailure(stage="md", reason="temperature 900.0 K exceeds 3.0 x the target", step=9)


@pytest.fixture()
def three_runs(tmp_path):
    q = np.sqrt(np.clip(K_EXP**2 - ETOK * 7.0, 0.0, None))  # FEFF's origin 7 eV above E0
    write_chi_k(tmp_path / "exp" / "chi_k.csv", K_EXP, 0.9 * two_shells(q, 0.004))
    runs = [{"material": "W", "model": m, "n": 0, "seed": 0}
            for m in ("chgnet", "hot", "tensornet")]
    dirs = [write_run(tmp_path / "chgnet", 0.006), write_run(tmp_path / "hot", 0.0, HOT),
            write_run(tmp_path / "tensornet", 0.004)]
    return tmp_path, runs, dirs


def compare(base, runs, dirs, out):
    compare_stage(base / "exp" / "chi_k.csv", runs, [d / "chi_k.csv" for d in dirs],
                  exafs={"s02": None, "e0_shift": "shared"}, ft=vars(FT), out_csv=out,
                  out_json=out.with_suffix(".json"),
                  snapshot_files=[d / "chi_snapshots.npz" for d in dirs])
    return pd.read_csv(out)


def test_an_unstable_run_is_not_scored_and_leaves_the_others_unchanged(three_runs):
    base, runs, dirs = three_runs
    table = compare(base, runs, dirs, base / "all.csv")
    alone = compare(base, [runs[0], runs[2]], [dirs[0], dirs[2]], base / "stable.csv")
    assert list(table["status"]) == ["ok", "unstable", "ok"]
    assert table.loc[1, "failure"] == HOT.text()
    assert table.loc[1, ["exafs_mse_k", "exafs_mse_k_lo", "e0_shift_eV", "s02"]].isna().all()
    assert table["failure"].iloc[[0, 2]].isna().all()
    # the shared E0 fit saw only the stable runs: their scores are those without the hot one
    numbers = alone.select_dtypes("number").columns
    pd.testing.assert_frame_equal(table.loc[[0, 2], numbers].reset_index(drop=True),
                                  alone[numbers], check_dtype=False)
    assert table.loc[0, "e0_shift_eV"] == pytest.approx(7.0, abs=0.2)
    assert table.loc[2, "exafs_mse_k"] < table.loc[0, "exafs_mse_k"]  # sigma2 0.004 is right
    record = json.loads((base / "all.json").read_text())
    assert [r["model"] for r in record["unstable"]] == ["hot"]
    assert len(record["results"]) == 2


def test_every_run_unstable_still_writes_the_table(three_runs):
    base, runs, dirs = three_runs
    table = compare(base, runs[1:2], dirs[1:2], base / "hot.csv")
    assert list(table["status"]) == ["unstable"] and table["exafs_mse_k"].isna().all()


def test_reference_scores_skip_an_unstable_run(three_runs):
    base, runs, dirs = three_runs
    runs = [{**r, "model": "m", "seed": s} for s, r in enumerate(runs)]
    table = reference_stage(runs, [d / "chi_k.csv" for d in dirs],
                            [d / "chi_snapshots.npz" for d in dirs], reference=("m", 0),
                            ft=vars(FT), out_csv=base / "ref.csv")
    assert list(table["status"]) == ["ok", "unstable", "ok"]
    assert np.isnan(table.loc[1, "exafs_mse_ref_k"])
    # seed 0 against seed 2 alone (seed 1 is no reference): k^2-weighted MSE by hand
    chi0 = pd.read_csv(dirs[0] / "chi_k.csv")["chi"].to_numpy()
    chi2 = pd.read_csv(dirs[2] / "chi_k.csv")["chi"].to_numpy()
    k = K_GRID
    inside = (k >= FT.kmin) & (k <= FT.kmax)
    expected = np.mean(((chi0 - chi2) * k**2)[inside] ** 2)
    assert table.loc[0, "exafs_mse_ref_k"] == pytest.approx(expected, rel=1e-9)
    assert table.loc[0, "n_reference_seeds"] == 1


def test_summary_keeps_the_dft_arm_of_an_unstable_run(three_runs):
    base, runs, dirs = three_runs
    compare(base, runs, dirs, base / "comparison.csv")
    metrics = []
    for run, mae in zip(runs, (0.30, 0.20, 0.08), strict=True):
        path = base / f"{run['model']}_dft.json"
        path.write_text(json.dumps({
            "energy_mae_eV_per_atom": 0.01, "energy_mae_offset_removed_eV_per_atom": 0.005,
            "force_mae_eV_per_A": mae, "stress_mae_GPa": None, "force_slope": 0.9}))
        metrics.append((str(path), run["model"], 0, 0))
    table = build_summary("W", metrics, base / "comparison.csv").set_index("model")
    assert list(table["md_status"]) == ["ok", "unstable", "ok"]
    assert table.loc["hot", "md_failure"] == HOT.text()
    assert table.loc["hot", "force_mae"] == pytest.approx(200.0)  # meV/Å
    assert np.isnan(table.loc["hot", "exafs_mse_k"])
    assert "status" not in table and "failure" not in table
    record = convergence_record(table.reset_index(), metrics=("force_mae", "exafs_mse_k"))
    assert record["models"]["hot"]["unstable_runs"] == [
        {"n_frames": 0, "seed": 0, "failure": HOT.text()}]
    assert "unstable_runs" not in record["models"]["chgnet"]


# ----------------------------------------------------------------------------- the study

#: A model with an imaginary phonon: every atom is pushed away from where the model first
#: saw it (force +k u, k = 5000 eV/Å^2), so any thermal displacement grows by e within
#: about 2 fs and the MD runs away; on DFT frames its forces are finite.
REPULSIVE_SITES = '''
import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class RepulsiveSites(Calculator):
    implemented_properties = ("energy", "forces", "stress")

    def __init__(self, k=5000.0, **kwargs):
        super().__init__(**kwargs)
        self.k, self.sites = k, {}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        sites = self.sites.setdefault(len(self.atoms), self.atoms.positions.copy())
        u = self.atoms.positions - sites
        self.results = {"energy": -0.5 * self.k * float(np.sum(u**2)), "forces": self.k * u,
                        "stress": np.zeros(6)}
'''


@pytest.mark.slow
def test_one_unstable_model_does_not_stop_the_study(repo, mirror, tmp_path):
    """The tiny study with CHGNet and a model that runs away, every rule: the summary has
    both, the unstable one with its DFT-arm scores, its failure, and no EXAFS score; the
    figures and the leaderboard are made, the leaderboard marking it unstable."""
    import os
    import subprocess
    import sys

    import yaml

    (tmp_path / "unstable_model.py").write_text(REPULSIVE_SITES)
    config = yaml.safe_load((repo / "config" / "test.yaml").read_text())
    config["models"] = {
        "chgnet": {"kind": "chgnet", "weights": "0.3.0"},
        "repulsive": {"kind": "ase", "calculator": "unstable_model:RepulsiveSites"},
    }
    config["sweep"]["n_frames"] = [0]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "DUALBENCH_DATA_MIRROR": str(mirror),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
         str(tmp_path / "work"), "--cores", "2", "--configfile", str(path)],
        capture_output=True, text=True, timeout=1800, env=env,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    results = tmp_path / "work" / "results" / "W"
    table = pd.read_csv(results / "summary.csv").set_index("model")
    assert table.loc["chgnet", "md_status"] == "ok"
    assert np.isfinite(table.loc["chgnet", "exafs_mse_k"])
    assert table.loc["repulsive", "md_status"] == "unstable"
    assert table.loc["repulsive", "md_failure"].startswith("MD unstable at step ")
    assert "(runaway)" in table.loc["repulsive", "md_failure"]
    assert np.isnan(table.loc["repulsive", "exafs_mse_k"])
    assert np.isfinite(table.loc["repulsive", "force_mae"])
    info = json.loads((results / "repulsive/n0/seed0/md/md_run.json").read_text())
    assert info["status"] == "unstable" and info["failure"]["stage"] == "md"
    record = json.loads((results / "convergence.json").read_text())
    assert record["models"]["repulsive"]["unstable_runs"][0]["seed"] == 0
    for figure in ("fig2", "fig3", "force_parity", "sigma2"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 5000, figure
    board = pd.read_csv(tmp_path / "work/results/suite/leaderboard.csv")
    board = board[board["row_kind"] == "vanilla"].set_index("model")
    assert board.loc["repulsive", "md_status"] == "unstable"
    # (two snapshots per run give CHGNet no interval, so no band here: test_leaderboard
    # checks the bands)
    assert np.isfinite(board.loc["chgnet", "exafs_mse_k"])
    assert np.isnan(board.loc["repulsive", "exafs_mse_k"])
    assert np.isfinite(board.loc["repulsive", "force_mae"])
    assert "MD unstable" in (tmp_path / "work/results/suite/index.html").read_text()


def test_average_potentials_from_an_unstable_run_are_refused_naming_it(unstable_run):
    from dualbench.exafs.pipeline import potentials_reference

    settings = ex.ExafsSettings.from_config({**EXAFS, "potentials_from": "average"}, "L3")
    snaps = unstable_run["dir"] / "snapshots.extxyz"
    with pytest.raises(ValueError, match="potentials_from: average takes the mean positions"
                                         r" of this run, whose MD is unstable \(MD unstable at"):
        potentials_reference({}, settings, None, snaps)


@pytest.mark.parametrize(("target", "passes", "stops", "says"), [
    (10.0, 209.0, 211.0, "exceeds the target 10.0 K + 200.0 K (runaway)"),
    (300.0, 899.0, 901.0, "exceeds 3.0 x the target 300.0 K (runaway)"),
])
def test_runaway_limit_is_at_least_the_target_plus_an_excess(target, passes, stops, says):
    """A 10 K run that relaxes into a distortion gains tens of K, which is no runaway:
    the limit is max(3 x target, target + 200 K) = 210 K at 10 K and 900 K at 300 K."""
    from dualbench.md.guards import check_temperature

    settings = md_settings({}, temperature_K=target)
    check_temperature(passes, 5, settings)
    with pytest.raises(MDGuardError, match=re.escape(says)):
        check_temperature(stops, 5, settings)
    with pytest.raises(MDGuardError, match="runaway"):
        check_temperature(float("nan"), 5, settings)
