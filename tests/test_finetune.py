"""CHGNet fine-tuning and DFT metrics on a few real SNAP W frames (real model, small data)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dualbench.finetune import run_finetune
from dualbench.metrics import dft_metrics, parity_slope
from dualbench.models.chgnet import predictions
from dualbench.models.chgnet_train import freeze, predict, refit_composition_model
from dualbench.models.resolve import load_model, read_model_spec
from dualbench.training import FinetuneSettings

pytestmark = pytest.mark.slow


def lstsq_slope(predicted, reference) -> float:
    """numpy's least-squares slope of a line through the origin (the oracle)."""
    reference = np.asarray(reference, dtype=float).reshape(-1, 1)
    (slope,), *_ = np.linalg.lstsq(reference, np.ravel(predicted), rcond=None)
    return float(slope)


def test_parity_slope():
    ref = np.array([1.0, -2.0, 3.0])
    assert parity_slope(0.6 * ref, ref) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="undefined"):
        parity_slope(ref, np.zeros(3))


def test_parity_slope_on_noisy_forces_is_numpys_least_squares():
    """On noisy (n_atoms, 3) forces the slope is numpy's least squares through the origin,
    not a ratio of norms (which the noise inflates: sqrt(0.6^2 + 0.4^2) here)."""
    rng = np.random.default_rng(3)
    f_dft = rng.normal(0.0, 1.0, (500, 3))
    f_pred = 0.6 * f_dft + rng.normal(0.0, 0.4, f_dft.shape) + 0.05
    expected = lstsq_slope(f_pred, f_dft)
    assert 0.55 < expected < 0.65
    assert parity_slope(f_pred, f_dft) == pytest.approx(expected, rel=1e-12)
    assert np.sqrt(np.sum(f_pred**2) / np.sum(f_dft**2)) > expected + 0.1


def test_vanilla_chgnet_is_soft_on_held_out_frames(vanilla_chgnet, w_test_frames):
    """Vanilla CHGNet 0.3.0 underestimates W forces (slope about 0.6 on SNAP W_Test)."""
    m, parity = dft_metrics(w_test_frames[:4], predictions(vanilla_chgnet, w_test_frames[:4]))
    assert len(parity) == 216 * 3
    dft = np.concatenate([a.get_forces() for a in w_test_frames[:4]])
    np.testing.assert_allclose(parity["force_dft_eV_per_A"], dft.ravel())
    assert m["force_slope"] == pytest.approx(
        lstsq_slope(parity["force_pred_eV_per_A"], dft), rel=1e-6
    )
    assert m["n_frames"] == 4 and m["n_atoms"] == 216
    assert 0.4 < m["force_slope"] < 0.8
    assert 0.2 < m["force_mae_eV_per_A"] < 0.9
    # Measured with CHGNet 0.3.0 on these 4 frames: 1.62 GPa (the sign flipped in
    # dft_metrics would give ~10 GPa: the frames are at 2-7 GPa of thermal pressure).
    assert 0.5 < m["stress_mae_GPa"] < 3.0
    assert set(m["force_mae_per_element_eV_per_A"]) == {"W"}


def test_composition_refit_removes_mean_energy_offset(vanilla_chgnet, w_test_frames):
    import copy

    model = copy.deepcopy(vanilla_chgnet)
    frames = w_test_frames[:3]
    shifts = refit_composition_model(model, frames)
    assert set(shifts) == {"W"}
    residual = [float(p["e"]) - a.get_potential_energy() / len(a)
                for a, p in zip(frames, predict(model, frames, "e"), strict=True)]
    assert abs(np.mean(residual)) < 1e-4
    # forces do not depend on a per-element constant
    f0 = predict(vanilla_chgnet, frames[:1], "ef")[0]["f"]
    f1 = predict(model, frames[:1], "ef")[0]["f"]
    np.testing.assert_allclose(f0, f1, atol=1e-5)


def test_freeze_groups(vanilla_chgnet):
    import copy

    model = copy.deepcopy(vanilla_chgnet)
    n = freeze(model, ["embeddings", "readout"])
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert n > 0 and all(name.startswith(("atom_embedding", "bond_embedding", "angle_embedding",
                                          "bond_basis", "angle_basis", "site_wise",
                                          "readout_norm", "pooling", "mlp", "composition"))
                         for name in frozen)
    assert any(name.startswith("atom_conv_layers") for name, p in model.named_parameters()
               if p.requires_grad)
    with pytest.raises(ValueError, match="unknown freeze group"):
        freeze(model, ["everything"])


def test_short_finetune_lowers_training_force_error(snap_dir, tmp_path, vanilla_chgnet):
    from dualbench.data import read_frames, select_frames

    settings = FinetuneSettings(epochs=3, learning_rate=1e-3, batch_size=2, device="cpu")
    model_json = run_finetune(snap_dir / "W_AIMD.json", 2, 0, settings, tmp_path / "model",
                              pool_format="pymatgen-json", elements=["W"])
    out = tmp_path / "model"
    for name in ("model.json", "checkpoint.pth.tar", "training_curve.csv", "frame_ids.json"):
        assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]
    record = json.loads((out / "frame_ids.json").read_text())
    pool = read_frames(snap_dir / "W_AIMD.json", "pymatgen-json", ["W"])
    frames, expected = select_frames(pool, 2, 0)
    assert record["indices"] == expected["indices"]
    assert record["n_validation"] == 0 and record["validation_frame_ids"] == []  # 2 < 10
    assert record["provenance"]["packages"]["chgnet"]
    spec = read_model_spec(model_json)
    assert spec.n_frames == 2 and spec.seed == 0 and spec.checkpoint.endswith(".pth.tar")

    before = dft_metrics(frames, predictions(vanilla_chgnet, frames))[0]["force_mae_eV_per_A"]
    tuned = load_model(model_json, "cpu")
    after = dft_metrics(frames, predictions(tuned, frames))[0]["force_mae_eV_per_A"]
    assert after < before - 0.01, (before, after)
    # The composition model was refitted after training: no mean energy offset is left.
    residual = [float(p["e"]) - a.get_potential_energy() / len(a)
                for a, p in zip(frames, predict(tuned, frames, "e"), strict=True)]
    assert abs(np.mean(residual)) < 1e-3
    curve = (out / "training_curve.csv").read_text().splitlines()
    assert curve[0].startswith("epoch,train_energy_mae_eV_per_atom,train_force_mae_eV_per_A")
    assert len(curve) == 1 + 3


@pytest.fixture(scope="module")
def stiff_frames(vanilla_chgnet):
    """Ten distorted 2-atom W cells labelled with CHGNet's own energy and 1.5 x its forces
    (a stand-in for a stiffer reference; cheap enough to train many epochs)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from chgnet.model.dynamics import CHGNetCalculator

    calc = CHGNetCalculator(vanilla_chgnet, use_device="cpu")
    rng = np.random.default_rng(5)
    frames = []
    for i in range(10):
        frac = [[0, 0, 0], 0.5 + rng.uniform(-0.05, 0.05, 3)]
        atoms = Atoms("W2", scaled_positions=frac, cell=[rng.uniform(3.1, 3.22)] * 3, pbc=True)
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), 1.5 * atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        atoms.info["frame_id"] = f"stiff:{i}"
        frames.append(atoms)
    return frames


def test_validation_split_and_early_stopping(stiff_frames, vanilla_chgnet):
    """Ten frames (the validation threshold): 2 are held out, a learning rate far too high
    makes their error rise, training stops after `patience` epochs without improvement,
    and the model returned is the best epoch's, not the last one's."""
    from dualbench.models.chgnet_train import finetune

    frames = stiff_frames
    # A learning rate 200 x the default: the validation error jumps around.
    settings = FinetuneSettings(epochs=10, learning_rate=0.2, batch_size=4,
                                early_stopping_patience=2, device="cpu")
    assert settings.min_frames_for_validation == 10 and settings.validation_fraction == 0.2
    result = finetune(vanilla_chgnet, frames, settings, seed=1)
    assert result.n_validation == 2 and result.n_train == 8
    val = sorted(result.validation_indices)
    assert len(set(val)) == 2 and set(val) <= set(range(10))
    curve = result.curve
    assert {"val_force_mae_eV_per_A", "val_energy_mae_eV_per_atom"} <= set(curve.columns)
    score = curve["val_force_mae_eV_per_A"] + curve["val_energy_mae_eV_per_atom"]
    assert np.isfinite(score).all()
    assert result.best_epoch == int(curve["epoch"][int(np.argmin(score))])
    # Stopped early: `patience` epochs after the best, before the last epoch.
    assert len(curve) == result.best_epoch + settings.early_stopping_patience < settings.epochs
    # The returned weights are the best epoch's: their force error on the held-out
    # frames is that epoch's validation error (numpy, from the labels), not the last.
    preds = predict(result.model, [frames[i] for i in val], "ef")
    errors = [np.abs(np.asarray(p["f"]) - frames[i].get_forces())
              for i, p in zip(val, preds, strict=True)]
    val_mae = float(np.mean(np.concatenate(errors)))
    best, last = curve["val_force_mae_eV_per_A"].iloc[[result.best_epoch - 1, -1]]
    assert abs(best - last) > 1e-3
    assert val_mae == pytest.approx(best, rel=1e-3)


def test_cli_dft_metrics(snap_dir, tmp_path, vanilla_chgnet):
    from dualbench.data import read_frames, write_frames

    frames = read_frames(snap_dir / "W_Test.json", "pymatgen-json", ["W"])[:2]
    write_frames(tmp_path / "two.extxyz", frames)
    out = tmp_path / "metrics.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "dft-metrics", "--model", "chgnet",
         "--frames", str(tmp_path / "two.extxyz"), "--out", str(out), "--threads", "2"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())
    assert m["n_frames"] == 2 and m["n_atoms"] == 108
    # Oracle: CHGNet's ASE calculator (stress eV/Å^3, tension positive) against the raw
    # VASP records (stress kBar, xx yy zz xy yz zx, compression positive), by hand.
    from ase import units
    from chgnet.model.dynamics import CHGNetCalculator

    calc = CHGNetCalculator(vanilla_chgnet, use_device="cpu", stress_weight=units.GPa)
    raw = json.loads((snap_dir / "W_Test.json").read_text())[:2]
    e_err, f_err, s_err, pairs = [], [], [], []
    for record, frame in zip(raw, frames, strict=True):
        atoms = frame.copy()
        atoms.calc = calc
        n = len(atoms)
        e_err.append(atoms.get_potential_energy() / n - record["outputs"]["energy"] / n)
        f_dft = np.array(record["outputs"]["forces"])
        f_err.append(np.abs(atoms.get_forces() - f_dft))
        pairs.append((atoms.get_forces(), f_dft))
        xx, yy, zz, yz, xz, xy = atoms.get_stress(voigt=True) / units.GPa
        s_err.append(np.abs(np.array([xx, yy, zz, xy, yz, xz])
                            + 0.1 * np.array(record["outputs"]["stress"])))
    assert m["energy_mae_eV_per_atom"] == pytest.approx(np.mean(np.abs(e_err)), abs=1e-5)
    assert m["force_mae_eV_per_A"] == pytest.approx(np.mean(f_err), rel=1e-4)
    assert m["stress_mae_GPa"] == pytest.approx(np.mean(s_err), abs=2e-3)
    f_pred, f_dft = (np.concatenate(x) for x in zip(*pairs, strict=True))
    assert m["force_slope"] == pytest.approx(lstsq_slope(f_pred, f_dft), rel=1e-4)
    assert m["provenance"]["packages"]["torch"].startswith("2.13")


def test_cli_refuses_unknown_model(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "dft-metrics", "--model", "nonsense",
         "--frames", "x.xyz", "--out", str(tmp_path / "m.json")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "model 'nonsense' is neither a pretrained name" in proc.stderr


def test_schedule_picks_the_first_entry_covering_n():
    from dualbench.training import scheduled

    section = {"epochs": 10, "learning_rate": 1e-3, "batch_size": 4,
               "schedule": [{"max_n": 20, "epochs": 15},
                            {"max_n": 2, "epochs": 0, "learning_rate": 1e-4}]}
    assert scheduled(section, 1) == {"epochs": 0, "learning_rate": 1e-4, "batch_size": 4}
    assert scheduled(section, 2)["epochs"] == 0
    assert scheduled(section, 3) == {"epochs": 15, "learning_rate": 1e-3, "batch_size": 4}
    assert scheduled(section, 50) == {"epochs": 10, "learning_rate": 1e-3, "batch_size": 4}
    assert FinetuneSettings.from_config(section, n_frames=1).epochs == 0
    assert FinetuneSettings.from_config(section).epochs == 10  # no N: no schedule


def test_zero_epochs_refit_energies_and_keep_forces(vanilla_chgnet, w_test_frames):
    """epochs 0: forces are the vanilla model's to the last digit, the frames' mean per-atom
    energy error is zero (numpy on the vanilla predictions), nothing else moves."""
    from dualbench.models.chgnet_train import finetune

    frames = w_test_frames[:2]
    result = finetune(vanilla_chgnet, frames, FinetuneSettings(epochs=0, device="cpu"), 0)
    assert result.best_epoch == 0 and result.curve.empty
    before = predict(vanilla_chgnet, frames, "ef")
    after = predict(result.model, frames, "ef")
    for b, a in zip(before, after, strict=True):
        assert np.array_equal(np.asarray(b["f"]), np.asarray(a["f"]))
    offset = np.mean([f.get_potential_energy() / len(f) - float(p["e"])
                      for f, p in zip(frames, before, strict=True)])
    shifted = np.mean([f.get_potential_energy() / len(f) - float(p["e"])
                       for f, p in zip(frames, after, strict=True)])
    assert abs(offset) > 1e-3 and abs(shifted) < 1e-4
    assert result.composition_shift_eV_per_atom["W"] == pytest.approx(offset, abs=1e-4)
