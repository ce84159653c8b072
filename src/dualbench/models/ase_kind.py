"""The ``kind: ase`` backend: any ASE calculator, named by its import path, as a vanilla
model.

The calculator is built as ``Class(**options)``: importing and calling it runs code, so a
``kind: ase`` spec is taken only from the study's config or an explicit command-line flag
(``--trust-ase-model``), never from a ``model.json`` read as input (``read_model_spec``
refuses it there).  A model file in ``options`` (a local MACE or MatterSim model, say) is
opened by that calculator, not by this workflow: its SHA-256 is recorded with the
results, and whether the calculator unpickles it safely is the calculator's business.
There is no trainer for this kind here: fine-tuning is refused.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dualbench.models.backend import Backend
from dualbench.models.spec import ModelSpec, sha256_file


def import_calculator(path: str):
    """The class (or factory) ``module:Name`` or ``module.Name``."""
    module, sep, name = path.partition(":")
    if not sep:
        module, _, name = path.rpartition(".")
    if not module or not name:
        raise ValueError(f"calculator {path!r} is not an import path like 'package.module:Class'")
    try:
        target = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"calculator {path!r}: cannot import {module} ({err})") from None
    for part in name.split("."):
        if not hasattr(target, part):
            raise ValueError(f"calculator {path!r}: {module} has no {name}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"calculator {path!r} is not callable")
    return target


def ase_calculator(spec: ModelSpec):
    """The calculator of a ``kind: ase`` spec."""
    if not spec.calculator:
        raise ValueError("a model of kind 'ase' needs `calculator`, an import path")
    factory = import_calculator(spec.calculator)
    try:
        calc = factory(**spec.options)
    except TypeError as err:  # an option it does not take, or one it needs and lacks
        raise ValueError(_rejected(spec, factory, err)) from err
    if not hasattr(calc, "get_potential_energy") and not hasattr(calc, "calculate"):
        raise ValueError(f"calculator {spec.calculator!r} did not return an ASE calculator")
    return calc


def _rejected(spec: ModelSpec, factory: Any, err: TypeError) -> str:
    """The refusal of options the calculator rejects: the calculator, the options given,
    and (when its signature says) those it does not take and those it does."""
    given = ", ".join(sorted(spec.options)) or "none"
    hint = ""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(spec.options) - set(params))
        if unknown:
            hint = f"; it takes no {', '.join(unknown)} (it takes: {', '.join(params) or 'none'})"
    return (f"calculator {spec.calculator!r} rejected the model's options (given:"
            f" {given}){hint}: {err}")


def option_files(spec: ModelSpec) -> dict[str, str]:
    """SHA-256 of every option value that names an existing file (provenance)."""
    files: dict[str, str] = {}
    for key, value in spec.options.items():
        if isinstance(value, str) and Path(value).is_file():
            files[key] = sha256_file(value)
    return files


class AseBackend(Backend):
    """Only a calculator: no native model, no shipped weights, no trainer (fine-tuning is
    refused by :meth:`Backend.finetune`); its spec names code to import."""

    kind = "ase"
    conda_env = "envs/ml.yaml"
    runs_code = True

    def calculator(self, spec: ModelSpec, device: str):
        return ase_calculator(spec)

    def describe(self, spec: ModelSpec) -> dict[str, Any]:
        return {"trained_on": None, "calculator": spec.calculator, "options": spec.options,
                "files": option_files(spec)}

    def check_config(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        if not entry.get("calculator"):
            return "calculator", "kind ase needs the calculator's import path"
        if entry.get("weights") is not None or entry.get("modal") is not None:
            return "weights", "kind ase takes calculator and options, not weights or modal"
        return None


BACKEND = AseBackend()
