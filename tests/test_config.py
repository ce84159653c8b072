"""Config validation: good configs pass with defaults filled, bad keys are named."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from dualbench.config import load_config, load_yaml, prepare_config
from dualbench.schema import ConfigError, config_hash


@pytest.fixture(scope="module")
def good(repo):
    return load_yaml(repo / "config" / "config.yaml")


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_are_valid(repo, name):
    config = load_config(repo / "config" / name)
    assert set(config) >= {"materials", "models", "sweep", "finetune", "md", "exafs", "ft"}
    w = config["materials"]["W"]
    assert w["absorber"] == "W" and w["edge"] == "L3" and w["temperature_K"] == 300


def test_defaults_filled(good):
    # the default 3x3x3 cell's inscribed radius (4.75 Å) is below the default 7 Å cluster,
    # which also lies within 0.1 Å of bcc W's 24 W at a*sqrt(5) = 7.078 Å
    minimal = {"materials": copy.deepcopy(good["materials"]),
               "exafs": {"allow_periodic_images": True, "shell_margin_A": 0}}
    del minimal["materials"]["W"]["supercell"]
    config = prepare_config(minimal)
    assert config["materials"]["W"]["supercell"] == [3, 3, 3]
    assert config["models"] == {"chgnet": {"kind": "chgnet", "weights": "0.3.0", "modal": None,
                                           "calculator": None, "options": {},
                                           "finetune": {}}}
    assert config["ft"]["window"] == "hanning"
    assert config["exafs"]["e0_shift"] == "experiment" and config["exafs"]["s02"] == "experiment"
    assert config["exafs"]["engine"] == "fast"
    assert config["materials"]["W"]["experiment_columns"]["mode"] == "transmission"
    # the input is not modified
    assert "models" not in minimal


def _set(config, dotted, value):
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


_DELETE = object()

BAD = [
    ("materials.W.temperature_K", "hot", "materials.W.temperature_K", "not of type 'number'"),
    ("materials.W.temperature_K", -5, "materials.W.temperature_K", "minimum"),
    ("materials.W.edge", "M5", "materials.W.edge", "is not one of"),
    ("materials.W.supercell", [3, 3], "materials.W.supercell", "too short"),
    ("materials.W.temperatur_K", 300, "materials.W", "temperatur_K"),
    ("materials.W.dft.train.sha256", "abc", "materials.W.dft.train.sha256", "does not match"),
    ("materials.W.dft.train.format", _DELETE, "materials.W.dft.train", "'format' is a required"),
    ("materials.W.experiment.format", "xdx", "materials.W.experiment.format", "is not one of"),
    ("sweep.n_frames", [0, -1], "sweep.n_frames.1", "minimum"),
    ("sweep.seeds", [], "sweep.seeds", "should be non-empty"),
    ("md.thermostat", "berendsen", "md.thermostat", "is not one of"),
    ("exafs.nleg", 1, "exafs.nleg", "minimum"),
    ("ft.kmax", 2.0, "ft.kmax", "must exceed ft.kmin"),
    ("ft.rmin", 5.0, "ft.rmax", "must exceed ft.rmin (5.0)"),
    ("md.snapshot_every", 201, "md.snapshot_every", "exceeds md.production_steps"),
    ("md.ensemble", "nph", "md.ensemble", "is not one of"),
    ("experiment_fit.rmin_A", 3.5, "experiment_fit.rmax_A", "must exceed rmin_A (3.5)"),
    ("exafs.engine", "fastest", "exafs.engine", "is not one of"),
    ("exafs.s02", "guess", "exafs.s02", "is not one of ['experiment', 'fitted']"),
    ("plots.fig2_n_frames", [2, 7], "plots.fig2_n_frames", "[7] not among the EXAFS arm's N"),
    ("sweep.exafs_n_frames", [0, 5], "sweep.exafs_n_frames", "[5] not in sweep.n_frames"),
    ("sweep.exafs_n_frames", [], "sweep.exafs_n_frames", "should be non-empty"),
    ("plots.seed", 3, "plots.seed", "3 is not among the EXAFS arm's seeds"),
    ("exafs.rmax_A", 9.0, "exafs.rmax_A", "exceeds exafs.cluster_radius_A"),
    ("materials.W.absorber", "Mo", "materials.W.absorber", "not among the structure's symbols"),
    ("models.chgnet.kind", "mace", "models.chgnet.kind", "is not one of"),
    ("unknown_section", {}, "<top level>", "unknown_section"),
    # issue 15: NaN and infinity pass every bound of a JSON schema
    ("materials.W.temperature_K", float("nan"), "materials.W.temperature_K",
     "nan is not a finite number"),
    ("ft.kmin", float("nan"), "ft.kmin", "nan is not a finite number"),
    ("finetune.learning_rate", float("nan"), "finetune.learning_rate", "not a finite number"),
    ("md.timestep_fs", float("inf"), "md.timestep_fs", "inf is not a finite number"),
    ("materials.W.structure.cellpar", [3.1652, 3.1652, float("nan"), 90, 90, 90],
     "materials.W.structure.cellpar.2", "not a finite number"),
    # 2.0 is an integer to JSON Schema, but would become the path n2.0
    ("sweep.n_frames", [0, 2.0], "sweep.n_frames.1", "2.0 is not of type 'integer'"),
    ("materials.W.supercell", [4, 4, 4.0], "materials.W.supercell.2", "not of type 'integer'"),
    # cellpar against the space group (229, cubic)
    ("materials.W.structure.cellpar", [3.1652, 3.1652, 3.1652, 90, 90, 200],
     "materials.W.structure.cellpar", "gamma = 200 degrees is not between 0 and 180"),
    ("materials.W.structure.cellpar", [3.1652, 3.1652, 3.1652, 90, 90, 120],
     "materials.W.structure.cellpar", "contradicts space group 229 (cubic"),
    ("materials.W.structure.cellpar", [3.1652, 3.1652, 3.3, 90, 90, 90],
     "materials.W.structure.cellpar", "contradicts space group 229 (cubic"),
    # a 3x3x3 bcc cell (a = 3.1652 Å) has heights 9.4956 Å: inscribed radius 4.75 Å < 6.2 Å
    ("materials.W.supercell", [3, 3, 3], "exafs.cluster_radius_A",
     "6.2 Å exceeds the inscribed radius 4.75 Å of material W's 3x3x3 supercell"),
    ("materials.W.dft.max_force_eV_per_A", 0, "materials.W.dft.max_force_eV_per_A",
     "less than or equal to the minimum"),
]


@pytest.mark.parametrize(("key", "value", "named", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_values_name_the_key(good, key, value, named, says):
    config = copy.deepcopy(good)
    _set(config, key, value)
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    message = str(err.value)
    assert message.startswith(f"study.yaml: {named}:"), message
    assert says in message


def test_material_named_suite_is_refused(good):
    """results/suite/ holds the study-wide leaderboard: a material of that name would
    write its runs into it."""
    config = copy.deepcopy(good)
    config["materials"]["suite"] = config["materials"].pop("W")
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    assert str(err.value).startswith("study.yaml: materials:"), str(err.value)
    assert "'suite'" in str(err.value)


def test_npt_needs_the_langevin_thermostat(good):
    config = copy.deepcopy(good)
    config["md"].update(ensemble="npt", thermostat="bussi")
    with pytest.raises(ConfigError, match="md.thermostat: 'bussi': md.ensemble npt needs"):
        prepare_config(config, "study.yaml")


def test_periodic_images_accepted_when_asked(good):
    config = copy.deepcopy(good)
    config["materials"]["W"]["supercell"] = [3, 3, 3]
    config["exafs"]["allow_periodic_images"] = True
    assert prepare_config(config)["exafs"]["allow_periodic_images"] is True


def test_hexagonal_and_rhombohedral_cellpar_pass(good):
    from dualbench.structure import cellpar_problem

    assert cellpar_problem(194, [3.153, 3.153, 12.323, 90, 90, 120]) is None
    assert cellpar_problem(166, [5.0, 5.0, 5.0, 60, 60, 60]) is None  # R-3m, rhombohedral
    assert "contradicts space group 194" in cellpar_problem(194, [3.1, 3.1, 12, 90, 90, 90])
    assert "form no cell" in cellpar_problem(1, [1, 2, 3, 10, 10, 170])


def test_duplicate_key_is_refused_with_its_line(repo, tmp_path):
    text = (repo / "config" / "config.yaml").read_text()
    dup = tmp_path / "dup.yaml"
    # a second `temperature_K` right below the first: YAML would keep 900 silently
    twice = "temperature_K: 300\n    temperature_K: 900\n"
    dup.write_text(text.replace("temperature_K: 300\n", twice))
    line = 1 + text.split("temperature_K: 300")[0].count("\n")
    with pytest.raises(ConfigError) as err:
        load_config(dup)
    message = str(err.value)
    assert message.startswith(f"{dup}: ")
    said = f"duplicate key 'temperature_K' at line {line + 1} (first given at line {line})"
    assert said in message


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert load_yaml(path) == {"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}}


def test_cli_check_config_refuses_nan(repo, tmp_path):
    text = (repo / "config" / "config.yaml").read_text()
    bad = tmp_path / "nan.yaml"
    bad.write_text(text.replace("temperature_K: 300", "temperature_K: .nan"))
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "check-config", str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert f"{bad}: materials.W.temperature_K: nan is not a finite number" in proc.stderr


def test_missing_materials_is_named():
    with pytest.raises(ConfigError, match="'materials' is a required property"):
        prepare_config({})


def test_yaml_syntax_error_names_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("materials: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: <top level>: not valid YAML"):
        load_config(bad)


def test_config_hash_changes_with_content(good):
    a = prepare_config(good)
    b = copy.deepcopy(a)
    b["materials"]["W"]["temperature_K"] = 310
    assert config_hash(a) == config_hash(copy.deepcopy(a))
    assert config_hash(a) != config_hash(b)


def test_cli_check_config_refuses_hot(repo, tmp_path):
    text = (repo / "config" / "config.yaml").read_text()
    bad = tmp_path / "hot.yaml"
    bad.write_text(text.replace("temperature_K: 300", "temperature_K: hot"))
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "check-config", str(bad)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "materials.W.temperature_K: 'hot' is not of type 'number'" in proc.stderr
    good = subprocess.run(
        [sys.executable, "-m", "dualbench", "check-config", "--quiet",
         str(repo / "config" / "config.yaml")],
        capture_output=True, text=True,
    )
    assert good.returncode == 0, good.stderr


def test_schema_documents_every_key():
    """Every property of the schema has a description or is a documented $ref."""
    from dualbench.schema import load_schema

    schema = load_schema()
    missing = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for name, sub in node.get("properties", {}).items():
            undocumented = isinstance(sub, dict) and not {"description", "$ref"} & set(sub)
            if undocumented and path.split(".")[-1] != "experiment_columns":
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"$defs.{name}")

    walk(schema, "")
    assert not missing, f"undocumented keys: {missing}"


@pytest.mark.parametrize("section, settings, not_config", [
    ("finetune", "dualbench.training:FinetuneSettings", set()),
    ("md", "dualbench.md.settings:MDSettings", {"temperature_K", "seed", "progress_every"}),
])
def test_every_section_key_is_a_setting_its_code_reads(section, settings, not_config):
    """The schema's keys of a section are exactly the fields of the settings its jobs read:
    a key the code drops (FinetuneSettings.from_config keeps only its fields) would still
    sit in the rule's params and rerun every finished job when it changes, and a field no
    key sets is a setting no config can reach."""
    import importlib
    from dataclasses import fields

    from dualbench.schema import load_schema

    module, name = settings.split(":")
    names = {f.name for f in fields(getattr(importlib.import_module(module), name))}
    keys = set(load_schema()["properties"][section]["properties"]) - {"schedule"}
    assert keys == names - not_config


def test_yaml_roundtrip_of_defaults(good):
    """A filled config written back to YAML validates again (defaults are schema-valid)."""
    filled = prepare_config(good)
    assert prepare_config(yaml.safe_load(yaml.safe_dump(filled))) == filled


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ({"kind": "chgnet", "weights": "7net-0"}, "models.m.weights", "not shipped with chgnet"),
        ({"kind": "sevennet", "weights": "0.3.0"}, "models.m.weights", "not shipped with sevennet"),
        ({"kind": "sevennet", "modal": "PBE"}, "models.m.modal", "only sevennet 7net-mf-0"),
        ({"kind": "ase"}, "models.m.calculator", "needs the calculator's import path"),
        ({"kind": "ase", "calculator": "a.b:C", "weights": "0.3.0"}, "models.m.weights",
         "not weights or modal"),
        ({"kind": "chgnet", "calculator": "a.b:C"}, "models.m.calculator", "only kind ase"),
    ],
)
def test_model_entries_fit_their_kind(good, model, key, message):
    config = copy.deepcopy(good)
    config["models"] = {"m": model}
    with pytest.raises(ConfigError, match=message) as err:
        prepare_config(config, "study.yaml")
    assert err.value.key == key


def test_model_defaults_per_kind(good):
    config = copy.deepcopy(good)
    config["models"] = {"a": {"kind": "sevennet"},
                        "b": {"kind": "sevennet", "weights": "7net-mf-0"},
                        "c": {"kind": "chgnet", "weights": "r2scan"}}
    models = prepare_config(config)["models"]
    assert (models["a"]["weights"], models["a"]["modal"]) == ("7net-0", None)
    assert (models["b"]["weights"], models["b"]["modal"]) == ("7net-mf-0", "PBE")
    assert models["c"]["weights"] == "r2scan"
