"""The backend registry: a new model kind is one small Backend registered under its name,
and the stages (DFT metrics, MD) run it without knowing it; kind ase refuses fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from dualbench.models import backend as registry
from dualbench.models.backend import Backend, get_backend, register_backend
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneSettings


class ToyEMT(Backend):
    """A toy kind: ASE's EMT, with a trivial predict of its own (energy and forces only)."""

    kind = "toy-emt"

    def calculator(self, spec, device):
        return EMT()

    def predict(self, spec, frames, device, with_stress):
        calc = EMT()
        return [{"e": calc.get_potential_energy(f.copy()) / len(f),
                 "f": calc.get_forces(f.copy())} for f in frames]

    def describe(self, spec):
        return {"trained_on": "effective medium theory"}


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    register_backend("toy-emt", ToyEMT())
    return ModelSpec(kind="toy-emt", weights="")


def cu_frames(n: int = 3) -> list[Atoms]:
    """Rattled 32-atom Cu cells labelled by Lennard-Jones (the toy's 'DFT')."""
    frames = []
    for seed in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = LennardJones(sigma=2.3, epsilon=0.4, rc=6.0)
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    return frames


def test_register_refuses_a_taken_kind_and_an_unknown_kind_is_named(toy):
    with pytest.raises(ValueError, match="registered already"):
        register_backend("chgnet", ToyEMT())
    with pytest.raises(ValueError, match="unknown model kind 'nope'.*toy-emt"):
        get_backend("nope")
    assert get_backend("toy-emt").conda_env == "envs/ml.yaml"


def test_toy_kind_through_the_dft_metrics(toy, tmp_path):
    from dualbench.data import write_frames
    from dualbench.metrics import run_dft_metrics

    frames = cu_frames()
    write_frames(tmp_path / "frames.extxyz", frames)
    result = run_dft_metrics(toy, str(tmp_path / "frames.extxyz"), str(tmp_path / "m.json"),
                             "extxyz", "cpu", parity_out=str(tmp_path / "parity.csv"))
    errors = np.concatenate([np.abs(EMT().get_forces(f.copy()) - f.get_forces()).ravel()
                             for f in frames])
    assert result["force_mae_eV_per_A"] == pytest.approx(errors.mean(), rel=1e-9)
    assert result["n_frames"] == 3 and result["stress_mae_GPa"] is None
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["model"]["kind"] == "toy-emt"
    assert written["model"]["trained_on"] == "effective medium theory"


def test_toy_kind_through_the_md(toy, tmp_path):
    from dualbench.md.driver import RUN_INFO_FILE, run_md_job
    from dualbench.md.settings import md_settings

    settings = md_settings({}, temperature_K=300.0, seed=0, equilibration_steps=0,
                           production_steps=4, snapshot_every=2, checkpoint_every=2,
                           device="cpu")
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    result = run_md_job(model=toy, unit_cell=unit, supercell=[2, 2, 2], settings=settings,
                        out_dir=tmp_path / "md")
    assert result.total_steps == 4 and result.n_atoms == 32 and result.n_snapshots == 2
    info = json.loads((tmp_path / "md" / RUN_INFO_FILE).read_text())
    assert info["provenance"]["model_fingerprint"] == toy.fingerprint()

def test_ase_kind_refuses_fine_tuning(tmp_path):
    spec = ModelSpec(kind="ase", weights="", calculator="ase.calculators.emt:EMT")
    ase_backend = get_backend("ase")
    assert not ase_backend.trainable
    with pytest.raises(ValueError, match=r"kind 'ase' has no fine-tuning trainer here \(only"
                                         r" chgnet, sevennet, matgl\); benchmark it vanilla"):
        ase_backend.finetune(spec, cu_frames(1), FinetuneSettings(epochs=1), 0,
                             tmp_path / "checkpoint.pth.tar")
    assert not any(tmp_path.iterdir())
