"""The MD arm: real CHGNet NVT steps, kill-and-resume, guards, and the diagnostics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from dualbench.diagnostics import (
    md_diagnostics,
    mean_pressure_GPa,
    radial_distribution,
    reference_shells,
    shell_sigma2,
    temperature_stats,
)
from dualbench.md.checkpoint import CHECKPOINT_FILE
from dualbench.md.driver import run_md
from dualbench.md.guards import MDGuardError, check_state
from dualbench.md.settings import LOG_COLUMNS, md_defaults, md_settings

A_W = 3.1652  # bcc W lattice parameter, Å


def w_cell(repeat: int = 2) -> Atoms:
    """bcc W, the 2-atom conventional cell repeated (repeat=2: 16 atoms)."""
    return bulk("W", "bcc", a=A_W, cubic=True).repeat(repeat)


def tiny(**overrides):
    values = dict(
        equilibration_steps=2,
        production_steps=6,
        snapshot_every=3,
        checkpoint_every=3,
        device="cpu",
    )
    values.update(overrides)
    return md_settings({}, temperature_K=300.0, seed=0, **values)


@pytest.fixture(scope="module")
def chgnet_calc():
    """Pretrained CHGNet 0.3.0 as an ASE calculator (offline, CPU)."""
    from dualbench.md.calculator import make_quiet_calculator
    from dualbench.models.device import set_threads

    # One thread: on a busy 2-core machine two OpenMP threads run ~10x slower.
    set_threads(1)
    return make_quiet_calculator("chgnet", "cpu")


class Killed(Exception):
    """Stands for SIGKILL in the resume test."""


# --------------------------------------------------------------------------------------
# Settings


def test_md_defaults_are_the_schema_defaults_of_the_md_section():
    """One function gives every flat section's schema defaults; md uses it."""
    from dualbench.schema import load_schema, section_defaults

    props = load_schema()["properties"]["md"]["properties"]
    assert md_defaults() == section_defaults("md")
    assert set(md_defaults()) == {name for name, spec in props.items() if "default" in spec}
    assert md_defaults()["thermostat"] == props["thermostat"]["default"]


def test_settings_take_schema_defaults_and_overrides():
    defaults = md_defaults()
    settings = md_settings({"timestep_fs": 1.0}, temperature_K=500, seed=3, snapshot_every=None)
    assert settings.timestep_fs == 1.0
    assert settings.snapshot_every == defaults["snapshot_every"]
    assert settings.thermostat == defaults["thermostat"] == "langevin"
    assert settings.total_steps == defaults["equilibration_steps"] + defaults["production_steps"]
    with pytest.raises(ValueError, match="unknown md setting"):
        md_settings({"timestep": 1.0}, temperature_K=300)
    with pytest.raises(ValueError, match="thermostat"):
        md_settings({"thermostat": "berendsen"}, temperature_K=300)
    with pytest.raises(ValueError, match="no snapshot"):
        md_settings({"production_steps": 5, "snapshot_every": 10}, temperature_K=300)


# --------------------------------------------------------------------------------------
# Real MD with CHGNet


@pytest.mark.parametrize("thermostat", ["langevin", "bussi"])
def test_short_chgnet_run_outputs(chgnet_calc, tmp_path, thermostat):
    settings = tiny(thermostat=thermostat)
    result = run_md(w_cell(), chgnet_calc, settings, tmp_path)

    assert result.n_atoms == 16 and result.n_dof == 45
    assert result.resumed_from_step == 0
    assert result.n_snapshots == 2 and result.n_log_rows == 9
    assert not (tmp_path / CHECKPOINT_FILE).exists()

    log = pd.read_csv(tmp_path / "md_log.csv")
    assert list(log.columns[:5]) == list(LOG_COLUMNS)
    assert log["step"].tolist() == list(range(9))
    assert np.allclose(log["time_fs"], 2.0 * log["step"])
    assert log["phase"].tolist() == ["initial"] + ["equilibration"] * 2 + ["production"] * 6
    # A Maxwell-Boltzmann start at 300 K, 45 dof: the canonical spread is 300 sqrt(2/45)
    # = 63 K; every row within 4 of it.
    sigma_t = 300.0 * np.sqrt(2.0 / 45)
    assert (log["temperature_K"] - 300.0).abs().max() < 4 * sigma_t
    # Step 0 is the ideal lattice (CHGNet's energy of it, computed here); later steps lie
    # above that minimum by less than the 3 kB T per atom a thermal state holds at most.
    lattice = w_cell()
    lattice.calc = chgnet_calc
    e_ideal = lattice.get_potential_energy()
    assert log["epot_eV"][0] == pytest.approx(e_ideal, abs=1e-4)
    excess_per_atom = (log["epot_eV"] - e_ideal) / 16
    assert excess_per_atom.between(-1e-4, 3 * units.kB * 300.0).all()
    assert excess_per_atom.iloc[-1] > 1e-3  # eV/atom: the atoms did leave their sites

    frames = read(tmp_path / "snapshots.extxyz", index=":")
    assert len(frames) == 2
    assert [f.info["step"] for f in frames] == [5, 8]
    for frame in frames:
        assert np.allclose(frame.cell, 2 * A_W * np.eye(3))
        assert frame.pbc.all() and len(frame) == 16
        assert frame.get_forces().shape == (16, 3)
        assert np.isfinite(frame.get_potential_energy())
        assert np.abs(frame.get_momenta().sum(axis=0)).max() < 1e-6  # COM fixed
    ideal = read(tmp_path / "supercell.extxyz")
    assert np.allclose(ideal.positions, w_cell().positions)
    info = json.loads((tmp_path / "md_run.json").read_text())
    assert info["settings"]["thermostat"] == thermostat
    assert info["result"]["n_snapshots"] == 2
    # Thermal pressure: the hot snapshots push harder on the walls than the ideal lattice
    # at the same volume (kinetic N kB T / V = 0.26 GPa plus an anharmonic virial part).
    p_static = -np.mean(lattice.get_stress()[:3]) / units.GPa
    p_thermal = mean_pressure_GPa(frames) - p_static
    assert 0.05 < p_thermal < 3.0, (p_static, p_thermal)


def test_stress_only_on_snapshot_steps_same_trajectory(chgnet_calc, tmp_path):
    """The MD calculator skips CHGNet's stress pass between snapshots; the run is bitwise
    the run of CHGNet's own calculator, which computes everything on every call."""
    from chgnet.model.dynamics import CHGNetCalculator

    from dualbench.models.chgnet_calculator import StressOnDemandCalculator

    tasks: list[str] = []

    class Spy(StressOnDemandCalculator):
        def task_for(self, properties):
            tasks.append(super().task_for(properties))
            return tasks[-1]

    net = chgnet_calc.model
    settings = tiny(production_steps=9, snapshot_every=3)
    spy = Spy(net, use_device="cpu")
    run_md(w_cell(), spy, settings, tmp_path / "on_demand")
    assert spy.stress_wanted  # after the run, every call computes it again
    run_md(w_cell(), CHGNetCalculator(net, use_device="cpu"), settings, tmp_path / "chgnet")
    # Steps 0-11, one force call each; the snapshots are steps 5, 8 and 11.
    assert tasks == ["ef"] * 5 + ["efsm"] + ["ef"] * 2 + ["efsm"] + ["ef"] * 2 + ["efsm"]
    ours = read(tmp_path / "on_demand" / "snapshots.extxyz", index=":")
    theirs = read(tmp_path / "chgnet" / "snapshots.extxyz", index=":")
    assert [f.info["step"] for f in ours] == [5, 8, 11]
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.get_forces(), b.get_forces())
        assert np.array_equal(a.get_stress(), b.get_stress())
        assert a.get_potential_energy() == b.get_potential_energy()
    log_ours = pd.read_csv(tmp_path / "on_demand" / "md_log.csv")
    log_theirs = pd.read_csv(tmp_path / "chgnet" / "md_log.csv")
    pd.testing.assert_frame_equal(log_ours, log_theirs, check_exact=True)
    # Asked by name, the stress is computed whatever the flag.
    atoms = w_cell()
    atoms.calc = Spy(net, use_device="cpu")
    atoms.calc.stress_wanted = False
    assert atoms.get_forces().shape == (16, 3) and tasks[-1] == "ef"
    stress = atoms.get_stress()
    assert tasks[-1] == "efs"
    reference = w_cell()
    reference.calc = CHGNetCalculator(net, use_device="cpu")
    assert np.array_equal(stress, reference.get_stress())


@pytest.mark.parametrize("thermostat", ["langevin", "bussi"])
def test_kill_and_resume_continues_from_checkpoint(chgnet_calc, tmp_path, thermostat):
    # Bussi keeps state of its own (the energy it transferred) beside the random stream.
    settings = tiny(equilibration_steps=2, production_steps=8, snapshot_every=4,
                    thermostat=thermostat)

    def kill_at_5(step, atoms):
        if step == 5:
            raise Killed

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run_md(w_cell(), chgnet_calc, settings, killed, step_hook=kill_at_5)
    assert (killed / CHECKPOINT_FILE).exists()
    for name in ("snapshots.extxyz", "md_log.csv", "md_run.json"):
        assert not (killed / name).exists(), f"{name} left behind by a killed run"

    steps_seen = []
    resumed = run_md(
        w_cell(), chgnet_calc, settings, killed, step_hook=lambda s, a: steps_seen.append(s)
    )
    assert resumed.resumed_from_step == 3  # the last checkpoint, not 0
    assert steps_seen == list(range(4, 11))
    assert resumed.n_snapshots == 2 and resumed.n_log_rows == 11
    assert not (killed / CHECKPOINT_FILE).exists()

    # The continuation is the same trajectory as an uninterrupted run (same RNG stream).
    whole = tmp_path / "whole"
    run_md(w_cell(), chgnet_calc, settings, whole)
    log_a = pd.read_csv(killed / "md_log.csv")
    log_b = pd.read_csv(whole / "md_log.csv")
    assert log_a["step"].tolist() == list(range(11))
    np.testing.assert_allclose(log_a["temperature_K"], log_b["temperature_K"], rtol=1e-6)
    np.testing.assert_allclose(log_a["epot_eV"], log_b["epot_eV"], rtol=1e-7)
    frames_a = read(killed / "snapshots.extxyz", index=":")
    frames_b = read(whole / "snapshots.extxyz", index=":")
    for fa, fb in zip(frames_a, frames_b, strict=True):
        np.testing.assert_allclose(fa.positions, fb.positions, atol=1e-6)


def test_checkpoint_of_other_inputs_is_ignored(chgnet_calc, tmp_path):
    settings = tiny(equilibration_steps=0, production_steps=3, snapshot_every=3,
                    checkpoint_every=1)

    def kill_at_2(step, atoms):
        if step == 2:
            raise Killed

    with pytest.raises(Killed):
        run_md(w_cell(), chgnet_calc, settings, tmp_path, step_hook=kill_at_2)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    result = run_md(w_cell(), chgnet_calc, replace(settings, seed=7), tmp_path)
    assert result.resumed_from_step == 0


def test_checkpoint_of_another_model_is_ignored(chgnet_calc, tmp_path, caplog):
    """A checkpoint left by another model's run (another fine-tuned checkpoint file) is
    not continued: the run starts again from step 0."""
    from dualbench.models.resolve import parse_model_arg

    def model_fingerprint(model) -> str:
        return parse_model_arg(model).fingerprint()

    first, second = tmp_path / "a.pth.tar", tmp_path / "b.pth.tar"
    first.write_bytes(b"weights of model A")
    second.write_bytes(b"weights of model B")
    id_a, id_b = model_fingerprint(first), model_fingerprint(second)
    assert id_a != id_b and id_a != model_fingerprint("chgnet")
    settings = tiny(equilibration_steps=0, production_steps=3, snapshot_every=3,
                    checkpoint_every=1)

    def kill_at_2(step, atoms):
        if step == 2:
            raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        run_md(w_cell(), chgnet_calc, settings, out, model_id=id_a, step_hook=kill_at_2)
    assert (out / CHECKPOINT_FILE).exists()
    steps = []
    result = run_md(w_cell(), chgnet_calc, settings, out, model_id=id_b,
                    step_hook=lambda s, a: steps.append(s))
    assert result.resumed_from_step == 0 and steps == [1, 2, 3]
    assert "written for other inputs" in caplog.text
    assert len(pd.read_csv(out / "md_log.csv")) == 4


# --------------------------------------------------------------------------------------
# Guards


class NaNForces(Calculator):
    """A fake calculator that returns NaN forces (for the non-finite-force guard only)."""

    implemented_properties = ("energy", "forces")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.full((len(self.atoms), 3), np.nan)}


def test_guard_non_finite_forces(tmp_path):
    with pytest.raises(MDGuardError, match="step 0: non-finite forces") as err:
        run_md(w_cell(), NaNForces(), tiny(), tmp_path)
    assert err.value.step == 0
    assert not (tmp_path / "snapshots.extxyz").exists()
    assert not (tmp_path / "md_log.csv").exists()


def test_guard_atoms_too_close(chgnet_calc, tmp_path):
    atoms = w_cell()
    atoms.positions[1] = atoms.positions[0] + [0.5, 0.0, 0.0]
    with pytest.raises(MDGuardError, match=r"0\.500 Å apart") as err:
        run_md(atoms, chgnet_calc, tiny(), tmp_path)
    assert err.value.step == 0
    assert not (tmp_path / "snapshots.extxyz").exists()
    assert (tmp_path / "md_guard_failure.extxyz").exists()


def test_guard_atoms_too_close_minimum_image(chgnet_calc):
    # Two atoms 0.5 Å apart only through the periodic boundary.
    atoms = Atoms("W2", positions=[[0.1, 1, 1], [A_W - 0.4, 1, 1]], cell=[A_W] * 3, pbc=True)
    atoms.calc = chgnet_calc
    atoms.get_forces()
    with pytest.raises(MDGuardError, match=r"0\.500 Å apart"):
        check_state(atoms, 7, tiny())


def test_guard_runaway_temperature(chgnet_calc, tmp_path):
    # A lattice with 0.2 Å random displacements: its potential energy heats the run far
    # beyond twice the target within a few steps.
    atoms = w_cell()
    atoms.positions += np.random.default_rng(1).normal(0.0, 0.2, atoms.positions.shape)
    settings = tiny(timestep_fs=4.0, max_temperature_factor=2.0)
    with pytest.raises(MDGuardError, match="runaway") as err:
        run_md(atoms, chgnet_calc, settings, tmp_path)
    assert 0 < err.value.step < settings.total_steps
    assert not (tmp_path / "snapshots.extxyz").exists()


def test_guard_hot_state_without_model():
    from ase import units

    atoms = w_cell()
    rng = np.random.default_rng(0)
    momenta = rng.normal(size=(16, 3))
    momenta -= momenta.mean(axis=0)
    atoms.set_momenta(momenta)
    target = 300.0
    t_now = atoms.get_kinetic_energy() * 2 / (3 * 16 * units.kB)
    atoms.set_momenta(momenta * np.sqrt(5 * target / t_now))  # about 5 x the target
    with pytest.raises(MDGuardError, match="exceeds 3.0 x the target"):
        check_state(atoms, 12, tiny())


# --------------------------------------------------------------------------------------
# Diagnostics


def test_temperature_stats_canonical_spread():
    stats = temperature_stats([290.0, 310.0], target_K=300.0, n_atoms=54)
    assert stats["mean_T_K"] == 300.0
    assert stats["n_dof"] == 159
    assert stats["expected_std_T_K"] == pytest.approx(300 * np.sqrt(2 / 159))


def test_sigma2_rocksalt_sublattice_shift_exact():
    # Absorber (Na) sublattice shifted by +d and -d along x in two frames: each Na has
    # Cl neighbours at R-d, R+d and 4 x sqrt(R^2 + d^2); Na-Na distances do not change.
    ref = bulk("NaCl", "rocksalt", a=4.0, cubic=True).repeat(2)  # 64 atoms, R(Na-Cl) = 2
    na = np.array(ref.get_chemical_symbols()) == "Na"
    d, r0 = 0.1, 2.0
    frames = []
    for sign in (1, -1):
        frame = ref.copy()
        frame.positions[na] += [sign * d, 0, 0]
        frames.append(frame)
    table = shell_sigma2(frames, ref, "Na", cutoff_A=3.0)
    first, second = table.iloc[0], table.iloc[1]

    dists = np.array([r0 - d, r0 + d] + [np.hypot(r0, d)] * 4)
    assert first["neighbour"] == "Cl" and first["coordination"] == 6
    assert first["r_ideal_A"] == pytest.approx(r0)
    assert first["r_mean_A"] == pytest.approx(dists.mean())
    assert first["sigma2_A2"] == pytest.approx(dists.var(), rel=1e-10)
    assert second["neighbour"] == "Na" and second["coordination"] == 12
    assert second["sigma2_A2"] == pytest.approx(0.0, abs=1e-20)


def test_sigma2_random_displacements_and_wrapping():
    # Independent Gaussian displacements of std s per component: sigma^2 -> 2 s^2.
    ref = w_cell(3)  # 54 atoms, inscribed radius 4.75 Å: shells at 2.74, 3.17, 4.48 Å
    rng = np.random.default_rng(0)
    s = 0.05
    frames = []
    for _ in range(150):
        frame = ref.copy()
        frame.positions += rng.normal(0.0, s, frame.positions.shape)
        frame.wrap()  # atoms that cross the boundary must not break their pairs
        frames.append(frame)
    table = shell_sigma2(frames, ref, "W")
    assert table["r_ideal_A"].round(3).tolist() == [2.741, 3.165, 4.476]
    assert table["coordination"].tolist() == [8, 6, 12]
    np.testing.assert_allclose(table["sigma2_A2"], 2 * s**2, rtol=0.05)
    np.testing.assert_allclose(table["r_mean_A"], table["r_ideal_A"], atol=0.01)


def test_shells_stop_below_inscribed_radius():
    shells, cutoff = reference_shells(w_cell(2), "W", cutoff_A=6.0)
    assert cutoff == pytest.approx(A_W)  # 16-atom cell: half the 6.33 Å edge
    assert [len(s["i"]) / 16 for s in shells] == [8]  # the 6 at exactly A_W are left out


def test_rdf_of_ideal_lattice_counts_neighbours():
    ref = w_cell(3)
    rdf = radial_distribution([ref], r_max_A=3.0, bin_A=0.01, absorber="W")
    r, g = rdf["r_A"].to_numpy(), rdf["g_r"].to_numpy()
    rho = len(ref) / ref.get_volume()
    shell = (r > 2.6) & (r < 2.9)
    assert np.sum(4 * np.pi * r[shell] ** 2 * rho * g[shell] * 0.01) == pytest.approx(8, rel=0.02)
    assert np.allclose(rdf["g_absorber_r"], g)


def test_md_diagnostics_files(tmp_path):
    ref = w_cell(2)
    rng = np.random.default_rng(2)
    frames = []
    # ASE stress (eV/Å^3, tension positive): compressed by 2 and 4 GPa, with some shear.
    for step, compression_gpa in ((3, 2.0), (6, 4.0)):
        frame = ref.copy()
        frame.positions += rng.normal(0, 0.03, frame.positions.shape)
        frame.set_momenta(rng.normal(0, 1.0, (16, 3)))
        frame.info["step"] = step
        stress = units.GPa * np.array([-compression_gpa] * 3 + [0.5, -0.3, 0.2])
        frame.calc = SinglePointCalculator(frame, energy=-200.0, forces=np.zeros((16, 3)),
                                           stress=stress)
        frames.append(frame)
    write(tmp_path / "snapshots.extxyz", frames, format="extxyz")
    write(tmp_path / "supercell.extxyz", ref, format="extxyz")
    out = md_diagnostics(
        tmp_path / "snapshots.extxyz", tmp_path / "supercell.extxyz", "W", 300.0, tmp_path
    )
    sigma2 = pd.read_csv(tmp_path / "sigma2.csv")
    assert list(sigma2.columns) == [
        "shell", "neighbour", "r_ideal_A", "r_mean_A", "sigma2_A2", "sigma2_stderr_A2",
        "n_eff", "n_pairs", "coordination",
    ]
    assert list(pd.read_csv(tmp_path / "rdf.csv").columns) == ["r_A", "g_r", "g_absorber_r"]
    saved = json.loads((tmp_path / "diagnostics.json").read_text())
    for key in ("mean_T_K", "std_T_K", "target_T_K", "expected_std_T_K", "n_snapshots"):
        assert key in saved
    assert saved["n_snapshots"] == 2 and saved["T_source"] == "snapshots"
    # Pressure by hand: minus the mean normal stress plus the ideal-gas N kB T / V of the
    # kinetic temperature (3N - 3 dof, as the MD's); positive under compression.
    masses = ref.get_masses()[:, None]
    ekin = [0.5 * np.sum(f.get_momenta() ** 2 / masses) for f in frames]
    t_kin = [2 * e / (45 * units.kB) for e in ekin]
    p_kin = [16 * units.kB * t / ref.get_volume() / units.GPa for t in t_kin]
    assert saved["mean_T_K"] == pytest.approx(np.mean(t_kin))
    assert saved["mean_pressure_GPa"] == pytest.approx(3.0 + np.mean(p_kin), rel=1e-9)
    assert saved["mean_epot_eV_per_atom"] == pytest.approx(-200.0 / 16)
    assert out["first_shell"]["sigma2_A2"] == pytest.approx(sigma2["sigma2_A2"][0])


# --------------------------------------------------------------------------------------
# Command line


def test_cli_md_and_diagnostics(tmp_path):
    from dualbench.cli import main

    unit = tmp_path / "W.cif"
    write(unit, bulk("W", "bcc", a=A_W, cubic=True), format="cif")
    out = tmp_path / "run"
    code = main([
        "md", "--model", "chgnet", "--structure", str(unit), "--supercell", "2", "2", "2",
        "--temperature", "300", "--steps", "4", "--equilibration-steps", "1",
        "--timestep", "2", "--snapshot-every", "2", "--seed", "1", "--out", str(out),
        "--device", "cpu", "--threads", "1",
    ])
    assert code == 0
    assert len(read(out / "snapshots.extxyz", index=":")) == 2
    assert len(pd.read_csv(out / "md_log.csv")) == 6
    code = main([
        "md-diagnostics", "--snapshots", str(out / "snapshots.extxyz"),
        "--reference", str(out / "supercell.extxyz"), "--absorber", "W",
        "--temperature", "300", "--log", str(out / "md_log.csv"), "--out", str(out),
    ])
    assert code == 0
    saved = json.loads((out / "diagnostics.json").read_text())
    assert saved["T_source"] == "md_log production rows" and saved["n_T_samples"] == 4


@pytest.mark.slow
def test_sigkill_then_rerun_resumes(tmp_path):
    """A real SIGKILL of `dualbench md` mid-run; the rerun continues from the checkpoint."""
    unit = tmp_path / "W.cif"
    write(unit, bulk("W", "bcc", a=A_W, cubic=True), format="cif")
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "dualbench", "md", "--model", "chgnet", "--structure", str(unit),
        "--supercell", "2", "2", "2", "--temperature", "300", "--steps", "30",
        "--equilibration-steps", "0", "--snapshot-every", "10", "--checkpoint-every", "2",
        "--out", str(out), "--device", "cpu", "--threads", "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (out / CHECKPOINT_FILE).exists() and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / CHECKPOINT_FILE).exists()
    assert not (out / "snapshots.extxyz").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from checkpoint" in rerun.stderr
    assert "at step 0 " not in rerun.stderr
    assert len(read(out / "snapshots.extxyz", index=":")) == 3
    assert len(pd.read_csv(out / "md_log.csv")) == 31
