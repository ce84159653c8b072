"""DFT labelling: sampling, GPAW+D3 labels read back as DFT frames, calculator swaps, rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase import Atoms

from dualbench.config import load_config
from dualbench.data import read_frames
from dualbench.label import (
    LabelSettings,
    gather_labels,
    make_dft_calculator,
    rattled_cells,
    sample_configs,
)
from dualbench.md.snapshots import read_snapshots
from dualbench.schema import ConfigError
from dualbench.structure import build_structure
from test_workflow import snakemake

WS2 = {
    "symbols": ["W", "S"],
    "basis": [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]],
    "spacegroup": 194,
    "cellpar": [3.153, 3.153, 12.323, 90, 90, 120],
}
# The cheapest GPAW that still runs every code path: Gamma only, 200 eV, one 6-atom cell.
TINY = {
    "supercell": [1, 1, 1],
    "cutoff_eV": 200,
    "kpts": [1, 1, 1],
    "sampling": {
        "md_frames": 1,
        "test_frames": 1,
        "rattled_frames": 1,
        "interval_steps": 2,
        "equilibration_steps": 2,
    },
}


@pytest.fixture(scope="module")
def ws2_cell() -> Atoms:
    return build_structure(WS2)


def test_ws2_structure_is_2h(ws2_cell):
    """2Hc-WS2: 2 W + 4 S per cell, W-S bonds of 2.41 Å, layers c/2 apart."""
    assert ws2_cell.get_chemical_formula() == "S4W2"
    d = ws2_cell.get_all_distances(mic=True)
    w = [i for i, s in enumerate(ws2_cell.get_chemical_symbols()) if s == "W"]
    s = [i for i, s in enumerate(ws2_cell.get_chemical_symbols()) if s == "S"]
    assert d[np.ix_(w, s)].min() == pytest.approx(2.41, abs=0.02)
    assert sorted(ws2_cell.positions[w, 2]) == pytest.approx([12.323 / 4, 3 * 12.323 / 4])


def test_rattled_cells_strain_and_displace(ws2_cell):
    frames = rattled_cells(ws2_cell, 3, rattle_A=0.05, strain=0.02, seed=1)
    assert len(frames) == 3
    for frame in frames:
        ratio = np.linalg.solve(ws2_cell.cell[:], frame.cell[:])  # I + strain
        assert np.allclose(ratio, ratio.T, atol=1e-12)
        assert 0 < np.abs(ratio - np.eye(3)).max() <= 0.02
        scaled = ws2_cell.get_scaled_positions() @ frame.cell[:]
        shift = frame.positions - scaled
        assert 0.01 < shift.std() < 0.1
    again = rattled_cells(ws2_cell, 3, rattle_A=0.05, strain=0.02, seed=1)
    assert np.array_equal(again[2].positions, frames[2].positions)


def test_label_settings_defaults_come_from_the_schema():
    settings = LabelSettings.from_config({"supercell": [2, 2, 1]})
    assert settings.calculator == "gpaw" and settings.dispersion == "d3bj"
    assert settings.n_configs == settings.md_frames + settings.rattled_frames + 6
    assert settings.level_of_theory() == "gpaw PBE+D3(BJ) 400 eV k 3x3x1"


@pytest.mark.slow
def test_label_one_tiny_frame_with_gpaw_and_read_it_back(ws2_cell, tmp_path):
    """A real GPAW PBE+D3(BJ) calculation (through `dualbench dft-label`); the written
    frame is a valid DFT frame."""
    from dftd3.ase import DFTD3

    from dualbench.cli import main
    from dualbench.data import write_frames

    frame = ws2_cell.copy()
    frame.rattle(0.05, seed=3)
    frame.info.update(frame_id="WS2:tiny", split="train", config_index=0)
    configs, out = tmp_path / "configs.extxyz", tmp_path / "labelled.extxyz"
    write_frames(configs, [frame])
    assert main(["dft-label", "--configs", str(configs), "--out", str(out), "--cutoff", "200",
                 "--kpts", "1", "1", "1", "--work-dir", str(tmp_path / "dft")]) == 0

    (back,) = read_frames(out, "extxyz", elements={"W", "S"})
    assert back.info["frame_id"] == "WS2:tiny"
    assert back.info["dft"] == "gpaw PBE+D3(BJ) 200 eV k 1x1x1"
    assert np.allclose(back.positions, frame.positions)
    forces = back.get_forces()
    assert forces.shape == (6, 3) and np.abs(forces).max() > 0.1  # rattled: real forces
    assert np.abs(forces.sum(axis=0)).max() < 0.05  # no net force on a periodic cell
    stress = back.get_stress()
    assert stress.shape == (6,) and np.all(np.isfinite(stress))
    # The D3(BJ) part is in the label: the energy minus D3 is GPAW's own total energy.
    d3 = Atoms(frame)
    d3.calc = DFTD3(method="PBE", damping="d3bj")
    e_d3 = d3.get_potential_energy()
    assert e_d3 < -0.5  # dispersion binds (about -0.2 eV per atom here)
    gpaw_log = (tmp_path / "dft" / "WS2_tiny.txt").read_text()
    extrapolated = float(gpaw_log.split("Extrapolated:")[-1].split()[0])
    assert back.get_potential_energy() - e_d3 == pytest.approx(extrapolated, abs=1e-4)


@pytest.mark.slow
def test_spin_polarised_labels_of_bcc_iron(tmp_path):
    """`--magnetic-moment Fe=2.5` makes GPAW's labels of bcc Fe ferromagnetic: PBE's
    textbook values at a = 2.87 Å are 2.2-2.3 muB per atom and 0.5-0.6 eV per atom below
    spin-paired Fe, which the default labels give (no moment, the higher energy)."""
    from ase.build import bulk

    from dualbench.cli import main
    from dualbench.data import write_frames

    frame = bulk("Fe", "bcc", a=2.87)
    frame.info.update(frame_id="Fe:bcc", split="train", config_index=0)
    configs = tmp_path / "configs.extxyz"
    write_frames(configs, [frame])
    common = ["dft-label", "--configs", str(configs), "--cutoff", "350", "--kpts", "8", "8",
              "8", "--smearing", "0.1", "--dispersion", "none"]
    energies = {}
    for name, extra in (("paired", []), ("spin", ["--magnetic-moment", "Fe=2.5"]),
                        ("spin_d3", ["--magnetic-moment", "Fe=2.5", "--dispersion", "d3bj"])):
        out = tmp_path / f"{name}.extxyz"
        assert main([*common, "--out", str(out), "--work-dir", str(tmp_path / name),
                     *extra]) == 0
        (back,) = read_frames(out, "extxyz", elements={"Fe"})
        energies[name] = back.get_potential_energy()
        if name.startswith("spin"):  # with D3 the moment is read from the sum's DFT part
            d3 = "+D3(BJ)" if name == "spin_d3" else ""
            assert back.info["dft"] == f"gpaw PBE{d3} 350 eV k 8x8x8 spin Fe 2.5"
            assert 2.1 < back.info["magnetic_moment_muB_per_atom"] < 2.4
            assert "initial_magmoms" not in back.arrays
        else:
            assert back.info["dft"] == "gpaw PBE 350 eV k 8x8x8"
            assert "magnetic_moment_muB_per_atom" not in back.info
    assert 0.45 < energies["paired"] - energies["spin"] < 0.65


def test_magnetic_moments_name_the_theory_and_an_element_of_the_material(tmp_path):
    """Spin-polarised labels are another level of theory (reuse never mixes them with
    spin-paired ones); a moment on an element the material lacks is refused by name."""
    spin = LabelSettings.from_config({"supercell": [1, 1, 1],
                                      "magnetic_moments": {"W": 0.0, "S": 1}})
    assert spin.spin_polarised and spin.level_of_theory().endswith("k 3x3x1 spin S 1")
    assert spin.initial_moments(["W", "S", "S"]) == [0.0, 1.0, 1.0]
    zero = LabelSettings.from_config({"supercell": [1, 1, 1], "magnetic_moments": {"W": 0}})
    assert not zero.spin_polarised and zero.level_of_theory() == "gpaw PBE+D3(BJ) 400 eV k 3x3x1"
    config = {"materials": {"X": {
        "structure": WS2, "absorber": "W", "edge": "L3", "temperature_K": 300,
        "dft": {"label": {"supercell": [1, 1, 1], "magnetic_moments": {"Fe": 2.5}}}}},
        "exafs": {"allow_periodic_images": True}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="'Fe' is not an element of X") as err:
        load_config(path)
    assert err.value.key == "materials.X.dft.label.magnetic_moments.Fe"


def test_vasp_and_espresso_get_their_own_d3(tmp_path):
    vasp = make_dft_calculator(
        LabelSettings.from_config({"supercell": [1, 1, 1], "calculator": "vasp",
                                   "calculator_options": {"setups": "recommended"}}),
        tmp_path,
    )
    assert vasp.int_params["ivdw"] == 12 and vasp.float_params["encut"] == 400
    assert vasp.input_params["setups"] == "recommended"
    qe = make_dft_calculator(
        LabelSettings.from_config({
            "supercell": [1, 1, 1], "calculator": "espresso", "dispersion": "d3zero",
            "calculator_options": {"pseudopotentials": {"W": "W.upf", "S": "S.upf"},
                                   "input_data": {"system": {"nspin": 1}}},
        }),
        tmp_path,
    )
    system = qe.parameters["input_data"]["system"]
    assert system["vdw_corr"] == "dft-d3" and system["dftd3_version"] == 3
    assert system["ecutwfc"] == pytest.approx(400 / 13.605693, rel=1e-5)
    assert system["nspin"] == 1
    assert qe.parameters["input_data"]["control"]["tstress"] is True


@pytest.mark.slow
def test_sample_configs_from_vanilla_md(ws2_cell, tmp_path):
    settings = LabelSettings.from_config(TINY)
    out = tmp_path / "configs.extxyz"
    info = sample_configs(
        ws2_cell, settings, temperature_K=300, model="chgnet", material="WS2",
        md_config={"device": "cpu"}, work_dir=tmp_path / "md", out=out, threads=2,
    )
    assert info == {"n_configs": 3, "n_atoms": 6, "round": 0, "seed": 0}
    configs = read_snapshots(out)
    assert [c.info["split"] for c in configs] == ["train", "train", "test"]
    assert [c.info["frame_id"] for c in configs] == ["WS2:md4", "WS2:rattle0", "WS2:md6"]
    assert all(c.calc is None for c in configs)  # the model's results are not labels
    # a later round: its own MD and rattling (seed + 1), its own frame ids
    again = sample_configs(
        ws2_cell, settings, temperature_K=300, model="chgnet", material="WS2",
        md_config={"device": "cpu"}, work_dir=tmp_path / "md1", out=tmp_path / "r1.extxyz",
        threads=2, round_index=1,
    )
    assert again["seed"] == 1
    round1 = read_snapshots(tmp_path / "r1.extxyz")
    assert [c.info["frame_id"] for c in round1] == ["WS2:r1:md4", "WS2:r1:rattle0",
                                                   "WS2:r1:md6"]
    assert all(c.info["round"] == 1 for c in round1)
    assert not np.allclose(round1[0].positions, configs[0].positions)


def test_sampling_rounds_count_and_chunk():
    settings = LabelSettings.from_config({
        "supercell": [2, 2, 1], "chunk_size": 2,
        "sampling": {"md_frames": 3, "test_frames": 1, "rattled_frames": 1,
                     "rounds": [{"md_frames": 4, "rattled_frames": 1, "test_frames": 2}]},
    })
    rounds = settings.sampling_rounds()
    assert [r.n_configs for r in rounds] == [5, 7]
    assert settings.n_configs == 12
    assert [settings.n_chunks(0), settings.n_chunks(1)] == [3, 4]
    one = settings.for_round(1)
    assert (one.md_frames, one.test_frames, one.rattled_frames, one.rounds) == (4, 2, 1, [])


def _labelled(atoms, energy, theory):
    from dualbench.data.readers import _attach

    frame = atoms.copy()
    _attach(frame, energy, np.full((len(frame), 3), 0.1), np.zeros(6), f"x:{energy}")
    frame.info["dft"] = theory
    return frame


def test_find_labelled_matches_content_within_tolerance(ws2_cell):
    from dualbench.label import config_key, find_labelled

    theory = "gpaw PBE+D3(BJ) 400 eV k 3x3x1"
    stored = [_labelled(ws2_cell, -1.0, theory)]
    near = ws2_cell.copy()
    near.positions[2, 0] += 5e-5
    far = ws2_cell.copy()
    far.positions[2, 0] += 2e-4
    assert find_labelled(near, stored, theory, 1e-4) is stored[0]
    assert find_labelled(far, stored, theory, 1e-4) is None
    assert find_labelled(near, stored, "gpaw PBE 400 eV k 3x3x1", 1e-4) is None
    swapped = ws2_cell.copy()
    swapped.numbers = swapped.numbers[::-1]
    assert find_labelled(swapped, stored, theory, 1e-4) is None
    # the key names content (reuse matches by tolerance, not by key: rounding can split
    # two configurations 5e-5 Å apart)
    assert config_key(ws2_cell.copy()) == config_key(ws2_cell) != config_key(far)


def test_labelling_reuses_frames_by_content_and_computes_nothing(ws2_cell, tmp_path):
    """Every configuration of the chunk is in the reuse file (in another order): the labels
    come from it, each frame says which one, and no DFT runs (no GPAW output)."""
    from dualbench.data import write_frames
    from dualbench.label import label_configs

    settings = LabelSettings.from_config({"supercell": [1, 1, 1], "cutoff_eV": 200,
                                          "kpts": [1, 1, 1]})
    theory = settings.level_of_theory()
    configs = []
    for i in range(3):
        atoms = ws2_cell.copy()
        atoms.rattle(0.03, seed=i)
        atoms.info.update(frame_id=f"WS2:md{i}", split="train", config_index=i)
        configs.append(atoms)
    store = [_labelled(c, -10.0 - i, theory) for i, c in enumerate(configs)][::-1]
    write_frames(tmp_path / "store.extxyz", store)
    settings.reuse = [str(tmp_path / "store.extxyz")]
    info = label_configs(configs, settings, out=tmp_path / "out.extxyz",
                         work_dir=tmp_path / "dft")
    assert info["n_reused"] == 3
    out = read_frames(tmp_path / "out.extxyz", "extxyz")
    assert [f.get_potential_energy() for f in out] == [-10.0, -11.0, -12.0]
    assert [f.info["reused"] for f in out] == ["x:-10.0", "x:-11.0", "x:-12.0"]
    assert [f.info["frame_id"] for f in out] == ["WS2:md0", "WS2:md1", "WS2:md2"]
    assert not list((tmp_path / "dft").glob("*.txt")) if (tmp_path / "dft").exists() else True
    settings.reuse = [str(tmp_path / "missing.extxyz")]
    with pytest.raises(FileNotFoundError, match="dft.label.reuse: .*missing.extxyz"):
        label_configs(configs, settings, out=tmp_path / "o2.extxyz", work_dir=tmp_path / "d2")
    assert not (tmp_path / "o2.extxyz").exists()


def test_collect_keeps_each_frame_once_in_pool_order(ws2_cell, tmp_path):
    """Finished chunks and an earlier collection (which holds one of them again) make one
    file: each frame_id once, round by round in sampling order."""
    from dualbench.cli import main
    from dualbench.data import write_frames

    files = []
    for rnd, index in [(1, 5), (0, 2), (1, 0)]:
        frame = _labelled(ws2_cell, -float(10 * rnd + index), "x")
        frame.info.update(round=rnd, config_index=index, frame_id=f"WS2:r{rnd}:{index}")
        files.append(tmp_path / f"chunk_{rnd}_{index}.extxyz")
        write_frames(files[-1], [frame])
    assert main(["dft-collect", *map(str, files), "--out", str(tmp_path / "a.extxyz")]) == 0
    assert main(["dft-collect", str(tmp_path / "a.extxyz"), str(files[0]),
                 "--out", str(tmp_path / "b.extxyz")]) == 0
    out = read_frames(tmp_path / "b.extxyz", "extxyz")
    assert [f.info["frame_id"] for f in out] == ["WS2:r0:2", "WS2:r1:0", "WS2:r1:5"]
    assert [f.get_potential_energy() for f in out] == [-2.0, -10.0, -15.0]


def test_gather_splits_by_label(ws2_cell, tmp_path):
    from dualbench.data.readers import _attach, write_frames

    chunks = []
    for i, split in enumerate(["train", "test", "train"]):
        frame = ws2_cell.copy()
        _attach(frame, -1.0 * i, np.zeros((6, 3)), np.zeros(6), f"WS2:{i}")
        frame.info.update(split=split, config_index=i, label_s=2.0, dft="x")
        chunks.append(tmp_path / f"chunk{2 - i}.extxyz")
        write_frames(chunks[-1], [frame])
    info = gather_labels(chunks, tmp_path / "train.extxyz", tmp_path / "test.extxyz")
    assert info["n_train"] == 2 and info["n_test"] == 1
    train = read_frames(tmp_path / "train.extxyz", "extxyz")
    assert [f.info["frame_id"] for f in train] == ["WS2:0", "WS2:2"]


@pytest.mark.parametrize(
    "change, key",
    [
        ({"label": None}, "materials.X.dft"),
        ({"test": {"path": "t.extxyz", "format": "extxyz"}}, "materials.X.dft.test"),
        ({"train": {"path": "t.extxyz", "format": "extxyz"}}, "materials.X.dft"),
    ],
)
def test_config_refuses_label_mixups(tmp_path, change, key):
    dft = {"label": {"supercell": [1, 1, 1]}, **change}
    config = {"materials": {"X": {"structure": WS2, "absorber": "W", "edge": "L3",
                                  "temperature_K": 300, "dft": dft}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key and str(path) in str(err.value)


@pytest.mark.slow
def test_label_rules_feed_the_dft_arm(repo, tmp_path):
    """sample_configs -> label_frames (one job per frame) -> gather_labels -> prepare_frames
    and the vanilla model's metrics on the labelled test frame."""
    config = {
        "materials": {"WS2": {"structure": WS2, "absorber": "W", "edge": "L3",
                              "temperature_K": 300, "supercell": [1, 1, 1],
                              "dft": {"label": TINY}}},
        "sweep": {"n_frames": [0, 1]},
        "md": {"device": "cpu"},
        # A 1x1x1 cell for the DFT arm alone: no EXAFS target is asked for here.
        "exafs": {"allow_periodic_images": True},
    }
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/WS2/chgnet/n0/seed0/dft_metrics.json"
    snakemake(repo, tmp_path, "--cores", "2", target, "--configfile", str(path))
    labels = json.loads((tmp_path / "results/WS2/dft/labelled/labels.json").read_text())
    assert labels["n_train"] == 2 and labels["n_test"] == 1
    assert labels["dft"] == ["gpaw PBE+D3(BJ) 200 eV k 1x1x1"]
    frames = json.loads((tmp_path / "results/WS2/dft/frames.json").read_text())
    assert frames["n_train_pool"] == 2 and frames["test_has_stress"]
    metrics = json.loads((tmp_path / target).read_text())
    assert metrics["n_frames"] == 1 and np.isfinite(metrics["force_mae_eV_per_A"])
    assert metrics["frames_dft"] == ["gpaw PBE+D3(BJ) 200 eV k 1x1x1"]  # what it scored against
    for rule in ("sample_configs/round0", "label_frames/round0/chunk0", "gather_labels"):
        assert (tmp_path / f"results/WS2/benchmarks/{rule}.tsv").is_file(), rule

    # A second sampling round grows the set without rerunning or relabelling round 0.
    config["materials"]["WS2"]["dft"]["label"]["sampling"]["rounds"] = [
        {"md_frames": 1, "test_frames": 1}
    ]
    path.write_text(yaml.safe_dump(config))
    plan = snakemake(repo, tmp_path, "-n", target, "--configfile", str(path)).stdout
    assert "round=1" in plan and "round=0" not in plan, plan
    snakemake(repo, tmp_path, "--cores", "2", "results/WS2/dft/labelled/train.extxyz",
              "--configfile", str(path))
    train = read_frames(tmp_path / "results/WS2/dft/labelled/train.extxyz", "extxyz")
    test = read_frames(tmp_path / "results/WS2/dft/labelled/test.extxyz", "extxyz")
    assert [f.info["frame_id"] for f in train][:2] == ["WS2:md4", "WS2:rattle0"]  # kept
    assert len(train) == 3 and len(test) == 2
    assert test[-1].info["frame_id"].startswith("WS2:r1:")
