"""Frames chosen and grouped by the condition they were computed at.

A DFT set often mixes conditions (SNAP's W set: 300 K, 2000 K, liquid 4000 K, 300 K at 90 %
and 110 % volume), and a study at the experiment's condition must draw its frames and
measure its errors there.  Every frame read carries its source's record
(:mod:`dualbench.data.readers`); a *field* names one of its keys, with dots for nested keys
(``notes.Md``).  A field's value is compared as text: a number without a fraction as an
integer (``300.0`` is ``"300"``), a mapping as its sorted ``key=value`` pairs joined by
commas (``notes`` = ``"Md=300-37"``), a list element by element (any element matches).

- ``select`` (``dft.train.select``, ``dft.test.select``): keep the frames whose field is one
  of ``values`` or matches the regular expression ``pattern`` (searched anywhere; anchor it
  with ``^...$``).  A list of selectors keeps the frames that pass every one.
- ``conditions`` (``dft.conditions``): names every frame's condition, stored as
  ``info["condition"]``: the first of ``patterns`` (name: regular expression) that the
  field matches, or the field's own value when no patterns are given.  ``condition`` is then
  a field like any other (for ``select`` and ``stratify_by``).
- ``stratify_by`` (``dft.stratify_by``): the field whose values the sweep's N frames are
  spread across in proportion (:func:`dualbench.data.pool.stratified_order`), stored as
  ``info["stratum"]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ase import Atoms

from dualbench.data.readers import FrameError

#: The derived field a frame's condition is stored in (``dft.conditions``).
CONDITION = "condition"
#: The derived field the sweep's draws are stratified by (``dft.stratify_by``).
STRATUM = "stratum"
_MISSING = object()


def record_of(atoms: Atoms) -> Mapping[str, Any]:
    """The record a field is looked up in: the source's own record while read, plus the
    derived ``condition``; for formats without one, ``atoms.info``."""
    record = atoms.info.get("record")
    if record is None:
        return atoms.info
    if CONDITION in atoms.info:
        return {**record, CONDITION: atoms.info[CONDITION]}
    return record


def field_value(record: Mapping[str, Any], field: str) -> Any:
    """The value of ``field`` (a key, or a dotted path into nested mappings) or a marker
    for a missing one."""
    if field in record:
        return record[field]
    node: Any = record
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def as_text(value: Any) -> str:
    """A scalar as the text fields are compared in (``300.0`` -> ``"300"``, True -> ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        return ",".join(f"{k}={as_text(value[k])}" for k in sorted(value))
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    return str(value)


def texts(value: Any) -> list[str]:
    """The texts a value is matched as: one per element of a list, else one."""
    if value is _MISSING or value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars
        return texts(value.tolist())
    return [as_text(value)]


def _selectors(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [spec] if isinstance(spec, Mapping) else list(spec)


def _matches(record: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    found = texts(field_value(record, selector["field"]))
    if "values" in selector:
        wanted = {as_text(v) for v in selector["values"]}
        return any(t in wanted for t in found)
    pattern = re.compile(selector["pattern"])
    return any(pattern.search(t) for t in found)


def values_seen(frames: Sequence[Atoms], field: str, limit: int = 12) -> str:
    """The distinct values of ``field`` among ``frames`` (with counts), for a message."""
    counts: Counter[str] = Counter()
    for atoms in frames:
        found = texts(field_value(record_of(atoms), field))
        counts.update(found or ["<missing>"])
    shown = [f"{v!r} ({n})" for v, n in sorted(counts.items())[:limit]]
    more = f" and {len(counts) - limit} more" if len(counts) > limit else ""
    return ", ".join(shown) + more


def select(
    frames: Sequence[Atoms],
    spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    where: str,
) -> list[Atoms]:
    """The frames that pass every selector of ``spec`` (all when None).

    A selection that keeps nothing is a :class:`FrameError` naming ``where`` (the file and
    the config key), the field, what was asked and the values seen.
    """
    if not spec:
        return list(frames)
    kept = list(frames)
    for selector in _selectors(spec):
        passed = [a for a in kept if _matches(record_of(a), selector)]
        if not passed:
            asked = (f"one of {list(selector['values'])}" if "values" in selector
                     else f"matching {selector['pattern']!r}")
            raise FrameError(
                f"{where}: no frame has {selector['field']} {asked}; the values seen in the"
                f" {len(kept)} frame(s) left: {values_seen(kept, selector['field'])}"
            )
        kept = passed
    return kept


def name_conditions(frames: Sequence[Atoms], spec: Mapping[str, Any] | None, where: str) -> None:
    """Store every frame's condition in ``info["condition"]`` (nothing when ``spec`` is None).

    With ``spec["patterns"]`` the condition is the first name whose pattern the field
    matches; a frame that matches none (or lacks the field) is refused naming the frame.
    """
    if not spec:
        return
    field = spec["field"]
    patterns = {name: re.compile(p) for name, p in (spec.get("patterns") or {}).items()}
    for i, atoms in enumerate(frames):
        found = texts(field_value(record_of(atoms), field))
        if not found:
            raise FrameError(f"{where}: frame {i}: has no field {field} (dft.conditions.field)")
        if not patterns:
            atoms.info[CONDITION] = ",".join(found)
            continue
        name = next((n for n, p in patterns.items() if any(p.search(t) for t in found)), None)
        if name is None:
            raise FrameError(
                f"{where}: frame {i}: {field} = {','.join(found)!r} matches none of"
                f" dft.conditions.patterns ({', '.join(patterns)}); add a pattern for it"
                " (a catch-all such as `other: '.'` last)"
            )
        atoms.info[CONDITION] = name


def name_strata(frames: Sequence[Atoms], field: str | None, where: str) -> None:
    """Store every frame's value of ``field`` in ``info["stratum"]`` (nothing when None)."""
    if not field:
        return
    for i, atoms in enumerate(frames):
        found = texts(field_value(record_of(atoms), field))
        if not found:
            raise FrameError(f"{where}: frame {i}: has no field {field} (dft.stratify_by)")
        atoms.info[STRATUM] = ",".join(found)


def counts_by(frames: Sequence[Atoms], key: str) -> dict[str, int]:
    """How many frames have each value of ``info[key]`` (empty when none has it)."""
    return dict(sorted(Counter(as_text(a.info[key]) for a in frames if key in a.info).items()))
