"""MD settings from a config's ``md`` section.

:class:`MDSettings` (times fs, temperatures K, distances Å, friction 1/fs, pressure GPa)
with the schema's defaults (:func:`md_settings`, :func:`md_defaults`), and which keys
change a trajectory (:data:`NON_TRAJECTORY_SETTINGS`, :func:`trajectory_params`).  The
guards every step is checked by are in :mod:`dualbench.md.guards`, the driver in
:mod:`dualbench.md.driver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dualbench.md.ensembles import (
    NPT_LOG_COLUMNS,
    NUCLEI,
    trajectory_settings,
    validate_ensemble,
)
from dualbench.runstatus import ON_UNSTABLE
from dualbench.schema import section_defaults

LOG_COLUMNS = ("step", "time_fs", "temperature_K", "epot_eV", "ekin_eV")

#: Settings that do not change the trajectory: a checkpoint stays valid when they change,
#: and the workflow does not rerun a finished MD for them.
NON_TRAJECTORY_SETTINGS = frozenset(
    {
        "checkpoint_every", "min_distance_A", "max_temperature_factor", "device", "progress_every",
        "on_unstable", "min_runaway_excess_K",
    }
)


def trajectory_params(md_config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a config's ``md`` section that change the trajectory (for the
    ``run_md`` rule's params): less :data:`NON_TRAJECTORY_SETTINGS` and, under NVT, less
    ``ensemble``, ``pressure_GPa`` and ``barostat_time_fs``, so that adding NPT did not
    change the params (and trigger reruns) of NVT runs."""
    return trajectory_settings(dict(md_config), NON_TRAJECTORY_SETTINGS)


@dataclass
class MDSettings:
    """One MD run.  Build it with :func:`md_settings` to get the schema's defaults.

    Times in fs, temperatures in K, distances in Å, friction in 1/fs, pressure in GPa.
    ``ensemble`` nvt keeps the starting cell; npt (thermostat langevin only) lets the
    volume fluctuate at ``pressure_GPa`` with a barostat of time constant
    ``barostat_time_fs``.
    """

    temperature_K: float
    seed: int
    thermostat: str
    timestep_fs: float
    equilibration_steps: int
    production_steps: int
    snapshot_every: int
    friction_per_fs: float
    taut_fs: float
    checkpoint_every: int
    min_distance_A: float
    max_temperature_factor: float
    device: str
    progress_every: int | None = None  # steps between progress lines; None: ~10 % of the run
    ensemble: str = "nvt"
    pressure_GPa: float = 0.0  # external pressure of an NPT run
    barostat_time_fs: float = 200.0  # NPT barostat time constant
    nuclei: str = "classical"  # classical, or pimd: path-integral MD with i-PI
    beads: int | None = None  # pimd: beads P; None: the bead rule (dualbench.md.pimd)
    max_phonon_THz: float | None = None  # pimd: highest phonon frequency nu_max, THz
    max_beads: int = 128  # pimd: the most beads the rule picks
    pimd_tau_fs: float = 100.0  # pimd: PILE-L centroid thermostat time constant
    pimd_pile_lambda: float = 0.5  # pimd: internal-mode damping / critical damping
    on_unstable: str = "record"  # a guard's stop: record it as the result, or stop (fail)
    min_runaway_excess_K: float = 200.0  # the runaway limit is at least the target + this

    @property
    def log_columns(self) -> tuple[str, ...]:
        """Columns of md_log.csv (before ``phase``): NPT adds volume_A3 and pressure_GPa."""
        return LOG_COLUMNS + (NPT_LOG_COLUMNS if self.ensemble == "npt" else ())

    @property
    def total_steps(self) -> int:
        return self.equilibration_steps + self.production_steps

    @property
    def n_snapshots(self) -> int:
        return self.production_steps // self.snapshot_every

    def validate(self) -> None:
        validate_ensemble(
            self.ensemble, self.thermostat, self.pressure_GPa, self.barostat_time_fs
        )
        if self.temperature_K <= 0:
            raise ValueError(f"temperature_K must be positive, not {self.temperature_K}")
        if not self.min_runaway_excess_K >= 0:
            raise ValueError(
                f"min_runaway_excess_K must not be negative, not {self.min_runaway_excess_K}")
        for name in ("timestep_fs", "friction_per_fs", "taut_fs", "min_distance_A"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("production_steps", "snapshot_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.on_unstable not in ON_UNSTABLE:
            raise ValueError(
                f"on_unstable {self.on_unstable!r} is not one of {', '.join(ON_UNSTABLE)}"
            )
        if self.equilibration_steps < 0:
            raise ValueError("equilibration_steps must not be negative")
        if self.production_steps < self.snapshot_every:
            raise ValueError("snapshot_every exceeds production_steps: no snapshot would be kept")
        self._validate_nuclei()

    def _validate_nuclei(self) -> None:
        if self.nuclei not in NUCLEI:
            raise ValueError(f"nuclei {self.nuclei!r} is not one of {', '.join(NUCLEI)}")
        if self.nuclei == "classical":
            return
        if self.ensemble != "nvt":
            raise ValueError("nuclei pimd runs NVT only (ensemble nvt)")
        if self.beads is not None and self.beads < 1:
            raise ValueError(f"beads must be at least 1, not {self.beads}")
        if self.beads is None and self.max_phonon_THz is None:
            raise ValueError(
                "nuclei pimd needs beads, or max_phonon_THz for the bead rule to pick them"
            )
        if self.max_phonon_THz is not None and not self.max_phonon_THz > 0:
            raise ValueError(f"max_phonon_THz must be positive, not {self.max_phonon_THz}")
        if self.max_beads < 1 or not self.pimd_tau_fs > 0:
            raise ValueError("max_beads must be at least 1 and pimd_tau_fs positive")
        if not 0 < self.pimd_pile_lambda <= 1:
            raise ValueError(f"pimd_pile_lambda must be in (0, 1], not {self.pimd_pile_lambda}")


def md_defaults() -> dict[str, Any]:
    """The defaults of the config's ``md`` section, from the schema (one source of truth)."""
    return section_defaults("md")


def md_settings(
    md_config: Mapping[str, Any] | None = None,
    *,
    temperature_K: float,
    seed: int = 0,
    **overrides: Any,
) -> MDSettings:
    """Settings from a config's ``md`` section (missing keys: schema defaults) and overrides.

    Overrides that are None are ignored, so CLI options can be passed through as they are.
    """
    values = md_defaults()
    values.update(md_config or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(MDSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown md setting(s): {', '.join(unknown)}")
    settings = MDSettings(temperature_K=float(temperature_K), seed=int(seed), **values)
    settings.validate()
    return settings
