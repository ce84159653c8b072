"""NVT or NPT molecular dynamics with any model of the sweep: snapshots, restart, guards
(classical nuclei; :func:`run_md_job` hands ``nuclei: pimd`` to :mod:`dualbench.md.pimd`).

The driver propagates an ASE integrator that samples the canonical ensemble (Langevin
or Bussi stochastic velocity rescaling; never Berendsen) at the starting cell, or with
``ensemble = "npt"`` the isothermal-isobaric one (Langevin atoms and a Langevin-Hoover
barostat at ``pressure_GPa``, the cell's shape kept; see :mod:`dualbench.md.ensembles`),
one step at a time, so that it can check every step (:mod:`dualbench.md.guards`), log
progress, and save a restart checkpoint (:mod:`dualbench.md.checkpoint`) every
``checkpoint_every`` steps.  Settings: :mod:`dualbench.md.settings`; the snapshot files:
:mod:`dualbench.md.snapshots`.

Steps are counted from 0, the Maxwell-Boltzmann start at the target temperature.  Steps
``1..equilibration_steps`` are equilibration, the next ``production_steps`` production;
a snapshot is kept every ``snapshot_every`` production steps, so a run keeps
``production_steps // snapshot_every`` snapshots.  The centre of mass is fixed
(:class:`ase.constraints.FixCom`), so the kinetic temperature has ``3N - 3`` degrees of
freedom.

Restart: the checkpoint (``md_checkpoint.npz`` in the output folder, not an output of
the workflow) holds positions, momenta, the cell, the step counter, the state of the
random generator that drives the thermostat, the integrator's own state (Bussi's
transferred energy, the barostat's momentum and force), and the snapshots (with their
cells) and log rows kept so far.  A run
started again with the same inputs continues from it and produces the same trajectory as
an uninterrupted run.  Final outputs are written atomically only at the end, and the
checkpoint is removed after them.

Units: positions Å, energies eV, forces eV/Å, time fs, temperature K, pressure GPa.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from dualbench.io import provenance, write_csv, write_json
from dualbench.md.calculator import make_quiet_calculator, stress_on_demand
from dualbench.md.checkpoint import (
    CHECKPOINT_FILE,
    RunState,
    inputs_fingerprint,
    load_checkpoint,
    save_checkpoint,
    state_from_checkpoint,
)
from dualbench.md.ensembles import pressure_GPa, start_classical_dynamics
from dualbench.md.guards import MDGuardError, check_state
from dualbench.md.runfiles import FAILURE_FILE, LOG_FILE, RUN_INFO_FILE, MDResult, phase_of
from dualbench.md.settings import MDSettings
from dualbench.md.snapshots import (
    SNAPSHOTS_FILE,
    SUPERCELL_FILE,
    snapshot_frames,
    write_snapshots,
)
from dualbench.models.spec import ModelSpec

# The package's one logger name (the CLI's log lines name it), whatever the module.
log = logging.getLogger("dualbench.md")

# --------------------------------------------------------------------------------------
# Outputs


def _voigt(stress: Any) -> np.ndarray:
    """A stress (eV/Å^3) as the 6-vector xx, yy, zz, yz, xz, xy; NaN when absent."""
    if stress is None:
        return np.full(6, np.nan)
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        from ase.stress import full_3x3_to_voigt_6_stress

        return full_3x3_to_voigt_6_stress(stress)
    return stress.reshape(6)


def _phase(step: int, settings: MDSettings) -> str:
    return phase_of(step, settings)


def _write_log(path: Path, state: RunState, settings: MDSettings) -> None:
    import pandas as pd

    frame = pd.DataFrame(state.rows, columns=list(settings.log_columns))
    frame["step"] = frame["step"].astype(int)
    frame["phase"] = [_phase(int(s), settings) for s in frame["step"]]
    write_csv(path, frame)


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# --------------------------------------------------------------------------------------
# The driver


@dataclass
class _Run:
    """A run in progress: the dynamics, what it accumulated, and where it writes."""

    atoms: Atoms
    settings: MDSettings
    out_dir: Path
    checkpoint: Path
    fingerprint: str
    start_structure: Atoms
    rng: np.random.Generator
    dyn: Any
    state: RunState
    start_step: int
    n_dof: int


def _prepare(
    atoms: Atoms, calculator: Any, settings: MDSettings, out_dir: Path, model_id: str,
    refuse_other: bool = False,
) -> _Run:
    """Atoms with FixCom and the calculator, from the checkpoint of the same inputs when
    there is one (positions, momenta, cell, random and integrator state, accumulated
    rows), else a Maxwell-Boltzmann start; and the integrator
    (:func:`dualbench.md.ensembles.start_classical_dynamics`)."""
    from ase.constraints import FixCom

    checkpoint = out_dir / CHECKPOINT_FILE
    start_structure = atoms.copy()
    start_structure.set_constraint()
    start_structure.set_momenta(None)
    fingerprint = inputs_fingerprint(start_structure, settings, model_id)

    atoms = start_structure.copy()
    atoms.set_constraint(FixCom())
    atoms.calc = calculator
    rng = np.random.default_rng(settings.seed)
    ckpt = (load_checkpoint(checkpoint, atoms, fingerprint, refuse_other)
            if checkpoint.exists() else None)
    if ckpt is not None:
        start_step = int(ckpt["step"])
        atoms.set_cell(ckpt["cell"], scale_atoms=False, apply_constraint=False)
        atoms.set_positions(ckpt["positions"], apply_constraint=False)
        atoms.set_momenta(ckpt["momenta"], apply_constraint=False)
        rng.bit_generator.state = json.loads(str(ckpt["rng_state"]))
        state = state_from_checkpoint(ckpt)
        log.info(
            "resuming from checkpoint %s at step %d of %d (%d snapshots, %d log rows kept)",
            checkpoint,
            start_step,
            settings.total_steps,
            len(state.snap_steps),
            len(state.rows),
        )
    else:
        start_step = 0
        state = RunState.empty()

    saved = None if ckpt is None else {k: ckpt[k] for k in ckpt if np.ndim(ckpt[k]) == 0}
    dyn = start_classical_dynamics(atoms, settings, rng, saved)
    return _Run(
        atoms=atoms,
        settings=settings,
        out_dir=out_dir,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        start_structure=start_structure,
        rng=rng,
        dyn=dyn,
        state=state,
        start_step=start_step,
        n_dof=atoms.get_number_of_degrees_of_freedom(),
    )


def _is_snapshot_step(step: int, settings: MDSettings) -> bool:
    k = step - settings.equilibration_steps
    return k > 0 and k % settings.snapshot_every == 0


def _needs_stress(step: int, settings: MDSettings) -> bool:
    """Whether the forces of ``step`` come with a stress: every step under NPT (the
    barostat, the pressure column), else only the snapshots' (their stress, the run's
    mean pressure)."""
    return settings.ensemble == "npt" or _is_snapshot_step(step, settings)


def _record(run: _Run, step: int) -> None:
    """Append the log row of ``step`` (NPT: with volume and pressure) and, every
    ``snapshot_every`` production steps, a snapshot with its cell."""
    atoms, settings, state = run.atoms, run.settings, run.state
    results = atoms.calc.results
    epot = float(atoms.get_potential_energy())
    momenta = atoms.get_momenta()
    ekin = 0.5 * float(np.sum(momenta**2 / atoms.get_masses()[:, None]))
    temperature = 2.0 * ekin / (run.n_dof * units.kB)
    row: tuple[float, ...] = (step, step * settings.timestep_fs, temperature, epot, ekin)
    if settings.ensemble == "npt":
        volume = float(atoms.get_volume())
        stress = _voigt(results.get("stress"))
        row += (volume, pressure_GPa(stress, temperature, len(atoms), volume))
    state.rows.append(row)
    if _is_snapshot_step(step, settings):
        state.snap_steps.append(step)
        state.snap_positions.append(atoms.get_positions())
        state.snap_momenta.append(momenta)
        state.snap_forces.append(np.array(results["forces"], dtype=float))
        state.snap_energies.append(epot)
        state.snap_stresses.append(_voigt(results.get("stress")))
        state.snap_cells.append(np.array(atoms.cell, dtype=float))


def _log_start(run: _Run) -> None:
    settings = run.settings
    ensemble = (
        f"NPT (P = {settings.pressure_GPa:g} GPa, barostat {settings.barostat_time_fs:g} fs)"
        if settings.ensemble == "npt"
        else "NVT"
    )
    log.info(
        "%s %s MD: %d atoms, %d dof, T = %g K, dt = %g fs, %d equilibration + %d"
        " production steps, a snapshot every %d, checkpoint every %d",
        ensemble,
        settings.thermostat,
        len(run.atoms),
        run.n_dof,
        settings.temperature_K,
        settings.timestep_fs,
        settings.equilibration_steps,
        settings.production_steps,
        settings.snapshot_every,
        settings.checkpoint_every,
    )


def _steps(run: _Run, step_hook: Callable[[int, Atoms], None] | None) -> float:
    """Step from the start (or checkpoint) to the end, with guards, checkpoints and
    progress lines, the stress computed only where :func:`_needs_stress`; returns the
    clock (perf_counter) when stepping began."""
    atoms, settings, state = run.atoms, run.settings, run.state
    total = settings.total_steps
    progress_every = settings.progress_every or max(1, total // 10)
    with stress_on_demand(atoms.calc) as ask_stress:
        ask_stress(_needs_stress(run.start_step, settings))
        forces = atoms.get_forces(md=True)
        check_state(atoms, run.start_step, settings)
        if run.start_step == 0:
            _record(run, 0)
        _log_start(run)
        t_loop = time.perf_counter()
        for step in range(run.start_step + 1, total + 1):
            ask_stress(_needs_stress(step, settings))
            forces = run.dyn.step(forces)
            run.dyn.nsteps += 1
            check_state(atoms, step, settings)
            _record(run, step)
            saved = step % settings.checkpoint_every == 0 or step == total
            if saved:
                save_checkpoint(
                    run.checkpoint, atoms, step, run.rng, run.dyn, state, run.fingerprint,
                    len(settings.log_columns),
                )
            if saved or step % progress_every == 0:
                _log_progress(run, step, t_loop, saved)
            if step_hook is not None:
                step_hook(step, atoms)
    return t_loop


def _log_progress(run: _Run, step: int, t_loop: float, saved: bool) -> None:
    """The progress line of ``step``: temperature, energy, steps/s since ``t_loop``, ETA."""
    settings, total = run.settings, run.settings.total_steps
    rate = (step - run.start_step) / max(time.perf_counter() - t_loop, 1e-9)
    temperature, epot = run.state.rows[-1][2:4]
    volume = f", V = {run.atoms.get_volume():.2f} Å^3" if settings.ensemble == "npt" else ""
    log.info(
        "step %d/%d (%s) T = %.1f K, Epot = %.4f eV%s, %.2f steps/s, ETA %s%s",
        step,
        total,
        _phase(step, settings),
        temperature,
        epot,
        volume,
        rate,
        _format_eta((total - step) / rate),
        ", checkpoint saved" if saved else "",
    )


def _finish(
    run: _Run, calculator: Any, run_info: Mapping[str, Any] | None, t_start: float,
    t_loop: float,
) -> MDResult:
    """Write the outputs atomically, then remove the checkpoint; the run's result."""
    t_end = time.perf_counter()
    settings, state, out_dir = run.settings, run.state, run.out_dir
    steps_done = settings.total_steps - run.start_step
    loop_s = t_end - t_loop
    result = MDResult(
        out_dir=str(out_dir),
        n_atoms=len(run.atoms),
        n_dof=run.n_dof,
        total_steps=settings.total_steps,
        resumed_from_step=run.start_step,
        n_snapshots=len(state.snap_steps),
        n_log_rows=len(state.rows),
        wall_s=t_end - t_start,
        steps_per_s=steps_done / loop_s if steps_done and loop_s > 0 else None,
        device=str(getattr(calculator, "device", "")) or None,
    )
    write_snapshots(out_dir / SNAPSHOTS_FILE, snapshot_frames(run.atoms, state, settings))
    _write_log(out_dir / LOG_FILE, state, settings)
    write_snapshots(out_dir / SUPERCELL_FILE, [run.start_structure])
    info = {"settings": asdict(settings), "result": asdict(result), "status": "ok",
            **(run_info or {})}
    info.setdefault("provenance", provenance())
    write_json(out_dir / RUN_INFO_FILE, info)
    run.checkpoint.unlink(missing_ok=True)
    (out_dir / FAILURE_FILE).unlink(missing_ok=True)
    rate = result.steps_per_s
    log.info(
        "MD done: %d snapshots, %d log rows, %s on %s",
        result.n_snapshots,
        result.n_log_rows,
        f"{rate:.2f} steps/s ({rate * len(run.atoms):.0f} atom-steps/s)" if rate else "no new step",
        result.device,
    )
    return result


def run_md(
    atoms: Atoms,
    calculator: Any,
    settings: MDSettings,
    out_dir: str | Path,
    *,
    model_id: str = "",
    step_hook: Callable[[int, Atoms], None] | None = None,
    run_info: Mapping[str, Any] | None = None,
    refuse_other_checkpoint: bool = False,
) -> MDResult:
    """Run NVT (or NPT) MD of ``atoms`` (the starting, usually ideal, supercell).

    Writes to ``out_dir``: ``snapshots.extxyz`` (production snapshots with cell, momenta,
    energy, forces, stress), ``md_log.csv`` (one row per step: step, time_fs,
    temperature_K, epot_eV, ekin_eV, under NPT volume_A3 and pressure_GPa, then phase),
    ``supercell.extxyz`` (the starting structure) and ``md_run.json`` (settings, timing,
    provenance plus ``run_info``).  A checkpoint ``md_checkpoint.npz`` there from an
    interrupted run with the same inputs (``model_id`` names the model) is continued; one
    of other inputs is ignored, or with ``refuse_other_checkpoint`` refused (ValueError).
    ``step_hook(step, atoms)`` is called after every step (after the checkpoint of that
    step); an exception from it, like any other, stops the run and leaves only the
    checkpoint.

    Raises :class:`MDGuardError` when a state fails :func:`check_state`.
    """
    settings.validate()
    if settings.nuclei != "classical":
        raise ValueError("run_md runs classical nuclei; nuclei pimd: dualbench.md.pimd.run_pimd")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _prepare(atoms, calculator, settings, out_dir, model_id, refuse_other_checkpoint)
    t_start = time.perf_counter()
    with warnings.catch_warnings():
        # pymatgen's converter warns on every call that it cannot carry FixCom: harmless.
        warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian")
        # CHGNet's own (torch) warning about converting a tensor with requires_grad.
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
        try:
            t_loop = _steps(run, step_hook)
        except MDGuardError as err:
            log.error("%s", err)
            _write_failure(out_dir / FAILURE_FILE, run.atoms, err)
            raise
    return _finish(run, calculator, run_info, t_start, t_loop)


def _write_failure(path: Path, atoms: Atoms, err: MDGuardError) -> None:
    """Keep the state that failed a guard for inspection (not an output of the workflow)."""
    try:
        frame = atoms.copy()
        frame.set_constraint()
        frame.info.update(step=err.step, reason=err.reason)
        write_snapshots(path, [frame])
        log.error("the failing state is in %s", path)
    except Exception as write_err:  # never hide the guard error behind a write error
        log.warning("could not write %s: %s", path, write_err)


def run_md_job(
    *,
    model: str | Path | ModelSpec,
    unit_cell: Atoms,
    supercell: tuple[int, int, int] | list[int],
    settings: MDSettings,
    out_dir: str | Path,
    threads: int | None = None,
    config_hash: str | None = None,
    step_hook: Callable[[int, Atoms], None] | None = None,
    refuse_other_checkpoint: bool = False,
) -> MDResult:
    """Load ``model`` (a MODEL argument or a spec, see
    :func:`dualbench.models.resolve.parse_model_arg`), build the supercell, run.

    The MODEL argument is read once: the spec's checkpoint file is read and hashed once,
    and the calculator and the fingerprint (:meth:`ModelSpec.fingerprint`) come from it.
    This is what the ``run_md`` rule and ``dualbench md`` call.  ``settings.nuclei`` pimd
    runs :func:`dualbench.md.pimd.run_pimd` (no ``step_hook`` there).  A guard's stop is
    the run's result with ``settings.on_unstable`` record
    (:func:`dualbench.md.unstable.record_unstable_run`: status unstable), else raised.
    """
    from dualbench.models.device import resolve_device, set_threads
    from dualbench.models.resolve import parse_model_arg
    from dualbench.structure import build_supercell, inscribed_radius

    set_threads(threads)
    spec = parse_model_arg(model)
    atoms = build_supercell(unit_cell, supercell)
    atoms.pbc = True
    device = resolve_device(settings.device)
    log.info(
        "supercell %s of %s: %d atoms, inscribed radius %.3f Å; model %s on %s",
        "x".join(map(str, supercell)),
        unit_cell.get_chemical_formula(),
        len(atoms),
        inscribed_radius(atoms.cell),
        model,
        device,
    )
    calc = make_quiet_calculator(spec, device)
    model_id = spec.fingerprint()
    run_info = {
        "model": str(model),
        "supercell": list(supercell),
        "threads": threads,
        "provenance": provenance(config_hash=config_hash, model_fingerprint=model_id),
    }
    try:
        if settings.nuclei == "pimd":
            from dualbench.md.pimd import beads_of, run_pimd

            if step_hook is not None:
                raise ValueError("step_hook is for classical runs, not nuclei pimd")
            run_info["beads"] = beads_of(settings)
            return run_pimd(
                atoms, calc, settings, out_dir, model_id=model_id, run_info=run_info,
                refuse_other_checkpoint=refuse_other_checkpoint,
            )
        return run_md(
            atoms, calc, settings, out_dir, model_id=model_id, step_hook=step_hook,
            run_info=run_info, refuse_other_checkpoint=refuse_other_checkpoint,
        )
    except MDGuardError as err:
        if settings.on_unstable != "record":
            raise
        from dualbench.md.unstable import record_unstable_run

        return record_unstable_run(atoms, settings, out_dir, err, run_info, str(device))

