"""Which fine-tuning schedule (epochs, learning rate) per N: held-out force error of each.

    python benchmarks/finetune_schedule.py                        # WS2, the committed frames
    python benchmarks/finetune_schedule.py --pool P --test T --n 1 2 5 10 --seeds 0 1 2 \\
        --schedules 10:1e-3 10:3e-4 30:1e-4 10:1e-3:noval

For every N, seed and schedule ``EPOCHS:LR`` (``EPOCHS:LR:noval``: no validation split,
all N frames train for every epoch, no early stopping) it fine-tunes the model on the first N frames
of the seed's order of the pool (the sweep's nested subsets, :func:`dualbench.data.
select_frames`) with the study's split and early-stopping rule, then scores it on the
held-out frames (``--condition`` scores only the test frames of one condition, as
``prepare_frames`` named them: ``dft.conditions``).  It prints, per N and schedule, the
test force MAE (meV/Å) and force slope as mean and standard deviation over seeds, the
vanilla model's numbers, and the ratio of each MAE to the vanilla MAE (below 1: the
schedule helps at that N).  This is the measured comparison behind the
`finetune.schedule` of config/tmd.yaml and config/config.yaml (README: Fine-tuning
schedule).  Not run in CI.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from dualbench.data import read_frames, select_frames
from dualbench.metrics import dft_metrics
from dualbench.models.chgnet import predictions
from dualbench.models.chgnet_train import finetune
from dualbench.models.device import set_threads
from dualbench.models.resolve import load_model
from dualbench.training import FinetuneSettings

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=str(REPO / "resources/dft/WS2/train.extxyz"))
    parser.add_argument("--test", default=str(REPO / "resources/dft/WS2/test.extxyz"))
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 5, 10, 18])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schedules", nargs="+", default=["10:1e-3", "10:3e-4", "10:1e-4"],
                        help="EPOCHS:LEARNING_RATE")
    parser.add_argument("--condition", help="score only the test frames of this condition")
    parser.add_argument("--model", default="chgnet")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    set_threads(args.threads)

    pool, test = read_frames(args.pool, None), read_frames(args.test, None)
    if args.condition:
        test = [a for a in test if str(a.info.get("condition")) == args.condition]
        if not test:
            parser.error(f"no test frame of condition {args.condition!r} in {args.test}")
    base = load_model(args.model, "cpu")
    vanilla, _ = dft_metrics(test, predictions(base, test))
    v_mae = 1000 * vanilla["force_mae_eV_per_A"]
    print(f"pool {args.pool} ({len(pool)} frames), test {args.test} ({len(test)} frames)")
    print(f"vanilla {args.model}: force MAE {v_mae:.1f} meV/Å, slope "
          f"{vanilla['force_slope']:.3f}")
    print(f"{'N':>3} {'schedule':>10} {'MAE meV/Å':>14} {'slope':>14} {'MAE/vanilla':>12}"
          f" {'s/run':>6}")
    for n in args.n:
        for schedule in args.schedules:
            epochs, lr, *validation = schedule.split(":")
            settings = FinetuneSettings(epochs=int(epochs), learning_rate=float(lr),
                                        device="cpu")
            if validation == ["noval"]:  # no split at any N of this run
                settings.min_frames_for_validation = max(args.n) + 1
            maes, slopes, start = [], [], time.perf_counter()
            for seed in args.seeds:
                frames, _ = select_frames(pool, n, seed)
                result = finetune(base, frames, settings, seed)
                metrics, _ = dft_metrics(test, predictions(result.model, test))
                maes.append(1000 * metrics["force_mae_eV_per_A"])
                slopes.append(metrics["force_slope"])
            maes, slopes = np.array(maes), np.array(slopes)
            spread = maes.std(ddof=1) if len(maes) > 1 else 0.0
            slope_spread = slopes.std(ddof=1) if len(slopes) > 1 else 0.0
            seconds = (time.perf_counter() - start) / len(args.seeds)
            print(f"{n:>3} {schedule:>10} {maes.mean():>7.1f} ± {spread:<4.1f}"
                  f" {slopes.mean():>7.3f} ± {slope_spread:<5.3f} {maes.mean() / v_mae:>11.3f}x"
                  f" {seconds:>6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
