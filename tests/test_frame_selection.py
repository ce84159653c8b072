"""Frames chosen by condition (issue 25): select by values or pattern, conditions named,
stratified nested draws, per-condition test errors.  Expected values come from the hand-made
records themselves and from numpy, never from the code under test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from dualbench.config import ConfigError, load_config, prepare_config
from dualbench.data import (
    FrameError,
    prepare_frames,
    read_frames,
    select_frames,
    selection_of,
    stratified_order,
    subset_indices,
)
from dualbench.data.selection import name_conditions, select
from dualbench.metrics import dft_metrics
from dualbench.summary import dft_row

#: SNAP-like notes: (condition key, temperature, index) -> the record's notes
POOL_NOTES = [{"Md": f"300-{i}"} for i in range(6)] + [
    {"Md_90": f"300-{i}"} for i in range(3)] + [{"Md": f"2000-{i}"} for i in range(3)]
TEST_NOTES = [{"Md": "md-300-0"}, {"Md": "md-300-1"}, {"Md": "md90-300-0"},
              {"Md": "md-2000-0"}]
CONDITIONS = {"field": "notes", "patterns": {
    "300K": "^Md=(md-)?300-", "300K_V90": "^(Md_90=|Md=md90-)300-", "2000K": "^Md=(md-)?2000-"}}


def _records(notes: list[dict], tag: str) -> list[dict]:
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(len(notes))
    out = []
    for i, note in enumerate(notes):
        structure = Structure(Lattice.cubic(3.16), ["W", "W"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        out.append({
            "structure": structure.as_dict(),
            "outputs": {"energy": -26.0 + 0.01 * i,
                        "forces": rng.normal(0, 0.5, (2, 3)).tolist(),
                        "stress": [1.0, 2.0, 3.0, 0.1, 0.2, 0.3]},
            "notes": note, "tags": [tag, f"i{i}"], "group": "W",
            "temperature": 2000.0 if "2000" in next(iter(note.values())) else 300,
        })
    return out


@pytest.fixture
def snap_like(tmp_path):
    pool, test = tmp_path / "pool.json", tmp_path / "test.json"
    pool.write_text(json.dumps(_records(POOL_NOTES, "Md")))
    test.write_text(json.dumps(_records(TEST_NOTES, "test")))
    return pool, test


def _notes(frames):
    return [a.info["record"]["notes"] for a in frames]


def test_select_by_values_pattern_dotted_field_and_list(snap_like):
    pool = read_frames(snap_like[0], "pymatgen-json", ["W"])
    kept = select(pool, {"field": "notes.Md", "pattern": "^300-"}, "here")
    assert _notes(kept) == POOL_NOTES[:6]
    # a number is compared as text, 2000.0 as "2000"
    assert _notes(select(pool, {"field": "temperature", "values": [2000]}, "here")) \
        == POOL_NOTES[9:]
    # a mapping as its sorted key=value pairs; a list element by element
    assert len(select(pool, {"field": "notes", "pattern": "^Md_90="}, "here")) == 3
    assert len(select(pool, {"field": "notes", "pattern": "=2000-"}, "here")) == 3  # searched
    assert _notes(select(pool, {"field": "tags", "values": ["i4", "i7"]}, "here")) \
        == [POOL_NOTES[4], POOL_NOTES[7]]
    both = [{"field": "temperature", "values": [300]}, {"field": "notes", "pattern": "Md_90"}]
    assert _notes(select(pool, both, "here")) == POOL_NOTES[6:9]
    assert select(pool, None, "here") == pool


def test_a_selection_that_keeps_nothing_names_the_field_and_the_values_seen(snap_like):
    pool = read_frames(snap_like[0], "pymatgen-json", ["W"])
    with pytest.raises(FrameError) as err:
        select(pool, {"field": "notes.Md", "values": ["301-0"]}, "pool.json: dft.train.select")
    message = str(err.value)
    assert "pool.json: dft.train.select" in message and "notes.Md" in message
    assert "'300-0' (1)" in message and "'<missing>' (3)" in message  # the Md_90 frames
    with pytest.raises(FrameError, match="no frame has nothere"):
        select(pool, {"field": "nothere", "pattern": "."}, "here")


def test_conditions_are_named_and_an_unmatched_frame_is_refused(snap_like):
    pool = read_frames(snap_like[0], "pymatgen-json", ["W"])
    name_conditions(pool, CONDITIONS, "pool.json")
    assert [a.info["condition"] for a in pool] == ["300K"] * 6 + ["300K_V90"] * 3 + ["2000K"] * 3
    pool = read_frames(snap_like[0], "pymatgen-json", ["W"])
    with pytest.raises(FrameError, match=r"frame 9: notes = 'Md=2000-0' matches none"):
        name_conditions(pool, {"field": "notes", "patterns": {"300K": "300-"}}, "pool.json")
    pool = read_frames(snap_like[0], "pymatgen-json", ["W"])
    name_conditions(pool, {"field": "temperature"}, "pool.json")  # the value itself
    assert [a.info["condition"] for a in pool] == ["300"] * 9 + ["2000"] * 3


def test_prepare_frames_selects_names_and_records(snap_like, tmp_path):
    pool_file, test_file = snap_like
    info = prepare_frames(
        pool_file, "pymatgen-json", test_file, "pymatgen-json", ["W"], 0.2, 4,
        tmp_path / "pool.extxyz", tmp_path / "test.extxyz",
        selection={"conditions": CONDITIONS,
                   "train_select": {"field": "condition", "values": ["300K", "300K_V90"]},
                   "test_select": {"field": "condition", "pattern": "^300K"},
                   "stratify_by": "condition"})
    assert info["selection"]["train"]["n_read"] == 12 and info["n_train_pool"] == 9
    assert info["pool_conditions"] == {"300K": 6, "300K_V90": 3}
    assert info["test_conditions"] == {"300K": 2, "300K_V90": 1}
    assert info["pool_strata"] == {"300K": 6, "300K_V90": 3}
    pool = read_frames(tmp_path / "pool.extxyz", "extxyz")
    assert [a.info["condition"] for a in pool] == ["300K"] * 6 + ["300K_V90"] * 3
    assert [a.info["frame_id"] for a in pool] == [f"pool.json:{i}" for i in range(9)]
    assert all("record" not in a.info for a in pool)
    # a selection that leaves too few frames for the sweep is refused before training
    with pytest.raises(FrameError, match="has 2 frames selected by dft.train.select"):
        prepare_frames(pool_file, "pymatgen-json", None, None, ["W"], 0.2, 4,
                       tmp_path / "p.extxyz", tmp_path / "t.extxyz",
                       selection={"train_select": {"field": "notes.Md", "pattern": "^2000"}})


def test_held_out_test_set_comes_from_the_selected_pool(snap_like, tmp_path):
    info = prepare_frames(snap_like[0], "pymatgen-json", None, None, ["W"], 0.5, 1,
                          tmp_path / "p.extxyz", tmp_path / "t.extxyz",
                          selection={"train_select": {"field": "notes.Md", "pattern": "^300"}})
    assert info["n_train_pool"] == 3 and info["n_test"] == 3
    test = read_frames(tmp_path / "t.extxyz", "extxyz")
    assert [a.info["frame_id"] for a in test] == ["pool.json:3", "pool.json:4", "pool.json:5"]


@pytest.mark.parametrize("sizes", [(40, 40, 40), (40, 10), (7, 3, 1), (5,)])
def test_stratified_order_is_proportional_at_every_n_and_nested(sizes):
    strata = [f"g{g}" for g, n in enumerate(sizes) for _ in range(n)]
    total = len(strata)
    for seed in (0, 1, 2):
        order = stratified_order(strata, seed)
        assert sorted(order) == list(range(total))  # a permutation: nested prefixes
        for n in range(1, total + 1):
            for g, size in enumerate(sizes):
                count = sum(strata[i] == f"g{g}" for i in order[:n])
                assert abs(count - n * size / total) < 1.0, (seed, n, g)
    assert stratified_order(strata, 0) == stratified_order(strata, 0)
    if total > 3:
        assert stratified_order(strata, 0) != stratified_order(strata, 1)


def _frames(n, strata=None):
    frames = []
    for i in range(n):
        atoms = Atoms("W", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=[[0.1 * i, 0, 0]])
        atoms.info["frame_id"] = f"f{i}"
        if strata is not None:
            atoms.info["stratum"] = strata[i]
        frames.append(atoms)
    return frames


def test_select_frames_stratified_and_uniform():
    # an unstratified pool keeps the sweep's old order: numpy's permutation of the seed
    frames, record = select_frames(_frames(10), 4, 3)
    expected = np.random.default_rng(3).permutation(10)[:4].tolist()
    assert record["indices"] == expected == subset_indices(10, 4, 3)
    assert "strata" not in record
    strata = ["a"] * 6 + ["b"] * 3 + ["c"] * 3
    chosen, record = select_frames(_frames(12, strata), 4, 0)
    assert record["strata"] == {"a": 2, "b": 1, "c": 1}
    bigger, _ = select_frames(_frames(12, strata), 8, 0)
    assert [a.info["frame_id"] for a in chosen] == [a.info["frame_id"] for a in bigger[:4]]


def _metric_frames():
    """Four frames, two conditions, forces and predictions by hand."""
    rng = np.random.default_rng(7)
    frames, preds = [], []
    for i, cond in enumerate(["hot", "cold", "hot", "cold"]):
        atoms = Atoms("W2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3, 3, 3], pbc=True)
        f = rng.normal(0, 1, (2, 3))
        atoms.calc = SinglePointCalculator(atoms, energy=-20.0 - i, forces=f)
        atoms.info["condition"] = cond
        frames.append(atoms)
        preds.append({"e": (-20.0 - i) / 2 + 0.01 * (i + 1), "f": 0.5 * f + 0.05 * (i + 1)})
    return frames, preds


def test_per_condition_errors_against_numpy():
    frames, preds = _metric_frames()
    result, parity = dft_metrics(frames, preds)
    for cond, members in (("hot", [0, 2]), ("cold", [1, 3])):
        ref = np.concatenate([frames[i].get_forces() for i in members]).ravel()
        pred = np.concatenate([preds[i]["f"] for i in members]).ravel()
        group = result["by_condition"][cond]
        assert group["n_frames"] == 2
        assert group["force_mae_eV_per_A"] == pytest.approx(np.mean(np.abs(pred - ref)))
        assert group["force_slope"] == pytest.approx(np.dot(pred, ref) / np.dot(ref, ref))
        e_err = [0.01 * (i + 1) for i in members]
        assert group["energy_mae_eV_per_atom"] == pytest.approx(np.mean(e_err))
    assert list(parity["condition"][:6]) == ["hot"] * 6
    assert set(parity["condition"]) == {"hot", "cold"}
    # frames without conditions: no per-condition block
    for atoms in frames:
        del atoms.info["condition"]
    assert dft_metrics(frames, preds)[0]["by_condition"] == {}


def test_summary_has_per_condition_columns(tmp_path):
    frames, preds = _metric_frames()
    result, _ = dft_metrics(frames, preds)
    path = tmp_path / "dft_metrics.json"
    path.write_text(json.dumps(result))
    row = dft_row(path, "W", "chgnet", 2, 0)
    assert row["force_mae[hot]"] == pytest.approx(1000 * result["by_condition"]["hot"]
                                                 ["force_mae_eV_per_A"])
    assert row["force_slope[cold]"] == result["by_condition"]["cold"]["force_slope"]
    assert pd.DataFrame([row]).filter(like="[").shape[1] == 8


def _w_config(repo):
    return load_config(repo / "config" / "config.yaml")


def test_config_refuses_bad_selections(repo):
    base = _w_config(repo)

    def refused(edit, key):
        cfg = json.loads(json.dumps(base))
        edit(cfg["materials"]["W"])
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            prepare_config(cfg, "study.yaml")

    refused(lambda m: m["experiment"].update(select={"field": "a", "values": [1]}),
            "materials.W.experiment.select")
    refused(lambda m: m["dft"]["train"].update(select={"field": "notes", "pattern": "(300"}),
            "materials.W.dft.train.select.pattern")
    refused(lambda m: m["dft"]["conditions"]["patterns"].update(bad="[a-"),
            "materials.W.dft.conditions.patterns.bad")
    refused(lambda m: m["dft"].update(conditions=None), "materials.W.dft.train.select.field")
    refused(lambda m: m["dft"].update(experiment_condition="AIMD"),
            "materials.W.dft.experiment_condition")  # not a condition W names
    refused(lambda m: m["dft"]["train"].update(select={"field": "x"}), "materials.W.dft.train")
    cfg = json.loads(json.dumps(base))
    cfg["sweep"]["exafs_seeds"] = [5]
    with pytest.raises(ConfigError, match="sweep.exafs_seeds"):
        prepare_config(cfg, "study.yaml")
    cfg["sweep"].update(exafs_seeds=[1])
    cfg["plots"]["seed"] = 0
    with pytest.raises(ConfigError, match="plots.seed"):
        prepare_config(cfg, "study.yaml")


def test_default_w_config_draws_and_tests_at_300_k(repo, snap_dir, tmp_path):
    """The shipped config on SNAP's real files: 40 + 6 frames at 300 K, equilibrium volume."""
    dft = _w_config(repo)["materials"]["W"]["dft"]
    info = prepare_frames(
        snap_dir / "W_AIMD.json", "pymatgen-json", snap_dir / "W_Test.json", "pymatgen-json",
        ["W"], 0.2, 10, tmp_path / "p.extxyz", tmp_path / "t.extxyz",
        selection=selection_of(dft))
    assert info["selection"]["train"]["n_read"] == 200
    assert info["pool_conditions"] == {"300K": 40} and info["test_conditions"] == {"300K": 6}
    # every SNAP frame has a condition: 40 (pool) and 6 (test) of each of the five
    pool = read_frames(snap_dir / "W_AIMD.json", "pymatgen-json", ["W"])
    name_conditions(pool, dft["conditions"], "W_AIMD.json")
    counts = pd.Series([a.info["condition"] for a in pool]).value_counts()
    assert counts.to_dict() == {c: 40 for c in dft["conditions"]["patterns"]}
    notes = [a.info["record"]["notes"] for a in pool if a.info["condition"] == "300K"]
    assert all(set(n) == {"Md"} and n["Md"].startswith("300-") for n in notes)
