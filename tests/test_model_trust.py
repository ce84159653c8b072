"""A model file is data, never code (issue 27, item 1).

What may name code to import and call (``kind: ase``, an import path to a calculator) is
trusted only from the study's config and from an explicit command-line flag
(``--trust-ase-model``); a ``model.json``, a checkpoint and any file beside it are data.
Oracles: a planted payload (``os:system`` touching a marker file), the SHA-256 of the file
on disk, and ASE's own EMT forces computed here, outside the code under test.
"""

from __future__ import annotations

import json
import logging
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from dualbench.models.resolve import load_model, make_calculator, parse_model_arg, read_model_spec
from dualbench.models.spec import ModelSpec, sha256_file, write_model_spec

EMT_PATH = "ase.calculators.emt:EMT"


def _evil_model(path: Path, marker: Path, **extra) -> Path:
    """A model.json whose calculator, if imported and called, runs a shell command."""
    path.write_text(json.dumps({
        "kind": "ase", "weights": "", "calculator": "os:system",
        "options": {"command": f"touch {shlex.quote(str(marker))}"}, **extra,
    }))
    return path


def _cu_frames(path: Path, n: int = 2) -> tuple[Path, float]:
    """Rattled fcc Cu cells labelled with twice ASE's own EMT forces, and the oracle force
    MAE of EMT on them: the mean |EMT force component|."""
    frames, errors = [], []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        forces = atoms.get_forces()
        errors.append(np.abs(forces).ravel())
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - i, forces=2 * forces)
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path, float(np.concatenate(errors).mean())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualbench", *args],
                          capture_output=True, text=True, timeout=300)


# --- kind ase in a model file -------------------------------------------------------

def test_ase_model_file_runs_nothing_and_names_file_and_key(tmp_path):
    marker = tmp_path / "PWNED"
    evil = _evil_model(tmp_path / "model.json", marker)
    for load in (make_calculator, load_model, lambda m, d: read_model_spec(m)):
        with pytest.raises(ValueError) as err:
            load(str(evil), "cpu")
        message = str(err.value)
        assert message.startswith(f"{evil}: kind 'ase' is refused in a model file")
        assert "'os:system'" in message and "--trust-ase-model" in message
    assert not marker.exists()


def test_ase_model_file_through_the_command_line(tmp_path):
    """dft-metrics refuses the payload (exit 2, no traceback, file and key named) before
    anything runs; --trust-ase-model is the explicit opt-in for a file of one's own."""
    marker = tmp_path / "PWNED"
    evil = _evil_model(tmp_path / "evil.json", marker)
    frames, oracle_mae = _cu_frames(tmp_path / "cu.extxyz")
    proc = _cli("dft-metrics", "--model", str(evil), "--frames", str(frames),
                "--out", str(tmp_path / "evil_metrics.json"), "--device", "cpu")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {evil}: kind 'ase' is refused in a model file" in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "evil_metrics.json").exists()

    mine = tmp_path / "emt.json"
    write_model_spec(mine, ModelSpec(kind="ase", weights="", calculator=EMT_PATH))
    out = tmp_path / "metrics.json"
    refused = _cli("dft-metrics", "--model", str(mine), "--frames", str(frames),
                   "--out", str(out), "--device", "cpu")
    assert refused.returncode == 2 and f"error: {mine}: kind 'ase'" in refused.stderr
    proc = _cli("dft-metrics", "--model", str(mine), "--trust-ase-model", "--frames",
                str(frames), "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["force_mae_eV_per_A"] == pytest.approx(oracle_mae, rel=1e-6)
    assert result["model"]["calculator"] == EMT_PATH


# --- a checkpoint is read on its own ------------------------------------------------

def test_checkpoint_ignores_the_model_json_beside_it(tmp_path, vanilla_chgnet):
    """A model.json beside the checkpoint, naming that very checkpoint by its true
    SHA-256 but carrying a payload, is not looked at: the checkpoint loads as CHGNet."""
    from chgnet.model.dynamics import CHGNetCalculator

    from dualbench.models.chgnet_train import save_checkpoint

    checkpoint = tmp_path / "checkpoint.pth.tar"
    save_checkpoint(vanilla_chgnet, checkpoint)
    marker = tmp_path / "PWNED"
    _evil_model(tmp_path / "model.json", marker, checkpoint=checkpoint.name,
                checkpoint_sha256=sha256_file(checkpoint))
    assert parse_model_arg(str(checkpoint)) == ModelSpec(
        kind="chgnet", weights="0.3.0", checkpoint=str(checkpoint.resolve())
    )
    assert isinstance(make_calculator(str(checkpoint), "cpu"), CHGNetCalculator)
    assert not marker.exists()


# --- a checkpoint named in a model file must be pinned ------------------------------

@pytest.mark.parametrize(
    ("sha", "says"),
    [
        (None, "has no checkpoint_sha256"),
        ("absent", "has no checkpoint_sha256"),
        ("abc123", "checkpoint_sha256 'abc123' is not a SHA-256"),
        (123, "checkpoint_sha256 123 is not a SHA-256"),
    ],
    ids=["null", "missing", "not_hex", "not_a_string"],
)
def test_checkpoint_without_its_sha256_is_refused(tmp_path, sha, says):
    checkpoint = tmp_path / "checkpoint.pth.tar"
    checkpoint.write_bytes(b"weights")
    record = {"kind": "chgnet", "weights": "0.3.0", "checkpoint": checkpoint.name}
    if sha != "absent":
        record["checkpoint_sha256"] = sha
    path = tmp_path / "model.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError) as err:
        parse_model_arg(str(path))
    assert str(err.value).startswith(f"{path}: ")
    assert says in str(err.value)


def test_pinned_checkpoint_is_read_and_a_changed_one_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.pth.tar"
    checkpoint.write_bytes(b"weights")
    path = tmp_path / "model.json"
    write_model_spec(path, ModelSpec(checkpoint=checkpoint.name,
                                     checkpoint_sha256=sha256_file(checkpoint)))
    assert read_model_spec(path).checkpoint == str(checkpoint.resolve())
    checkpoint.write_bytes(b"other weights")
    with pytest.raises(ValueError, match="refusing to load a changed file"):
        read_model_spec(path)


# --- the config's kind ase model, through the workflow's own scripts ----------------

class _Named(list):
    """A stand-in for Snakemake's Namedlist: items by position and by name."""

    def __init__(self, **named):
        super().__init__(named.values())
        self._named = named

    def __getattr__(self, name):
        try:
            return self.__dict__["_named"][name]
        except KeyError:
            raise AttributeError(name) from None

    def items(self):
        return self._named.items()


class _Job:
    """The ``snakemake`` object a workflow script sees."""

    def __init__(self, rule, config, *, input=None, output=None, params=None, log=None,
                 wildcards=None, threads=2):
        self.rule, self.config, self.threads = rule, config, threads
        self.input = _Named(**(input or {}))
        self.output = _Named(**(output or {}))
        self.params = _Named(**(params or {}))
        self.log = _Named(log=str(log))
        self.wildcards = _Named(**(wildcards or {}))


@pytest.fixture
def run_script(repo, monkeypatch):
    """Run a workflow/scripts/NAME.py as Snakemake does, in this process, and undo what
    a job does to its process (stderr, logging, provenance, the config's trusted models)."""
    import dualbench.io
    import dualbench.models.resolve

    monkeypatch.setattr(dualbench.io, "_CONTEXT", {})
    monkeypatch.setattr(dualbench.models.resolve, "_CONFIG_CALCULATORS", [], raising=False)
    root = logging.getLogger()

    def run(name: str, job: _Job) -> None:
        stderr, handlers, level = sys.stderr, root.handlers[:], root.level
        try:
            runpy.run_path(str(repo / "workflow" / "scripts" / f"{name}.py"),
                           init_globals={"snakemake": job})
        finally:
            if sys.stderr is not stderr:
                sys.stderr.close()
                sys.stderr = stderr
            root.handlers[:] = handlers
            root.setLevel(level)

    return run


def test_config_ase_model_runs_through_the_workflow_scripts(tmp_path, run_script):
    """An EMT model in the config's `models:` goes the workflow's way: vanilla_model writes
    its model.json, dft_metrics and run_md read it (the calculator is the config's) and
    compute with ASE's EMT.  A model.json whose calculator or options are not the config's
    is refused in the same job, and runs nothing."""
    entry = {"kind": "ase", "weights": None, "modal": None, "calculator": EMT_PATH,
             "options": {}}
    config = {"models": {"emt": entry}, "finetune": {"device": "cpu"},
              "md": {"device": "cpu", "checkpoint_every": 2}, "sweep": {"seeds": [0]}}
    run = tmp_path / "results/Cu/emt/n0/seed0"
    wildcards = {"material": "Cu", "model": "emt", "n": "0", "seed": "0"}
    model_json = run / "model/model.json"
    model_json.parent.mkdir(parents=True)
    # params as common.smk's model_params gives them: unset keys (null, {}) left out
    run_script("vanilla_model", _Job(
        "vanilla_model", config, output={"model": str(model_json)},
        params={"model": {"calculator": EMT_PATH, "kind": "ase"}},
        log=tmp_path / "vanilla.log", wildcards={"material": "Cu", "model": "emt", "seed": "0"},
    ))
    assert json.loads(model_json.read_text())["calculator"] == EMT_PATH

    frames, oracle_mae = _cu_frames(tmp_path / "test.extxyz")

    def dft_metrics(model: Path, out: Path) -> None:
        run_script("dft_metrics", _Job(
            "dft_metrics", config, input={"model": str(model), "test": str(frames)},
            output={"metrics": str(out), "parity": str(out.with_suffix(".csv"))},
            log=tmp_path / "dft_metrics.log", wildcards=wildcards,
        ))

    dft_metrics(model_json, run / "dft_metrics.json")
    result = json.loads((run / "dft_metrics.json").read_text())
    assert result["force_mae_eV_per_A"] == pytest.approx(oracle_mae, rel=1e-6)
    assert result["model"]["calculator"] == EMT_PATH and result["model"]["seed"] == 0

    structure = {"symbols": ["Cu"], "basis": [[0, 0, 0]], "spacegroup": 225,
                 "cellpar": [3.61, 3.61, 3.61, 90, 90, 90]}
    md = run / "md"
    run_script("run_md", _Job(
        "run_md", config, input={"model": str(model_json), "structure": []},
        output={name: str(md / file) for name, file in [
            ("snapshots", "snapshots.extxyz"), ("log", "md_log.csv"),
            ("supercell", "supercell.extxyz"), ("info", "md_run.json")]},
        params={"structure": structure, "supercell": [2, 2, 2], "temperature": 300.0,
                "md": {"equilibration_steps": 2, "production_steps": 4, "snapshot_every": 2}},
        log=tmp_path / "run_md.log", wildcards=wildcards,
    ))
    from ase.io import read

    snapshots = read(md / "snapshots.extxyz", index=":")
    assert len(snapshots) >= 2 and all(len(s) == 32 for s in snapshots)

    marker = tmp_path / "PWNED"
    (tmp_path / "evil").mkdir()
    evil = _evil_model(tmp_path / "evil/model.json", marker)
    other_options = tmp_path / "other/model.json"
    other_options.parent.mkdir()
    write_model_spec(other_options, ModelSpec(kind="ase", weights="", calculator=EMT_PATH,
                                              options={"asap_cutoff": True}))
    for bad in (evil, other_options):
        with pytest.raises(ValueError) as err:
            dft_metrics(bad, tmp_path / "bad_metrics.json")
        assert str(err.value).startswith(f"{bad}: kind 'ase' is refused in a model file")
        assert not (tmp_path / "bad_metrics.json").exists()
    assert not marker.exists()
