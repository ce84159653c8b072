"""The matgl backend (``kind: matgl``): M3GNet and TensorNet potentials of matgl's PyG
backend, pretrained (the five checkpoints of matgl's ``pretrained_models`` named in
:data:`MATGL_WEIGHTS`) or fine-tuned by :mod:`dualbench.models.matgl_train`.

A matgl model folder holds ``model.json`` (the classes and their arguments, as text),
``model.pt`` (the same arguments as a torch archive: tensors, numbers, names) and
``state.pt`` (the weights).  matgl's own ``load_model`` imports whatever module and class
those files name and calls it; here nothing in a file chooses code.  Both torch files are
read with the restricted unpickler (:func:`dualbench.models.checkpoints.safe_load`), every
file is pinned by the SHA-256 of matgl's published one, and the potential is built from a
fixed table of matgl's classes (:data:`ARCHITECTURES`) whose arguments must be plain
values.  The pretrained files come from the data mirror (``$DUALBENCH_DATA_MIRROR``) or
matgl's repository at a fixed commit, checked by SHA-256, into a cache folder
(``$DUALBENCH_MODEL_CACHE``, default ``~/.cache/dualbench/models``), like any public data
of the study (:func:`dualbench.fetch.fetch`); a cached file that no longer matches is
refused, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from dualbench.fetch import fetch
from dualbench.models.backend import Backend, log_loaded
from dualbench.models.checkpoints import safe_load
from dualbench.models.device import resolve_device
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneResult, FinetuneSettings

log = logging.getLogger(__name__)

#: matgl's repository at the commit whose ``pretrained_models`` the hashes below pin.
MATGL_URL = (
    "https://raw.githubusercontent.com/materialsvirtuallab/matgl/"
    "e9cde2291acd0b4c4a342428e7dd5e4d596b7bf9/pretrained_models"
)
#: Where fetched pretrained files are kept (``<cache>/matgl/<name>/``).
CACHE_ENV = "DUALBENCH_MODEL_CACHE"
DEFAULT_CACHE = "~/.cache/dualbench/models"
FILES = ("model.json", "model.pt", "state.pt")


@dataclass(frozen=True)
class Pretrained:
    """A pretrained matgl potential: the level of theory of its training data and the
    SHA-256 of each of its files (``model.json``, ``model.pt``, ``state.pt``)."""

    trained_on: str
    sha256: Mapping[str, str]


def _shas(json_sha: str, model_sha: str, state_sha: str) -> dict[str, str]:
    return dict(zip(FILES, (json_sha, model_sha, state_sha), strict=True))


#: Pretrained matgl potentials: name -> level of theory and file hashes (matgl commit
#: e9cde22; the mirror's README lists the same).  The first is the default.
MATGL_WEIGHTS: dict[str, Pretrained] = {
    "TensorNet-MatPES-PBE-v2025.1-PES": Pretrained(
        "PBE, MatPES v2025.1 (300 K MD snapshots and MP ground states)",
        _shas("cf7d1db6c89da617245021a8fde16fb79db5bc06f7b6e11ee837f06eb32137d8",
              "1cba95766c872082eec349a7e417a28461aea450b655a0301eec060a985fdd71",
              "d2dfa51a65d23a47fd935eb0628177d2a1088584562091ef3350ce3a002fce6a")),
    "TensorNet-MatPES-r2SCAN-v2025.1-PES": Pretrained(
        "r2SCAN, MatPES v2025.1 (300 K MD snapshots and MP ground states)",
        _shas("408b29cb197ae7ebfb72cff6685745bb112018be983ab23040669a4c7c4b87df",
              "0444e7e9396e1b34be25e33821373c93eedacd214b23d686323e19740495c23d",
              "b1f87297bac09ada6f0e2f41d362d784f894ff0f1f031478187c55ec661b71ba")),
    "M3GNet-MatPES-PBE-v2025.1-PES": Pretrained(
        "PBE, MatPES v2025.1 (300 K MD snapshots and MP ground states)",
        _shas("6ab754c8593efef1005a37882a27b25417153bfd0b5624d0943901f18116b552",
              "94b511e45d576cb38a54e2d952fac1eb66e179fb3cddf48ccd86bf4f689f86df",
              "9f710eac88ec2c666c8e488883c59768cf11c116f177e9d82896ae56f3fc338d")),
    "M3GNet-MatPES-r2SCAN-v2025.1-PES": Pretrained(
        "r2SCAN, MatPES v2025.1 (300 K MD snapshots and MP ground states)",
        _shas("50fc9e0db095c22412c97fb5436dc8bcf6a58eda4c87c3e5090fe5bdfa3d6b19",
              "3ebc5de43da48b2e042e6258e5209c0d13d43a5ba566e8fdcb52df091d042602",
              "b9b3234afc655b282c7930ff32cb5a5f98edde4a93475b0d4605b59c161fe483")),
    "M3GNet-MP-2021.2.8-PES": Pretrained(
        "PBE(+U), MPF.2021.2.8 (Materials Project relaxation trajectories)",
        _shas("05e7db8676ceb37eb07848aff49c556b188699e1035f3df0cbbf1a2c4959148f",
              "62678f76fbc5d8997ea1d7f3c4bf086df200102125c802b32b08ce14fbcde25b",
              "a9aa723705bd1a242ec8749332f137811c4a94e17995a564f8f94a9aca68061b")),
}

#: What every checkpoint above is, measured here (README, Leaderboard of the measured
#: materials), said in the log of every job that loads one (a fine-tune of one, too).
WITHDRAWN = (
    "matgl withdrew this checkpoint as containing a bug (matgl PR #768, for its MatPES"
    " v2025.2 models). Measured here with matgl 4.1.2: right on elemental metals (bcc W"
    " -12.88 to -12.90 eV/atom), but 1.7-5.5 eV/atom above PBE on ionic compounds (MgO,"
    " SrO), with forces anti-correlated with DFT on SrTiO3: do not trust its scores on"
    " compounds"
)

#: The model classes a matgl file may name (``@class``), with the module names matgl 2.x
#: and 4.x write for them (``@module``); nothing else is built.
ARCHITECTURES: dict[str, frozenset[str]] = {
    "TensorNet": frozenset({"matgl.models._tensornet_pyg", "matgl.models._tensornet"}),
    "M3GNet": frozenset({"matgl.models._m3gnet_pyg", "matgl.models._m3gnet"}),
}
POTENTIAL_MODULES = frozenset({"matgl.apps._pes_pyg", "matgl.apps.pes"})
#: Potential arguments taken from a file (values: tensors, numbers, booleans).
POTENTIAL_ARGS = ("data_mean", "data_std", "element_refs", "calc_forces", "calc_stresses",
                  "calc_hessian", "calc_magmom", "calc_repuls", "zbl_trainable")
#: A buffer matgl 2.x wrote that 4.x no longer has (a constant one-hot table).
IGNORED_STATE_KEYS = frozenset({"element_refs.onehot"})


def cache_folder(name: str) -> Path:
    """The cache folder of a pretrained potential's files."""
    root = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    return root / "matgl" / name


def unknown_weights(name: str) -> ValueError:
    return ValueError(
        f"matgl has no pretrained weights {name!r}; known: {', '.join(MATGL_WEIGHTS)}"
    )


def pretrained_bytes(name: str) -> dict[str, bytes]:
    """The contents of a pretrained potential's files, each checked against its SHA-256;
    missing files are fetched (mirror or URL, checked) into :func:`cache_folder`."""
    if name not in MATGL_WEIGHTS:
        raise unknown_weights(name)
    folder = cache_folder(name)
    out = {}
    for file, expected in MATGL_WEIGHTS[name].sha256.items():
        path = folder / file
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            fetch({"url": f"{MATGL_URL}/{name}/{file}", "sha256": expected}, path)
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ValueError(
                f"{path}: SHA-256 {actual[:16]}…, not {expected[:16]}… of matgl's {name}"
                f" {file}; refusing a changed file (delete it to fetch the published one)"
            )
        out[file] = data
    return out


def _plain(value: Any, where: str) -> Any:
    """``value`` when it is plain data (numbers, text, None, torch dtypes and sequences of
    these), else a refusal naming ``where``."""
    import torch

    if value is None or isinstance(value, bool | int | float | str | torch.dtype):
        return value
    if isinstance(value, list | tuple):
        return type(value)(_plain(v, where) for v in value)
    raise ValueError(f"{where}: {type(value).__name__} is not a plain argument value")


def architecture_args(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(class name, plain init arguments) of a model entry ``{@class, @module, init_args}``,
    refused unless the class is one of :data:`ARCHITECTURES` under a module matgl uses."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("init_args"), Mapping):
        raise ValueError(f"{where}: no matgl model entry ({{@class, @module, init_args}})")
    cls, module = entry.get("@class"), entry.get("@module")
    if cls not in ARCHITECTURES or module not in ARCHITECTURES[cls]:
        raise ValueError(
            f"{where}: model class {module}.{cls} is not one this workflow builds"
            f" ({', '.join(ARCHITECTURES)} of matgl); nothing named in a model file is imported"
        )
    args = {str(k): _plain(v, f"{where} init_args.{k}") for k, v in entry["init_args"].items()}
    return cls, args


def check_model_json(data: bytes, where: str, architecture: str) -> None:
    """``model.json`` names matgl's Potential around ``architecture`` (read as JSON text,
    never imported)."""
    try:
        desc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(desc, dict) or not isinstance(desc.get("kwargs"), dict):
        raise ValueError(f"{where}: not a matgl Potential description")
    model = desc["kwargs"].get("model")
    if desc.get("@class") != "Potential" or desc.get("@module") not in POTENTIAL_MODULES \
            or not isinstance(model, dict) or model.get("@class") != architecture:
        raise ValueError(f"{where}: not a matgl Potential of a {architecture} model")


def build_potential(arch: Mapping[str, Any], potential_args: Mapping[str, Any],
                    state: Mapping[str, Any], where: str):
    """matgl's ``Potential`` of a model entry, its arguments and its weights (strict: a
    missing or unknown weight is refused)."""
    import torch
    from matgl.apps.pes import Potential
    from matgl.models import M3GNet, TensorNet

    cls, args = architecture_args(arch, where)
    model = {"TensorNet": TensorNet, "M3GNet": M3GNet}[cls](**args)
    kwargs = {}
    for key in POTENTIAL_ARGS:
        if key in potential_args:
            value = potential_args[key]
            tensor = isinstance(value, torch.Tensor)
            kwargs[key] = value if tensor else _plain(value, f"{where} {key}")
    potential = Potential(model=model, **kwargs)
    weights = {k: v for k, v in state.items() if k not in IGNORED_STATE_KEYS}
    result = potential.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{where}: the weights do not fit the {cls} the file describes (missing"
            f" {result.missing_keys[:3]}, unknown {result.unexpected_keys[:3]})"
        )
    # what a fine-tuned checkpoint records to be built again (plain values only)
    potential.dualbench_architecture = {"@class": cls, "@module": arch["@module"],
                                        "init_args": args}
    return potential


def is_matgl(state: Any) -> bool:
    """Whether a safely read checkpoint is one :mod:`dualbench.models.matgl_train` wrote."""
    return isinstance(state, dict) and isinstance(state.get("matgl"), dict)


def load_potential(spec: ModelSpec):
    """The matgl ``Potential`` of ``spec`` (pretrained or fine-tuned), on the CPU."""
    if spec.checkpoint:
        state = safe_load(spec.checkpoint, "matgl checkpoint", spec.checkpoint_bytes())
        if not is_matgl(state) or not {"architecture", "potential", "state_dict"} \
                <= set(state["matgl"]):
            raise ValueError(f"{spec.checkpoint}: not a matgl checkpoint of this workflow")
        body = state["matgl"]
        return build_potential(body["architecture"], body["potential"], body["state_dict"],
                               spec.checkpoint)
    files = pretrained_bytes(spec.weights)
    where = str(cache_folder(spec.weights))
    args = safe_load(f"{where}/model.pt", "matgl model.pt", files["model.pt"])
    if not isinstance(args, dict):
        raise ValueError(f"{where}/model.pt: not matgl's model arguments")
    state = safe_load(f"{where}/state.pt", "matgl state.pt", files["state.pt"])
    cls, _ = architecture_args(args.get("model"), f"{where}/model.pt")
    check_model_json(files["model.json"], f"{where}/model.json", cls)
    return build_potential(args["model"], args, state, where)


def calculator_of(potential):
    """matgl's ASE calculator of a potential (stress in eV/Å^3, ASE's unit and sign)."""
    from matgl.ext.ase import PESCalculator

    return PESCalculator(potential, stress_unit="eV/A3")


class MatglBackend(Backend):
    kind = "matgl"
    conda_env = "envs/matgl.yaml"
    default_weights = next(iter(MATGL_WEIGHTS))
    trainable = True

    def pretrained_spec(self, weights: str) -> ModelSpec:
        if weights not in MATGL_WEIGHTS:
            raise unknown_weights(weights)
        return ModelSpec(kind=self.kind, weights=weights)

    def owns_checkpoint(self, state: Any) -> bool:
        return is_matgl(state)

    def load(self, spec: ModelSpec, device: str):
        potential = load_potential(spec).to(device)
        potential.eval()
        log_loaded(spec, device)
        if spec.weights in MATGL_WEIGHTS:
            log.warning("%s: %s", spec.weights, WITHDRAWN)
        return potential

    def calculator(self, spec: ModelSpec, device: str):
        return calculator_of(self.load(spec, device))

    def finetune(self, spec: ModelSpec, frames: Sequence[Atoms], settings: FinetuneSettings,
                 seed: int, checkpoint: Path) -> FinetuneResult:
        from dualbench.models import matgl_train

        base = self.load(spec, resolve_device(settings.device))
        result, body = matgl_train.finetune_matgl(base, spec, frames, settings, seed)
        matgl_train.save_matgl_checkpoint(body, checkpoint)
        return result

    def describe(self, spec: ModelSpec) -> dict[str, Any]:
        shipped = MATGL_WEIGHTS.get(spec.weights)
        return {"trained_on": shipped.trained_on if shipped else None}

    def check_config(self, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        weights = entry.get("weights")
        if weights is not None and weights not in MATGL_WEIGHTS:
            return "weights", (f"{weights!r} is not a matgl potential here: one of"
                               f" {tuple(MATGL_WEIGHTS)}")
        if entry.get("calculator") is not None or entry.get("options"):
            return "calculator", "only kind ase takes a calculator"
        if entry.get("modal") is not None:
            return "modal", "only sevennet 7net-mf-0 has modalities (PBE, R2SCAN)"
        return None


BACKEND = MatglBackend()
