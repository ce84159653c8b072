"""i-PI's files for a path-integral run (:mod:`dualbench.md.pimd`): its XML input, its
outputs (per-bead XYZ trajectories, the properties table) and its checkpoints.

i-PI labels every output with the number of steps done (0: the initial state) and writes
a checkpoint ``<prefix>.chk_<n>`` (the n-th) that restarts at the step it names.  After a
kill its outputs can hold frames past that step, and the last one can be cut off: before a
restart :func:`truncate_outputs` cuts every output back to the checkpoint's step, and
:func:`outputs_complete` says whether they hold every frame up to it (i-PI writes its
outputs in threads, so a kill can leave a checkpoint whose step's frames are missing).

Units: positions Å (i-PI's ``positions{angstrom}``), forces eV/Å, energies eV, time fs.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualbench.io import atomic_path

#: The prefix of every i-PI output file (``sim.out``, ``sim.pos_00.xyz``, ``sim.chk_3``).
PREFIX = "sim"
#: The property table: one row per step.
PROPERTIES = ("step", "time{femtosecond}", "temperature{kelvin}", "potential{electronvolt}",
              "kinetic_cv{electronvolt}")
PROPERTIES_FILE = f"{PREFIX}.out"
BEAD_ENERGY_FILE = f"{PREFIX}.beadpot"
CENTROID_FILE = f"{PREFIX}.xc.xyz"
_STEP_RE = re.compile(r"Step:\s*(\d+)")
_BEAD_RE = re.compile(r"Bead:\s*(\d+)")


@dataclass
class IpiRun:
    """What an i-PI input says: beads, steps, time step (fs), temperature (K), seed,
    PILE-L centroid time (fs) and lambda, and the output strides (steps)."""

    nbeads: int
    total_steps: int
    timestep_fs: float
    temperature_K: float
    seed: int
    tau_fs: float
    pile_lambda: float
    trajectory_stride: int
    checkpoint_stride: int


def input_xml(run: IpiRun, socket_address: str, structure_file: str) -> str:
    """i-PI's input: NVT path-integral dynamics with the PILE-L thermostat, the forces from
    one client on the Unix socket ``/tmp/ipi_<socket_address>``, the starting structure
    from ``structure_file`` (extended XYZ, Å), thermal bead momenta; outputs: the property
    table every step, positions and forces of every bead, the centroid and the bead
    energies every ``trajectory_stride`` steps, a checkpoint every ``checkpoint_stride``."""
    stride, every = run.trajectory_stride, run.checkpoint_stride
    xyz = "format='xyz' cell_units='angstrom' flush='1'"
    return f"""<simulation verbosity='low' safe_stride='{every}'>
  <output prefix='{PREFIX}'>
    <properties stride='1' filename='out' flush='1'> [ {', '.join(PROPERTIES)} ] </properties>
    <properties stride='{stride}' filename='beadpot' flush='1'>
      [ step, bead_potentials{{electronvolt}} ] </properties>
    <trajectory filename='pos' stride='{stride}' {xyz}> positions{{angstrom}} </trajectory>
    <trajectory filename='frc' stride='{stride}' {xyz}> forces{{ev/ang}} </trajectory>
    <trajectory filename='xc' stride='{stride}' {xyz}> x_centroid{{angstrom}} </trajectory>
    <checkpoint stride='{every}' filename='chk' overwrite='false'/>
  </output>
  <total_steps> {run.total_steps} </total_steps>
  <prng><seed> {run.seed} </seed></prng>
  <ffsocket name='model' mode='unix'>
    <address>{socket_address}</address>
    <latency> 1e-6 </latency>
    <exit_on_disconnect> true </exit_on_disconnect>
  </ffsocket>
  <system>
    <initialize nbeads='{run.nbeads}'>
      <file mode='ase' units='angstrom'> {structure_file} </file>
      <velocities mode='thermal' units='kelvin'> {run.temperature_K!r} </velocities>
    </initialize>
    <forces><force forcefield='model'/></forces>
    <ensemble><temperature units='kelvin'> {run.temperature_K!r} </temperature></ensemble>
    <motion mode='dynamics'>
      <dynamics mode='nvt'>
        <timestep units='femtosecond'> {run.timestep_fs!r} </timestep>
        <thermostat mode='pile_l'>
          <tau units='femtosecond'> {run.tau_fs!r} </tau>
          <pile_lambda> {run.pile_lambda!r} </pile_lambda>
        </thermostat>
      </dynamics>
    </motion>
  </system>
</simulation>
"""


# --------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint restarts at, or None when it is not a complete i-PI input
    (a kill while i-PI wrote it)."""
    try:
        root = ET.parse(path).getroot()
        return int(root.find("step").text.strip())
    except (ET.ParseError, AttributeError, ValueError, OSError):
        return None


def checkpoints(work_dir: Path) -> list[tuple[int, Path]]:
    """The readable checkpoints in ``work_dir`` as (step, path), newest first."""
    found = []
    for path in work_dir.glob(f"{PREFIX}.chk_*"):
        step = checkpoint_step(path)
        if step is not None:
            found.append((step, path))
    return sorted(found, key=lambda item: item[0], reverse=True)


def prune_checkpoints(work_dir: Path, keep: int = 2) -> None:
    """Remove all but the ``keep`` newest checkpoint files (by their index)."""
    paths = sorted(work_dir.glob(f"{PREFIX}.chk_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for path in paths[:-keep]:
        path.unlink(missing_ok=True)


def with_socket_address(xml_text: str, socket_address: str) -> str:
    """A checkpoint's text with its socket address replaced (each run has its own)."""
    text, count = re.subn(r"<address>[^<]*</address>", f"<address>{socket_address}</address>",
                          xml_text)
    if count != 1:
        raise ValueError(f"expected one socket address in the checkpoint, found {count}")
    return text


# --------------------------------------------------------------------------------------
# Trajectories


@dataclass
class XyzFrame:
    """One frame of an i-PI XYZ trajectory: step (steps done), bead (None for the
    centroid), symbols, and the values (positions Å or forces eV/Å), shape (N, 3)."""

    step: int
    bead: int | None
    symbols: list[str]
    values: np.ndarray


def _frame_texts(text: str) -> Iterator[tuple[str, list[str], int]]:
    """(comment, atom lines, end offset) of each complete frame of an XYZ text; a frame
    cut off by a kill (missing lines, or a last line without its newline) ends it."""
    lines = text.splitlines(keepends=True)
    i, offset = 0, 0
    while i < len(lines) and lines[i].strip() and lines[i].endswith("\n"):
        n = int(lines[i])
        block = lines[i : i + n + 2]
        if len(block) < n + 2 or not all(line.endswith("\n") for line in block):
            return
        offset += sum(len(line) for line in block)
        yield block[1], block[2:], offset
        i += n + 2


def read_xyz(path: Path, max_step: int | None = None) -> list[XyzFrame]:
    """The complete frames of an i-PI XYZ trajectory, up to ``max_step`` when given."""
    frames = []
    for comment, atom_lines, _ in _frame_texts(Path(path).read_text()):
        step = int(_STEP_RE.search(comment)[1])
        if max_step is not None and step > max_step:
            break
        bead = _BEAD_RE.search(comment)
        parts = [line.split() for line in atom_lines]
        values = np.array([[float(x) for x in p[1:4]] for p in parts])
        frames.append(XyzFrame(step, int(bead[1]) if bead else None, [p[0] for p in parts],
                               values))
    return frames


def _truncate_xyz(path: Path, max_step: int) -> None:
    text = path.read_text()
    keep = 0
    for comment, _, end in _frame_texts(text):
        if int(_STEP_RE.search(comment)[1]) > max_step:
            break
        keep = end
    _rewrite(path, text[:keep])


def _truncate_table(path: Path, max_step: int) -> None:
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut off by a kill
        if not line.startswith("#") and line.strip() and float(line.split()[0]) > max_step:
            break
        kept.append(line)
    _rewrite(path, "".join(kept))


def _rewrite(path: Path, text: str) -> None:
    if text != path.read_text():
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)


def trajectory_files(work_dir: Path, name: str) -> list[Path]:
    """The per-bead files of trajectory ``name`` (``sim.pos_00.xyz`` ...), by bead."""
    return sorted(work_dir.glob(f"{PREFIX}.{name}_*.xyz"),
                  key=lambda p: int(p.stem.rsplit("_", 1)[1]))


def _outputs(work_dir: Path) -> tuple[list[Path], list[Path]]:
    xyz = trajectory_files(work_dir, "pos") + trajectory_files(work_dir, "frc")
    xyz += [work_dir / CENTROID_FILE]
    tables = [work_dir / PROPERTIES_FILE, work_dir / BEAD_ENERGY_FILE]
    return [p for p in xyz if p.exists()], [p for p in tables if p.exists()]


def truncate_outputs(work_dir: Path, max_step: int) -> None:
    """Cut every i-PI output in ``work_dir`` back to the frames and rows of steps up to
    ``max_step`` (a restart from a checkpoint at ``max_step`` appends the later ones)."""
    xyz, tables = _outputs(work_dir)
    for path in xyz:
        _truncate_xyz(path, max_step)
    for path in tables:
        _truncate_table(path, max_step)


def read_table(path: Path) -> np.ndarray:
    """The rows of an i-PI property table (complete lines), shape (rows, columns)."""
    rows = [
        [float(x) for x in line.split()]
        for line in Path(path).read_text().splitlines(keepends=True)
        if line.endswith("\n") and line.strip() and not line.startswith("#")
    ]
    return np.array(rows, dtype=float)


def read_new_rows(path: Path, offset: int) -> tuple[np.ndarray, int]:
    """The complete rows of an i-PI property table from byte ``offset`` on, and the
    offset after them (to read a growing table without reading it all again)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    rows = [[float(x) for x in line.split()] for line in data[:end].decode().splitlines()
            if line.strip() and not line.startswith("#")]
    return np.array(rows, dtype=float), offset + end


def outputs_complete(work_dir: Path, nbeads: int, max_step: int, stride: int) -> bool:
    """Whether the outputs hold every frame and row of the steps up to ``max_step``:
    the property table a row per step, the others one per ``stride`` steps."""
    expected = list(range(0, max_step + 1, stride))
    xyz, tables = _outputs(work_dir)
    if len(xyz) != 2 * nbeads + 1 or len(tables) != 2:
        return False
    for path in xyz:
        if [f.step for f in read_xyz(path, max_step)] != expected:
            return False
    steps = read_table(work_dir / PROPERTIES_FILE).reshape(-1, len(PROPERTIES))[:, 0]
    bead_steps = read_table(work_dir / BEAD_ENERGY_FILE).reshape(-1, 1 + nbeads)[:, 0]
    return (steps[steps <= max_step].tolist() == list(range(max_step + 1))
            and bead_steps[bead_steps <= max_step].tolist() == expected)


def socket_path(socket_address: str) -> str:
    """The file of i-PI's (and ASE's) Unix socket of ``socket_address``."""
    return os.path.join("/tmp", f"ipi_{socket_address}")
