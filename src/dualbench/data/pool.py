"""The training pool, the held-out test set and the sweep's nested N-frame subsets."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.data.readers import (
    MAX_FORCE_EV_PER_A,
    FrameError,
    has_stress,
    read_frames,
    write_frames,
)
from dualbench.data.selection import (
    CONDITION,
    STRATUM,
    counts_by,
    name_conditions,
    name_strata,
    select,
)

log = logging.getLogger(__name__)


def split_test(
    pool: Sequence[Atoms], test_fraction: float
) -> tuple[list[Atoms], list[Atoms]]:
    """Hold out the last block of a training source as the test set.

    A contiguous block (rather than random frames) keeps frames of the same stretch of
    an MD trajectory on one side.  Returns (training pool, test set).
    """
    n_test = max(1, round(len(pool) * test_fraction))
    if n_test >= len(pool):
        raise FrameError(f"test_fraction {test_fraction} leaves no training frames")
    return list(pool[:-n_test]), list(pool[-n_test:])


def subset_indices(pool_size: int, n_frames: int, seed: int) -> list[int]:
    """Indices of the N frames of a sweep point: the first N of the seed's random order.

    The order depends only on (pool size, seed), so the subset for N is contained in the
    subset for every larger N of the same seed.  N = 0 is the vanilla model: no frames.
    """
    if n_frames > pool_size:
        raise FrameError(f"N = {n_frames} frames asked for, the training pool has {pool_size}")
    order = np.random.default_rng(seed).permutation(pool_size)
    return [int(i) for i in order[:n_frames]]


def stratified_order(strata: Sequence[str], seed: int) -> list[int]:
    """The seed's order of a pool whose frames belong to ``strata`` (one label per frame):
    every prefix of it spreads its N frames across the strata in proportion to their
    sizes, within one frame of N times each stratum's share.

    Within a stratum the frames come in the seed's random order; at each step the stratum
    furthest below its share comes next (ties in a random order of the strata, fixed per
    seed).  The first N frames are therefore contained in the first N + 1: nested subsets.
    """
    rng = np.random.default_rng(seed)
    labels = sorted(set(strata))
    members = {g: [i for i, s in enumerate(strata) if s == g] for g in labels}
    queues = {g: [members[g][j] for j in rng.permutation(len(members[g]))] for g in labels}
    rank = {g: int(r) for g, r in zip(labels, rng.permutation(len(labels)), strict=True)}
    total, taken = len(strata), dict.fromkeys(labels, 0)
    order: list[int] = []
    for step in range(1, total + 1):
        open_ = [g for g in labels if taken[g] < len(members[g])]
        # deficit in frames, times `total` to stay in integers: step * share - taken
        g = max(open_, key=lambda g: (step * len(members[g]) - taken[g] * total, -rank[g]))
        order.append(queues[g][taken[g]])
        taken[g] += 1
    return order


def selection_of(dft: Mapping[str, Any]) -> dict[str, Any]:
    """The ``selection`` argument of :func:`prepare_frames` from a material's ``dft``
    config section (its splits' ``select``, ``conditions``, ``stratify_by``)."""
    return {
        "train_select": (dft.get("train") or {}).get("select"),
        "test_select": (dft.get("test") or {}).get("select"),
        "conditions": dft.get("conditions"),
        "stratify_by": dft.get("stratify_by"),
    }


def _read_selected(
    path: str | Path,
    fmt: str | None,
    role: str,
    selection: Mapping[str, Any],
    elements: Iterable[str],
    max_force_eV_per_A: float,
) -> tuple[list[Atoms], dict[str, Any]]:
    """A split's frames: read and validated, conditions named, ``dft.<role>.select`` applied."""
    frames = read_frames(path, fmt, elements, max_force_eV_per_A)
    name_conditions(frames, selection.get("conditions"), f"{path} (dft.{role})")
    spec = selection.get(f"{role}_select")
    kept = select(frames, spec, f"{path}: dft.{role}.select")
    if spec:
        log.info("%s: dft.%s.select keeps %d of %d frames", path, role, len(kept), len(frames))
    return kept, {"file": str(path), "select": spec, "n_read": len(frames), "n_kept": len(kept)}


def prepare_frames(
    train: str | Path,
    train_format: str | None,
    test: str | Path | None,
    test_format: str | None,
    elements: Iterable[str],
    test_fraction: float,
    max_n_frames: int,
    out_train: str | Path,
    out_test: str | Path,
    max_force_eV_per_A: float = MAX_FORCE_EV_PER_A,
    selection: Mapping[str, Any] | None = None,
) -> dict:
    """Read, validate, select and split a material's DFT frames; write the pool and the
    test set.

    ``selection`` holds the config's ``train_select``, ``test_select`` (the splits'
    ``select``), ``conditions`` and ``stratify_by`` (:mod:`dualbench.data.selection`);
    with no test file the test set is the held-out end of the *selected* pool.  Checks
    before any training that the pool holds the largest N of the sweep.  Returns a summary
    (counts per split and condition, what each selection kept, stress availability) for the
    log and provenance.
    """
    selection = selection or {}
    pool, train_info = _read_selected(train, train_format, "train", selection, elements,
                                      max_force_eV_per_A)
    if test is not None:
        test_frames, test_info = _read_selected(test, test_format, "test", selection, elements,
                                                max_force_eV_per_A)
    else:
        pool, test_frames = split_test(pool, test_fraction)
        test_info = {"held_out_from": str(train), "n_kept": len(test_frames)}
        log.info("held out the last %d frames of %s as the test set", len(test_frames), train)
    if max_n_frames > len(pool):
        kept = " selected by dft.train.select" if selection.get("train_select") else ""
        raise FrameError(
            f"{train}: the training pool has {len(pool)} frames{kept}, but sweep.n_frames asks"
            f" for {max_n_frames}"
        )
    name_strata(pool, selection.get("stratify_by"), f"{train} (dft.train)")
    write_frames(out_train, pool)
    write_frames(out_test, test_frames)
    info = {
        "n_train_pool": len(pool),
        "n_test": len(test_frames),
        "train_has_stress": has_stress(pool),
        "test_has_stress": has_stress(test_frames),
        "selection": {"train": train_info, "test": test_info},
        "conditions": selection.get("conditions"),
        "pool_conditions": counts_by(pool, CONDITION),
        "test_conditions": counts_by(test_frames, CONDITION),
        "stratify_by": selection.get("stratify_by"),
        "pool_strata": counts_by(pool, STRATUM),
    }
    for split, counts in (("pool", info["pool_conditions"]), ("test", info["test_conditions"])):
        if counts:
            log.info("%s frames by condition: %s", split,
                     ", ".join(f"{k} {v}" for k, v in counts.items()))
    return info


def select_frames(pool: Sequence[Atoms], n_frames: int, seed: int) -> tuple[list[Atoms], dict]:
    """The frames of a sweep point and a record of which they are (indices, frame ids and,
    for a stratified pool, the count per stratum).

    A pool whose frames all carry a stratum (``dft.stratify_by``) is drawn in the seed's
    :func:`stratified_order`, any other in :func:`subset_indices`' order.
    """
    strata = [a.info.get(STRATUM) for a in pool]
    stratified = len(pool) > 0 and all(s is not None for s in strata)
    if stratified:
        if n_frames > len(pool):
            raise FrameError(f"N = {n_frames} frames asked for, the training pool has {len(pool)}")
        indices = stratified_order([str(s) for s in strata], seed)[:n_frames]
    else:
        indices = subset_indices(len(pool), n_frames, seed)
    chosen = [pool[i] for i in indices]
    record = {
        "n_frames": n_frames,
        "seed": seed,
        "pool_size": len(pool),
        "indices": indices,
        "frame_ids": [a.info.get("frame_id", str(i)) for i, a in zip(indices, chosen, strict=True)],
    }
    if stratified:
        record["strata"] = counts_by(chosen, STRATUM)
    if any(CONDITION in a.info for a in chosen):
        record["conditions"] = counts_by(chosen, CONDITION)
    return chosen, record
