"""Study configuration: load, fill defaults from the JSON schema, validate the whole study.

The schema (``schemas/config.schema.yaml``, draft 2020-12; read by
:mod:`dualbench.schema`, which every stage may use) documents every key and its default.
This module checks a study as a whole (models through their backends, the sweep, the
structures, :mod:`dualbench.config_checks`), so it sits above the stages.
:func:`prepare_config` is what the Snakefile and the CLI call: it returns a new dict with
every default filled in, or raises :class:`ConfigError` naming the file and the key
(``materials.W.temperature_K``) before any job runs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dualbench.config_materials import expand_materials
from dualbench.exafs.settings import FTSettings
from dualbench.exafs.shells import check_cut_between_shells
from dualbench.schema import (
    ConfigError,
    SettingError,
    exafs_n_frames,
    exafs_seeds,
    load_schema,
    material_section,
    with_defaults,
)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that gives the same key twice (YAML would silently keep the last)."""


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: its keys may be overridden here
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise DuplicateKeyError(
                    f"duplicate key {key!r} at line {line} (first given at line {seen[key]});"
                    " YAML would silently keep the last value"
                )
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str = "") -> Any:
    """Parse YAML text safely, refusing duplicate keys; errors name ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(source, "", f"not valid YAML: {err}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a syntax error or a duplicate key names the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), "", f"cannot be read: {err}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "the top level must be a mapping of keys")
    return data


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
        return _key(error.absolute_path), _type_message(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return _key(error.absolute_path), f"{error.message}{hint}"
    if error.validator == "not" and "description" in error.schema:
        # a refused value (e.g. a reserved name): the schema says why
        return _key(error.absolute_path), f"{error.instance!r}: {error.schema['description']}"
    return _key(error.absolute_path), error.message


def _type_message(error: jsonschema.ValidationError) -> str:
    """A value of none of a oneOf's types, e.g. ``weights: 9.9`` (a number, not a name)."""
    types = [str(e.validator_value) for e in error.context]
    message = f"{error.instance!r} is not of type {' or '.join(map(repr, types))}"
    if "string" in types and isinstance(error.instance, (int, float)):
        message += f' (YAML reads {error.instance!r} as a number: write it in quotes)'
    return message


def _check_finite(node: Any, path: tuple[Any, ...], source: str) -> None:
    """Refuse NaN and infinity anywhere (a NaN passes every bound of a JSON schema)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(source, _key(path), f"{node} is not a finite number")
    if isinstance(node, Mapping):
        for name, value in node.items():
            _check_finite(value, (*path, name), source)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _check_finite(value, (*path, i), source)


def _is_integer(_checker: Any, instance: Any) -> bool:
    """JSON Schema counts 2.0 as an integer; a count or index here must be written 2."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


def validate(config: Mapping[str, Any], source: str = "") -> None:
    """Raise :class:`ConfigError` for the first schema violation, sorted by key."""
    _check_finite(config, (), source)
    schema = load_schema()
    validator = _Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: _key(e.absolute_path))
    if errors:
        key, message = _message(errors[0])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        raise ConfigError(source, key, message)
    _check_semantics(config, source)


def _check_models(config: Mapping[str, Any], source: str) -> None:
    """Each model's weights, modality and calculator fit its kind (its backend's check)."""
    from dualbench.models.backend import get_backend

    for name, model in config["models"].items():
        problem = get_backend(model["kind"]).check_config(model)
        if problem is not None:
            key, message = problem
            raise ConfigError(source, f"models.{name}.{key}", message)
        _check_model_finetune(config, name, source)


def _check_model_finetune(config: Mapping[str, Any], name: str, source: str) -> None:
    """A model's own ``finetune`` keys are valid ``finetune`` values (checked as the
    section they make with the study's) and only on a kind that fine-tunes."""
    from dualbench.models.backend import get_backend
    from dualbench.training import model_section

    own = config["models"][name].get("finetune") or {}
    if not own:
        return
    if not get_backend(config["models"][name]["kind"]).trainable:
        raise ConfigError(source, f"models.{name}.finetune",
                          f"kind {config['models'][name]['kind']} is not fine-tuned here")
    schema = load_schema()["properties"]["finetune"]
    merged = model_section(config["finetune"], own)
    errors = sorted(_Validator(schema).iter_errors(merged), key=lambda e: _key(e.absolute_path))
    if errors:
        key, message = _message(errors[0])
        raise ConfigError(source, f"models.{name}.finetune.{key}", message)


def _fill_model_defaults(config: dict[str, Any]) -> None:
    """Each kind's defaults: null weights become the kind's default, 7net-mf-0 without a
    modality takes PBE."""
    from dualbench.models.backend import get_backend

    for model in config["models"].values():
        get_backend(model["kind"]).config_defaults(model)


def _check_sweep(config: Mapping[str, Any], source: str) -> None:
    """The sweep's N and seeds against what refers to them (EXAFS arm, reference, plots)."""
    sweep, plots = config["sweep"], config["plots"]
    exafs_ns = exafs_n_frames(config)
    extra = sorted(set(exafs_ns) - set(sweep["n_frames"]))
    if extra:
        raise ConfigError(source, "sweep.exafs_n_frames", f"{extra} not in sweep.n_frames")
    extra = sorted(set(sweep.get("exafs_seeds") or []) - set(sweep["seeds"]))
    if extra:
        raise ConfigError(source, "sweep.exafs_seeds", f"{extra} not in sweep.seeds")
    arm = "the EXAFS arm's N (sweep.exafs_n_frames, else sweep.n_frames)"
    reference = config["exafs"].get("reference_model")
    if reference:
        if reference.get("model") is not None and reference["model"] not in config["models"]:
            raise ConfigError(source, "exafs.reference_model.model",
                              f"{reference['model']!r} is not among models"
                              f" ({', '.join(config['models'])})")
        if reference.get("n_frames") is not None and reference["n_frames"] not in exafs_ns:
            raise ConfigError(source, "exafs.reference_model.n_frames",
                              f"{reference['n_frames']} is not among {arm}")
    missing = sorted(set(plots["fig2_n_frames"]) - set(exafs_ns))
    if missing:
        raise ConfigError(source, "plots.fig2_n_frames", f"{missing} not among {arm}")
    if plots["seed"] is not None and plots["seed"] not in exafs_seeds(config):
        raise ConfigError(source, "plots.seed", f"{plots['seed']} is not among the EXAFS"
                          " arm's seeds (sweep.exafs_seeds, else sweep.seeds)")


def _check_sections(config: Mapping[str, Any], name: str | None, source: str) -> None:
    """``ft``, ``exafs`` and ``experiment_fit`` as the top level gives them (``name``
    None), or as material ``name`` uses them with its own keys (``materials.<name>.ft``);
    a material's are checked only where it gives keys of its own."""
    if name is None:
        ft, exafs, fit, prefix = config["ft"], config["exafs"], config["experiment_fit"], ""
    else:
        if not any(config["materials"][name].get(s) for s in ("ft", "exafs", "experiment_fit")):
            return
        ft, exafs, fit = (material_section(config, name, s)
                          for s in ("ft", "exafs", "experiment_fit"))
        prefix = f"materials.{name}."
    try:
        FTSettings.from_config(ft)  # the ranges are FTSettings' own to check
    except SettingError as err:
        raise ConfigError(source, prefix + err.key, err.message) from err
    if exafs["rmax_A"] > exafs["cluster_radius_A"]:
        raise ConfigError(
            source,
            f"{prefix}exafs.rmax_A",
            f"{exafs['rmax_A']} Å exceeds exafs.cluster_radius_A ({exafs['cluster_radius_A']} Å):"
            " paths would leave the cluster",
        )
    if fit and fit["rmin_A"] >= fit["rmax_A"]:
        raise ConfigError(source, f"{prefix}experiment_fit.rmax_A",
                          f"must exceed rmin_A ({fit['rmin_A']})")


def _check_md(md: Mapping[str, Any], key: str, source: str) -> None:
    """An ``md`` section (the study's, or a material's merged one under ``key``)."""
    if md["production_steps"] < md["snapshot_every"]:
        raise ConfigError(
            source, f"{key}.snapshot_every",
            "exceeds md.production_steps: no snapshot would be saved",
        )
    if md.get("ensemble") == "npt" and md["thermostat"] != "langevin":
        raise ConfigError(
            source, f"{key}.thermostat", f"{md['thermostat']!r}: md.ensemble npt needs langevin"
        )
    if md.get("nuclei") == "pimd" and md.get("beads") is None and md.get("max_phonon_THz") is None:
        raise ConfigError(
            source, f"{key}.beads",
            "nuclei pimd needs beads, or max_phonon_THz for the bead rule (README: Quantum"
            " nuclei)",
        )


def _check_material_md(config: Mapping[str, Any], name: str, source: str) -> None:
    """A material's own ``md`` keys: valid ``md`` values, checked as the section they make
    with the study's.  Only keys that change the trajectory (they reach the run as the
    rule's params); the device, checkpoints and guards are the study's, and so is a value
    that would drop out of the params (classical nuclei, nvt) when the study's is not."""
    from dualbench.md.settings import NON_TRAJECTORY_SETTINGS, trajectory_params

    own = config["materials"][name].get("md") or {}
    if not own:
        return
    key = f"materials.{name}.md"
    for sub in sorted(set(own) & NON_TRAJECTORY_SETTINGS):
        raise ConfigError(source, f"{key}.{sub}", f"is the study's (md.{sub}), not a material's")
    merged = material_section(config, name, "md")
    schema = load_schema()["properties"]["md"]
    errors = sorted(_Validator(schema).iter_errors(merged), key=lambda e: _key(e.absolute_path))
    if errors:
        sub, message = _message(errors[0])
        raise ConfigError(source, f"{key}.{sub}", message)
    _check_md(merged, key, source)
    params = trajectory_params(merged)
    ran = trajectory_params({**config["md"], **params})
    for sub in sorted(set(params) | set(ran), key=lambda k: (k not in own, k)):
        if params.get(sub) != ran.get(sub):
            raise ConfigError(source, f"{key}.{sub}" if sub in own else key,
                              f"the study's md.{sub} ({config['md'].get(sub)!r}) would run in"
                              f" place of this material's: give {sub} its value in the"
                              " study's md and override it in the other materials")


def _check_semantics(config: Mapping[str, Any], source: str) -> None:
    """Cross-key rules that a JSON schema cannot say."""
    _check_models(config, source)
    _check_sections(config, None, source)
    for name in config["materials"]:
        _check_sections(config, name, source)
    _check_md(config["md"], "md", source)
    for name in config["materials"]:
        _check_material_md(config, name, source)
    _check_sweep(config, source)
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
        _check_symbols_structure(config, name, source)
    from dualbench.config_checks import check_study

    check_study(config, source)


def _check_symbols_structure(config: Mapping[str, Any], name: str, source: str) -> None:
    """A space-group structure: symbols against basis and absorber, cellpar against the
    space group, and the supercell against the EXAFS cluster (:func:`check_structure`)."""
    from dualbench.structure import build_structure, cellpar_problem

    material = config["materials"][name]
    structure = material["structure"]
    symbols = structure.get("symbols")
    if symbols is None:
        return  # a structure file: checked by check_structure once it can be read
    if material["absorber"] not in symbols:
        raise ConfigError(
            source,
            f"materials.{name}.absorber",
            f"{material['absorber']!r} is not among the structure's symbols {symbols}",
        )
    if len(symbols) != len(structure["basis"]):
        raise ConfigError(
            source,
            f"materials.{name}.structure.basis",
            f"has {len(structure['basis'])} sites for {len(symbols)} symbols",
        )
    problem = cellpar_problem(structure["spacegroup"], structure["cellpar"])
    if problem:
        raise ConfigError(source, f"materials.{name}.structure.cellpar", problem)
    try:
        atoms = build_structure(structure)
    except Exception as err:  # ASE's crystal(): e.g. sites that coincide
        raise ConfigError(source, f"materials.{name}.structure", str(err)) from None
    check_structure(config, name, atoms, source)


def check_structure(config: Mapping[str, Any], name: str, atoms: Any, source: str) -> None:
    """Checks of a material's unit cell (ASE ``Atoms``, from symbols or a file ``source``):
    the absorber is one of its elements, and the EXAFS cluster fits the MD supercell.

    A cluster of radius ``exafs.cluster_radius_A`` larger than the supercell's inscribed
    radius holds periodic images of the absorber's own neighbours: an error unless the
    config sets ``exafs.allow_periodic_images: true``.  ``exafs.rmax_A`` and
    ``exafs.cluster_radius_A`` within ``exafs.shell_margin_A`` of a shell around the
    absorber in the ideal crystal: an error (:mod:`dualbench.exafs.shells`).
    """
    from dualbench.structure import build_supercell, inscribed_radius

    material = config["materials"][name]
    elements = sorted(set(atoms.get_chemical_symbols()))
    if material["absorber"] not in elements:
        raise ConfigError(
            source,
            f"materials.{name}.absorber",
            f"{material['absorber']!r} is not among the structure's elements {elements}",
        )
    exafs = material_section(config, name, "exafs")
    radius = inscribed_radius(build_supercell(atoms, material["supercell"]).cell)
    if exafs["cluster_radius_A"] > radius and not exafs.get("allow_periodic_images", False):
        raise ConfigError(
            source,
            _exafs_key(config, name, "cluster_radius_A"),
            f"{exafs['cluster_radius_A']:g} Å exceeds the inscribed radius {radius:.2f} Å of"
            f" material {name}'s {'x'.join(map(str, material['supercell']))} supercell: the"
            " cluster would hold periodic images of the absorber's neighbours. Enlarge"
            f" materials.{name}.supercell, lower the radius, or set"
            " exafs.allow_periodic_images: true",
        )
    _check_cuts(config, name, atoms, source)


def _exafs_key(config: Mapping[str, Any], name: str, key: str) -> str:
    """``materials.<name>.exafs.<key>`` where the material gives that key, else ``exafs.<key>``."""
    own = config["materials"][name].get("exafs") or {}
    return f"materials.{name}.exafs.{key}" if key in own else f"exafs.{key}"


def _check_cuts(config: Mapping[str, Any], name: str, atoms: Any, source: str) -> None:
    """RPATH and the cluster radius between the shells of material ``name``'s ideal
    cell ``atoms`` (its shells are the supercell's)."""
    exafs = material_section(config, name, "exafs")
    absorber = config["materials"][name]["absorber"]
    try:
        check_cut_between_shells(atoms, absorber, exafs["rmax_A"], exafs["cluster_radius_A"],
                                 exafs["shell_margin_A"], crystal=f"material {name}'s crystal")
    except SettingError as err:
        key = err.key
        if key.startswith("exafs."):
            key = _exafs_key(config, name, key.removeprefix("exafs."))
        raise ConfigError(source, key, err.message) from None


def prepare_config(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A validated copy of ``config`` with every default filled in (a material's
    ``temperatures`` and ``nuclei`` expanded first: :mod:`dualbench.config_materials`)."""
    filled = with_defaults(expand_materials(config, source))
    validate(filled, source)
    _fill_model_defaults(filled)
    return filled


def load_config(path: str | Path) -> dict[str, Any]:
    """Load, fill and validate a config file."""
    return prepare_config(load_yaml(path), str(path))
