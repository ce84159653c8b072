"""DFT labels for a material without DFT data: sample configurations, then label them.

Sampling (:func:`sample_configs`): snapshots of NVT MD with the *vanilla* model at the
material's temperature, which are the configurations the fine-tuned model must get
right, plus rattled and strained copies of the ideal cell, which reach displacements and
cell shapes the MD does not.  The MD's last ``test_frames`` snapshots (a later,
contiguous stretch of the trajectory) become the held-out test set; the earlier
snapshots and the rattled cells are the training pool.

Labelling (:func:`label_configs`): energy (eV), forces (eV/Å) and stress (ASE's
convention, eV/Å^3) of each configuration from a DFT calculator built by
:func:`make_dft_calculator`:

- ``gpaw`` (embedded, runs anywhere the package is installed): plane waves with the
  finite-basis (Pulay) stress correction, PBE, the default PAW setups of ``gpaw-data``
  (14 valence electrons for W and Mo: the 6-electron W setup is off by more than
  0.13 eV/Å), Fermi-Dirac smearing, Monkhorst-Pack k-points including Gamma; the D3
  dispersion (``dftd3`` package, Becke-Johnson or zero damping) added through ASE's
  ``SumCalculator``.  Layered materials need the dispersion: without
  it PBE barely binds the van der Waals gap.
- ``vasp`` or ``espresso`` through ASE on a cluster, with their own D3 (VASP ``IVDW``
  11/12, Quantum ESPRESSO ``vdw_corr = dft-d3``).  ``calculator_options`` passes what
  they need (POTCAR set, pseudopotentials, command) and overrides any keyword.

The labelled frames are extended XYZ that :mod:`dualbench.data` reads like any DFT set;
each frame's ``info`` keeps its origin (``md`` step or ``rattle``), its split and the
level of theory (``dft``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from dualbench.data import _attach, load_frames, write_frames

log = logging.getLogger(__name__)

CALCULATORS = ("gpaw", "vasp", "espresso")
DISPERSIONS = ("d3bj", "d3zero", "none")


@dataclass(frozen=True)
class SamplingRound:
    """The configurations one sampling round adds: MD snapshots for the training pool,
    later MD snapshots held out, rattled cells for the training pool."""

    md_frames: int
    test_frames: int
    rattled_frames: int

    @property
    def n_configs(self) -> int:
        return self.md_frames + self.test_frames + self.rattled_frames


@dataclass
class LabelSettings:
    """A material's ``dft.label`` config entry, ``sampling`` flattened in (the schema
    documents each key and holds the defaults: build it with :meth:`from_config`).

    Energies in eV, lengths in Å, times in fs; ``strain`` is a fraction.
    """

    supercell: list[int]
    calculator: str
    xc: str
    dispersion: str
    cutoff_eV: float
    kpts: list[int]
    smearing_eV: float
    calculator_options: dict[str, Any]
    md_frames: int
    test_frames: int
    rattled_frames: int
    interval_steps: int
    timestep_fs: float
    equilibration_steps: int
    rattle_A: float
    strain: float
    seed: int
    chunk_size: int
    rounds: list[dict[str, int]] = field(default_factory=list)
    reuse: list[str] = field(default_factory=list)
    reuse_tolerance_A: float = 1e-4

    @classmethod
    def from_config(cls, label: Mapping[str, Any]) -> LabelSettings:
        """Settings from a ``dft.label`` entry; missing keys take the schema's defaults."""
        from dualbench.config import fill_defaults

        label = fill_defaults(label, "label")
        sampling = dict(label.pop("sampling"))
        sampling.pop("model")  # the workflow resolves it to a pretrained model name
        return cls(**label, **sampling)

    def sampling_rounds(self) -> list[SamplingRound]:
        """Round 0 (the top-level counts) and the extra ``rounds``, in pool order."""
        first = SamplingRound(self.md_frames, self.test_frames, self.rattled_frames)
        extra = [
            SamplingRound(
                r.get("md_frames", 0), r.get("test_frames", 0), r.get("rattled_frames", 0)
            )
            for r in self.rounds
        ]
        return [first, *extra]

    def for_round(self, index: int) -> LabelSettings:
        """These settings with round ``index``'s counts as the top-level ones and no extra
        rounds: what :func:`sample_configs` draws for that round."""
        counts = self.sampling_rounds()[index]
        return replace(
            self, md_frames=counts.md_frames, test_frames=counts.test_frames,
            rattled_frames=counts.rattled_frames, rounds=[],
        )

    def validate(self) -> None:
        if self.calculator not in CALCULATORS:
            raise ValueError(f"calculator {self.calculator!r} is not one of {CALCULATORS}")
        if self.dispersion not in DISPERSIONS:
            raise ValueError(f"dispersion {self.dispersion!r} is not one of {DISPERSIONS}")
        if self.md_frames + self.rattled_frames < 1:
            raise ValueError("md_frames + rattled_frames must give at least one training frame")
        if sum(r.test_frames for r in self.sampling_rounds()) < 1:
            raise ValueError("test_frames must give at least one held-out frame")
        for i, counts in enumerate(self.sampling_rounds()[1:], start=1):
            if counts.n_configs < 1:
                raise ValueError(f"sampling round {i} has no configurations")

    @property
    def n_configs(self) -> int:
        return sum(r.n_configs for r in self.sampling_rounds())

    def n_chunks(self, round_index: int = 0) -> int:
        """Labelling jobs of round ``round_index``."""
        return -(-self.sampling_rounds()[round_index].n_configs // self.chunk_size)

    def level_of_theory(self) -> str:
        """A one-line description of the labels, e.g. ``gpaw PBE+D3(BJ) 400 eV k 3x3x1``."""
        disp = {"d3bj": "+D3(BJ)", "d3zero": "+D3(0)", "none": ""}[self.dispersion]
        kpts = "x".join(map(str, self.kpts))
        return f"{self.calculator} {self.xc}{disp} {self.cutoff_eV:g} eV k {kpts}"


def rattled_cells(
    ideal: Atoms, n: int, rattle_A: float, strain: float, seed: int
) -> list[Atoms]:
    """``n`` copies of ``ideal`` under a random symmetric strain (each component uniform
    in ±``strain``) with Gaussian displacements of standard deviation ``rattle_A`` (Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = ideal.copy()
        eps = rng.uniform(-strain, strain, (3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle_A, atoms.positions.shape)
        atoms.info["origin"] = "rattle"
        frames.append(atoms)
    return frames


def _bare(atoms: Atoms) -> Atoms:
    """Positions, numbers, cell and pbc only (no momenta, no model results)."""
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)


def sample_configs(
    unit_cell: Atoms,
    settings: LabelSettings,
    *,
    temperature_K: float,
    model: Any,
    material: str,
    md_config: Mapping[str, Any],
    work_dir: str | Path,
    out: str | Path,
    threads: int | None = None,
    round_index: int = 0,
) -> dict[str, Any]:
    """Sample the configurations to label and write them (extended XYZ, no results) to ``out``.

    The MD (vanilla ``model``, NVT at ``temperature_K``, ``settings.timestep_fs``) runs in
    ``work_dir`` with the MD arm's driver, so it shows progress, has the same guards and
    resumes from its checkpoint.  Round ``round_index`` (``settings`` holding that round's
    counts, see :meth:`LabelSettings.for_round`) runs its own MD and rattling with seed
    ``settings.seed + round_index``, so that adding a round leaves the earlier rounds'
    configurations as they were.  Returns counts for the log.
    """
    from dualbench.md import md_settings, read_snapshots, run_md_job
    from dualbench.structure import build_supercell

    if settings.sampling_rounds()[0].n_configs < 1:
        raise ValueError(f"sampling round {round_index} of {material} has no configurations")
    seed = settings.seed + round_index
    prefix = f"{material}:" if round_index == 0 else f"{material}:r{round_index}:"
    md = md_settings(
        md_config,
        temperature_K=temperature_K,
        seed=seed,
        timestep_fs=settings.timestep_fs,
        equilibration_steps=settings.equilibration_steps,
        production_steps=(settings.md_frames + settings.test_frames) * settings.interval_steps,
        snapshot_every=settings.interval_steps,
        ensemble="nvt",  # configurations of the labelling cell, whatever the MD arm uses
    )
    run_md_job(
        model=model,
        unit_cell=unit_cell,
        supercell=settings.supercell,
        settings=md,
        out_dir=work_dir,
        threads=threads,
    )
    snapshots = []
    for snap in read_snapshots(Path(work_dir) / "snapshots.extxyz"):
        frame = _bare(snap)
        step = int(snap.info["step"])
        frame.info.update(origin="md", step=step, frame_id=f"{prefix}md{step}")
        snapshots.append(frame)
    ideal = build_supercell(unit_cell, settings.supercell)
    rattled = rattled_cells(
        ideal, settings.rattled_frames, settings.rattle_A, settings.strain, seed
    )
    for i, frame in enumerate(rattled):
        frame.info["frame_id"] = f"{prefix}rattle{i}"
    train = snapshots[: settings.md_frames] + rattled
    test = snapshots[settings.md_frames :]
    ordered = train + test
    for i, frame in enumerate(ordered):
        frame.info.update(
            split="train" if i < len(train) else "test", config_index=i,
            round=round_index, config_key=config_key(frame),
        )
    write_frames(out, ordered)
    log.info(
        "%d configurations of %d atoms: %d MD + %d rattled for training, %d MD held out",
        len(ordered), len(ideal), settings.md_frames, len(rattled), len(test),
    )
    return {"n_configs": len(ordered), "n_atoms": len(ideal), "round": round_index, "seed": seed}


def config_key(atoms: Atoms) -> str:
    """A short SHA-256 of a configuration's content: atomic numbers, and positions and
    cell rounded to 1e-4 Å.  It names a configuration in logs and records; reuse matches
    configurations within a tolerance instead (:func:`find_labelled`), because the same MD
    on another machine can differ in the last digits."""
    data = np.concatenate([
        atoms.numbers.astype(float),
        np.round(atoms.positions, 4).ravel() + 0.0,
        np.round(atoms.cell[:], 4).ravel() + 0.0,
    ])
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def find_labelled(
    atoms: Atoms, labelled: Sequence[Atoms], theory: str, tolerance_A: float
) -> Atoms | None:
    """The first frame of ``labelled`` with the level of theory ``theory`` and the same
    configuration as ``atoms``: the same atomic numbers in the same order, cell vectors
    and positions each within ``tolerance_A`` (Å).  None when there is none."""
    for frame in labelled:
        if (
            len(frame) == len(atoms)
            and str(frame.info.get("dft")) == theory
            and np.array_equal(frame.numbers, atoms.numbers)
            and np.abs(frame.cell[:] - atoms.cell[:]).max() <= tolerance_A
            and np.abs(frame.positions - atoms.positions).max() <= tolerance_A
        ):
            return frame
    return None


def load_reuse(paths: Sequence[str | Path]) -> list[Atoms]:
    """The labelled frames of the ``reuse`` files (extended XYZ with energy, forces and
    stress, as this module writes them)."""
    frames: list[Atoms] = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"dft.label.reuse: {path} does not exist")
        frames.extend(load_frames(path))
    return frames


def _d3(settings: LabelSettings):
    from dftd3.ase import DFTD3

    damping = {"d3bj": "d3bj", "d3zero": "d3zero"}[settings.dispersion]
    return DFTD3(method=settings.xc, damping=damping)


def make_dft_calculator(settings: LabelSettings, directory: str | Path, label: str = "dft"):
    """The ASE calculator of ``settings`` (DFT plus dispersion), working in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    options = dict(settings.calculator_options)
    kpts = [int(k) for k in settings.kpts]
    if settings.calculator == "gpaw":
        from gpaw import GPAW, PW, FermiDirac

        params = {
            # dedecut: the finite-basis (Pulay) stress correction, from dE/dE_cut
            "mode": PW(settings.cutoff_eV, dedecut="estimate"),
            "xc": settings.xc,
            "kpts": {"size": kpts, "gamma": True},
            "occupations": FermiDirac(settings.smearing_eV),
            "txt": str(directory / f"{label}.txt"),
        }
        params.update(options)
        dft = GPAW(**params)
        if settings.dispersion == "none":
            return dft
        from ase.calculators.mixing import SumCalculator

        return SumCalculator([dft, _d3(settings)])
    if settings.calculator == "vasp":
        from ase.calculators.vasp import Vasp

        params = {
            "xc": settings.xc,
            "encut": settings.cutoff_eV,
            "kpts": kpts,
            "gamma": True,
            "ismear": -1,
            "sigma": settings.smearing_eV,
            "isym": 0,
            "lwave": False,
            "lcharg": False,
            "directory": str(directory / label),
        }
        if settings.dispersion != "none":
            params["ivdw"] = {"d3bj": 12, "d3zero": 11}[settings.dispersion]
        params.update(options)
        return Vasp(**params)
    # Quantum ESPRESSO: energies in Ry in its input.
    from ase.calculators.espresso import Espresso, EspressoProfile

    system = {
        "ecutwfc": settings.cutoff_eV / units.Ry,
        "occupations": "smearing",
        "smearing": "fd",
        "degauss": settings.smearing_eV / units.Ry,
        "input_dft": settings.xc.lower(),
    }
    if settings.dispersion != "none":
        version = {"d3bj": 4, "d3zero": 3}[settings.dispersion]
        system.update(vdw_corr="dft-d3", dftd3_version=version)
    input_data = {"control": {"tstress": True, "tprnfor": True}, "system": system}
    for section, values in options.pop("input_data", {}).items():
        input_data.setdefault(section, {}).update(values)
    profile = EspressoProfile(
        command=options.pop("command", "pw.x"), pseudo_dir=options.pop("pseudo_dir", ".")
    )
    return Espresso(
        input_data=input_data,
        kpts=kpts,
        pseudopotentials=options.pop("pseudopotentials", {}),
        profile=profile,
        directory=str(directory / label),
        **options,
    )


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
        frame.calc = make_dft_calculator(settings, work_dir, label=tag)
        start = time.perf_counter()
        energy = frame.get_potential_energy()
        forces = frame.get_forces()
        stress = frame.get_stress(voigt=True)
        elapsed = time.perf_counter() - start
        seconds.append(elapsed)
        frame.info.update(dft=theory, label_s=round(elapsed, 2))
        _attach(frame, energy, forces, stress, str(frame.info.get("frame_id", k)))
        labelled.append(frame)
        log.info(
            "labelled %d/%d (%s, %d atoms) in %.1f s: E = %.4f eV, max |F| = %.3f eV/Å",
            k + 1, len(configs), frame.info["frame_id"], len(frame), elapsed, energy,
            float(np.abs(forces).max()),
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
