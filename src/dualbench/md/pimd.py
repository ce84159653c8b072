"""Path-integral MD (``md.nuclei: pimd``) with i-PI as the engine and the model as its
force client.

i-PI (``i-pi input.xml``, a subprocess) propagates the ring polymer: NVT with the PILE-L
thermostat (a Langevin thermostat of time constant ``pimd_tau_fs`` on the centroid, the
internal normal modes damped at ``pimd_pile_lambda`` times critical), ``P`` beads, the
centre of mass of the centroid fixed.  It asks for the forces of each bead over a Unix
socket, a unique address in a fresh folder ``/tmp/ipi_XXXX``; this process answers as
ASE's :class:`~ase.calculators.socketio.SocketClient` with the model's calculator, and
checks every bead it is given (:func:`dualbench.md.guards.check_configuration`: finite
positions, energy and forces; and, for one bead a step in turn, no atoms closer than
``min_distance_A``) and i-PI's temperature of every step
(:func:`dualbench.md.guards.check_temperature`), and logs progress lines.

Position observables (sigma^2, EXAFS) are averages over the beads: every bead of every
kept step is a snapshot.  The run writes what a classical run writes
(:mod:`dualbench.md.driver`): ``snapshots.extxyz`` (for each kept step its P bead frames,
bead 0 first, with the bead's energy and forces; ``info``: step, time_fs, bead, nbeads,
temperature_K; no momenta: the beads' are at P times the temperature), ``md_log.csv``
(i-PI's temperature, the bead-averaged potential energy and the centroid-virial kinetic
energy of every step), ``supercell.extxyz`` and ``md_run.json``; and ``centroids.extxyz``,
the centroid of each kept step.  Steps and snapshots are counted as in the classical
driver.

Restart: i-PI's own checkpoints (``sim.chk_<n>`` in ``OUT/ipi``, every
``checkpoint_every`` steps, the two newest kept).  A run started again with the same
inputs cuts i-PI's outputs back to the newest checkpoint they are complete for
(:mod:`dualbench.md.ipi_io`) and runs i-PI from it; i-PI then appends the later frames.
If this process is killed, i-PI is killed with it (Linux: the parent-death signal; and it
exits when its client disconnects).  ``OUT/ipi`` is removed once the outputs are written.

The bead count: :func:`bead_count`.  Units: Å, eV, eV/Å, fs, K; frequencies THz.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from dualbench.io import provenance, write_csv, write_json
from dualbench.md import ipi_io
from dualbench.md.checkpoint import inputs_fingerprint
from dualbench.md.guards import MDGuardError, check_configuration, check_temperature
from dualbench.md.runfiles import FAILURE_FILE, LOG_FILE, RUN_INFO_FILE, MDResult, phase_of
from dualbench.md.settings import MDSettings
from dualbench.md.snapshots import SNAPSHOTS_FILE, SUPERCELL_FILE, write_snapshots

log = logging.getLogger("dualbench.md")

#: The bead rule's factor k of P = ceil(k hbar omega_max / (kB T)): with k = 4 the Trotter
#: bias of a harmonic mode's mean-square displacement, about -(hbar omega/(P kB T))^2 / 8
#: for large hbar omega/(kB T), stays below 0.8 % at every temperature.
BEAD_RULE_FACTOR = 4.0
#: The centroid of each kept step, and i-PI's work folder (inputs, outputs, checkpoints).
CENTROIDS_FILE = "centroids.extxyz"
IPI_DIR = "ipi"
_INPUTS_FILE = "dualbench_inputs.json"
_START_FILE = "start.extxyz"
_SOCKET_DIR_FILE = "socket_dir"
_SOCKET_WAIT_S = 120.0
_POLL_S = 1.0
_PLANCK_eV_s = 4.135667696e-15
_KB_eV_K = 8.617333262e-5


# --------------------------------------------------------------------------------------
# The bead count


def bead_count(
    temperature_K: float, max_phonon_THz: float, factor: float = BEAD_RULE_FACTOR,
    max_beads: int = 128,
) -> int:
    """P = ceil(factor * hbar omega_max / (kB T)), clipped to [1, max_beads], with
    omega_max = 2 pi * ``max_phonon_THz`` the highest phonon (angular) frequency."""
    x = _PLANCK_eV_s * max_phonon_THz * 1e12 / (_KB_eV_K * temperature_K)
    return int(min(max(math.ceil(factor * x - 1e-9), 1), max_beads))


def beads_of(settings: MDSettings) -> int:
    """The beads of a run: ``settings.beads``, or the rule's (:func:`bead_count`)."""
    if settings.beads is not None:
        return int(settings.beads)
    if settings.max_phonon_THz is None:
        raise ValueError("nuclei pimd needs beads, or max_phonon_THz for the bead rule")
    return bead_count(settings.temperature_K, settings.max_phonon_THz,
                      max_beads=settings.max_beads)


def _ipi_run(settings: MDSettings, nbeads: int) -> ipi_io.IpiRun:
    stride = math.gcd(settings.equilibration_steps, settings.snapshot_every)
    return ipi_io.IpiRun(
        nbeads=nbeads,
        total_steps=settings.total_steps,
        timestep_fs=settings.timestep_fs,
        temperature_K=settings.temperature_K,
        seed=settings.seed,
        tau_fs=settings.pimd_tau_fs,
        pile_lambda=settings.pimd_pile_lambda,
        trajectory_stride=stride,
        checkpoint_stride=settings.checkpoint_every,
    )


# --------------------------------------------------------------------------------------
# Starting or resuming


def _resume_step(work: Path, fingerprint: str, run: ipi_io.IpiRun, refuse_other: bool) -> int:
    """The step of the newest checkpoint in ``work`` that i-PI's outputs are complete
    for (the outputs cut back to it), or 0 (``work`` emptied) when there is none, or
    when ``work`` belongs to other inputs (with ``refuse_other``: ValueError)."""
    inputs = work / _INPUTS_FILE
    if work.exists() and inputs.exists():
        if json.loads(inputs.read_text()).get("fingerprint") != fingerprint:
            if refuse_other:
                raise ValueError(
                    f"{work}: the i-PI checkpoint of an unfinished run with other inputs:"
                    " continue it with the arguments it was started with, give another"
                    " --out, or discard it with --overwrite"
                )
            log.warning("ignoring %s: written for other inputs; starting from step 0", work)
        else:
            for step, _ in ipi_io.checkpoints(work):
                ipi_io.truncate_outputs(work, step)
                if ipi_io.outputs_complete(work, run.nbeads, step, run.trajectory_stride):
                    return step
                log.warning("i-PI's outputs lack frames up to step %d; trying an older"
                            " checkpoint", step)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return 0


def _input_text(work: Path, start_step: int, run: ipi_io.IpiRun, address: str) -> str:
    """i-PI's input: the newest checkpoint's (at ``start_step``) or a fresh one."""
    if start_step > 0:
        path = next(p for s, p in ipi_io.checkpoints(work) if s == start_step)
        return ipi_io.with_socket_address(path.read_text(), address)
    return ipi_io.input_xml(run, address, _START_FILE)


def _ipi_command(input_file: str) -> list[str]:
    """``i-pi input_file`` run by this Python (i-PI is pure Python)."""
    script = Path(sysconfig.get_path("scripts")) / "i-pi"
    if not script.exists():
        found = shutil.which("i-pi")
        if found is None:
            raise FileNotFoundError("i-PI's i-pi script not found: pip install ipi==3.3.1")
        script = Path(found)
    return [sys.executable, str(script), input_file]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the i-PI child gets SIGKILL when this process dies."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _start_ipi(work: Path, input_text: str, name: str) -> subprocess.Popen:
    (work / name).write_text(input_text)
    with open(work / "ipi.log", "a") as out:
        return subprocess.Popen(
            _ipi_command(name), cwd=work, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )


# --------------------------------------------------------------------------------------
# Serving forces


@dataclass
class _Watch:
    """What the client loop follows: i-PI's property rows read so far, progress."""

    settings: MDSettings
    work: Path
    start_step: int
    nbeads: int
    t_loop: float = field(default_factory=time.perf_counter)
    t_poll: float = 0.0
    offset: int = 0  # bytes of i-PI's property table read so far

    def poll(self, force: bool = False) -> None:
        """Check the new rows of i-PI's property table (temperature guard), log
        progress, keep the two newest checkpoints."""
        now = time.perf_counter()
        if not force and now - self.t_poll < _POLL_S:
            return
        self.t_poll = now
        path = self.work / ipi_io.PROPERTIES_FILE
        if not path.exists():
            return
        rows, self.offset = ipi_io.read_new_rows(path, self.offset)
        for step, _, temperature, epot, _ in rows.reshape(-1, len(ipi_io.PROPERTIES)):
            check_temperature(float(temperature), int(step), self.settings)
            self._progress(int(step), float(temperature), float(epot), now)
        ipi_io.prune_checkpoints(self.work)

    def _progress(self, step: int, temperature: float, epot: float, now: float) -> None:
        settings = self.settings
        total = settings.total_steps
        every = settings.progress_every or max(1, total // 10)
        if step <= self.start_step or (step % every and step != total):
            return
        rate = (step - self.start_step) / max(now - self.t_loop, 1e-9)
        log.info(
            "step %d/%d (%s) T = %.1f K, Epot = %.4f eV (bead mean), %d beads, %.2f steps/s,"
            " ETA %.0f s%s", step, total, phase_of(step, settings), temperature, epot,
            self.nbeads, rate, (total - step) / rate,
            ", checkpoint" if step % settings.checkpoint_every == 0 else "",
        )


def _connect(address: str, proc: subprocess.Popen) -> Any:
    from ase.calculators.socketio import SocketClient

    deadline = time.monotonic() + _SOCKET_WAIT_S
    while not os.path.exists(ipi_io.socket_path(address)):
        if proc.poll() is not None:
            raise RuntimeError(f"i-PI exited (code {proc.returncode}) before it opened its"
                               " socket; see ipi.log in the run's ipi folder")
        if time.monotonic() > deadline:
            raise TimeoutError(f"i-PI did not open its socket within {_SOCKET_WAIT_S} s")
        time.sleep(0.05)
    return SocketClient(unixsocket=address)


def _serve(atoms: Atoms, address: str, proc: subprocess.Popen, watch: _Watch,
           eval_hook: Callable[[int, Atoms], None] | None) -> None:
    """Answer i-PI's force requests until it ends the run, checking every bead."""
    client = _connect(address, proc)
    n_eval = 0
    try:
        for _ in client.irun(atoms, use_stress=False):
            step, bead = divmod(n_eval, watch.nbeads)
            step += watch.start_step
            # Every bead's values; the closest pair of one bead a step, in turn (atoms
            # lost or collapsing stay so for many steps, and beads lie close together).
            check_configuration(atoms, atoms.calc.results, step, watch.settings,
                                distances=bead == step % watch.nbeads)
            n_eval += 1
            watch.poll()
            if eval_hook is not None:
                eval_hook(n_eval, atoms)
    finally:
        client.close()
    if proc.wait(timeout=120) != 0:
        raise RuntimeError(f"i-PI failed (exit code {proc.returncode}); see its ipi.log")
    watch.poll(force=True)


# --------------------------------------------------------------------------------------
# Outputs


def _production_steps(settings: MDSettings, stride: int) -> list[int]:
    eq, every = settings.equilibration_steps, settings.snapshot_every
    return [s for s in range(eq + every, settings.total_steps + 1, every) if s % stride == 0]


def _bead_frames(start: Atoms, work: Path, settings: MDSettings, nbeads: int,
                 temperatures: Mapping[int, float]) -> list[Atoms]:
    """The beads of every kept step as frames with energy (eV) and forces (eV/Å)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    total = settings.total_steps
    positions = [{f.step: f.values for f in ipi_io.read_xyz(p, total)}
                 for p in ipi_io.trajectory_files(work, "pos")]
    forces = [{f.step: f.values for f in ipi_io.read_xyz(p, total)}
              for p in ipi_io.trajectory_files(work, "frc")]
    energies = {int(r[0]): r[1:] for r in
                ipi_io.read_table(work / ipi_io.BEAD_ENERGY_FILE).reshape(-1, 1 + nbeads)}
    frames = []
    for step in _production_steps(settings, math.gcd(settings.equilibration_steps,
                                                     settings.snapshot_every)):
        for bead in range(nbeads):
            frame = Atoms(numbers=start.numbers, positions=positions[bead][step],
                          cell=start.cell, pbc=start.pbc)
            frame.info.update(step=step, time_fs=step * settings.timestep_fs, bead=bead,
                              nbeads=nbeads, temperature_K=temperatures[step])
            frame.calc = SinglePointCalculator(frame, energy=float(energies[step][bead]),
                                               forces=forces[bead][step])
            frames.append(frame)
    return frames


def _centroid_frames(start: Atoms, work: Path, settings: MDSettings, nbeads: int) -> list[Atoms]:
    kept = set(_production_steps(settings, 1))
    frames = []
    for f in ipi_io.read_xyz(work / ipi_io.CENTROID_FILE, settings.total_steps):
        if f.step in kept:
            frame = Atoms(numbers=start.numbers, positions=f.values, cell=start.cell,
                          pbc=start.pbc)
            frame.info.update(step=f.step, time_fs=f.step * settings.timestep_fs,
                              nbeads=nbeads)
            frames.append(frame)
    return frames


def _write_outputs(start: Atoms, work: Path, out_dir: Path, settings: MDSettings,
                   nbeads: int) -> tuple[int, int]:
    """Snapshots, centroids, log and starting structure; (snapshot frames, log rows)."""
    import pandas as pd

    table = ipi_io.read_table(work / ipi_io.PROPERTIES_FILE).reshape(-1, len(ipi_io.PROPERTIES))
    table = table[table[:, 0] <= settings.total_steps]
    log_frame = pd.DataFrame(table, columns=list(settings.log_columns))
    log_frame["step"] = log_frame["step"].astype(int)
    log_frame["phase"] = [phase_of(int(s), settings) for s in log_frame["step"]]
    temperatures = dict(zip(log_frame["step"], log_frame["temperature_K"], strict=True))
    frames = _bead_frames(start, work, settings, nbeads, temperatures)
    write_snapshots(out_dir / SNAPSHOTS_FILE, frames)
    write_snapshots(out_dir / CENTROIDS_FILE, _centroid_frames(start, work, settings, nbeads))
    write_csv(out_dir / LOG_FILE, log_frame)
    write_snapshots(out_dir / SUPERCELL_FILE, [start])
    return len(frames), len(log_frame)


# --------------------------------------------------------------------------------------
# The run


def run_pimd(
    atoms: Atoms,
    calculator: Any,
    settings: MDSettings,
    out_dir: str | Path,
    *,
    model_id: str = "",
    run_info: Mapping[str, Any] | None = None,
    refuse_other_checkpoint: bool = False,
    eval_hook: Callable[[int, Atoms], None] | None = None,
) -> MDResult:
    """Path-integral NVT MD of ``atoms`` (the starting supercell) with i-PI, the forces
    from ``calculator``; the outputs of :func:`dualbench.md.driver.run_md` plus
    ``centroids.extxyz`` (see the module's docstring).  An unfinished run of the same
    inputs in ``out_dir`` continues from i-PI's checkpoint; one of other inputs is
    discarded, or with ``refuse_other_checkpoint`` refused (ValueError).
    ``eval_hook(n, atoms)`` is called after the n-th force evaluation of this invocation.

    Raises :class:`MDGuardError` when a bead or a step fails a guard.
    """
    settings.validate()
    if settings.nuclei != "pimd":
        raise ValueError(f"run_pimd runs nuclei pimd, not {settings.nuclei!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = atoms.copy()
    start.set_constraint()
    start.set_momenta(None)
    start.calc = None
    nbeads = beads_of(settings)
    fingerprint = inputs_fingerprint(start, settings, model_id + f"|beads={nbeads}")
    run, work = _ipi_run(settings, nbeads), out_dir / IPI_DIR
    start_step = _resume_step(work, fingerprint, run, refuse_other_checkpoint)
    if start_step == 0:
        write_snapshots(work / _START_FILE, [start])
        (work / _INPUTS_FILE).write_text(json.dumps({"fingerprint": fingerprint}))
    else:
        log.info("resuming from i-PI's checkpoint at step %d of %d", start_step,
                 settings.total_steps)
    log.info("PIMD (i-PI, PILE-L): %d atoms, %d beads, T = %g K, dt = %g fs, %d + %d steps,"
             " a snapshot (all beads) every %d", len(start), nbeads, settings.temperature_K,
             settings.timestep_fs, settings.equilibration_steps, settings.production_steps,
             settings.snapshot_every)
    t_start = time.perf_counter()
    client_atoms = start.copy()
    client_atoms.calc = calculator
    watch = _Watch(settings, work, start_step, nbeads)
    _run_ipi(client_atoms, work, start_step, run, watch, eval_hook, out_dir)
    t_end = time.perf_counter()
    n_frames, n_rows = _write_outputs(start, work, out_dir, settings, nbeads)
    steps = settings.total_steps - start_step
    result = MDResult(
        out_dir=str(out_dir), n_atoms=len(start), n_dof=3 * len(start) - 3,
        total_steps=settings.total_steps, resumed_from_step=start_step,
        n_snapshots=n_frames, n_log_rows=n_rows, wall_s=t_end - t_start,
        steps_per_s=steps / (t_end - watch.t_loop) if steps else None,
        device=str(getattr(calculator, "device", "")) or None, nbeads=nbeads,
    )
    info = {"settings": asdict(settings), "result": asdict(result), "status": "ok",
            "engine": _engine(),
            **(run_info or {})}
    info.setdefault("provenance", provenance())
    write_json(out_dir / RUN_INFO_FILE, info)
    shutil.rmtree(work, ignore_errors=True)
    (out_dir / FAILURE_FILE).unlink(missing_ok=True)
    log.info("PIMD done: %d snapshot frames (%d beads), %d log rows", n_frames, nbeads, n_rows)
    return result


def _engine() -> dict[str, str]:
    from importlib.metadata import version

    return {"name": "i-PI", "version": version("ipi"), "thermostat": "pile_l"}


def _run_ipi(atoms: Atoms, work: Path, start_step: int, run: ipi_io.IpiRun, watch: _Watch,
             eval_hook: Callable[[int, Atoms], None] | None, out_dir: Path) -> None:
    """i-PI from ``start_step`` with this process as its client, on a fresh socket; i-PI
    is killed when anything fails here."""
    if start_step >= run.total_steps:
        return
    stale = work / _SOCKET_DIR_FILE  # the socket folder of a killed run: remove it
    if stale.exists() and Path(stale.read_text()).name.startswith("ipi_"):
        shutil.rmtree(stale.read_text(), ignore_errors=True)
    socket_dir = tempfile.mkdtemp(prefix="ipi_", dir="/tmp")
    stale.write_text(socket_dir)
    address = os.path.basename(socket_dir)[len("ipi_"):] + "/socket"
    name = "input.xml" if start_step == 0 else f"restart_{start_step}.xml"
    proc = _start_ipi(work, _input_text(work, start_step, run, address), name)
    try:
        with warnings.catch_warnings():
            # the classical driver's filters: pymatgen's FixCom note, CHGNet's torch warning
            warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian")
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            _serve(atoms, address, proc, watch, eval_hook)
    except MDGuardError as err:
        log.error("%s", err)
        _write_failure(out_dir / FAILURE_FILE, atoms, err)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(socket_dir, ignore_errors=True)


def _write_failure(path: Path, atoms: Atoms, err: MDGuardError) -> None:
    """Keep the bead configuration that failed a guard (not an output of the workflow)."""
    frame = atoms.copy()
    frame.calc = None
    frame.info.update(step=err.step, reason=err.reason)
    write_snapshots(path, [frame])
    log.error("the failing bead configuration is in %s", path)
