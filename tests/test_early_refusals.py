"""Issue 27, items 5 and 7: what used to fail only after the MD and EXAFS jobs is refused by
``check-config``, naming the key(s), and the messages of a few refusals say what was tried
and what is valid.  Each config is a shipped one with one change, written to a file."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dualbench.config import load_config, load_yaml
from dualbench.data import FrameError, read_frames, write_frames
from dualbench.schema import ConfigError

LJ = "ase.calculators.lj:LennardJones"


@pytest.fixture(scope="module")
def test_config(repo) -> dict:
    return load_yaml(repo / "config" / "test.yaml")


@pytest.fixture(scope="module")
def label_config(repo) -> dict:
    return load_yaml(repo / "config" / "tmd-label.yaml")


def _write(tmp_path: Path, config: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _refusal(tmp_path: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, config))
    return str(info.value)


def _with_ase_model(base: dict, *, first: bool = False, experiment: bool = False) -> dict:
    config = copy.deepcopy(base)
    ase = {"kind": "ase", "calculator": LJ}
    chgnet = {"kind": "chgnet", "weights": "0.3.0"}
    config["models"] = {"lj": ase, "chgnet": chgnet} if first else {"chgnet": chgnet, "lj": ase}
    if not experiment:
        config["materials"]["W"]["experiment"] = None  # scored against the reference
    return config


# Item 5a: a reference model of kind ase at N > 0 (it runs only at N = 0).


def test_ase_reference_model_at_n_above_zero_is_refused(tmp_path, test_config):
    config = _with_ase_model(test_config)
    config["exafs"]["reference_model"] = {"model": "lj"}  # N null: the largest, 2
    said = _refusal(tmp_path, config)
    assert "study.yaml: exafs.reference_model:" in said
    assert "'lj' (exafs.reference_model.model)" in said and "kind ase" in said
    assert "N = 2" in said and "exafs.reference_model.n_frames" in said

    config["exafs"]["reference_model"] = {"model": "lj", "n_frames": 0}  # exists: accepted
    assert load_config(_write(tmp_path, config))["exafs"]["reference_model"]["n_frames"] == 0


def test_default_reference_of_an_ase_first_model_is_refused_only_when_scored(
    tmp_path, test_config
):
    # reference_model {} (the default): the first model, "lj", at the largest N, 2
    said = _refusal(tmp_path, _with_ase_model(test_config, first=True))
    assert "exafs.reference_model:" in said and "model null: the first of models" in said
    # every material has an experiment: no reference run is scored, nothing to refuse
    load_config(_write(tmp_path, _with_ase_model(test_config, first=True, experiment=True)))


# Item 5b: a labelling pool smaller than the sweep's largest N.


def test_label_pool_smaller_than_the_largest_n_is_refused(tmp_path, label_config):
    sampling = label_config["materials"]["MoS2"]["dft"]["label"]["sampling"]
    pool = sampling["md_frames"] + sampling["rattled_frames"] + sum(
        r.get("md_frames", 0) + r.get("rattled_frames", 0) for r in sampling["rounds"])
    config = copy.deepcopy(label_config)
    config["sweep"] = {"n_frames": [0, pool], "seeds": [0]}
    load_config(_write(tmp_path, config))  # the whole pool: accepted
    config["sweep"]["n_frames"] = [0, pool + 1]
    said = _refusal(tmp_path, config)
    assert "materials.WS2.dft.label.sampling:" in said  # the first material, same pool
    assert f"holds {pool} frames" in said and f"N = {pool + 1}" in said
    assert "sweep.n_frames" in said and "rounds" in said


def test_label_without_a_training_pool_is_refused(tmp_path, label_config):
    # gather_labels refuses labelled frames without a training frame, even at N = 0
    config = copy.deepcopy(label_config)
    config["sweep"] = {"n_frames": [0], "seeds": [0]}
    for material in config["materials"].values():
        material["dft"]["label"]["sampling"].update(md_frames=0, rattled_frames=0, rounds=[])
    said = _refusal(tmp_path, config)
    assert "materials.WS2.dft.label.sampling:" in said
    assert "md_frames and rattled_frames are 0" in said and "rattled_frames: 1" in said
    for material in config["materials"].values():
        material["dft"]["label"]["sampling"]["rattled_frames"] = 1
    load_config(_write(tmp_path, config))


# Item 5c: a duplicate max_n in finetune.schedule.


def test_duplicate_schedule_max_n_is_refused(tmp_path, test_config):
    config = copy.deepcopy(test_config)
    config["finetune"]["schedule"] = [
        {"max_n": 2, "epochs": 1}, {"max_n": 10, "epochs": 3}, {"max_n": 2, "epochs": 5},
    ]
    said = _refusal(tmp_path, config)
    assert "finetune.schedule.2.max_n: 2 is also the max_n of finetune.schedule.0" in said


@pytest.mark.parametrize("case", ["reference", "schedule"])
def test_check_config_command_refuses_them(tmp_path, test_config, case):
    if case == "reference":
        config = _with_ase_model(test_config)
        config["exafs"]["reference_model"] = {"model": "lj"}
        key = "exafs.reference_model:"
    else:
        config = copy.deepcopy(test_config)
        config["finetune"]["schedule"] = [{"max_n": 2}, {"max_n": 2}]
        key = "finetune.schedule.1.max_n:"
    path = _write(tmp_path, config)
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "check-config", str(path), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2 and f"{path}: {key}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# Item 7a: a truncated checkpoint is called truncated, not "not a CHGNet checkpoint".


@pytest.fixture(scope="module")
def truncated_sevennet(tmp_path_factory) -> Path:
    pytest.importorskip("sevenn")
    from dualbench.models.sevennet import pretrained_path

    head = pretrained_path("7net-0").read_bytes()[:4096]
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pth"
    path.write_bytes(head)
    return path


def test_truncated_checkpoint_is_called_truncated(truncated_sevennet):
    from dualbench.models.resolve import load_model
    from dualbench.models.spec import ModelSpec

    spec = ModelSpec(kind="sevennet", weights="7net-0", checkpoint=str(truncated_sevennet))
    for model in (str(truncated_sevennet), spec):  # kind unknown (a bare file), and known
        with pytest.raises(ValueError) as info:
            load_model(model, "cpu")
        said = str(info.value)
        assert said.startswith(f"{truncated_sevennet}: unreadable")
        assert "truncated or corrupt (4096 bytes)" in said and "torch.load" in said
        assert "CHGNet checkpoint" not in said and "SevenNet checkpoint" not in said


# Item 7b: CHGNet weights that do not exist name the ones that do.


def test_unknown_chgnet_weights_name_the_shipped_ones(tmp_path, test_config):
    from dualbench.models.chgnet import CHGNET_WEIGHTS
    from dualbench.models.resolve import load_model

    spec_file = tmp_path / "model.json"
    spec_file.write_text(json.dumps({"kind": "chgnet", "weights": "9.9"}))
    with pytest.raises(ValueError) as info:
        load_model(str(spec_file), "cpu")
    said = str(info.value)
    assert "'9.9'" in said and all(w in said for w in CHGNET_WEIGHTS)
    assert "Unknown model_name" not in said

    config = copy.deepcopy(test_config)
    config["models"] = {"chgnet": {"kind": "chgnet", "weights": 9.9}}  # unquoted: a number
    said = _refusal(tmp_path, config)
    assert "models.chgnet.weights: 9.9 is not of type 'string' or 'null'" in said
    assert "quotes" in said


# Item 7c: a frame with another atom count or an unknown element names file and frame.


def _frames(n: int = 3) -> list:
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i in range(n):
        atoms = bulk("W", "bcc", 3.16, cubic=True)
        atoms.rattle(0.02, seed=i)
        forces = np.full((len(atoms), 3), 0.1 * (i + 1))
        atoms.calc = SinglePointCalculator(atoms, energy=-26.0 + i, forces=forces)
        frames.append(atoms)
    return frames


def test_frame_with_another_atom_count_names_file_and_frame(tmp_path):
    good = tmp_path / "good.extxyz"
    write_frames(good, _frames())
    lines = good.read_text().splitlines(keepends=True)
    assert [len(f) for f in read_frames(good)] == [2, 2, 2]
    # frame 1 (lines 5-8) loses its second atom row; its first line still says 2 atoms
    fewer = tmp_path / "fewer.extxyz"
    fewer.write_text("".join(lines[:7] + lines[8:]))
    with pytest.raises(FrameError, match=rf"^{fewer}: frame 1 \(line 5\) has another number"
                                         r" of atom rows than the 2"):
        read_frames(fewer)
    # the last frame gains a row
    more = tmp_path / "more.extxyz"
    more.write_text("".join(lines + lines[-1:]))
    with pytest.raises(FrameError, match=rf"^{more}: frame 2 \(line 9\)"):
        read_frames(more)


def test_frame_with_an_unknown_element_names_file_and_frame(tmp_path):
    good = tmp_path / "good.extxyz"
    write_frames(good, _frames())
    lines = good.read_text().splitlines(keepends=True)
    lines[10] = "Xx" + lines[10][1:]  # frame 2's first atom (its row starts "W ")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("".join(lines))
    with pytest.raises(FrameError, match=rf"^{bad}: frame 2: .*'Xx'"):
        read_frames(bad)


# Item 7d: a bad SevenNet modality, for a command line and a config alike.


def test_bad_sevennet_modality_names_the_valid_ones():
    pytest.importorskip("sevenn")
    from dualbench.models.resolve import load_model

    with pytest.raises(ValueError) as info:
        load_model("sevennet:7net-mf-0@BADMODAL", "cpu")
    said = str(info.value)
    assert "sevennet 7net-mf-0 has no modality 'BADMODAL'" in said
    assert "PBE, R2SCAN" in said
    assert "sevennet:7net-mf-0@PBE" in said and "`modal: PBE`" in said
    assert "set `modal` in the model's config entry" not in said
