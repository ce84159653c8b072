"""Output folders of the command line (issue 27): one writer per folder, a finished folder
kept unless --overwrite, the MD's own resume untouched, nothing left behind by a refused
command, and clear errors instead of tracebacks.  The MD runs ASE's EMT on a 4-atom fcc Cu
cell (a `kind: ase` model given with --trust-ase-model): thousands of steps per minute."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.build import bulk
from ase.io import read, write

from dualbench.cli import main
from dualbench.md.checkpoint import CHECKPOINT_FILE
from dualbench.models.spec import ModelSpec, write_model_spec

EMT_PATH = "ase.calculators.emt:EMT"
LOCK_NAME = ".dualbench.lock"  # dualbench.cli.outputs.LOCK_NAME


@pytest.fixture
def cu(tmp_path: Path) -> tuple[Path, Path]:
    """fcc Cu (4-atom cubic cell) as a CIF, and an EMT model file."""
    cif = tmp_path / "Cu.cif"
    bulk("Cu", "fcc", a=3.61, cubic=True).write(cif)
    model = tmp_path / "emt.json"
    write_model_spec(model, ModelSpec(kind="ase", weights="", calculator=EMT_PATH))
    return cif, model


def md_args(cu: tuple[Path, Path], out: Path, *extra: str, seed: int = 0,
            steps: int = 12) -> list[str]:
    cif, model = cu
    return ["md", "--model", str(model), "--trust-ase-model", "--structure", str(cif),
            "--temperature", "300", "--steps", str(steps), "--equilibration-steps", "0",
            "--snapshot-every", "4", "--checkpoint-every", "3", "--seed", str(seed),
            "--device", "cpu", "--threads", "1", "--out", str(out), *extra]


def forge_lock(folder: Path, pid: int, host: str | None = None) -> Path:
    """A lock as a run of ``pid`` on ``host`` (default: this host) leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps({
        "pid": pid, "host": host or socket.gethostname(), "started": "earlier",
        "command": "dualbench md --seed 1", "token": "forged",
    }))
    return lock


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def killed_md(cu: tuple[Path, Path], out: Path, seed: int = 0, steps: int = 12) -> None:
    """What `md_args(cu, out, seed=seed, steps=steps)` leaves when killed after step 7:
    the checkpoint of step 6, through the stage function (as a Snakemake job runs it)."""
    from dualbench.md.driver import run_md_job
    from dualbench.md.settings import md_settings
    from dualbench.models.resolve import parse_model_arg
    from dualbench.structure import read_structure_file

    class Killed(Exception):
        pass

    def kill_at_7(step, atoms):
        if step == 7:
            raise Killed

    settings = md_settings({}, temperature_K=300.0, seed=seed, production_steps=steps,
                           equilibration_steps=0, snapshot_every=4, checkpoint_every=3,
                           device="cpu")
    unit = read_structure_file(cu[0])
    unit.pbc = True
    with pytest.raises(Killed):
        run_md_job(model=parse_model_arg(str(cu[1]), trust_calculator=True), unit_cell=unit,
                   supercell=[1, 1, 1], settings=settings, out_dir=out, step_hook=kill_at_7)
    assert (out / CHECKPOINT_FILE).is_file() and not (out / LOCK_NAME).exists()


# --------------------------------------------------------------------------------------
# One writer per folder


def test_second_md_into_a_folder_in_use_is_refused(cu, tmp_path, capsys):
    """Two `dualbench md` runs (seeds 1 and 2) into one --out: the second is refused, naming
    the folder and the holder; SIGTERM ends the first, removing its lock, keeping its
    checkpoint."""
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "dualbench", *md_args(cu, out, seed=1, steps=200000)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / CHECKPOINT_FILE).exists():
            assert first.poll() is None and time.time() < deadline, first.stdout.read()
            time.sleep(0.1)
        capsys.readouterr()
        assert main(md_args(cu, out, seed=2)) == 2
        err = capsys.readouterr().err
        assert f"error: {out}: output folder in use by another run (pid {first.pid} on" in err
        assert "--seed 1" in err and str(out / LOCK_NAME) in err
        assert not (out / "snapshots.extxyz").exists()
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        first.kill()
        first.wait()
    assert not (out / LOCK_NAME).exists()
    assert (out / CHECKPOINT_FILE).exists() and not (out / "snapshots.extxyz").exists()


def test_stale_lock_is_taken_over_and_the_md_resumes(cu, tmp_path, capsys):
    """A run killed (checkpoint of step 6) and its lock left by a dead pid: the rerun with
    the same arguments takes the lock over, with a log line, and continues the checkpoint
    (resuming an unfinished run is not overwriting)."""
    out = tmp_path / "run"
    killed_md(cu, out)
    pid = dead_pid()
    forge_lock(out, pid)
    assert main(md_args(cu, out)) == 0
    err = capsys.readouterr().err
    assert f"taking over the lock of a run that is gone (no process {pid} on this host)" in err
    assert "resuming from checkpoint" in err and "at step 6 of 12" in err
    assert len(read(out / "snapshots.extxyz", index=":")) == 3
    assert not (out / LOCK_NAME).exists() and not (out / CHECKPOINT_FILE).exists()


def test_lock_of_another_host_is_refused(cu, tmp_path, capsys):
    out = tmp_path / "run"
    lock = forge_lock(out, 1, host="elsewhere.example")
    assert main(md_args(cu, out)) == 2
    err = capsys.readouterr().err
    assert f"{out}: output folder in use by another run (pid 1 on elsewhere.example" in err
    assert f"remove {lock}" in err
    assert json.loads(lock.read_text())["token"] == "forged"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_unreadable_lock_waits_then_is_taken_over(tmp_path, caplog):
    """An empty lock is one being written: refused while young, taken over when old."""
    from dualbench.cli.outputs import acquire_lock, release_lock

    lock = tmp_path / LOCK_NAME
    lock.write_text("")
    with pytest.raises(ValueError, match="whose lock is being written or cannot be read"):
        acquire_lock(tmp_path, "dualbench test")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    record = acquire_lock(tmp_path, "dualbench test")
    assert "has been unreadable for" in caplog.text
    assert json.loads(lock.read_text()) == record
    release_lock(tmp_path, record)
    assert not lock.exists()


# --------------------------------------------------------------------------------------
# A finished folder is not overwritten without --overwrite


def test_finished_md_folder_needs_overwrite(cu, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(md_args(cu, out, seed=1)) == 0
    before = (out / "snapshots.extxyz").read_bytes()
    capsys.readouterr()
    assert main(md_args(cu, out, seed=2)) == 2
    err = capsys.readouterr().err
    assert f"error: {out}: holds the outputs of a finished run (snapshots.extxyz" in err
    assert "--overwrite" in err
    assert (out / "snapshots.extxyz").read_bytes() == before
    assert main(md_args(cu, out, "--overwrite", seed=2)) == 0
    assert (out / "snapshots.extxyz").read_bytes() != before
    assert json.loads((out / "md_run.json").read_text())["settings"]["seed"] == 2


@pytest.mark.parametrize(
    ("args", "marker"),
    [
        (["exafs-average", "--snapshots", "none.extxyz", "--absorber", "W", "--edge", "L3"],
         "chi_k.csv"),
        (["experiment", "--data", "none.xdi", "--element", "W", "--edge", "L3"],
         "experiment.json"),
        (["finetune", "--frames", "none.extxyz", "--n", "2"], "model.json"),
    ],
    ids=["exafs-average", "experiment", "finetune"],
)
def test_finished_folder_is_refused_before_reading_inputs(args, marker, tmp_path, capsys):
    out = tmp_path / "done"
    out.mkdir()
    (out / marker).write_text("finished\n")
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: holds the outputs of a finished run ({marker})" in err
    assert sorted(p.name for p in out.iterdir()) == [marker]


def test_unfinished_md_of_other_settings_is_kept_unless_overwrite(cu, tmp_path, capsys):
    out = tmp_path / "run"
    killed_md(cu, out, seed=1)
    checkpoint = (out / CHECKPOINT_FILE).read_bytes()
    assert main(md_args(cu, out, seed=2)) == 2
    err = capsys.readouterr().err
    assert f"error: {out / CHECKPOINT_FILE}: the checkpoint of an unfinished run with" in err
    assert (out / CHECKPOINT_FILE).read_bytes() == checkpoint
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_FILE]
    assert main(md_args(cu, out, "--overwrite", seed=2)) == 0
    assert "ignoring checkpoint" in capsys.readouterr().err
    assert json.loads((out / "md_run.json").read_text())["result"]["resumed_from_step"] == 0


# --------------------------------------------------------------------------------------
# A refused command leaves nothing behind


def test_md_with_a_bad_model_leaves_nothing(cu, tmp_path, capsys):
    cif, _ = cu
    bad = tmp_path / "tip3p.json"
    write_model_spec(bad, ModelSpec(kind="ase", weights="",
                                    calculator="ase.calculators.tip3p:TIP3P",
                                    options={"cutoff": 5.0}))
    args = md_args(cu, tmp_path / "new" / "run")
    args[args.index("--model") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("error: calculator 'ase.calculators.tip3p:TIP3P' rejected the model's options"
            " (given: cutoff); it takes no cutoff (it takes: rc, width)") in err
    assert not (tmp_path / "new").exists()
    # A folder that existed before stays, with what it held, and gets nothing new.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine\n")
    args[args.index("--out") + 1] = str(kept)
    assert main(args) == 2
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_md_with_a_missing_model_leaves_nothing(cu, tmp_path):
    args = md_args(cu, tmp_path / "run")
    args[args.index("--model") + 1] = str(tmp_path / "missing.json")
    assert main(args) == 2
    assert not (tmp_path / "run").exists()


def _w_snapshots(tmp_path: Path, element: str) -> tuple[Path, Path]:
    """An ideal bcc W 3x3x3 supercell and two displaced snapshots of it made of
    ``element``."""
    import numpy as np

    ideal = bulk("W", "bcc", a=3.1652, cubic=True).repeat(3)
    write(tmp_path / "ideal.extxyz", ideal)
    frames = []
    for seed in range(2):
        frame = ideal.copy()
        frame.positions += np.random.default_rng(seed).normal(0.0, 0.05, (len(frame), 3))
        frame.symbols[:] = element
        frames.append(frame)
    write(tmp_path / "snaps.extxyz", frames, format="extxyz")
    return tmp_path / "snaps.extxyz", tmp_path / "ideal.extxyz"


@pytest.mark.slow
def test_exafs_average_refused_after_the_path_table_leaves_nothing(tmp_path, capsys):
    """Mo snapshots with --absorber W and a W reference: the potentials and the path table
    are computed (FEFF) before the snapshots are refused; none of it stays."""
    snaps, ideal = _w_snapshots(tmp_path, "Mo")
    out = tmp_path / "avg"
    assert main(["exafs-average", "--snapshots", str(snaps), "--absorber", "W", "--edge", "L3",
                 "--reference", str(ideal), "--rmax", "4.3", "--nleg", "2",
                 "--cluster-radius", "4.6", "--out", str(out)]) == 2
    assert "error: frame 0 has no W atom" in capsys.readouterr().err
    assert not out.exists()


def test_experiment_with_a_bad_spectrum_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.dat"
    bad.write_text("# energy i0 itrans\n1 2 3\n")
    for out in (tmp_path / "exp", tmp_path / "new" / "exp"):
        assert main(["experiment", "--data", str(bad), "--element", "W", "--edge", "L3",
                     "--out", str(out)]) == 2
        assert f"error: {bad}" in capsys.readouterr().err
        assert not out.exists() and not (tmp_path / "new").exists()


def test_dft_metrics_and_finetune_refused_leave_no_folder(tmp_path):
    frames = tmp_path / "none.extxyz"
    assert main(["dft-metrics", "--model", str(tmp_path / "missing.json"), "--frames",
                 str(frames), "--out", str(tmp_path / "m" / "metrics.json"), "--parity-out",
                 str(tmp_path / "p" / "parity.csv")]) == 2
    assert main(["finetune", "--frames", str(frames), "--n", "2", "--out",
                 str(tmp_path / "ft" / "model")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Errors, not tracebacks


@pytest.mark.parametrize(
    ("command", "stage"),
    [("exafs-average", "dualbench.exafs.average_snapshots"),
     ("experiment", "dualbench.scoring.measured.process_experiment"),
     ("compare", "dualbench.scoring.against_experiment.compare_dirs")],
)
def test_out_under_a_file_is_refused_before_computing(command, stage, tmp_path, capsys,
                                                       monkeypatch):
    """Before, the stage ran and its first write raised NotADirectoryError (a traceback)."""
    def computing(*args, **kwargs):
        raise AssertionError("the stage ran")

    monkeypatch.setattr(stage, computing)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should be")
    args = {
        "exafs-average": ["exafs-average", "--snapshots", "snaps.extxyz", "--absorber", "W",
                          "--edge", "L3"],
        "experiment": ["experiment", "--data", "w.xdi", "--element", "W", "--edge", "L3"],
        "compare": ["compare", "--experiment", "exp", "--simulation", "sim"],
    }[command]
    assert main([*args, "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert f"error: {blocker / 'out'}: cannot write there (" in err
    assert "nothing was computed" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_read_only_out_is_refused(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["experiment", "--data", "none.xdi", "--element", "W", "--edge", "L3",
                     "--out", str(out)]) == 2
    finally:
        out.chmod(0o755)
    assert f"{out}: cannot write there (Permission denied)" in capsys.readouterr().err


def test_ase_options_the_calculator_rejects_are_a_value_error():
    from dualbench.models.resolve import make_calculator

    spec = ModelSpec(kind="ase", weights="",
                     calculator="ase.calculators.harmonic:SpringCalculator")
    with pytest.raises(ValueError) as err:
        make_calculator(spec, "cpu")
    message = str(err.value)
    assert "calculator 'ase.calculators.harmonic:SpringCalculator' rejected" in message
    assert "(given: none)" in message and "'ideal_positions' and 'k'" in message
