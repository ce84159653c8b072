"""Hostile but fair inputs (issue 15): each is refused with a message naming the file and the
field or frame, and leaves nothing half-written.  The expected values come from the inputs
themselves (a planted payload, a planted force, a renamed key), never from the code tested."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dualbench.models.resolve import load_model


class _Payload:
    """Unpickling this runs ``exec`` on code that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_checkpoint_with_code_payload_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pth.tar"
    torch.save({"model": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match=r"evil\.pth\.tar: not a loadable CHGNet checkpoint"):
        load_model(str(evil), "cpu")
    assert not marker.exists()
    # the same refusal through the command line, exit status 2, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "dft-metrics", "--model", str(evil),
         "--frames", str(evil), "--out", str(tmp_path / "m.json")],
        capture_output=True, text=True,
    )
    assert not marker.exists()
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr


def test_checkpoint_of_another_shape_is_refused(tmp_path):
    other = tmp_path / "weights.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match=r"weights\.pth\.tar: not a CHGNet checkpoint"):
        load_model(str(other), "cpu")


def test_a_real_checkpoint_still_loads(tmp_path):
    from dualbench.models.chgnet_train import save_checkpoint

    vanilla = load_model("chgnet", "cpu")
    save_checkpoint(vanilla, tmp_path / "checkpoint.pth.tar")
    loaded = load_model(str(tmp_path / "checkpoint.pth.tar"), "cpu")
    ref = vanilla.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in loaded.state_dict().items())


# --- DFT frames: a planted fault in a real SNAP file names the file and the frame -------

def _snap_records(snap_dir: Path, n: int = 3) -> list[dict]:
    return json.loads((snap_dir / "W_Test.json").read_text())[:n]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records))
    return path


def test_huge_force_is_refused_naming_file_and_frame(snap_dir, tmp_path):
    from dualbench.data import FrameError, prepare_frames, read_frames

    records = _snap_records(snap_dir)
    records[2]["outputs"]["forces"][5] = [1.0e6, 0.0, 0.0]
    bad = _write(tmp_path / "big.json", records)
    with pytest.raises(FrameError, match=r"big\.json: frame 2: force component 1e\+06 eV/Å on"
                                         r" atom 5 exceeds dft\.max_force_eV_per_A = 100"):
        read_frames(bad, "pymatgen-json", ["W"])
    # the bound is configurable, and nothing is written when a frame is refused
    assert len(read_frames(bad, "pymatgen-json", ["W"], max_force_eV_per_A=2e6)) == 3
    out = tmp_path / "out"
    with pytest.raises(FrameError, match="frame 2"):
        prepare_frames(bad, "pymatgen-json", None, None, ["W"], 0.34, 1,
                       out / "pool.extxyz", out / "test.extxyz")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (lambda r: r["outputs"].__setitem__("energy", "n/a"),
         "frame 1: energy 'n/a' is not a number"),
        (lambda r: r["outputs"]["forces"].__setitem__(4, [0.1, 0.2]),
         "frame 1: forces is not an array of numbers (row 4 has 2 components)"),
    ],
    ids=["non_numeric_energy", "two_component_force_row"],
)
def test_malformed_frame_names_file_and_frame(snap_dir, tmp_path, fault, says):
    from dualbench.data import FrameError, read_frames

    records = _snap_records(snap_dir)
    fault(records[1])
    bad = _write(tmp_path / "bad.json", records)
    with pytest.raises(FrameError) as err:
        read_frames(bad, "pymatgen-json", ["W"])
    assert str(err.value) == f"{bad}: {says}"


def test_non_numeric_energy_in_extxyz_names_frame(tmp_path):
    from dualbench.data import FrameError, read_frames

    frame = ('2\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3:forces:R:3 '
             'energy={e} pbc="T T T"\nW 0 0 0 0.1 0 0\nW 1.5 1.5 1.5 -0.1 0 0\n')
    path = tmp_path / "frames.extxyz"
    path.write_text(frame.format(e="-10.0") + frame.format(e="abc"))
    with pytest.raises(FrameError, match=r"frames\.extxyz: frame 1: energy 'abc' is not a number"):
        read_frames(path, "extxyz", ["W"])


def test_virial_stress_is_read_like_snap_stress(snap_dir, tmp_path, caplog):
    """The mlearn sets store VASP's stress as outputs.virial_stress: the same numbers
    under SNAP's key `stress` are the oracle."""
    import logging

    from dualbench.data import read_frames

    records = _snap_records(snap_dir)
    assert all(r["outputs"].get("stress") is not None for r in records)
    renamed = json.loads(json.dumps(records))
    for rec in renamed:
        rec["outputs"]["virial_stress"] = rec["outputs"].pop("stress")
    snap = read_frames(_write(tmp_path / "snap.json", records), "pymatgen-json", ["W"])
    with caplog.at_level(logging.INFO, logger="dualbench.data"):
        mlearn = read_frames(_write(tmp_path / "mlearn.json", renamed), "pymatgen-json", ["W"])
    assert "stress read from outputs.virial_stress" in caplog.text
    for a, b in zip(snap, mlearn, strict=True):
        np.testing.assert_array_equal(a.get_stress(), b.get_stress())


# --- the command line: the schema's bounds, unreadable structures, unwritable outputs ---

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualbench", *args],
                          capture_output=True, text=True, timeout=300)


MD_ARGS = ["md", "--model", "chgnet", "--structure", "unused.cif", "--out", "unused"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*MD_ARGS, "--temperature", "300", "--timestep", "50"],
         "argument --timestep: 50 is out of range: must be <= 10 (as config key md.timestep_fs)"),
        ([*MD_ARGS, "--temperature", "inf"], "argument --temperature: 'inf' is not a finite"),
        ([*MD_ARGS, "--temperature", "nan"], "argument --temperature: 'nan' is not a finite"),
        ([*MD_ARGS, "--temperature", "300", "--supercell", "0", "2", "2"],
         "argument --supercell: 0 is out of range: must be >= 1"),
        ([*MD_ARGS, "--temperature", "300", "--seed", "-1"],
         "argument --seed: -1 is out of range: must be >= 0"),
        (["finetune", "--frames", "x.json", "--n", "2", "--out", "m", "--epochs", "0"],
         "argument --epochs: 0 is out of range: must be >= 1 (as config key finetune.epochs)"),
        (["finetune", "--frames", "x.json", "--n", "2", "--out", "m", "--learning-rate", "nan"],
         "argument --learning-rate: 'nan' is not a finite number"),
    ],
    ids=["timestep_50", "temperature_inf", "temperature_nan", "supercell_0", "seed_-1",
         "epochs_0", "learning_rate_nan"],
)
def test_cli_applies_the_schema_bounds(args, says):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content", ["", "data_empty\n"], ids=["empty", "header_only"])
def test_empty_cif_is_an_error_naming_the_file(tmp_path, content):
    cif = tmp_path / "W.cif"
    cif.write_text(content)
    proc = _cli("md", "--model", "chgnet", "--structure", str(cif), "--temperature", "300",
                "--out", str(tmp_path / "md"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {cif}: " in proc.stderr
    assert not (tmp_path / "md").exists() or not any((tmp_path / "md").iterdir())


def test_unwritable_output_is_refused_before_the_md(tmp_path):
    from ase.build import bulk

    cif = tmp_path / "W.cif"
    bulk("W", "bcc", a=3.1652, cubic=True).write(cif)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should be")
    proc = _cli("md", "--model", "chgnet", "--structure", str(cif), "--temperature", "300",
                "--steps", "2000", "--out", str(blocker / "md"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{blocker / 'md'}: cannot write there" in proc.stderr
    assert "nothing was computed" in proc.stderr


# --- the workflow: a structure file, the default config's YAML error -------------------

def _snakemake(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
         str(workdir), "--cores", "1", *args],
        capture_output=True, text=True, timeout=600,
    )


def _cif_study(repo: Path, tmp_path: Path, absorber: str, frames: Path) -> Path:
    """config/test.yaml with the structure given as a CIF of bcc W and local DFT frames."""
    import yaml
    from ase.build import bulk

    bulk("W", "bcc", a=3.1652, cubic=True).write(tmp_path / "W.cif")
    config = yaml.safe_load((repo / "config" / "test.yaml").read_text())
    entry = config["materials"]["W"]
    entry["structure"] = {"source": {"path": str(tmp_path / "W.cif"), "format": "cif"}}
    entry["absorber"] = absorber
    entry["dft"] = {"train": {"path": str(frames), "format": "extxyz"}, "test": None}
    path = tmp_path / "cif.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _frames_with(tmp_path: Path, symbols: str) -> Path:
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for i in range(6):
        atoms = bulk("W", "bcc", a=3.1652, cubic=True).repeat(2)
        atoms.symbols[3] = symbols if i == 4 else "W"
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - i,
                                           forces=np.full((len(atoms), 3), 0.01))
        frames.append(atoms)
    path = tmp_path / "frames.extxyz"
    write(path, frames, format="extxyz")
    return path


def test_absorber_missing_from_the_structure_file_stops_before_any_job(repo, tmp_path):
    config = _cif_study(repo, tmp_path, "Mo", _frames_with(tmp_path, "W"))
    proc = _snakemake(repo, tmp_path / "work", "-n", "--configfile", str(config))
    assert proc.returncode != 0
    said = "materials.W.absorber: 'Mo' is not among the structure's elements ['W']"
    assert said in proc.stdout + proc.stderr
    assert not (tmp_path / "work" / "results").exists()


def test_foreign_element_in_frames_is_refused_with_a_structure_file(repo, tmp_path):
    frames = _frames_with(tmp_path, "Mo")
    config = _cif_study(repo, tmp_path, "W", frames)
    work = tmp_path / "work"
    proc = _snakemake(repo, work, "results/W/dft/train_pool.extxyz", "--configfile", str(config))
    assert proc.returncode != 0
    log = (work / "results/W/logs/prepare_frames.log").read_text()
    assert f"{frames}: frame 4: holds Mo, not among the material's elements W" in log
    assert not (work / "results/W/dft/train_pool.extxyz").exists()


def test_yaml_error_in_the_default_config_names_file_and_line(repo, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("materials:\n  W: {absorber: W\n")
    proc = _snakemake(repo, tmp_path, "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config/config.yaml: <top level>: not valid YAML" in out and "line 2" in out, out
