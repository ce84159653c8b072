"""The `dft.label` settings: level of theory, sampling rounds, chunking and reuse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ase.data import chemical_symbols

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
    magnetic_moments: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, label: Mapping[str, Any]) -> LabelSettings:
        """Settings from a ``dft.label`` entry; missing keys take the schema's defaults."""
        from dualbench.schema import fill_defaults

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
        for element, moment in self.magnetic_moments.items():
            if element not in chemical_symbols[1:] or not np.isfinite(moment):
                raise ValueError(
                    f"magnetic_moments {element}: {moment!r} is not an element's finite moment"
                )
        for i, counts in enumerate(self.sampling_rounds()[1:], start=1):
            if counts.n_configs < 1:
                raise ValueError(f"sampling round {i} has no configurations")

    @property
    def spin_polarised(self) -> bool:
        """Whether the labels are spin-polarised (a non-zero initial moment)."""
        return any(moment != 0 for moment in self.magnetic_moments.values())

    def initial_moments(self, symbols: Sequence[str]) -> list[float]:
        """The initial moment in muB of each atom of ``symbols`` (0 for elements not named)."""
        return [float(self.magnetic_moments.get(symbol, 0.0)) for symbol in symbols]

    @property
    def n_configs(self) -> int:
        return sum(r.n_configs for r in self.sampling_rounds())

    @property
    def n_train(self) -> int:
        """Frames of the training pool, every round's MD and rattled frames: the largest N
        of the sweep it can serve (the config check refuses a larger one before any job)."""
        return sum(r.md_frames + r.rattled_frames for r in self.sampling_rounds())

    def n_chunks(self, round_index: int = 0) -> int:
        """Labelling jobs of round ``round_index``."""
        return -(-self.sampling_rounds()[round_index].n_configs // self.chunk_size)

    def level_of_theory(self) -> str:
        """A one-line description of the labels, e.g. ``gpaw PBE+D3(BJ) 400 eV k 3x3x1``;
        spin-polarised ones end with their initial moments (``spin Fe 2.5``), so that
        reuse never mixes them with spin-paired labels."""
        disp = {"d3bj": "+D3(BJ)", "d3zero": "+D3(0)", "none": ""}[self.dispersion]
        kpts = "x".join(map(str, self.kpts))
        theory = f"{self.calculator} {self.xc}{disp} {self.cutoff_eV:g} eV k {kpts}"
        if self.spin_polarised:
            moments = ", ".join(f"{element} {moment:g}" for element, moment
                                in sorted(self.magnetic_moments.items()) if moment != 0)
            theory += f" spin {moments}"
        return theory
