"""Cross-key checks of a study config that would otherwise fail only in a late job.

Called by :func:`dualbench.config.validate` (so by ``dualbench check-config``, the
Snakefile and every stage that prepares a config) after the schema and the checks of
:mod:`dualbench.config`: each refusal is a :class:`~dualbench.config.ConfigError` naming
the file and the key(s).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dualbench.schema import ConfigError, exafs_n_frames


def check_study(config: Mapping[str, Any], source: str) -> None:
    """The checks of this module, in order."""
    check_reference_model(config, source)
    check_schedule(config, source)
    for name in config["materials"]:
        check_label_pool(config, name, source)
        check_label_moments(config, name, source)
        check_frame_selection(config, name, source)


def check_reference_model(config: Mapping[str, Any], source: str) -> None:
    """``exafs.reference_model`` must name a run that exists: a model of a kind without a
    trainer (``kind: ase``) runs only at N = 0, so it cannot be the reference at N > 0.

    An explicit reference is checked always (as its other keys are); the default one (the
    first model at the EXAFS arm's largest N) only when a material without an experiment
    is scored against it.
    """
    from dualbench.models.backend import get_backend, trainable_kinds

    setting = config["exafs"].get("reference_model")
    if setting is None:
        return
    explicit = setting.get("model") is not None or setting.get("n_frames") is not None
    scored = any(m.get("experiment") is None for m in config["materials"].values())
    if not (explicit or scored):
        return
    models = config["models"]
    model = setting.get("model") or next(iter(models))
    n = setting.get("n_frames")
    n = max(exafs_n_frames(config)) if n is None else n
    kind = models[model]["kind"] if model in models else None
    if kind is None or get_backend(kind).trainable or n == 0:
        return  # an unknown model is refused by dualbench.config._check_sweep
    model_from = ("exafs.reference_model.model" if setting.get("model") is not None
                  else "exafs.reference_model.model null: the first of models")
    n_from = ("exafs.reference_model.n_frames" if setting.get("n_frames") is not None
              else "exafs.reference_model.n_frames null: the EXAFS arm's largest N")
    raise ConfigError(
        source,
        "exafs.reference_model",
        f"model {model!r} ({model_from}) is kind {kind}, which has no fine-tuning trainer"
        f" and runs only at N = 0, so there is no run at N = {n} ({n_from}) to score"
        f" against. Set exafs.reference_model.n_frames: 0, or a model of kind"
        f" {' or '.join(trainable_kinds())} as exafs.reference_model.model",
    )


def check_schedule(config: Mapping[str, Any], source: str) -> None:
    """Each ``finetune.schedule`` entry has its own ``max_n``: of two entries with the same
    one only the first would ever apply (dualbench.training.scheduled), the other silently
    ignored."""
    seen: dict[int, int] = {}
    for i, entry in enumerate(config["finetune"].get("schedule") or []):
        max_n = entry["max_n"]
        if max_n in seen:
            raise ConfigError(
                source,
                f"finetune.schedule.{i}.max_n",
                f"{max_n} is also the max_n of finetune.schedule.{seen[max_n]}: only one"
                " entry per max_n can apply (the other would be silently ignored); merge"
                " them or give this one another max_n",
            )
        seen[max_n] = i


def check_label_pool(config: Mapping[str, Any], name: str, source: str) -> None:
    """A material with ``dft.label`` knows its training pool before any job: the MD and
    rattled frames of every sampling round.  It must hold the sweep's largest N, which
    would otherwise fail only after the labelling (``prepare_frames``)."""
    from dualbench.label.settings import LabelSettings

    label = config["materials"][name]["dft"].get("label")
    if label is None:
        return
    largest = max(config["sweep"]["n_frames"])
    settings = LabelSettings.from_config(label)
    pool = settings.n_train
    where = f"materials.{name}.dft.label.sampling"
    if pool == 0:
        raise ConfigError(
            source, where,
            "md_frames and rattled_frames are 0: the labelled frames need a training pool"
            " (gather_labels refuses none), even at N = 0; rattled_frames: 1 is the cheapest",
        )
    if largest <= pool:
        return
    rounds = len(settings.sampling_rounds())
    over = "its round" if rounds == 1 else f"its {rounds} rounds ({where}.rounds included)"
    raise ConfigError(
        source,
        where,
        f"the labelled training pool holds {pool} frames ({where}.md_frames +"
        f" rattled_frames over {over}), but sweep.n_frames asks for N = {largest}: raise"
        " md_frames or rattled_frames (or add a round), or lower sweep.n_frames",
    )


def check_label_moments(config: Mapping[str, Any], name: str, source: str) -> None:
    """Every element of ``dft.label.magnetic_moments`` is one of the material's: a moment
    on an element the cell lacks would leave the labels spin-paired without a word (a
    misspelt "FE"), or spin-polarised with moments the user never meant."""
    label = config["materials"][name]["dft"].get("label") or {}
    symbols = config["materials"][name]["structure"].get("symbols")
    if not symbols:
        return  # a structure `source` file: its elements are known only when read
    for element in label.get("magnetic_moments") or {}:
        if element not in symbols:
            raise ConfigError(
                source, f"materials.{name}.dft.label.magnetic_moments.{element}",
                f"{element!r} is not an element of {name} ({', '.join(sorted(set(symbols)))})",
            )


def _check_pattern(pattern: str, source: str, key: str) -> None:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ConfigError(source, key, f"{pattern!r} is not a regular expression ({err})") from None


def check_frame_selection(config: Mapping[str, Any], name: str, source: str) -> None:
    """Frame selection (``dft.train.select``, ``dft.test.select``, ``dft.conditions``,
    ``dft.stratify_by``; :mod:`dualbench.data.selection`): ``select`` only on DFT frames,
    every pattern a regular expression, ``condition`` used only where ``dft.conditions``
    names it."""
    material = config["materials"][name]
    where = f"materials.{name}"
    others = {"experiment": material.get("experiment"),
              "structure.source": material["structure"].get("source")}
    for key, src in others.items():
        if src and "select" in src:
            raise ConfigError(source, f"{where}.{key}.select",
                              "selects DFT frames; only dft.train and dft.test take it")
    dft = material["dft"]
    conditions = dft.get("conditions")
    for pname, pattern in ((conditions or {}).get("patterns") or {}).items():
        _check_pattern(pattern, source, f"{where}.dft.conditions.patterns.{pname}")
    wanted = dft.get("experiment_condition")
    names = sorted((conditions or {}).get("patterns") or {})
    if wanted is not None and (not conditions or (names and wanted not in names)):
        raise ConfigError(source, f"{where}.dft.experiment_condition",
                          f"{wanted!r} is not a condition of dft.conditions"
                          f" ({', '.join(names) if names else 'not set'})")
    uses: list[tuple[str, str]] = []
    for split in ("train", "test"):
        spec = (dft.get(split) or {}).get("select")
        selectors = [spec] if isinstance(spec, Mapping) else list(spec or [])
        for i, selector in enumerate(selectors):
            key = f"{where}.dft.{split}.select" + ("" if isinstance(spec, Mapping) else f".{i}")
            if "pattern" in selector:
                _check_pattern(selector["pattern"], source, f"{key}.pattern")
            uses.append((selector["field"], f"{key}.field"))
    if dft.get("stratify_by"):
        uses.append((dft["stratify_by"], f"{where}.dft.stratify_by"))
    for field, key in uses:
        if field == "condition" and not conditions:
            raise ConfigError(source, key, "`condition` is named by dft.conditions, which is"
                              f" not set for material {name}: set it, or use a record field")
