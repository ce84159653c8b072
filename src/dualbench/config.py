"""Study configuration: load, fill defaults from the JSON schema, validate.

The schema (``schemas/config.schema.yaml``, draft 2020-12) documents every key and its
default.  :func:`prepare_config` is what the Snakefile and the CLI call: it returns a
new dict with every default filled in, or raises :class:`ConfigError` naming the file
and the key (``materials.W.temperature_K``) before any job runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a syntax error names the file and line."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "", "config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "", f"not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "the top level must be a mapping of keys")
    return data


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


def fill_defaults(entry: Mapping[str, Any], definition: str) -> dict[str, Any]:
    """A copy of ``entry`` with the defaults of the schema's ``$defs/<definition>`` filled in."""
    schema = load_schema()
    filled = copy.deepcopy(dict(entry))
    _fill_defaults(filled, schema["$defs"][definition], schema)
    return filled


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _message(error: jsonschema.ValidationError) -> tuple[str, str]:
    """The most specific key and message of a validation error."""
    if error.context:
        # oneOf/anyOf: the branch error that got deepest into the value says most.
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            return _message(deepest)
        # Same depth: skip branches that failed only on type (e.g. "not null").
        relevant = [e for e in error.context if e.validator != "type"]
        if relevant:
            return _message(relevant[0])
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return _key(error.absolute_path), f"{error.message}{hint}"
    return _key(error.absolute_path), error.message


def validate(config: Mapping[str, Any], source: str = "") -> None:
    """Raise :class:`ConfigError` for the first schema violation, sorted by key."""
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: _key(e.absolute_path))
    if errors:
        key, message = _message(errors[0])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        raise ConfigError(source, key, message)
    _check_semantics(config, source)


def _check_semantics(config: Mapping[str, Any], source: str) -> None:
    """Cross-key rules that a JSON schema cannot say."""
    ft, exafs = config["ft"], config["exafs"]
    if ft["kmin"] >= ft["kmax"]:
        raise ConfigError(source, "ft.kmax", f"must exceed ft.kmin ({ft['kmin']})")
    if ft["rmin"] >= ft["rmax"]:
        raise ConfigError(source, "ft.rmax", f"must exceed ft.rmin ({ft['rmin']})")
    if exafs["rmax_A"] > exafs["cluster_radius_A"]:
        raise ConfigError(
            source,
            "exafs.rmax_A",
            f"{exafs['rmax_A']} Å exceeds exafs.cluster_radius_A ({exafs['cluster_radius_A']} Å):"
            " paths would leave the cluster",
        )
    md = config["md"]
    if md["production_steps"] < md["snapshot_every"]:
        raise ConfigError(
            source, "md.snapshot_every", "exceeds md.production_steps: no snapshot would be saved"
        )
    sweep, plots = config["sweep"], config["plots"]
    missing = sorted(set(plots["fig2_n_frames"]) - set(sweep["n_frames"]))
    if missing:
        raise ConfigError(source, "plots.fig2_n_frames", f"{missing} not in sweep.n_frames")
    if plots["seed"] is not None and plots["seed"] not in sweep["seeds"]:
        raise ConfigError(source, "plots.seed", f"{plots['seed']} is not in sweep.seeds")
    for name, material in config["materials"].items():
        dft = material["dft"]
        if (dft["train"] is None) == (dft["label"] is None):
            raise ConfigError(
                source,
                f"materials.{name}.dft",
                "give either `train` (a file of DFT frames) or `label` (compute them), not "
                + ("both" if dft["train"] is not None else "neither"),
            )
        if dft["label"] is not None:
            if dft["test"] is not None:
                raise ConfigError(
                    source,
                    f"materials.{name}.dft.test",
                    "must be null with `label`: the labelled MD's last frames are the test set",
                )
            model = dft["label"]["sampling"]["model"]
            if model is not None and model not in config["models"]:
                raise ConfigError(
                    source,
                    f"materials.{name}.dft.label.sampling.model",
                    f"{model!r} is not among models ({', '.join(config['models'])})",
                )
        symbols = material["structure"].get("symbols")
        if symbols is not None:
            if material["absorber"] not in symbols:
                raise ConfigError(
                    source,
                    f"materials.{name}.absorber",
                    f"{material['absorber']!r} is not among the structure's symbols {symbols}",
                )
            if len(symbols) != len(material["structure"]["basis"]):
                raise ConfigError(
                    source,
                    f"materials.{name}.structure.basis",
                    f"has {len(material['structure']['basis'])} sites for {len(symbols)} symbols",
                )


def prepare_config(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A validated copy of ``config`` with every default filled in."""
    filled = copy.deepcopy(dict(config))
    _fill_defaults(filled, load_schema(), load_schema())
    validate(filled, source)
    return filled


def load_config(path: str | Path) -> dict[str, Any]:
    """Load, fill and validate a config file."""
    return prepare_config(load_yaml(path), str(path))


def config_hash(config: Mapping[str, Any]) -> str:
    """A short SHA-256 of the canonical JSON of a (filled) config, for provenance."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
