"""Labelling jobs: one chunk of configurations through the DFT calculator (or the reuse
files), and the gathering of the chunks into the training pool and the test set."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.data.readers import _attach, load_frames, write_frames
from dualbench.label.calculators import make_dft_calculator
from dualbench.label.sampling import _bare
from dualbench.label.settings import LabelSettings
from dualbench.label.store import config_key, find_labelled, load_reuse

log = logging.getLogger(__name__)


def label_configs(
    configs: Sequence[Atoms],
    settings: LabelSettings,
    *,
    out: str | Path,
    work_dir: str | Path,
) -> dict[str, Any]:
    """Label ``configs`` with DFT and write them, with results, to ``out`` (atomically).

    Each frame keeps its ``info`` and gains ``dft`` (the level of theory), ``config_key``
    and ``label_s`` (wall time of its calculation).  A configuration that a frame of
    ``settings.reuse`` already holds at the same level of theory (:func:`find_labelled`)
    takes that frame's labels and records its ``frame_id`` as ``reused``.  Returns the
    timings.
    """
    settings.validate()
    theory = settings.level_of_theory()
    earlier = load_reuse(settings.reuse)
    labelled, seconds, reused = [], [], 0
    for k, atoms in enumerate(configs):
        frame = _bare(atoms)
        frame.info.update(atoms.info)
        frame.info["config_key"] = config_key(frame)
        match = find_labelled(frame, earlier, theory, settings.reuse_tolerance_A)
        if match is not None:
            frame.info.update(
                dft=theory, label_s=match.info.get("label_s", np.nan),
                reused=str(match.info.get("frame_id", "")),
            )
            if "magnetic_moment_muB_per_atom" in match.info:
                frame.info["magnetic_moment_muB_per_atom"] = match.info[
                    "magnetic_moment_muB_per_atom"]
            _attach(
                frame, match.get_potential_energy(), match.get_forces(),
                match.get_stress(voigt=True), str(frame.info.get("frame_id", k)),
            )
            labelled.append(frame)
            reused += 1
            log.info("labelled %d/%d (%s): reused %s", k + 1, len(configs),
                     frame.info.get("frame_id", k), frame.info["reused"])
            continue
        tag = str(atoms.info.get("frame_id", k)).replace(":", "_")
        if settings.spin_polarised:
            frame.set_initial_magnetic_moments(
                settings.initial_moments(frame.get_chemical_symbols()))
        frame.calc = make_dft_calculator(settings, work_dir, label=tag)
        start = time.perf_counter()
        energy = frame.get_potential_energy()
        forces = frame.get_forces()
        stress = frame.get_stress(voigt=True)
        elapsed = time.perf_counter() - start
        seconds.append(elapsed)
        frame.info.update(dft=theory, label_s=round(elapsed, 2))
        if settings.spin_polarised:
            moment = magnetic_moment(frame.calc, frame) / len(frame)
            frame.info["magnetic_moment_muB_per_atom"] = round(moment, 4)
            del frame.arrays["initial_magmoms"]  # the frame is data: positions and labels
        _attach(frame, energy, forces, stress, str(frame.info.get("frame_id", k)))
        labelled.append(frame)
        log.info(
            "labelled %d/%d (%s, %d atoms) in %.1f s: E = %.4f eV, max |F| = %.3f eV/Å%s",
            k + 1, len(configs), frame.info["frame_id"], len(frame), elapsed, energy,
            float(np.abs(forces).max()),
            f", {frame.info['magnetic_moment_muB_per_atom']:.3f} muB/atom"
            if settings.spin_polarised else "",
        )
    write_frames(out, labelled)
    return {
        "n_frames": len(labelled),
        "n_reused": reused,
        "dft": theory,
        "seconds_per_frame": float(np.mean(seconds)) if seconds else 0.0,
        "seconds": [round(s, 2) for s in seconds],
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def magnetic_moment(calc: Any, atoms: Atoms) -> float:
    """The converged total magnetic moment (muB) of the cell from a DFT calculator, or of
    the DFT part of a DFT + D3 sum."""
    for part in [calc, *getattr(getattr(calc, "mixer", None), "calcs", [])]:
        try:
            return float(part.get_magnetic_moment(atoms))
        except (AttributeError, NotImplementedError):  # a D3 part, or the mixer itself
            continue
    raise ValueError("the DFT calculator reports no magnetic moment of a spin-polarised run")


def chunk_configs(configs: Sequence[Atoms], chunk: int, chunk_size: int) -> list[Atoms]:
    """The configurations of chunk ``chunk`` (0-based) of size ``chunk_size``."""
    part = list(configs[chunk * chunk_size : (chunk + 1) * chunk_size])
    if not part:
        raise ValueError(f"chunk {chunk} is empty: {len(configs)} configurations")
    return part


def gather_labels(
    chunk_files: Sequence[str | Path], out_train: str | Path, out_test: str | Path
) -> dict[str, Any]:
    """Join labelled chunks into the training pool and the held-out test set."""
    frames = [f for path in chunk_files for f in load_frames(path)]
    # pool order: round by round, each round's training frames before its test frames
    frames.sort(key=lambda a: (int(a.info.get("round", 0)), int(a.info.get("config_index", 0))))
    train = [f for f in frames if f.info.get("split") != "test"]
    test = [f for f in frames if f.info.get("split") == "test"]
    if not train or not test:
        raise ValueError(f"labelled frames give {len(train)} training and {len(test)} test frames")
    write_frames(out_train, train)
    write_frames(out_test, test)
    seconds = [float(f.info.get("label_s", np.nan)) for f in frames]
    return {
        "n_train": len(train),
        "n_test": len(test),
        "n_atoms": sorted({len(f) for f in frames}),
        "dft": sorted({str(f.info.get("dft")) for f in frames}),
        "seconds_per_frame": float(np.nanmean(seconds)),
        "n_reused": sum("reused" in f.info for f in frames),
    }


def run_label_chunk(
    configs_path: str | Path,
    label_config: Mapping[str, Any],
    *,
    chunk: int,
    out: str | Path,
    info_out: str | Path,
    work_dir: str | Path,
) -> dict[str, Any]:
    """Label chunk ``chunk`` of the sampled configurations (the ``label_frames`` rule)."""
    from dualbench.io import provenance, write_json

    settings = LabelSettings.from_config(label_config)
    configs = chunk_configs(load_frames(configs_path), chunk, settings.chunk_size)
    info = label_configs(configs, settings, out=out, work_dir=work_dir)
    info["provenance"] = provenance()
    write_json(info_out, info)
    return info
