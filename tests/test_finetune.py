"""CHGNet fine-tuning and DFT metrics on a few real SNAP W frames (real model, small data)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dualbench.finetune import (
    FinetuneSettings,
    freeze,
    predict,
    refit_composition_model,
    run_finetune,
)
from dualbench.metrics import dft_metrics, parity_slope
from dualbench.models import load_model, read_model_spec

pytestmark = pytest.mark.slow


def test_parity_slope():
    ref = np.array([1.0, -2.0, 3.0])
    assert parity_slope(0.6 * ref, ref) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="undefined"):
        parity_slope(ref, np.zeros(3))


def test_vanilla_chgnet_is_soft_on_held_out_frames(vanilla_chgnet, w_test_frames):
    """Vanilla CHGNet 0.3.0 underestimates W forces (slope about 0.6 on SNAP W_Test)."""
    m, parity = dft_metrics(vanilla_chgnet, w_test_frames[:4])
    assert len(parity) == 216 * 3
    assert parity_slope(parity["force_pred_eV_per_A"], parity["force_dft_eV_per_A"]) == (
        pytest.approx(m["force_slope"])
    )
    assert m["n_frames"] == 4 and m["n_atoms"] == 216
    assert 0.4 < m["force_slope"] < 0.8
    assert 0.2 < m["force_mae_eV_per_A"] < 0.9
    assert m["stress_mae_GPa"] is not None and m["stress_mae_GPa"] > 0
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
    assert record["provenance"]["packages"]["chgnet"]
    spec = read_model_spec(model_json)
    assert spec.n_frames == 2 and spec.seed == 0 and spec.checkpoint.endswith(".pth.tar")

    before = dft_metrics(vanilla_chgnet, frames)[0]["force_mae_eV_per_A"]
    tuned = load_model(model_json, "cpu")
    after = dft_metrics(tuned, frames)[0]["force_mae_eV_per_A"]
    assert after < before - 0.01, (before, after)
    # The composition model was refitted after training: no mean energy offset is left.
    residual = [float(p["e"]) - a.get_potential_energy() / len(a)
                for a, p in zip(frames, predict(tuned, frames, "e"), strict=True)]
    assert abs(np.mean(residual)) < 1e-3
    curve = (out / "training_curve.csv").read_text().splitlines()
    assert curve[0].startswith("epoch,train_energy_mae_eV_per_atom,train_force_mae_eV_per_A")
    assert len(curve) == 1 + 3


def test_cli_dft_metrics(snap_dir, tmp_path):
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
    for key in ("force_mae_eV_per_A", "force_slope", "energy_mae_eV_per_atom",
                "stress_mae_GPa", "n_frames", "n_atoms"):
        assert key in m
    assert m["n_frames"] == 2 and m["n_atoms"] == 108
    assert m["provenance"]["packages"]["torch"].startswith("2.13")


def test_cli_refuses_unknown_model(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "dft-metrics", "--model", "nonsense",
         "--frames", "x.xyz", "--out", str(tmp_path / "m.json")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "model 'nonsense' is neither a pretrained name" in proc.stderr
