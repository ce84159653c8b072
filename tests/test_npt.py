"""NPT (md.ensemble: npt): the barostat's physics on EMT Cu, CHGNet kill-and-resume, the
pressure and cell diagnostics, sigma^2 in varying cells, and NVT left as it was."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import BFGS

from dualbench.diagnostics import (
    md_diagnostics,
    radial_distribution,
    shell_sigma2,
)
from dualbench.md.checkpoint import CHECKPOINT_FILE, inputs_fingerprint
from dualbench.md.driver import run_md
from dualbench.md.settings import LOG_COLUMNS, md_settings, trajectory_params
from dualbench.stats import block_standard_error

A_W = 3.1652  # bcc W lattice parameter, Å
T_CU = 50.0  # K: cold, so that thermal expansion (about 0.1 % for EMT Cu) stays small


class Killed(Exception):
    """Stands for SIGKILL in the resume test."""


def emt_lattice(pressure_GPa: float) -> float:
    """Oracle: EMT Cu's fcc lattice parameter (Å) at 0 K under ``pressure_GPa``, from a
    cell relaxation of the 4-atom cell (ASE's FrechetCellFilter with scalar_pressure)."""
    unit = bulk("Cu", "fcc", a=3.6, cubic=True)
    unit.calc = EMT()
    BFGS(FrechetCellFilter(unit, scalar_pressure=pressure_GPa * units.GPa), logfile=None).run(
        fmax=1e-6
    )
    lengths = unit.cell.lengths()
    assert np.allclose(lengths, lengths[0], rtol=1e-6)
    return float(lengths[0])


def cu_npt_settings(pressure_GPa: float, **overrides):
    values = dict(
        ensemble="npt",
        pressure_GPa=pressure_GPa,
        barostat_time_fs=50.0,
        equilibration_steps=150,
        production_steps=150,
        snapshot_every=10,
        checkpoint_every=100,
        min_distance_A=1.0,
        device="cpu",
    )
    values.update(overrides)
    return md_settings({}, temperature_K=T_CU, seed=0, **values)


@pytest.fixture(scope="module", params=[0.0, 5.0], ids=["0GPa", "5GPa"])
def cu_npt_run(request, tmp_path_factory):
    """EMT Cu 2x2x2 (32 atoms) under NPT from a cell off the EMT lattice at the target
    pressure: 3 % compressed at 0 GPa, 1 % expanded at 5 GPa; and its diagnostics."""
    pressure = request.param
    a_target = emt_lattice(pressure)
    a_start = a_target * (0.97 if pressure == 0.0 else 1.01)
    out = tmp_path_factory.mktemp(f"cu_npt_{pressure:g}")
    atoms = bulk("Cu", "fcc", a=a_start, cubic=True).repeat(2)
    run_md(atoms, EMT(), cu_npt_settings(pressure), out)
    diag = md_diagnostics(
        out / "snapshots.extxyz", out / "supercell.extxyz", "Cu", T_CU, out,
        md_log=out / "md_log.csv", supercell=[2, 2, 2],
    )
    return dict(pressure=pressure, a_target=a_target, a_start=a_start, out=out, diag=diag)


# --------------------------------------------------------------------------------------
# The barostat's physics


def test_npt_finds_the_emt_lattice_at_the_pressure(cu_npt_run):
    run, diag = cu_npt_run, cu_npt_run["diag"]
    a_target, a_start = run["a_target"], run["a_start"]
    frames = read(run["out"] / "snapshots.extxyz", index=":")
    lengths = np.array([f.cell.lengths() for f in frames])
    # The cell's shape is kept (hydrostatic): cubic in every snapshot, but its size moved.
    assert np.allclose(lengths, lengths[:, :1], rtol=1e-9)
    assert np.allclose([f.cell.angles() for f in frames], 90.0)
    a_frames = lengths[:, 0] / 2
    # The diagnostics' mean lattice parameter is the numpy mean of the snapshots' edges / 2.
    assert diag["mean_lattice_parameter_A"] == pytest.approx(a_frames.mean(), rel=1e-12)
    assert diag["mean_volume_A3_per_atom"] == pytest.approx(np.mean(lengths[:, 0] ** 3 / 32))
    assert diag["supercell"] == [2, 2, 2] and diag["cell_source"] == "snapshots"
    # The start was 3 % (or 1 %) off; production sits within 0.3 % of the relaxed lattice
    # (classical thermal expansion at 50 K is about 0.1 %), on the right side of the start.
    assert abs(a_start / a_target - 1) >= 0.01
    assert diag["mean_lattice_parameter_A"] == pytest.approx(a_target, rel=3e-3)
    assert 0 < diag["sem_lattice_parameter_A"] < 2e-3 * a_target
    # ... and the mean pressure (virial plus kinetic) is the target.
    assert diag["mean_pressure_GPa"] == pytest.approx(run["pressure"], abs=0.2)
    assert diag["pressure_source"] == "md_log production rows"
    # Temperature still canonical: the mean within 4 standard errors of the target.
    log = pd.read_csv(run["out"] / "md_log.csv")
    t_prod = log.loc[log["phase"] == "production", "temperature_K"]
    assert abs(t_prod.mean() - T_CU) < 4 * block_standard_error(t_prod.to_numpy())


def test_npt_log_pressure_and_volume_by_hand(cu_npt_run):
    out, diag = cu_npt_run["out"], cu_npt_run["diag"]
    log = pd.read_csv(out / "md_log.csv")
    assert list(log.columns) == [*LOG_COLUMNS, "volume_A3", "pressure_GPa", "phase"]
    frames = read(out / "snapshots.extxyz", index=":")
    masses = frames[0].get_masses()[:, None]
    for frame in frames:
        row = log.loc[log["step"] == frame.info["step"]].iloc[0]
        # Pressure by hand from the snapshot: minus the mean normal stress plus N kB T / V
        # with the kinetic T of 3N - 3 = 93 dof.
        ekin = 0.5 * np.sum(frame.get_momenta() ** 2 / masses)
        t_kin = 2 * ekin / (93 * units.kB)
        volume = abs(np.linalg.det(frame.cell))
        p_hand = (-np.mean(frame.get_stress()[:3]) + 32 * units.kB * t_kin / volume) / units.GPa
        assert row["volume_A3"] == pytest.approx(volume, rel=1e-9)
        assert row["pressure_GPa"] == pytest.approx(p_hand, rel=1e-6, abs=1e-6)
    # The diagnostics' mean pressure is the numpy mean of the logged production rows.
    prod = log.loc[log["phase"] == "production", "pressure_GPa"].to_numpy()
    assert len(prod) == 150
    assert diag["mean_pressure_GPa"] == pytest.approx(np.mean(prod), rel=1e-12)
    # Block standard error by hand: 13 blocks of ceil(sqrt(150)) = 13 rows don't fit;
    # 11 blocks of 13 = the last 143 rows.
    blocks = prod[-143:].reshape(11, 13).mean(axis=1)
    assert diag["sem_pressure_GPa"] == pytest.approx(np.std(blocks, ddof=1) / np.sqrt(11))
    # The starting state was far from the target pressure (the oracle sees a real change).
    assert abs(log["pressure_GPa"][0] - cu_npt_run["pressure"]) > 3.0


def test_block_standard_error_by_hand():
    # 1..9: blocks of 3 with means 2, 5, 8; their std is 3, so 3 / sqrt(3).
    assert block_standard_error(np.arange(1.0, 10.0)) == pytest.approx(np.sqrt(3.0))
    # 0..9: blocks of 4, the first 2 samples left out: means 4.5 and 8.5, whose std is
    # 2 sqrt(2), so 2 sqrt(2) / sqrt(2) = 2.
    assert block_standard_error(np.arange(10.0)) == pytest.approx(2.0)
    assert block_standard_error([1.0, 2.0, 3.0]) is None  # a single block of 2


def test_npt_refuses_bussi_and_bad_settings():
    with pytest.raises(ValueError, match="npt needs thermostat langevin"):
        md_settings({"ensemble": "npt", "thermostat": "bussi"}, temperature_K=300)
    with pytest.raises(ValueError, match="ensemble 'nph'"):
        md_settings({"ensemble": "nph"}, temperature_K=300)
    with pytest.raises(ValueError, match="barostat_time_fs must be positive"):
        md_settings({"ensemble": "npt", "barostat_time_fs": 0.0}, temperature_K=300)


# --------------------------------------------------------------------------------------
# Restart


@pytest.fixture(scope="module")
def chgnet_calc():
    from dualbench.md.calculator import make_quiet_calculator
    from dualbench.models.device import set_threads

    set_threads(1)
    return make_quiet_calculator("chgnet", "cpu")


def test_npt_kill_and_resume_reproduces_the_trajectory(chgnet_calc, tmp_path):
    settings = md_settings(
        {}, temperature_K=300.0, seed=0, ensemble="npt", pressure_GPa=0.0,
        barostat_time_fs=40.0, equilibration_steps=2, production_steps=8, snapshot_every=4,
        checkpoint_every=3, device="cpu",
    )
    w16 = bulk("W", "bcc", a=A_W, cubic=True).repeat(2)

    def kill_at_5(step, atoms):
        if step == 5:
            raise Killed

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run_md(w16, chgnet_calc, settings, killed, step_hook=kill_at_5)
    assert (killed / CHECKPOINT_FILE).exists()
    steps_seen = []
    resumed = run_md(w16, chgnet_calc, settings, killed,
                     step_hook=lambda s, a: steps_seen.append(s))
    assert resumed.resumed_from_step == 3 and steps_seen == list(range(4, 11))

    whole = tmp_path / "whole"
    run_md(w16, chgnet_calc, settings, whole)
    log_a, log_b = pd.read_csv(killed / "md_log.csv"), pd.read_csv(whole / "md_log.csv")
    assert log_a["step"].tolist() == list(range(11))
    # The cell did move (CHGNet's W is compressed at the experimental lattice) ...
    assert log_b["volume_A3"].iloc[-1] / (8 * A_W**3) - 1 > 1e-3
    # ... and the continuation is the uninterrupted trajectory, cell and barostat included.
    for column in ("volume_A3", "pressure_GPa", "temperature_K", "epot_eV"):
        np.testing.assert_allclose(log_a[column], log_b[column], rtol=1e-9, err_msg=column)
    frames_a = read(killed / "snapshots.extxyz", index=":")
    frames_b = read(whole / "snapshots.extxyz", index=":")
    assert len(frames_a) == 2
    for fa, fb in zip(frames_a, frames_b, strict=True):
        np.testing.assert_allclose(fa.cell.array, fb.cell.array, rtol=1e-10)
        np.testing.assert_allclose(fa.positions, fb.positions, atol=1e-8)
        # Each snapshot keeps the cell of its own step.
        volume = log_b.loc[log_b["step"] == fb.info["step"], "volume_A3"].iloc[0]
        assert abs(np.linalg.det(fb.cell.array)) == pytest.approx(volume, rel=1e-9)


# --------------------------------------------------------------------------------------
# Diagnostics in varying cells


def test_sigma2_follows_each_frames_cell():
    # Oracle: each pair's distance by ASE's minimum-image get_distance in its own frame.
    ref = bulk("W", "bcc", a=A_W, cubic=True).repeat(3)  # 54 atoms, inscribed radius 4.75 Å
    rng = np.random.default_rng(4)
    frames = []
    for scale in (0.99, 1.0, 1.015, 1.03):
        frame = ref.copy()
        frame.set_cell(ref.cell * scale, scale_atoms=True)
        frame.positions += rng.normal(0.0, 0.04, frame.positions.shape)
        frame.wrap()
        frames.append(frame)
    table = shell_sigma2(frames, ref, "W", cutoff_A=3.0)  # the 8 first neighbours
    first = table.iloc[0]
    assert first["coordination"] == 8
    dists = []
    for frame in frames:
        for i in range(len(ref)):
            for j in range(len(ref)):
                if i != j and ref.get_distance(i, j, mic=True) < 3.0:
                    dists.append(frame.get_distance(i, j, mic=True))
    dists = np.array(dists)
    assert dists.size == 4 * 54 * 8
    assert first["r_mean_A"] == pytest.approx(dists.mean(), rel=1e-12)
    assert first["sigma2_A2"] == pytest.approx(dists.var(), rel=1e-9)
    # Pure isotropic scaling alone: sigma^2 = r0^2 var(scale) exactly.
    scaled = []
    for scale in (0.98, 1.0, 1.02):
        frame = ref.copy()
        frame.set_cell(ref.cell * scale, scale_atoms=True)
        scaled.append(frame)
    r0 = np.sqrt(3) / 2 * A_W
    row = shell_sigma2(scaled, ref, "W", cutoff_A=3.0).iloc[0]
    assert row["sigma2_A2"] == pytest.approx(r0**2 * np.var([0.98, 1.0, 1.02]), rel=1e-9)


def test_rdf_normalises_each_frame_by_its_own_density():
    ref = bulk("W", "bcc", a=A_W, cubic=True).repeat(3)
    small, large = ref.copy(), ref.copy()
    small.set_cell(ref.cell * 0.97, scale_atoms=True)
    large.set_cell(ref.cell * 1.03, scale_atoms=True)
    both = radial_distribution([small, large], r_max_A=4.0, bin_A=0.01)
    each = [radial_distribution([f], r_max_A=4.0, bin_A=0.01)["g_r"] for f in (small, large)]
    np.testing.assert_allclose(both["g_r"], 0.5 * (each[0] + each[1]), rtol=1e-12)


# --------------------------------------------------------------------------------------
# NVT unchanged, and the command line


def test_nvt_is_the_default_and_its_identity_is_unchanged():
    settings = md_settings({}, temperature_K=300.0, seed=0, device="cpu")
    assert settings.ensemble == "nvt" and settings.log_columns == LOG_COLUMNS
    # The fingerprint of this input computed by the code before NPT existed (commit
    # 48ab7f5): an interrupted NVT run's checkpoint stays valid.
    w16 = bulk("W", "bcc", a=A_W, cubic=True).repeat(2)
    assert inputs_fingerprint(w16, settings, "chgnet-id") == "0cf2e17944f4ea31"
    # The run_md rule's params of a default md config are the pre-NPT keys; NPT adds its own.
    from dualbench.md.settings import md_defaults

    assert sorted(trajectory_params(md_defaults())) == [
        "equilibration_steps", "friction_per_fs", "production_steps", "snapshot_every",
        "taut_fs", "thermostat", "timestep_fs",
    ]
    npt = trajectory_params({**md_defaults(), "ensemble": "npt"})
    assert {"ensemble", "pressure_GPa", "barostat_time_fs"} <= set(npt)


def test_cli_npt_and_diagnostics(tmp_path):
    from dualbench.cli import main

    unit = tmp_path / "W.cif"
    write(unit, bulk("W", "bcc", a=A_W, cubic=True), format="cif")
    out = tmp_path / "run"
    code = main([
        "md", "--model", "chgnet", "--structure", str(unit), "--supercell", "2", "2", "2",
        "--temperature", "300", "--steps", "4", "--equilibration-steps", "1",
        "--timestep", "2", "--snapshot-every", "2", "--out", str(out), "--device", "cpu",
        "--threads", "1", "--ensemble", "npt", "--pressure", "0.0001", "--barostat-time", "40",
    ])
    assert code == 0
    info = json.loads((out / "md_run.json").read_text())
    assert info["settings"]["ensemble"] == "npt"
    assert info["settings"]["pressure_GPa"] == 1e-4 and info["settings"]["barostat_time_fs"] == 40
    log = pd.read_csv(out / "md_log.csv")
    assert {"volume_A3", "pressure_GPa"} <= set(log.columns)
    code = main([
        "md-diagnostics", "--snapshots", str(out / "snapshots.extxyz"),
        "--reference", str(out / "supercell.extxyz"), "--absorber", "W",
        "--temperature", "300", "--log", str(out / "md_log.csv"), "--out", str(out),
    ])
    assert code == 0
    saved = json.loads((out / "diagnostics.json").read_text())
    assert saved["supercell"] == [2, 2, 2]  # from md_run.json beside the log
    frames = read(out / "snapshots.extxyz", index=":")
    assert saved["mean_lattice_parameter_A"] == pytest.approx(
        np.mean([f.cell.lengths().mean() / 2 for f in frames]), rel=1e-12
    )
    prod = log.loc[log["phase"] == "production", "pressure_GPa"]
    assert saved["mean_pressure_GPa"] == pytest.approx(prod.mean(), rel=1e-12)
    with pytest.raises(SystemExit):
        main(["md", "--model", "chgnet", "--structure", str(unit), "--temperature", "300",
              "--out", str(out), "--barostat-time", "0"])

