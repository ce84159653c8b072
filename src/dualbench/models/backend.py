"""One backend per model kind behind one small interface, and the one registry of them.

As ASE's calculator registry maps a name to the module of its calculator, :data:`BACKENDS`
maps a model kind to its backend: ``chgnet`` (:mod:`dualbench.models.chgnet`),
``sevennet`` (:mod:`dualbench.models.sevennet`), ``ase`` (:mod:`dualbench.models.ase_kind`),
``matgl`` (:mod:`dualbench.models.matgl_kind`).
A backend module is imported the first time its kind is looked up, so asking for a conda
env does not import torch.  A new kind is one module with a :class:`Backend` subclass and
one :func:`register_backend` call; nothing else in the package asks which kind a model is.

Every backend answers the same questions about a :class:`~dualbench.models.spec.ModelSpec`:
load its native model, make its ASE calculator (``calculator(spec, device)``), predict
energies, forces and stresses of frames, fine-tune it (or refuse), describe it (level of
theory, provenance), and name its conda env.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from dualbench.data import ase_stress_to_gpa_matrix
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneResult, FinetuneSettings

log = logging.getLogger(__name__)


class Backend:
    """What the workflow needs of a model kind.  The defaults are those of a kind that is
    only an ASE calculator: no native model, predictions through the calculator, no
    trainer, no shipped weights, no checkpoint files of its own."""

    #: The kind's name in a spec and a config (``kind:``).
    kind: str = ""
    #: The conda env of the kind's rules, relative to the repository root.
    conda_env: str = "envs/ml.yaml"
    #: The shipped weights a bare ``KIND`` MODEL argument means; None: the kind has none.
    default_weights: str | None = None
    #: Whether :meth:`finetune` trains (False: it refuses).
    trainable: bool = False
    #: Whether a spec of this kind names code to import and call (then a model file of
    #: this kind is trusted only from the config or an explicit command-line flag).
    runs_code: bool = False

    def pretrained_spec(self, weights: str) -> ModelSpec:
        """The spec of a ``KIND:WEIGHTS`` MODEL argument (shipped weights)."""
        raise ValueError(f"{self.kind} has no shipped weights")

    def owns_checkpoint(self, state: Any) -> bool:
        """Whether a checkpoint's safely read contents are a model of this kind."""
        return False

    def load(self, spec: ModelSpec, device: str):
        """The native model of ``spec`` on ``device`` (eval mode)."""
        raise ValueError(f"model {spec.label()}: kind {self.kind!r} is used through"
                         " make_calculator")

    def calculator(self, spec: ModelSpec, device: str):
        """An ASE calculator of ``spec`` (energy eV, forces eV/Å, stress eV/Å^3)."""
        raise NotImplementedError(f"kind {self.kind!r} makes no calculator")

    def predict(self, spec: ModelSpec, frames: Sequence[Atoms], device: str,
                with_stress: bool) -> list[dict[str, Any]]:
        """Predictions of frames: ``e`` eV/atom, ``f`` eV/Å, ``s`` a 3x3 GPa matrix
        (tension positive, only ``with_stress``)."""
        return calculator_predictions(self.calculator(spec, device), frames, with_stress)

    def finetune(self, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings,
                 seed: int, checkpoint: Path) -> FinetuneResult:
        """Fine-tune ``spec`` on ``frames`` and write the checkpoint file ``checkpoint``."""
        raise self.no_trainer(spec)

    def no_trainer(self, spec: ModelSpec) -> ValueError:
        """The refusal of fine-tuning a kind without a trainer."""
        return ValueError(
            f"model {spec.label()}: kind {self.kind!r} has no fine-tuning trainer here"
            f" (only {', '.join(trainable_kinds())}); benchmark it vanilla (N = 0)"
        )

    def describe(self, spec: ModelSpec) -> dict[str, Any]:
        """What the metrics record of the model beyond its spec (level of theory of the
        training data, files it opens)."""
        return {"trained_on": None}

    def check_config(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        """(key below the model's entry, message) of a config ``models:`` entry of this
        kind that does not fit it, or None."""
        return None

    def config_defaults(self, entry: dict[str, Any]) -> None:
        """Fill a config ``models:`` entry's defaults (null weights: the default ones)."""
        if self.default_weights is not None and entry.get("weights") is None:
            entry["weights"] = self.default_weights


def calculator_predictions(calc, frames: Sequence[Atoms], with_stress: bool) -> list[dict]:
    """Predictions of an ASE calculator in :meth:`Backend.predict`'s form."""
    out = []
    for frame in frames:
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell,
                      pbc=frame.pbc)
        atoms.calc = calc
        pred = {"e": atoms.get_potential_energy() / len(atoms), "f": atoms.get_forces()}
        if with_stress:
            pred["s"] = ase_stress_to_gpa_matrix(atoms.get_stress(voigt=True))
        out.append(pred)
    return out


def log_loaded(spec: ModelSpec, device: str) -> None:
    log.info(
        "loaded %s%s on %s", spec.label(),
        f" fine-tuned ({spec.checkpoint})" if spec.checkpoint else " (pretrained)", device,
    )


def check_shipped(kind: str, entry: Mapping[str, Any], known: Sequence[str]
                  ) -> tuple[str, str] | None:
    """The config check of a kind with shipped weights (CHGNet, SevenNet): known weights,
    no calculator."""
    weights = entry.get("weights")
    if weights is not None and weights not in known:
        return "weights", f"{weights!r} is not shipped with {kind}: one of {tuple(known)}"
    if entry.get("calculator") is not None or entry.get("options"):
        return "calculator", "only kind ase takes a calculator"
    return None


#: kind -> its backend, or the ``module:attribute`` of it (imported at the first lookup).
BACKENDS: dict[str, Backend | str] = {
    "chgnet": "dualbench.models.chgnet:BACKEND",
    "sevennet": "dualbench.models.sevennet:BACKEND",
    "ase": "dualbench.models.ase_kind:BACKEND",
    "matgl": "dualbench.models.matgl_kind:BACKEND",
}


def register_backend(kind: str, backend: Backend | str, *, replace: bool = False) -> None:
    """Make ``kind`` a model kind, served by ``backend`` (or its ``module:attribute``)."""
    if kind in BACKENDS and not replace:
        raise ValueError(f"model kind {kind!r} is registered already")
    BACKENDS[kind] = backend


def get_backend(kind: str) -> Backend:
    """The backend of a model kind; an unknown kind is refused naming the known ones."""
    try:
        backend = BACKENDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model kind {kind!r}; known: {kinds()}") from None
    if isinstance(backend, str):
        module, _, name = backend.partition(":")
        backend = BACKENDS[kind] = getattr(importlib.import_module(module), name)
    return backend


def kinds() -> tuple[str, ...]:
    """Every registered model kind."""
    return tuple(BACKENDS)


def trainable_kinds() -> tuple[str, ...]:
    """The kinds whose backend fine-tunes."""
    return tuple(kind for kind in BACKENDS if get_backend(kind).trainable)


def conda_env(kind: str) -> str:
    """The conda env file of a kind's rules, relative to the repository root."""
    return get_backend(kind).conda_env
