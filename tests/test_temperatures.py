"""A material at several temperatures (materials.<name>.temperatures), with several
treatments of its nuclei (materials.<name>.nuclei), per-material sections
(materials.<name>.ft, .exafs, .experiment_fit, .md), and config/suite.yaml."""

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


SUITE_MODELS = ["chgnet", "chgnet-r2scan", "sevennet-0", "m3gnet-mp", "m3gnet-matpes-pbe",
                "m3gnet-matpes-r2scan", "tensornet-matpes-pbe", "tensornet-matpes-r2scan"]
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
    assert list(config["models"]) == SUITE_MODELS
    assert config["models"]["chgnet"]["weights"] == "0.3.0"
    assert {m["kind"] for m in config["models"].values()} == {"chgnet", "sevennet", "matgl"}
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


def test_material_md_over_the_study(good):
    config = copy.deepcopy(good)
    config["materials"]["W"]["md"] = {"timestep_fs": 1.0, "production_steps": 40,
                                      "snapshot_every": 4}
    prepared = prepare_config(config, "study.yaml")
    md = material_section(prepared, "W", "md")
    assert (md["timestep_fs"], md["production_steps"], md["snapshot_every"]) == (1.0, 40, 4)
    # the other keys are the study's, filled with its defaults
    assert md["thermostat"] == prepared["md"]["thermostat"] == "langevin"
    assert md["equilibration_steps"] == prepared["md"]["equilibration_steps"]
    assert prepared["md"]["timestep_fs"] == good["md"]["timestep_fs"]


def test_planned_snapshots_per_material(good):
    from dualbench.exafs import chunk_count, planned_snapshots

    config = copy.deepcopy(good)
    config["exafs"].update(snapshots=0, chunk_size=7)
    config["materials"]["W"]["md"] = {"production_steps": 100, "snapshot_every": 5}
    prepared = prepare_config(config, "study.yaml")
    assert planned_snapshots(prepared, "W") == 20 and chunk_count(prepared, "W") == 3
    study = prepared["md"]["production_steps"] // prepared["md"]["snapshot_every"]
    assert planned_snapshots(prepared) == study
    # path-integral: every bead is a snapshot; P = ceil(4 h nu / kT) = ceil(4.48) = 5 for
    # 7 THz at 300 K (h nu / k = 7e12 * 6.62607015e-34 / 1.380649e-23 = 335.9 K)
    config["materials"]["W"]["md"].update(nuclei="pimd", max_phonon_THz=7.0)
    prepared = prepare_config(config, "study.yaml")
    assert planned_snapshots(prepared, "W") == 20 * 5 and chunk_count(prepared, "W") == 15
    config["materials"]["W"]["md"].update(beads=8)
    assert planned_snapshots(prepare_config(config, "study.yaml"), "W") == 160
    del config["materials"]["W"]["md"]["beads"], config["materials"]["W"]["md"]["max_phonon_THz"]
    with pytest.raises(ConfigError, match=r"materials\.W\.md\.beads: nuclei pimd needs"):
        prepare_config(config, "study.yaml")


MD_REFUSED = [
    ({"timestep_fs": 20.0}, "materials.W.md.timestep_fs", "20.0 is greater than"),
    ({"thermostat": "berendsen"}, "materials.W.md.thermostat", "'berendsen' is not one of"),
    ({"production_steps": 10, "snapshot_every": 20}, "materials.W.md.snapshot_every",
     "no snapshot would be saved"),
    ({"ensemble": "npt", "thermostat": "bussi"}, "materials.W.md.thermostat", "needs langevin"),
    ({"device": "cpu"}, "materials.W.md.device", "is the study's"),
    ({"min_distance_A": 1.0}, "materials.W.md.min_distance_A", "is the study's"),
    ({"on_unstable": "stop"}, "materials.W.md.on_unstable", "is the study's"),
    ({"frobnicate": 1}, "materials.W.md", "frobnicate"),
]


def _refused_with(config, named, says):
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    assert str(err.value).startswith(f"study.yaml: {named}"), str(err.value)
    assert says in str(err.value), str(err.value)


@pytest.mark.parametrize(("own", "named", "says"), MD_REFUSED,
                         ids=[r[1] + ":" + r[2] for r in MD_REFUSED])
def test_material_md_refused(good, own, named, says):
    config = copy.deepcopy(good)
    config["materials"]["W"]["md"] = own
    _refused_with(config, named, says)


def test_nuclei_side_by_side(good):
    config = _two_temperatures(good)
    config["materials"]["W"]["nuclei"] = ["classical", "pimd"]
    config["materials"]["W"]["md"] = {"max_phonon_THz": 7.0}
    config["materials"]["W"]["temperatures"][0]["md"] = {"production_steps": 60}
    prepared = prepare_config(config, "study.yaml")
    assert list(prepared["materials"]) == ["W_10K", "W_10K_pimd", "W_300K", "W_300K_pimd"]
    nuclei = {name: material_section(prepared, name, "md")["nuclei"]
              for name in prepared["materials"]}
    assert nuclei == {"W_10K": "classical", "W_10K_pimd": "pimd", "W_300K": "classical",
                      "W_300K_pimd": "pimd"}
    # the temperature entry's md keys and the material's reach both treatments
    for name in ("W_10K", "W_10K_pimd"):
        md = material_section(prepared, name, "md")
        assert md["production_steps"] == 60 and md["max_phonon_THz"] == 7.0
        assert prepared["materials"][name]["temperature_K"] == 10
    assert material_section(prepared, "W_300K_pimd", "md")["production_steps"] == \
        prepared["md"]["production_steps"]
    # same spectrum, same cuts: only md differs
    a, b = prepared["materials"]["W_10K"], prepared["materials"]["W_10K_pimd"]
    assert {k: v for k, v in a.items() if k != "md"} == {k: v for k, v in b.items()
                                                        if k != "md"}


NUCLEI_REFUSED = [
    (["quantum"], "materials.W.nuclei.0", "'quantum' is not one of"),
    ([], "materials.W.nuclei", "non-empty list"),
    (["pimd", "pimd"], "materials.W.nuclei", "twice"),
]


@pytest.mark.parametrize(("nuclei", "named", "says"), NUCLEI_REFUSED,
                         ids=[r[1] + ":" + r[2] for r in NUCLEI_REFUSED])
def test_nuclei_refused(good, nuclei, named, says):
    config = copy.deepcopy(good)
    config["materials"]["W"]["nuclei"] = nuclei
    _refused_with(config, named + ":", says)


def test_nuclei_conflicts_refused(good):
    config = copy.deepcopy(good)
    config["materials"]["W"]["nuclei"] = ["classical", "pimd"]
    config["materials"]["W"]["md"] = {"nuclei": "pimd"}
    with pytest.raises(ConfigError, match=r"materials\.W\.md\.nuclei: is set by"):
        prepare_config(config, "study.yaml")
    config["materials"]["W"]["md"] = {}
    config["materials"]["W_pimd"] = copy.deepcopy(good["materials"]["W"])
    with pytest.raises(ConfigError, match=r"materials\.W\.nuclei: makes material 'W_pimd'"):
        prepare_config(config, "study.yaml")


def test_suite_cluster_overlay(repo):
    # Snakemake merges --configfile suite.yaml suite_cluster.yaml with update_config
    from snakemake.utils import update_config

    config = load_yaml(repo / "config" / "suite.yaml")
    update_config(config, load_yaml(repo / "config" / "suite_cluster.yaml"))
    prepared = prepare_config(config, "suite_cluster.yaml")
    names = list(prepared["materials"])
    pimd = [n for n in names if material_section(prepared, n, "md")["nuclei"] == "pimd"]
    assert pimd == ["Cu_10K_pimd", "Cu_300K_pimd", "SrO_10K_pimd", "SrO_300K_pimd",
                    "SrTiO3_10K_pimd", "SrTiO3_300K_pimd", "CdS_10K_pimd"]
    assert len(names) == len(SUITE) + len(pimd)
    assert list(prepared["models"]) == [*SUITE_MODELS, "sevennet-l3i5"]
    from dualbench.md.pimd import bead_count

    for name in pimd:
        md = material_section(prepared, name, "md")
        beads = bead_count(prepared["materials"][name]["temperature_K"], md["max_phonon_THz"],
                           max_beads=md["max_beads"])
        assert (beads == 128) if name.endswith("_10K_pimd") else (5 <= beads <= 16), name


def test_material_md_that_the_run_would_not_see_refused(good):
    # the run takes the study's md and the material's trajectory keys over it; a classical
    # material in a pimd study would drop md.nuclei from its params and run pimd
    config = copy.deepcopy(good)
    config["md"].update(nuclei="pimd", beads=4)
    config["materials"]["W"]["md"] = {"nuclei": "classical"}
    with pytest.raises(ConfigError, match=r"materials\.W\.md\.nuclei: the study's md\.nuclei"
                                          r" \('pimd'\) would run"):
        prepare_config(config, "study.yaml")
    config["md"].update(nuclei="classical", beads=None)
    config["materials"]["W"]["md"] = {"nuclei": "pimd", "beads": 4}
    prepare_config(config, "study.yaml")   # the other way round reaches the run


def test_suite_labels_are_committed_at_its_level_of_theory(repo):
    """Every material the suite labels with GPAW reuses committed labels
    (resources/dft/suite/): each of its configurations is there once, at the level of
    theory its settings give (kpts, dispersion, moments), so a fresh run computes no DFT;
    a setting changed without relabelling would miss the reuse and recompute silently."""
    from dualbench.data import load_frames
    from dualbench.label import LabelSettings

    config = load_config(repo / "config" / "suite.yaml")
    labelled = {name: m["dft"]["label"] for name, m in config["materials"].items()
                if m["dft"].get("label")}
    assert sorted(labelled) == ["CdS_10K", "Fe", "SrO_10K", "SrO_300K", "SrTiO3_10K",
                                "SrTiO3_300K", "ZnS"]
    for name, label in labelled.items():
        settings = LabelSettings.from_config(label)
        assert settings.reuse, name
        frames = [f for path in settings.reuse for f in load_frames(repo / path)
                  if str(f.info["frame_id"]).startswith(f"{name}:")]
        ids = [f.info["frame_id"] for f in frames]
        assert len(ids) == len(set(ids)) == settings.n_configs, (name, ids)
        assert {f.info["dft"] for f in frames} == {settings.level_of_theory()}, name
        assert all(len(f) == len(frames[0]) for f in frames), name
    fe = [f for f in load_frames(repo / "resources/dft/suite/Fe.extxyz")]
    assert all(2.1 < f.info["magnetic_moment_muB_per_atom"] < 2.4 for f in fe)
