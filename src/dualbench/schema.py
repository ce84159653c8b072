"""The config schema and what every stage may read from it: the schema itself, its
defaults (per section, per definition, filled into a config), the canonical key order of a
config, its hash, and :class:`ConfigError`.  No study-level checks (those are
:mod:`dualbench.config`, which sits above the stages): this module imports nothing of the
package, so settings at every layer can take their defaults from the one schema file."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


class SettingError(ValueError):
    """A setting out of its range, raised by the settings object that owns the check;
    ``key`` is the config key (``ft.kmax``), so a config check can name its file too."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


class ConfigError(ValueError):
    """A configuration value that the study cannot use.

    ``key`` is the dotted path of the offending key, ``source`` the file it came from.
    """

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key or '<top level>'}: {message}")


def load_schema() -> dict[str, Any]:
    """The configuration schema shipped with the package."""
    text = resources.files("dualbench").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return schema


def _fill_defaults(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Insert schema defaults into ``instance`` in place (objects only, recursively)."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
        return
    for branch in schema.get("oneOf", []):
        # e.g. `label: {...}` of a "mapping or null" key: fill the mapping's defaults
        branch = _resolve(branch, root)
        if branch.get("type") == "object":
            _fill_defaults(instance, branch, root)
    props: Mapping[str, Any] = schema.get("properties", {})
    for name, sub in props.items():
        sub_resolved = _resolve(sub, root)
        if name not in instance and "default" in sub_resolved:
            instance[name] = copy.deepcopy(sub_resolved["default"])
        if name in instance:
            _fill_defaults(instance[name], sub_resolved, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for name, value in instance.items():
            if name not in props:
                _fill_defaults(value, extra, root)


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a whole config with every schema default filled in."""
    schema = load_schema()
    filled = copy.deepcopy(dict(config))
    _fill_defaults(filled, schema, schema)
    return filled


def section_defaults(section: str) -> dict[str, Any]:
    """The schema defaults of a flat config section (``md``, ``exafs``, ``experiment``,
    ``ft``): its keys that have a default, with that default (one source of truth)."""
    props = load_schema()["properties"][section]["properties"]
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}


def fill_defaults(entry: Mapping[str, Any], definition: str) -> dict[str, Any]:
    """A copy of ``entry`` with the defaults of the schema's ``$defs/<definition>`` filled in."""
    schema = load_schema()
    filled = copy.deepcopy(dict(entry))
    _fill_defaults(filled, schema["$defs"][definition], schema)
    return filled


def exafs_n_frames(config: Mapping[str, Any]) -> list[int]:
    """The N whose models run the EXAFS arm (MD, simulated EXAFS): ``sweep.exafs_n_frames``,
    or every N of the sweep when it is null."""
    sweep = config["sweep"]
    return sorted(sweep.get("exafs_n_frames") or sweep["n_frames"])


def exafs_seeds(config: Mapping[str, Any]) -> list[int]:
    """The seeds whose models run the EXAFS arm: ``sweep.exafs_seeds``, or every seed of the
    sweep when it is null (in the sweep's order)."""
    sweep = config["sweep"]
    chosen = sweep.get("exafs_seeds")
    return [s for s in sweep["seeds"] if chosen is None or s in chosen]


def canonical(value: Any) -> Any:
    """``value`` with every mapping (recursively) in sorted key order; lists keep theirs.

    Snakemake decides that a rule's params changed by comparing their repr, and a dict's
    repr follows its key order: a config written back with sorted keys would rerun jobs.
    """
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`canonical` of a whole config, except that the materials and the models keep
    the order they were given in (the first model is the default sampling model)."""
    ordered = canonical(config)
    for section in ("materials", "models"):
        if isinstance(config.get(section), Mapping):
            ordered[section] = {name: canonical(entry) for name, entry in config[section].items()}
    return ordered


def config_hash(config: Mapping[str, Any]) -> str:
    """A short SHA-256 of the canonical JSON of a (filled) config, for provenance."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The top-level sections a material may give its own keys of (``materials.<name>.ft``...).
MATERIAL_SECTIONS = ("experiment_fit", "ft", "exafs", "md")


def material_section(config: Mapping[str, Any], material: str, section: str) -> dict[str, Any]:
    """Section ``section`` (``experiment_fit``, ``ft``, ``exafs`` or ``md``) as material
    ``material`` uses it: the top-level keys with the material's own keys over them."""
    if section not in MATERIAL_SECTIONS:
        raise KeyError(f"materials have no {section!r} section")
    own = config["materials"][material].get(section) or {}
    return {**config[section], **own}
