"""Path-integral MD with i-PI (dualbench.md.pimd) against an exact oracle: the Einstein
crystal, every atom on a harmonic spring to its own site, whose mean-square displacement
per Cartesian direction is known in closed form,

    quantum:   u^2 = hbar / (2 m omega) coth(hbar omega / (2 kB T))
    classical: u^2 = kB T / (m omega^2).

The expected values below are computed here from these formulas with CODATA constants
(scipy.constants), never by the code under test.  216 Cu-mass atoms with an Einstein
temperature hbar omega / kB of 250 K: at 10 K deeply quantum (u^2 12.5 x the classical
value), at 300 K partly (5.7 % above it).

One correction is analytic too: i-PI fixes the centre of mass of the centroid (as the
classical driver's FixCom does), which removes the centroid's motion along 3 of the
3N directions; the expected mean over atoms is therefore lower by kB T / (N m omega^2)
(0.46 % of the classical value for N = 216).

Statistical errors: standard errors of the mean over five blocks of the kept steps; each
comparison's tolerance (3 %) is several of them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from scipy import constants as C

pytest.importorskip("ipi")

from dualbench.md.harmonic import EinsteinCalculator  # noqa: E402
from dualbench.md.ipi_io import checkpoints  # noqa: E402
from dualbench.md.pimd import IPI_DIR, bead_count, run_pimd  # noqa: E402
from dualbench.md.settings import md_settings  # noqa: E402
from dualbench.md.snapshots import read_snapshots  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
THETA_E_K = 250.0  # Einstein temperature hbar omega / kB
OMEGA = C.k * THETA_E_K / C.hbar  # rad/s
REPEAT = 6  # 6 x 6 x 6 simple-cubic sites, 3 Å apart: 216 atoms
TOLERANCE = 0.03


def crystal():
    atoms = bulk("Cu", "sc", a=3.0).repeat((REPEAT, REPEAT, REPEAT))
    mass_kg = atoms.get_masses()[0] * C.atomic_mass
    stiffness_eV_A2 = mass_kg * OMEGA**2 / C.eV * 1e-20
    return atoms, mass_kg, stiffness_eV_A2


def u2_quantum_A2(mass_kg: float, temperature_K: float) -> float:
    x = C.hbar * OMEGA / (C.k * temperature_K)
    return C.hbar / (2 * mass_kg * OMEGA) / math.tanh(x / 2) * 1e20


def u2_classical_A2(mass_kg: float, temperature_K: float) -> float:
    return C.k * temperature_K / (mass_kg * OMEGA**2) * 1e20


def expected_A2(mass_kg: float, temperature_K: float, n_atoms: int, quantum: bool) -> float:
    """The mean over atoms and directions, less the fixed centroid centre of mass."""
    u2 = (u2_quantum_A2 if quantum else u2_classical_A2)(mass_kg, temperature_K)
    return u2 - u2_classical_A2(mass_kg, temperature_K) / n_atoms


def settings(temperature_K: float, beads: int | None, **overrides):
    values = {
        "nuclei": "pimd", "beads": beads, "timestep_fs": 4.0, "pimd_tau_fs": 30.0,
        "equilibration_steps": 50, "production_steps": 1000, "snapshot_every": 10,
        "checkpoint_every": 100,
        # hbar omega_max of the oracle: its only frequency, nu = omega / 2 pi
        "max_phonon_THz": OMEGA / (2 * math.pi) / 1e12,
    }
    values.update(overrides)
    return md_settings(values, temperature_K=temperature_K, seed=3)


def measured_u2(out_dir: Path, sites: np.ndarray) -> tuple[float, float, int]:
    """Mean square displacement per direction over every bead of every kept step (Å^2),
    its block standard error, and the beads per step."""
    frames = read_snapshots(out_dir / "snapshots.extxyz")
    steps = np.array([f.info["step"] for f in frames])
    per_step = np.array([
        np.mean([np.mean((f.positions - sites) ** 2) for f, s in zip(frames, steps,
                                                                      strict=True) if s == t])
        for t in np.unique(steps)
    ])
    blocks = per_step[: len(per_step) // 5 * 5].reshape(5, -1).mean(axis=1)
    nbeads = int(frames[0].info["nbeads"])
    return float(per_step.mean()), float(blocks.std(ddof=1) / math.sqrt(5)), nbeads


def run_oracle(tmp_path: Path, temperature_K: float, beads: int | None, **overrides):
    atoms, mass_kg, k = crystal()
    s = settings(temperature_K, beads, **overrides)
    result = run_pimd(atoms, EinsteinCalculator(atoms.positions, k), s, tmp_path / "run")
    u2, stderr, nbeads = measured_u2(tmp_path / "run", atoms.positions)
    return result, u2, stderr, nbeads, mass_kg, len(atoms)


# --------------------------------------------------------------------------------------
# The bead rule


def test_bead_rule():
    # hbar omega / (kB T) = 25 at 10 K: P = ceil(4 x 25) = 100
    nu_THz = C.k * THETA_E_K / C.h / 1e12
    assert bead_count(10.0, nu_THz) == 100
    assert bead_count(300.0, nu_THz) == math.ceil(4 * THETA_E_K / 300.0 - 1e-12) == 4
    assert bead_count(10.0, nu_THz, max_beads=64) == 64
    assert bead_count(5000.0, nu_THz) == 1
    # W's highest phonon, about 6.5 THz, at 300 K: hbar omega / kB T = 1.04, P = 5
    assert bead_count(300.0, 6.5) == math.ceil(4 * C.h * 6.5e12 / (C.k * 300.0))


def test_settings_validate_pimd():
    with pytest.raises(ValueError, match="beads, or max_phonon_THz"):
        md_settings({"nuclei": "pimd"}, temperature_K=300)
    with pytest.raises(ValueError, match="NVT only"):
        md_settings({"nuclei": "pimd", "beads": 4, "ensemble": "npt"}, temperature_K=300)
    from dualbench.md.settings import md_defaults, trajectory_params

    # classical runs keep their identity: no path-integral key among their params
    assert "nuclei" not in trajectory_params(md_defaults())
    assert trajectory_params({**md_defaults(), "nuclei": "pimd", "beads": 8})["beads"] == 8


# --------------------------------------------------------------------------------------
# The oracle


def test_pimd_quantum_10K(tmp_path):
    """Deeply quantum: the rule's 100 beads give u^2 within 3 % of the exact value
    (12.5 x the classical one)."""
    result, u2, stderr, nbeads, mass_kg, n = run_oracle(
        tmp_path, 10.0, None, production_steps=150, equilibration_steps=50
    )
    expected = expected_A2(mass_kg, 10.0, n, quantum=True)
    assert stderr < 0.01 * expected
    assert abs(u2 / expected - 1) < TOLERANCE, (u2, expected, stderr, nbeads)
    assert nbeads == 100 and result.nbeads == 100


def test_pimd_quantum_300K(tmp_path):
    """Partly quantum: the rule's 4 beads give the quantum u^2 within 3 %, and are
    closer to it than to the classical value (5.7 % lower)."""
    result, u2, stderr, nbeads, mass_kg, n = run_oracle(tmp_path, 300.0, None)
    expected = expected_A2(mass_kg, 300.0, n, quantum=True)
    classical = expected_A2(mass_kg, 300.0, n, quantum=False)
    assert stderr < 0.01 * expected
    assert abs(u2 / expected - 1) < TOLERANCE, (u2, expected, stderr, nbeads)
    assert abs(u2 - expected) < abs(u2 - classical)
    assert nbeads == 4


def test_one_bead_is_classical(tmp_path):
    """One bead is classical MD: u^2 = kB T / (m omega^2) within 3 %, at 300 K."""
    result, u2, stderr, nbeads, mass_kg, n = run_oracle(tmp_path, 300.0, 1)
    expected = expected_A2(mass_kg, 300.0, n, quantum=False)
    assert nbeads == 1
    assert stderr < 0.01 * expected
    assert abs(u2 / expected - 1) < TOLERANCE, (u2, expected, stderr)
    quantum = expected_A2(mass_kg, 300.0, n, quantum=True)
    assert abs(u2 - expected) < abs(u2 - quantum)


# --------------------------------------------------------------------------------------
# Kill and resume

KILLED_RUN = """
import sys
sys.path.insert(0, {src!r})
sys.path.insert(0, {tests!r})
from test_pimd import crystal, settings
from dualbench.md.harmonic import EinsteinCalculator
from dualbench.md.pimd import run_pimd
atoms, _, k = crystal()
run_pimd(atoms, EinsteinCalculator(atoms.positions, k), settings(300.0, 2, **{overrides!r}),
         {out!r})
"""
KILL_OVERRIDES = {"equilibration_steps": 50, "production_steps": 350, "checkpoint_every": 50,
                  "snapshot_every": 25}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _kill_mid_run(out: Path, kill_after_step: int) -> None:
    """Start the run in a subprocess and SIGKILL it once i-PI has checkpointed
    ``kill_after_step`` and gone on; i-PI must die with it."""
    script = KILLED_RUN.format(src=str(SRC), tests=str(Path(__file__).parent),
                               overrides=KILL_OVERRIDES, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(s >= kill_after_step for s, _ in checkpoints(out / IPI_DIR)
                  if (out / IPI_DIR).exists()):
        assert proc.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # frames past the checkpoint
    children = _children(proc.pid)
    assert proc.poll() is None and children, "no i-PI child to kill with the run"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children):
        assert time.monotonic() < deadline, "i-PI outlived its killed client"
        time.sleep(0.1)


def test_kill_and_resume(tmp_path):
    """A run killed with SIGKILL mid-way continues from i-PI's checkpoint: the full step
    count, every log row and every bead frame once, and the same trajectory as the
    uninterrupted run (i-PI's checkpoint holds its random state)."""
    atoms, _, k = crystal()
    s = settings(300.0, 2, **KILL_OVERRIDES)
    whole = run_pimd(atoms, EinsteinCalculator(atoms.positions, k), s, tmp_path / "whole")
    assert whole.resumed_from_step == 0

    _kill_mid_run(tmp_path / "killed", kill_after_step=200)
    assert not (tmp_path / "killed" / "snapshots.extxyz").exists()
    stale_socket = Path((tmp_path / "killed" / IPI_DIR / "socket_dir").read_text())
    assert stale_socket.parent == Path("/tmp") and stale_socket.exists()
    resumed = run_pimd(atoms, EinsteinCalculator(atoms.positions, k), s, tmp_path / "killed")
    assert not stale_socket.exists()
    assert 200 <= resumed.resumed_from_step < s.total_steps
    assert resumed.total_steps == s.total_steps == 400
    assert not (tmp_path / "killed" / IPI_DIR).exists()

    import pandas as pd

    log = pd.read_csv(tmp_path / "killed" / "md_log.csv")
    assert log["step"].tolist() == list(range(s.total_steps + 1))
    frames = read_snapshots(tmp_path / "killed" / "snapshots.extxyz")
    kept = [(f.info["step"], f.info["bead"]) for f in frames]
    expected = [(t, b) for t in range(75, 401, 25) for b in range(2)]
    assert kept == expected
    reference = read_snapshots(tmp_path / "whole" / "snapshots.extxyz")
    assert [(f.info["step"], f.info["bead"]) for f in reference] == expected
    for a, b in zip(frames, reference, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=2e-4)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=2e-3)
    centroids = read_snapshots(tmp_path / "killed" / "centroids.extxyz")
    assert [f.info["step"] for f in centroids] == list(range(75, 401, 25))
    info = json.loads((tmp_path / "killed" / "md_run.json").read_text())
    assert info["engine"]["name"] == "i-PI" and info["result"]["nbeads"] == 2


# --------------------------------------------------------------------------------------
# The bead-convergence record and the command line


def test_bead_convergence_record(tmp_path):
    """The record holds u^2 per atom (and the mean) and shell sigma^2 per bead count; at
    10 K two beads already move the atoms much more than one (zero-point motion)."""
    import pandas as pd

    from dualbench.md.bead_convergence import CONVERGENCE_FILE, bead_convergence

    atoms, _, k = crystal()
    s = settings(10.0, None, equilibration_steps=20, production_steps=100)
    table = bead_convergence(atoms, EinsteinCalculator(atoms.positions, k), s, [1, 2],
                             tmp_path, absorber="Cu")
    saved = pd.read_csv(tmp_path / CONVERGENCE_FILE)
    assert len(saved) == len(table)
    u2 = saved[(saved["quantity"] == "u2_atom") & (saved["index"] == -1)].set_index("beads")
    assert list(u2.index) == [1, 2]
    assert u2.loc[2, "value_A2"] > 1.5 * u2.loc[1, "value_A2"]
    per_atom = saved[(saved["quantity"] == "u2_atom") & (saved["index"] >= 0)]
    assert len(per_atom) == 2 * len(atoms)
    shells = saved[saved["quantity"] == "sigma2_shell"]
    assert set(shells["beads"]) == {1, 2} and (shells["value_A2"] > 0).all()


def test_cli_md_pimd(tmp_path):
    """`dualbench md --nuclei pimd --beads 2` (the run_md_job path of the run_md rule)
    with CHGNet: every bead of each kept step, the centroids, a row per step."""
    import pandas as pd
    from ase.io import write

    from dualbench.cli import main

    unit = tmp_path / "W.cif"
    write(unit, bulk("W", "bcc", a=3.165, cubic=True), format="cif")
    out = tmp_path / "run"
    code = main([
        "md", "--model", "chgnet", "--structure", str(unit), "--supercell", "2", "2", "2",
        "--temperature", "300", "--steps", "4", "--equilibration-steps", "2",
        "--timestep", "2", "--snapshot-every", "2", "--seed", "1", "--out", str(out),
        "--device", "cpu", "--threads", "1", "--nuclei", "pimd", "--beads", "2",
    ])
    assert code == 0
    frames = read_snapshots(out / "snapshots.extxyz")
    assert [(f.info["step"], f.info["bead"]) for f in frames] == [
        (4, 0), (4, 1), (6, 0), (6, 1)]
    assert all(np.isfinite(f.get_forces()).all() for f in frames)
    assert len(read_snapshots(out / "centroids.extxyz")) == 2
    assert pd.read_csv(out / "md_log.csv")["step"].tolist() == list(range(7))
    info = json.loads((out / "md_run.json").read_text())
    assert info["settings"]["nuclei"] == "pimd" and info["beads"] == 2
    assert not (out / IPI_DIR).exists()


# --------------------------------------------------------------------------------------
# Guards


@pytest.mark.parametrize("guard", ["distance", "temperature"])
def test_guards_stop_the_run(tmp_path, guard):
    """A bead with atoms closer than min_distance_A, or i-PI's temperature above
    max_temperature_factor x the target, stops the run with MDGuardError: the bead is
    kept in md_guard_failure.extxyz, i-PI is gone, no snapshots are written."""
    from dualbench.md.guards import MDGuardError

    atoms, _, k = crystal()
    bad = {"min_distance_A": 3.5} if guard == "distance" else {"max_temperature_factor": 1.001,
                                                                 "min_runaway_excess_K": 0.0}
    s = settings(300.0, 2, equilibration_steps=50, production_steps=100, **bad)
    with pytest.raises(MDGuardError, match="closer than" if guard == "distance" else "runaway"):
        run_pimd(atoms, EinsteinCalculator(atoms.positions, k), s, tmp_path)
    assert (tmp_path / "md_guard_failure.extxyz").exists()
    assert not (tmp_path / "snapshots.extxyz").exists()
    assert not [c for c in _children(os.getpid()) if _alive(c)], "i-PI outlived the run"


# --------------------------------------------------------------------------------------
# i-PI's files after a kill


def test_outputs_cut_back_to_a_checkpoint(tmp_path):
    """Frames and rows past the checkpoint's step, and a frame or row cut off by a kill,
    are removed before a restart; the frames up to it are kept as they were."""
    from dualbench.md import ipi_io

    def frame(step: int) -> str:
        return (f"2\n# CELL(abcABC): 3 3 3 90 90 90  Step: {step:10d}  Bead: 0 positions\n"
                f"  Cu 0.0 0.0 {step}.0\n  Cu 1.5 1.5 1.5\n")

    xyz = tmp_path / "sim.pos_0.xyz"
    xyz.write_text(frame(0) + frame(10) + frame(20) + "2\n# CELL(abcABC): 3 3 3")
    table = tmp_path / "sim.out"
    table.write_text("# column 1 --> step\n0 0.0\n1 4.0\n2 8.0\n3 1")
    assert [f.step for f in ipi_io.read_xyz(xyz)] == [0, 10, 20]
    ipi_io.truncate_outputs(tmp_path, 10)
    assert xyz.read_text() == frame(0) + frame(10)
    assert table.read_text() == "# column 1 --> step\n0 0.0\n1 4.0\n2 8.0\n"
    ipi_io.truncate_outputs(tmp_path, 1)
    assert ipi_io.read_table(table).tolist() == [[0.0, 0.0], [1.0, 4.0]]
    np.testing.assert_array_equal(ipi_io.read_xyz(xyz)[0].values[0], [0.0, 0.0, 0.0])
