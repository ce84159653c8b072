"""Config validation: good configs pass with defaults filled, bad keys are named."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from dualbench.config import ConfigError, config_hash, load_config, load_yaml, prepare_config


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
    minimal = {"materials": copy.deepcopy(good["materials"])}
    del minimal["materials"]["W"]["supercell"]
    config = prepare_config(minimal)
    assert config["materials"]["W"]["supercell"] == [3, 3, 3]
    assert config["models"] == {"chgnet": {"kind": "chgnet", "weights": "0.3.0"}}
    assert config["ft"]["window"] == "hanning"
    assert config["exafs"]["e0_shift"] == "shared"
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
    ("plots.fig2_n_frames", [2, 7], "plots.fig2_n_frames", "[7] not in sweep.n_frames"),
    ("plots.seed", 3, "plots.seed", "3 is not in sweep.seeds"),
    ("exafs.rmax_A", 9.0, "exafs.rmax_A", "exceeds exafs.cluster_radius_A"),
    ("materials.W.absorber", "Mo", "materials.W.absorber", "not among the structure's symbols"),
    ("models.chgnet.kind", "mace", "models.chgnet.kind", "is not one of"),
    ("unknown_section", {}, "<top level>", "unknown_section"),
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
    from dualbench.config import load_schema

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


def test_yaml_roundtrip_of_defaults(good):
    """A filled config written back to YAML validates again (defaults are schema-valid)."""
    filled = prepare_config(good)
    assert prepare_config(yaml.safe_load(yaml.safe_dump(filled))) == filled
