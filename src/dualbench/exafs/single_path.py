"""FEFF8L's genfmt for single paths, in a child process:
``python -m dualbench.exafs.single_path``.

larch's ``Feff8L_XAFSPath`` runs FEFF8L's genfmt in-process on a fixed ``phase.pad``
(libfeff8lpath).  The library reads ``phase.pad`` from the working directory and ends
the whole process on a Fortran STOP, so it runs here, in a child process started in the
folder holding ``phase.pad``: ``single_path_in.json`` (a list of paths, each a list of
scatterers ``[x, y, z, ipot]`` in Å, the absorber at the origin implied) in,
``single_path_out.npz`` (per path: FEFF's k grid in 1/Å, ``amp`` = reduction factor x
|F_eff|, ``pha`` = central-atom + scattering phase, ``rep`` = real part of the complex
momentum in 1/Å, ``lam`` = mean free path in Å, ``reff`` in Å) out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

INPUT = "single_path_in.json"
OUTPUT = "single_path_out.npz"
FIELDS = ("k", "amp", "pha", "rep", "lam")


def run_single_paths(folder: str | Path, paths: Sequence[Sequence[Sequence[float]]]) -> dict:
    """genfmt of each path (scatterers ``[x, y, z, ipot]``, Å) on ``folder/phase.pad``.

    Returns ``{field: (n_paths, n_k) array}`` for :data:`FIELDS` and ``reff`` (n_paths,).
    A failure raises RuntimeError naming the folder and the child's last output.
    """
    folder = Path(folder)
    (folder / INPUT).write_text(json.dumps([[list(map(float, s)) for s in p] for p in paths]))
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench.exafs.single_path"],
        cwd=folder, capture_output=True, text=True, check=False,
    )
    out = folder / OUTPUT
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
        raise RuntimeError(
            f"{folder}: FEFF8L genfmt (larch Feff8L_XAFSPath) failed with exit status"
            f" {proc.returncode}:\n{tail}"
        )
    with np.load(out, allow_pickle=False) as data:
        return {name: np.array(data[name]) for name in (*FIELDS, "reff")}


def _main() -> int:
    """Child process: read single_path_in.json in the working directory, write
    single_path_out.npz."""
    from larch.xafs.feff8lpath import Feff8L_XAFSPath

    paths = json.loads(Path(INPUT).read_text())
    columns: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS}
    reff = []
    for scatterers in paths:
        path = Feff8L_XAFSPath(phase_file="phase.pad")
        for x, y, z, ipot in scatterers:
            path.add_scatterer(x=x, y=y, z=z, ipot=int(ipot))
        path.calculate_xafs()
        for name in FIELDS:
            columns[name].append(np.asarray(getattr(path, name), dtype=float))
        reff.append(float(path.reff))
    np.savez(OUTPUT, reff=np.array(reff), **{k: np.array(v) for k, v in columns.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
