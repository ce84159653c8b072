"""`kind: matgl`: matgl's M3GNet and TensorNet potentials built from pinned files without
running code from them, their forces and stresses against finite differences of their own
energy, a tampered or code-naming file refused, and matgl's own trainer lowering the
training-frame force error.  The per-model `finetune` override of the config."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from ase.build import bulk

from dualbench.config import ConfigError, load_yaml, prepare_config
from dualbench.data import read_frames, write_frames
from dualbench.models.backend import get_backend
from dualbench.models.matgl_kind import MATGL_WEIGHTS, cache_folder
from dualbench.models.resolve import make_calculator, parse_model_arg
from dualbench.training import FinetuneSettings, model_section, scheduled

pytest.importorskip("matgl")

TENSORNET = "TensorNet-MatPES-PBE-v2025.1-PES"
M3GNET_MP = "M3GNet-MP-2021.2.8-PES"


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory, mirror):
    """A fresh model cache for this module, filled from the data mirror."""
    folder = tmp_path_factory.mktemp("model-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("DUALBENCH_MODEL_CACHE", str(folder))
    yield folder
    patch.undo()


def rattled_w(seed: int = 1):
    atoms = bulk("W", "bcc", a=3.1652, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=seed)
    return atoms


def energy(atoms, calc) -> float:
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


@pytest.mark.parametrize("name", [TENSORNET, M3GNET_MP])
def test_forces_and_stress_are_derivatives_of_the_energy(model_cache, name):
    calc = make_calculator(f"matgl:{name}", "cpu")
    atoms = rattled_w()
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    assert np.abs(forces).max() > 0.1  # a rattled cell has forces worth checking
    h = 5e-3  # Å; central differences, float32 energies of about -200 eV
    for i, k in [(0, 0), (3, 1), (9, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        fd = -(energy(plus, calc) - energy(minus, calc)) / (2 * h)
        assert forces[i, k] == pytest.approx(fd, abs=0.01, rel=0.02)
    # stress (eV/Å^3, ASE's sign): (1/V) dE/d(strain), strain applied to the cell
    eps = 1e-3
    volume = atoms.get_volume()
    for a, b in [(0, 0), (1, 1), (0, 1)]:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = eps / (1 if a == b else 2)
        plus, minus = atoms.copy(), atoms.copy()
        plus.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
        minus.set_cell(atoms.cell @ (np.eye(3) - strain), scale_atoms=True)
        fd = (energy(plus, calc) - energy(minus, calc)) / (2 * eps) / volume
        assert stress[a, b] == pytest.approx(fd, abs=2e-4, rel=0.03)


def test_pretrained_files_come_pinned_from_the_mirror(model_cache):
    spec = parse_model_arg("matgl")
    assert spec.kind == "matgl" and spec.weights == TENSORNET
    get_backend("matgl").load(spec, "cpu")
    folder = cache_folder(TENSORNET)
    assert folder.is_relative_to(model_cache)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.pt", "state.pt"]
    assert get_backend("matgl").describe(spec)["trained_on"].startswith("PBE, MatPES")
    with pytest.raises(ValueError, match="matgl has no pretrained weights 'TensorNet-X'"):
        parse_model_arg("matgl:TensorNet-X")


def test_tampered_state_file_is_refused(model_cache, tmp_path, monkeypatch):
    source = cache_folder(M3GNET_MP)
    get_backend("matgl").load(parse_model_arg(f"matgl:{M3GNET_MP}"), "cpu")  # fills it
    monkeypatch.setenv("DUALBENCH_MODEL_CACHE", str(tmp_path))
    copy = cache_folder(M3GNET_MP)
    shutil.copytree(source, copy)
    data = bytearray((copy / "state.pt").read_bytes())
    data[-200] ^= 0x01  # one bit of one weight
    (copy / "state.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"state.pt: SHA-256 .* refusing a changed file"):
        make_calculator(f"matgl:{M3GNET_MP}", "cpu")


def test_checkpoint_naming_other_code_is_refused(model_cache, tmp_path):
    """A checkpoint is built only from matgl's TensorNet and M3GNet: a file naming any
    other class (here subprocess.Popen, which would run a command) is refused, and a file
    with a pickled code payload is never unpickled."""
    from dualbench.models.matgl_train import checkpoint_body, save_matgl_checkpoint
    from dualbench.models.spec import ModelSpec

    spec = parse_model_arg(f"matgl:{M3GNET_MP}")
    body = checkpoint_body(get_backend("matgl").load(spec, "cpu"), spec, 0)
    body["matgl"]["architecture"] = {"@class": "Popen", "@module": "subprocess",
                                     "init_args": {"args": ["touch", str(tmp_path / "ran")]}}
    save_matgl_checkpoint(body, tmp_path / "evil.pth.tar")
    evil = ModelSpec(kind="matgl", weights=M3GNET_MP, checkpoint=str(tmp_path / "evil.pth.tar"))
    with pytest.raises(ValueError, match=r"subprocess.Popen is not one this workflow builds"):
        make_calculator(evil, "cpu")

    class Payload:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    torch.save({"matgl": {"architecture": Payload()}}, tmp_path / "pickled.pth.tar")
    pickled = ModelSpec(kind="matgl", weights=M3GNET_MP,
                        checkpoint=str(tmp_path / "pickled.pth.tar"))
    with pytest.raises(ValueError, match="nothing that runs code"):
        make_calculator(pickled, "cpu")
    assert (tmp_path / "victim").is_dir() and not (tmp_path / "ran").exists()


def force_mae(model, frames) -> float:
    calc = make_calculator(model, "cpu")
    errors = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calc
        errors.append(np.abs(atoms.get_forces() - frame.get_forces()).mean())
    return float(np.mean(errors))


def test_matgl_trainer_lowers_training_force_error(model_cache, w_test_frames, tmp_path):
    from dualbench.finetune import run_finetune

    frames = [f for f in w_test_frames if f.info["record"]["notes"] == {"Md": "md-300-4"}
              or f.info["record"]["notes"] == {"Md": "md-300-2"}]
    assert len(frames) == 2
    write_frames(tmp_path / "pool.extxyz", frames)
    settings = FinetuneSettings(epochs=3, learning_rate=1e-4, batch_size=2, device="cpu")
    model_json = run_finetune(tmp_path / "pool.extxyz", 2, 0, settings, tmp_path / "model",
                              base=f"matgl:{TENSORNET}", elements=["W"])
    tuned = parse_model_arg(model_json)  # the checkpoint pinned by its SHA-256
    assert tuned.kind == "matgl" and tuned.checkpoint_sha256
    assert parse_model_arg(tuned.checkpoint).kind == "matgl"  # recognised on its own
    pool = read_frames(tmp_path / "pool.extxyz", "extxyz", ["W"])
    before, after = force_mae(f"matgl:{TENSORNET}", pool), force_mae(tuned, pool)
    assert after < 0.95 * before, (before, after)


def test_config_takes_matgl_and_a_models_own_finetune_settings(repo):
    config = load_yaml(repo / "config" / "config.yaml")
    config["models"]["tensornet"] = {"kind": "matgl", "finetune": {"learning_rate": 1e-4}}
    filled = prepare_config(config, "test")
    assert filled["models"]["tensornet"]["weights"] == TENSORNET
    bad = load_yaml(repo / "config" / "config.yaml")
    bad["models"]["tensornet"] = {"kind": "matgl", "weights": "TensorNet-X"}
    with pytest.raises(ConfigError, match=r"models.tensornet.weights: 'TensorNet-X'"):
        prepare_config(bad, "test")
    bad["models"]["tensornet"] = {"kind": "matgl", "finetune": {"learning_rate": 0}}
    with pytest.raises(ConfigError, match=r"models.tensornet.finetune.learning_rate"):
        prepare_config(bad, "test")
    bad["models"]["tensornet"] = {"kind": "ase", "calculator": "ase.calculators.emt:EMT",
                                  "finetune": {"epochs": 5}}
    with pytest.raises(ConfigError, match=r"models.tensornet.finetune: kind ase is not"):
        prepare_config(bad, "test")


def test_models_own_finetune_keys_win_at_every_n():
    study = {"epochs": 20, "learning_rate": 1e-3,
             "schedule": [{"max_n": 2, "epochs": 40, "learning_rate": 3e-3}]}
    own = model_section(study, {"learning_rate": 1e-4})
    assert scheduled(own, 1) == {"epochs": 40, "learning_rate": 1e-4}
    assert scheduled(own, 10) == {"epochs": 20, "learning_rate": 1e-4}
    with_schedule = model_section(study, {"schedule": [{"max_n": 5, "epochs": 2}]})
    assert scheduled(with_schedule, 1) == {"epochs": 2, "learning_rate": 1e-3}
    assert scheduled(model_section(study, None), 1) == scheduled(study, 1)


def test_every_pretrained_potential_is_pinned():
    for name, pretrained in MATGL_WEIGHTS.items():
        assert set(pretrained.sha256) == {"model.json", "model.pt", "state.pt"}, name
        assert all(len(sha) == 64 for sha in pretrained.sha256.values())


def test_loading_a_withdrawn_checkpoint_says_so(model_cache, caplog):
    """Every mirrored matgl checkpoint was withdrawn upstream as buggy, and measured here
    wrong on ionic compounds: each job's log says so when it loads one."""
    import logging

    with caplog.at_level(logging.WARNING, logger="dualbench.models.matgl_kind"):
        make_calculator(f"matgl:{TENSORNET}", "cpu")
    said = [r.getMessage() for r in caplog.records if "withdrew" in r.getMessage()]
    assert said and said[0].startswith(f"{TENSORNET}: matgl withdrew this checkpoint")
    assert "do not trust its scores on compounds" in said[0]
