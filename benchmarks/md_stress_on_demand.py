"""CHGNet MD with the stress computed only on the snapshot steps, against CHGNet's own
calculator (energy, forces, stress and moments on every step) in the same run.

    python benchmarks/md_stress_on_demand.py                         # W 128 atoms, WS2 150
    python benchmarks/md_stress_on_demand.py --steps 40 --snapshot-every 2 10 --threads 1

For each cell and ``snapshot_every`` it runs ``dualbench.md.driver.run_md`` (Langevin, the
same seed) with both calculators, alternating, ``--repeats`` times each, and prints the
median steps/s of both, their ratio, and whether the two runs' snapshots (positions,
forces, energies, stresses) are bitwise equal.  Cells: bcc W 4x4x4 (128 atoms, 4 fs) and
2Hc-WS2 5x5x1 (150 atoms, 2 fs), as in config/w_paper.yaml and config/tmd_paper.yaml.
Not run in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import read
from ase.spacegroup import crystal

from dualbench.md.driver import run_md
from dualbench.md.settings import md_settings
from dualbench.models.device import set_threads


def cells() -> dict[str, tuple]:
    """name: (atoms, timestep fs)."""
    w = bulk("W", "bcc", a=3.1652, cubic=True).repeat(4)
    ws2 = crystal(["W", "S"], basis=[(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.621)],
                  spacegroup=194, cellpar=[3.153, 3.153, 12.323, 90, 90, 120]).repeat((5, 5, 1))
    return {"W 128": (w, 4.0), "WS2 150": (ws2, 2.0)}


def timed_run(atoms, calc, settings, out: Path) -> tuple[float, list]:
    start = time.perf_counter()
    run_md(atoms.copy(), calc, settings, out)
    seconds = time.perf_counter() - start
    return settings.total_steps / seconds, read(out / "snapshots.extxyz", index=":")


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.positions, y.positions)
        and np.array_equal(x.get_forces(), y.get_forces())
        and np.array_equal(x.get_stress(), y.get_stress())
        and x.get_potential_energy() == y.get_potential_energy()
        for x, y in zip(a, b, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="production steps per run")
    parser.add_argument("--snapshot-every", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each calculator")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    set_threads(args.threads)

    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    from dualbench.models.chgnet_calculator import StressOnDemandCalculator

    net = CHGNet.load(verbose=False)
    net.eval()
    print(f"CHGNet 0.3.0, {args.steps} production steps, {args.threads} thread(s)")
    print(f"{'cell':>8} {'every':>5} {'baseline steps/s':>16} {'on demand':>10}"
          f" {'ratio':>6} {'bitwise equal':>13}")
    for name, (atoms, dt) in cells().items():
        warm = atoms.copy()
        with contextlib.redirect_stdout(io.StringIO()):
            warm.calc = CHGNetCalculator(net, use_device="cpu")
        warm.get_forces()  # the first call builds caches: untimed
        for every in args.snapshot_every:
            settings = md_settings({}, temperature_K=300.0, seed=0, timestep_fs=dt,
                                   equilibration_steps=1, production_steps=args.steps,
                                   snapshot_every=every, checkpoint_every=10**6, device="cpu")
            rates: dict[str, list[float]] = {"base": [], "ours": []}
            with tempfile.TemporaryDirectory(prefix="md_stress.") as tmp:
                for k in range(args.repeats):
                    with contextlib.redirect_stdout(io.StringIO()):  # "will run on cpu"
                        pair = (("base", CHGNetCalculator(net, use_device="cpu")),
                                ("ours", StressOnDemandCalculator(net, use_device="cpu")))
                    for key, calc in pair:
                        rate, frames = timed_run(atoms, calc, settings, Path(tmp) / f"{key}{k}")
                        rates[key].append(rate)
                        if key == "base":
                            base_frames = frames
                equal = same(base_frames, frames)
            base, ours = np.median(rates["base"]), np.median(rates["ours"])
            print(f"{name:>8} {every:>5} {base:>16.3f} {ours:>10.3f} {ours / base:>6.2f}"
                  f" {str(equal):>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
