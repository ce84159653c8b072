"""Model kinds (issue 14): CHGNet (0.3.0 and r2scan), SevenNet (its shipped checkpoints,
fine-tuned with its own trainer) and any ASE calculator as a vanilla model.

Oracles: forces against finite differences of the same model's energy, ASE's own
calculators, numpy errors of predictions made outside the code under test, SHA-256 of the
file on disk, a planted code payload."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.lj import LennardJones

from dualbench.models.device import set_threads
from dualbench.models.resolve import load_model, make_calculator, parse_model_arg
from dualbench.models.spec import ModelSpec, sha256_file
from test_refusals import _Payload

pytest.importorskip("sevenn")

LJ = "ase.calculators.lj:LennardJones"
LJ_OPTIONS = {"sigma": 2.5, "epsilon": 0.3, "rc": 5.0}


def small_w(seed: int = 1) -> Atoms:
    """16 W atoms of bcc W, rattled: forces of order 1 eV/Å."""
    atoms = bulk("W", "bcc", a=3.165, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def fd_force(atoms: Atoms, calc, index: int, axis: int, h: float = 1e-2) -> float:
    """-dE/dx by central differences of the calculator's energy (eV/Å).  h = 0.01 Å: the
    models sum energies in float32 (about 1e-4 eV of a -800 eV total), the curvature
    error is of order h^2."""
    energies = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[index, axis] += sign * h
        moved.calc = calc
        energies.append(moved.get_potential_energy())
    return -(energies[0] - energies[1]) / (2 * h)


@pytest.mark.parametrize(
    "name",
    ["chgnet", "chgnet:r2scan", "sevennet", "sevennet:7net-l3i5", "sevennet:7net-mf-0@R2SCAN"],
)
def test_each_kind_loads_offline_and_its_forces_are_its_energy_gradient(name):
    set_threads(2)
    atoms = small_w()
    calc = make_calculator(name, "cpu")
    atoms.calc = calc
    forces = atoms.get_forces()
    assert forces.shape == (16, 3) and np.abs(forces).max() > 0.1
    assert np.abs(forces.sum(axis=0)).max() < 1e-3  # no net force on a periodic cell
    assert atoms.get_stress().shape == (6,)
    for index, axis in [(0, 0), (5, 2)]:
        assert forces[index, axis] == pytest.approx(fd_force(atoms, calc, index, axis), abs=0.01)


def test_r2scan_weights_are_other_weights():
    """CHGNet's r2scan model is its own model: energies on r2SCAN's scale (total energies
    tens of eV/atom below MPtrj's PBE ones), not the PBE weights under another name."""
    atoms = small_w()
    energies = {}
    for name in ("chgnet", "chgnet:r2scan", "sevennet:7net-mf-0", "sevennet:7net-mf-0@R2SCAN"):
        atoms.calc = make_calculator(name, "cpu")
        energies[name] = atoms.get_potential_energy() / len(atoms)
    assert energies["chgnet:r2scan"] < energies["chgnet"] - 10
    assert energies["sevennet:7net-mf-0@R2SCAN"] < energies["sevennet:7net-mf-0"] - 10


def test_model_names_parse_and_wrong_ones_are_refused():
    assert parse_model_arg("sevennet") == ModelSpec(kind="sevennet", weights="7net-0")
    assert parse_model_arg("sevennet:7net-mf-0").modal == "PBE"
    assert parse_model_arg("sevennet:7net-mf-0@R2SCAN").modal == "R2SCAN"
    assert parse_model_arg("chgnet:r2scan") == ModelSpec(kind="chgnet", weights="r2scan")
    with pytest.raises(ValueError, match="no shipped weights '7net-omni'"):
        parse_model_arg("sevennet:7net-omni")  # not in the wheel: never downloaded
    with pytest.raises(ValueError, match="has no modalities"):
        parse_model_arg("sevennet:7net-0@PBE")
    with pytest.raises(ValueError, match="no shipped weights '0.4.0'"):
        parse_model_arg("chgnet:0.4.0")


def test_ase_kind_is_any_calculator_by_import_path(tmp_path, w_test_frames):
    """kind ase: the DFT metrics of ASE's Lennard-Jones equal numpy's errors of the same
    calculator's forces, and the metrics record the calculator.  The spec is the caller's
    own (the config's, see test_model_trust): a model.json of kind ase is refused."""
    from dualbench.metrics import run_dft_metrics

    frames = w_test_frames[:3]
    spec = ModelSpec(kind="ase", weights="", calculator=LJ, options=LJ_OPTIONS)
    from dualbench.data import write_frames

    write_frames(tmp_path / "frames.extxyz", frames)
    result = run_dft_metrics(spec, str(tmp_path / "frames.extxyz"),
                             str(tmp_path / "m.json"), "extxyz", "cpu")
    errors = []
    for frame in frames:
        atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
        atoms.calc = LennardJones(**LJ_OPTIONS)
        errors.append(np.abs(atoms.get_forces() - frame.get_forces()).ravel())
    assert result["force_mae_eV_per_A"] == pytest.approx(np.concatenate(errors).mean(), rel=1e-9)
    assert result["model"]["calculator"] == LJ
    with pytest.raises(ValueError, match="cannot import"):
        make_calculator(ModelSpec(kind="ase", weights="", calculator="no_such_pkg:Calc"))


def test_ase_kind_has_no_trainer(tmp_path, snap_dir):
    from dualbench.finetune import run_finetune
    from dualbench.training import FinetuneSettings

    with pytest.raises(ValueError, match="kind 'ase' has no fine-tuning trainer here"):
        run_finetune(snap_dir / "W_AIMD.json", 2, 0, FinetuneSettings(epochs=1), tmp_path,
                     base=ModelSpec(kind="ase", weights="", calculator=LJ),
                     pool_format="pymatgen-json")
    assert not any(tmp_path.iterdir())  # nothing written


def test_sevennet_checkpoint_with_code_payload_is_refused(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    torch.save({"config": {"cutoff": 5.0}, "model_state_dict": _Payload(marker)}, evil)
    spec = ModelSpec(kind="sevennet", weights="7net-0", checkpoint=str(evil))
    with pytest.raises(ValueError, match=r"evil\.pth: not a loadable SevenNet checkpoint"):
        load_model(spec, "cpu")
    assert not marker.exists()


@pytest.mark.slow
def test_sevennet_fine_tunes_with_its_trainer_and_its_checkpoint_is_pinned(tmp_path, snap_dir):
    """Three epochs on 4 W frames lower SevenNet's force error on those frames (errors
    computed here with numpy from the reloaded model's calculator); the written checkpoint
    is recorded by SHA-256, loads through the command-line name of a file, and is refused
    once changed."""
    from dualbench.data import read_frames
    from dualbench.finetune import run_finetune
    from dualbench.training import FinetuneSettings

    set_threads(2)
    out = tmp_path / "tuned"
    settings = FinetuneSettings(epochs=3, learning_rate=2e-3, batch_size=2)
    spec_path = run_finetune(snap_dir / "W_AIMD.json", 4, 0, settings, out,
                             base="sevennet", pool_format="pymatgen-json")
    record = json.loads(spec_path.read_text())
    assert record["kind"] == "sevennet" and record["n_frames"] == 4
    assert record["checkpoint_sha256"] == sha256_file(out / "checkpoint.pth.tar")
    ids = set(json.loads((out / "frame_ids.json").read_text())["frame_ids"])
    pool = read_frames(snap_dir / "W_AIMD.json", "pymatgen-json", ["W"])
    frames = [f for f in pool if f.info["frame_id"] in ids]
    assert len(frames) == 4

    def force_mae(model) -> float:
        calc = make_calculator(model, "cpu")
        errs = []
        for frame in frames:
            atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
            atoms.calc = calc
            errs.append(np.abs(atoms.get_forces() - frame.get_forces()).ravel())
        return float(np.concatenate(errs).mean())

    before = force_mae("sevennet")
    after = force_mae(str(out / "checkpoint.pth.tar"))  # a file name, as on the command line
    assert after < 0.8 * before, (before, after)

    with open(out / "checkpoint.pth.tar", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ValueError, match="refusing to load a changed file"):
        load_model(str(spec_path), "cpu")
