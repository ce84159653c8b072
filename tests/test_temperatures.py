"""A material at several temperatures (materials.<name>.temperatures), per-material sections
(materials.<name>.ft, .exafs, .experiment_fit), and config/suite.yaml."""

from __future__ import annotations

import copy

import pytest

from dualbench.config import load_config, load_yaml, prepare_config
from dualbench.config_materials import expand_temperatures, temperature_name
from dualbench.schema import ConfigError, material_section

XDL = "https://example.org/data"
SHA_10K = "a" * 64
SHA_RT = "b" * 64


@pytest.fixture(scope="module")
def good(repo):
    return load_yaml(repo / "config" / "config.yaml")


def _two_temperatures(good):
    """W of config.yaml at 10 K and 300 K, each with its own spectrum and columns; the
    300 K entry also overrides the fit's R range."""
    config = copy.deepcopy(good)
    w = config["materials"]["W"]
    for key in ("temperature_K", "experiment", "experiment_columns"):
        del w[key]
    w["experiment_fit"] = {"shells": 2}
    w["temperatures"] = [
        {"temperature_K": 10,
         "experiment": {"url": f"{XDL}/w10.xdi", "sha256": SHA_10K, "format": "xdi"},
         "experiment_columns": {"mode": "mu", "mu": "mutrans"}},
        {"temperature_K": 300,
         "experiment": {"url": f"{XDL}/wrt.xdi", "sha256": SHA_RT, "format": "xdi"},
         "experiment_columns": {"mode": "transmission", "i0": "i0", "itrans": "it"},
         "experiment_fit": {"rmax_A": 3.2}},
    ]
    return config


def test_names():
    assert temperature_name("Cu", 10) == "Cu_10K"
    assert temperature_name("Cu", 300.0) == "Cu_300K"
    assert temperature_name("Cu", 77.5) == "Cu_77p5K"


def test_expansion_by_hand(good):
    expanded = expand_temperatures(_two_temperatures(good), "study.yaml")
    assert list(expanded["materials"]) == ["W_10K", "W_300K"]
    shared = copy.deepcopy(good["materials"]["W"])
    for key in ("temperature_K", "experiment", "experiment_columns"):
        del shared[key]
    expected_10 = {
        **shared,
        "temperature_K": 10,
        "experiment": {"url": "https://example.org/data/w10.xdi", "sha256": "a" * 64,
                       "format": "xdi"},
        "experiment_columns": {"mode": "mu", "mu": "mutrans"},
        "experiment_fit": {"shells": 2},
    }
    expected_300 = {
        **shared,
        "temperature_K": 300,
        "experiment": {"url": "https://example.org/data/wrt.xdi", "sha256": "b" * 64,
                       "format": "xdi"},
        "experiment_columns": {"mode": "transmission", "i0": "i0", "itrans": "it"},
        "experiment_fit": {"shells": 2, "rmax_A": 3.2},
    }
    assert expanded["materials"]["W_10K"] == expected_10
    assert expanded["materials"]["W_300K"] == expected_300
    # everything else of the study is untouched
    assert {k: v for k, v in expanded.items() if k != "materials"} == {
        k: v for k, v in good.items() if k != "materials"}


def test_prepared_config_runs_each_temperature(good):
    config = prepare_config(_two_temperatures(good), "study.yaml")
    assert list(config["materials"]) == ["W_10K", "W_300K"]
    cold, warm = config["materials"]["W_10K"], config["materials"]["W_300K"]
    assert (cold["temperature_K"], warm["temperature_K"]) == (10, 300)
    assert cold["experiment_columns"]["mu"] == "mutrans"
    assert warm["experiment_columns"]["itrans"] == "it"
    assert "temperatures" not in cold
    # the fit: shells from the material, rmax_A from the 300 K entry, the rest top-level
    assert material_section(config, "W_10K", "experiment_fit") == {
        "shells": 2, "rmin_A": 1.5, "rmax_A": 3.3}
    assert material_section(config, "W_300K", "experiment_fit") == {
        "shells": 2, "rmin_A": 1.5, "rmax_A": 3.2}


def test_without_temperatures_nothing_changes(good):
    assert expand_temperatures(good) == good


REFUSED = [
    # (change to the two-temperature W, key named, words)
    (lambda w: w.update(temperature_K=300), "materials.W.temperature_K", "not both"),
    (lambda w: w.update(experiment={"url": f"{XDL}/x.xdi", "format": "xdi"}),
     "materials.W.experiment", "give either materials.W.temperatures or a top-level"),
    (lambda w: w.update(experiment_columns={"mode": "mu"}), "materials.W.experiment_columns",
     "not both"),
    (lambda w: w["temperatures"][1].update(temperature_K=10.0),
     "materials.W.temperatures.1.temperature_K", "10 K is given twice"),
    (lambda w: w["temperatures"][0].pop("temperature_K"),
     "materials.W.temperatures.0.temperature_K", "is required"),
    (lambda w: w["temperatures"][0].update(temperature_K="cold"),
     "materials.W.temperatures.0.temperature_K", "'cold' is not a number"),
    (lambda w: w.update(temperatures=[]), "materials.W.temperatures", "non-empty list"),
]


@pytest.mark.parametrize(("change", "named", "says"), REFUSED,
                         ids=[r[1] + ":" + r[2] for r in REFUSED])
def test_refused(good, change, named, says):
    config = _two_temperatures(good)
    change(config["materials"]["W"])
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    assert str(err.value).startswith(f"study.yaml: {named}:"), str(err.value)
    assert says in str(err.value)


@pytest.mark.parametrize("before", [True, False])
def test_name_collision_refused(good, before):
    config = _two_temperatures(good)
    other = copy.deepcopy(good["materials"]["W"])
    if before:
        config["materials"] = {"W_10K": other, "W": config["materials"]["W"]}
        named, says = "materials.W.temperatures", "which materials.W_10K also makes"
    else:
        config["materials"]["W_10K"] = other
        named, says = "materials.W_10K", "which materials.W.temperatures also makes"
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    assert str(err.value).startswith(f"study.yaml: {named}:"), str(err.value)
    assert says in str(err.value) and "'W_10K'" in str(err.value)


def test_material_sections_checked_and_named(good):
    config = copy.deepcopy(good)
    config["materials"]["W"]["exafs"] = {"rmax_A": 6.3}   # through the 6 W at 6.33 Å
    with pytest.raises(ConfigError, match=r"^study.yaml: materials\.W\.exafs\.rmax_A:"):
        prepare_config(config, "study.yaml")
    config["materials"]["W"]["exafs"] = {"rmax_A": 6.5}   # beyond the 6.2 Å cluster
    with pytest.raises(ConfigError, match=r"materials\.W\.exafs\.rmax_A: 6.5 Å exceeds"):
        prepare_config(config, "study.yaml")
    config["materials"]["W"]["exafs"] = {}
    config["materials"]["W"]["ft"] = {"kmin": 15.0}
    with pytest.raises(ConfigError, match=r"materials\.W\.ft\.kmax: must exceed ft\.kmin"):
        prepare_config(config, "study.yaml")
    config["materials"]["W"]["ft"] = {"kweight": 3}   # not a per-material key
    with pytest.raises(ConfigError, match=r"materials\.W\.ft"):
        prepare_config(config, "study.yaml")


SUITE = ["W", "Cu_10K", "Cu_300K", "Ni", "Fe", "ZnS", "SrO_10K", "SrO_300K", "SrTiO3_10K",
         "SrTiO3_300K", "CdS_10K"]


def test_suite_loads(repo):
    # the load runs every material's shell check (rmax_A and cluster_radius_A between its
    # own shells) and its supercell's inscribed radius against its cluster
    config = load_config(repo / "config" / "suite.yaml")
    assert list(config["materials"]) == SUITE
    temps = {name: m["temperature_K"] for name, m in config["materials"].items()}
    assert temps["Cu_10K"] == 10 and temps["Cu_300K"] == 300 and temps["CdS_10K"] == 10
    assert config["sweep"]["n_frames"] == [0] and config["sweep"]["seeds"] == [0]
    assert list(config["models"]) == ["chgnet"]
    assert config["models"]["chgnet"]["weights"] == "0.3.0"
    # W as in config.yaml, its cuts the top-level ones
    assert material_section(config, "W", "exafs")["rmax_A"] == 6.0
    w = load_config(repo / "config" / "config.yaml")["materials"]["W"]
    assert config["materials"]["W"] == w
    # each temperature its own spectrum
    urls = {m["experiment"]["url"] for m in config["materials"].values()}
    assert len(urls) == len(SUITE)


def test_cli_sections_of_a_material(repo):
    from argparse import Namespace

    from dualbench.cli.exafs import _sections

    suite = str(repo / "config" / "suite.yaml")
    cu = _sections(Namespace(config=suite, material="Cu_10K"))
    assert cu["ft"]["kmax"] == 15.0 and cu["ft"]["kweight"] == 2
    assert (cu["exafs"]["rmax_A"], cu["exafs"]["cluster_radius_A"]) == (4.8, 5.35)
    assert cu["exafs"]["engine"] == "fast"
    w = _sections(Namespace(config=suite, material="W"))
    assert w["ft"]["kmax"] == 14.0 and w["exafs"]["rmax_A"] == 6.0
    with pytest.raises(ValueError, match="name the material with --material"):
        _sections(Namespace(config=suite, material=None))
    with pytest.raises(ValueError, match="'Cu' is not among"):
        _sections(Namespace(config=suite, material="Cu"))
    plain = _sections(Namespace(config=str(repo / "config" / "config.yaml"), material=None))
    assert plain["exafs"]["rmax_A"] == 6.0
