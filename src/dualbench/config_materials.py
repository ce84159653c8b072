"""A material measured at several temperatures, or run with several treatments of its
nuclei, expanded into one material per (temperature, nuclei).

``materials.<name>.temperatures`` lists the temperatures, each with its own measured
spectrum: :func:`expand_temperatures` replaces the material by one material per entry,
named ``<name>_<T>K``, with the entry's ``temperature_K``, ``experiment`` and
``experiment_columns`` and its ``experiment_fit``, ``ft``, ``exafs`` and ``md`` keys over
the material's own; every other key is shared.

``materials.<name>.nuclei: [classical, pimd]`` scores the same spectrum with classical and
with path-integral nuclei side by side: :func:`expand_nuclei` makes ``<name>`` (classical)
and ``<name>_pimd`` (``md.nuclei: pimd``), after the temperatures (``Cu_10K`` and
``Cu_10K_pimd``).  :func:`expand_materials` does both; :func:`dualbench.config.prepare_config`
calls it before the schema's defaults and checks, so the workflow sees ordinary materials.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

from dualbench.schema import MATERIAL_SECTIONS, ConfigError

# Keys an entry of `temperatures` sets for its material; the material may not give them.
PER_TEMPERATURE = ("temperature_K", "experiment", "experiment_columns")


def temperature_name(name: str, temperature_k: float) -> str:
    """``Cu`` at 10 K: ``Cu_10K``; at 77.5 K: ``Cu_77p5K`` (material names have no dot)."""
    text = f"{float(temperature_k):g}".replace(".", "p")
    return f"{name}_{text}K"


def _entry_temperature(entry: Any, key: str, source: str) -> float:
    if not isinstance(entry, Mapping):
        raise ConfigError(source, key, f"{entry!r} is not a mapping with temperature_K")
    value = entry.get("temperature_K")
    if value is None:
        raise ConfigError(source, f"{key}.temperature_K", "is required in each temperature")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(source, f"{key}.temperature_K", f"{value!r} is not a number")
    return float(value)


def _expand_one(name: str, material: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Material ``name`` with ``temperatures``: its materials, in the entries' order."""
    key = f"materials.{name}.temperatures"
    entries = material["temperatures"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(source, key, "must be a non-empty list of temperatures")
    given = [k for k in PER_TEMPERATURE if k in material]
    if given:
        raise ConfigError(source, f"materials.{name}.{given[0]}",
                          f"is given per temperature in {key}: give either {key} or a"
                          f" top-level {given[0]}, not both")
    shared = {k: v for k, v in material.items() if k != "temperatures"}
    expanded: dict[str, Any] = {}
    seen: dict[float, int] = {}
    for i, entry in enumerate(entries):
        temperature = _entry_temperature(entry, f"{key}.{i}", source)
        if temperature in seen:
            raise ConfigError(source, f"{key}.{i}.temperature_K",
                              f"{temperature:g} K is given twice (also {key}.{seen[temperature]})")
        seen[temperature] = i
        one = copy.deepcopy(shared)
        for k, value in entry.items():
            if k in MATERIAL_SECTIONS and isinstance(value, Mapping):
                one[k] = {**(one.get(k) or {}), **copy.deepcopy(dict(value))}
            else:
                one[k] = copy.deepcopy(value)
        expanded[temperature_name(name, temperature)] = one
    return expanded


def expand_temperatures(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A copy of ``config`` whose materials with ``temperatures`` are expanded into one
    material per temperature (in place of the material, in order).  An expanded name that
    another material already has is refused, naming both keys."""
    materials = config.get("materials")
    if not isinstance(materials, Mapping) or not any(
        isinstance(m, Mapping) and "temperatures" in m for m in materials.values()
    ):
        return copy.deepcopy(dict(config))
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, material in materials.items():
        if isinstance(material, Mapping) and "temperatures" in material:
            parts = _expand_one(name, material, source)
            where = f"materials.{name}.temperatures"
        else:
            parts, where = {name: copy.deepcopy(material)}, f"materials.{name}"
        for new, entry in parts.items():
            if new in out:
                raise ConfigError(source, where,
                                  f"makes material {new!r}, which {origin[new]} also makes")
            out[new], origin[new] = entry, where
    expanded = copy.deepcopy({k: v for k, v in config.items() if k != "materials"})
    expanded["materials"] = out
    return expanded


NUCLEI = ("classical", "pimd")


def nuclei_name(name: str, nuclei: str) -> str:
    """``Cu_10K`` with classical nuclei keeps its name; with pimd: ``Cu_10K_pimd``."""
    return name if nuclei == "classical" else f"{name}_{nuclei}"


def _nuclei_list(name: str, material: Mapping[str, Any], source: str) -> list[str]:
    key = f"materials.{name}.nuclei"
    values = material["nuclei"]
    if not isinstance(values, list) or not values:
        raise ConfigError(source, key, f"{values!r} is not a non-empty list of {NUCLEI}")
    for i, value in enumerate(values):
        if value not in NUCLEI:
            raise ConfigError(source, f"{key}.{i}", f"{value!r} is not one of {NUCLEI}")
    if len(set(values)) != len(values):
        raise ConfigError(source, key, f"{values} names a treatment twice")
    given = (material.get("md") or {}).get("nuclei") if isinstance(material.get("md"),
                                                                   Mapping) else None
    if given is not None:
        raise ConfigError(source, f"materials.{name}.md.nuclei",
                          f"is set by {key}: give one of them")
    return list(values)


def expand_nuclei(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """A copy of ``config`` whose materials with a ``nuclei`` list are expanded into one
    material per treatment (:func:`nuclei_name`), each with that ``md.nuclei``; a name that
    another material already has is refused."""
    materials = config.get("materials")
    if not isinstance(materials, Mapping) or not any(
        isinstance(m, Mapping) and "nuclei" in m for m in materials.values()
    ):
        return copy.deepcopy(dict(config))
    out: dict[str, Any] = {}
    for name, material in materials.items():
        if not (isinstance(material, Mapping) and "nuclei" in material):
            parts = {name: copy.deepcopy(material)}
        else:
            parts = {}
            for nuclei in _nuclei_list(name, material, source):
                one = copy.deepcopy({k: v for k, v in material.items() if k != "nuclei"})
                one["md"] = {**(one.get("md") or {}), "nuclei": nuclei}
                parts[nuclei_name(name, nuclei)] = one
        for new, entry in parts.items():
            if new in out or (new != name and new in materials):
                raise ConfigError(source, f"materials.{name}.nuclei",
                                  f"makes material {new!r}, which the config already has")
            out[new] = entry
    expanded = copy.deepcopy({k: v for k, v in config.items() if k != "materials"})
    expanded["materials"] = out
    return expanded


def expand_materials(config: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """:func:`expand_temperatures`, then :func:`expand_nuclei`."""
    return expand_nuclei(expand_temperatures(config, source), source)
