"""Running on Slurm: the profiles (checked without Slurm), and the tiny study through
sbatch on a real Slurm (`.ci/slurm-up` starts a single-node one; marked `slurm`).

The cluster run is

    snakemake --profile profiles/slurm --profile profiles/slurm-test

profiles/slurm-test restates the resources for the 2-CPU test node and polls with
squeue (no slurmdbd, so no sacct); see the comments in both profiles.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
TEST_PROFILE = REPO / "profiles" / "slurm-test"
GPU_RULES = {"fine_tune", "run_md"}


def snakemake(workdir, *args, mirror=None, timeout=600):
    env = {**os.environ}
    if mirror is not None:
        env["DUALBENCH_DATA_MIRROR"] = str(mirror)
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
         "--directory", str(workdir), *args],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir,
    )


def load_profile(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


def planned_jobs(dry_run_output: str) -> list[dict]:
    """Every job of a dry run (localrules print as `rule` there): rule, threads, resources."""
    jobs = []
    for line in dry_run_output.splitlines():
        match = re.match(r"^\s*(?:local)?rule (\w+):$", line)
        if match:
            jobs.append({"rule": match[1], "threads": 1, "resources": {}})
            continue
        if not jobs:
            continue
        match = re.match(r"^\s+threads: (\d+)$", line)
        if match:
            jobs[-1]["threads"] = int(match[1])
        match = re.match(r"^\s+resources: (.+)$", line)
        if match:
            jobs[-1]["resources"] = dict(
                item.split("=", 1) for item in match[1].split(", ") if "=" in item
            )
    return jobs


# --- The profiles, without Slurm -------------------------------------------------------


def test_profiles_name_every_rule(workflow_rules):
    rules = workflow_rules
    slurm, test = load_profile(PROFILE), load_profile(TEST_PROFILE)
    assert slurm["executor"] == "slurm"
    assert rules <= set(slurm["set-resources"]), "rules missing in profiles/slurm"
    # The overlay replaces these keys whole: it must not drop a rule or a thread count.
    assert set(test["set-resources"]) == set(slurm["set-resources"])
    assert set(test["set-threads"]) == set(slurm["set-threads"])


def test_local_scheduler_does_not_poll_every_second():
    """Snakemake re-looks at its waiting jobs once per rate timespan (default 1 s), statting
    every input of every ready job: 30 % of a core on 2 cores with the suite's 727 jobs.
    The workflow profile makes it a minute; the Slurm profile keeps its own rate."""
    from snakemake.settings.types import MaxJobsPerTimespan

    local = load_profile(REPO / "profiles" / "default")
    rate = MaxJobsPerTimespan.parse_choice(local["max-jobs-per-timespan"])
    assert rate.timespan >= 30 and rate.max_jobs >= 100
    assert "max-jobs-per-timespan" in load_profile(PROFILE)


def test_gpu_only_for_fine_tuning_and_md():
    for profile in (PROFILE, TEST_PROFILE):
        resources = load_profile(profile)["set-resources"]
        with_gpu = {rule for rule, res in resources.items() if res.get("gpu")}
        assert with_gpu == GPU_RULES, profile
        for rule, res in resources.items():
            # The plugin refuses --gres/--gpus in slurm_extra; `gpu` is the way.
            assert not re.search(r"--(gres|gpus)\b", str(res.get("slurm_extra", ""))), rule


@pytest.mark.parametrize(
    "profiles", [[PROFILE], [PROFILE, TEST_PROFILE]], ids=["slurm", "slurm+slurm-test"]
)
def test_every_cluster_job_gets_cpus_memory_time(repo, tmp_path, profiles):
    """A dry run of the default study with the profiles, as Snakemake merges them with the
    rules: every job (localrules too, should they become cluster jobs) has a partition,
    runtime and memory, as many CPUs as threads, and a GPU exactly for fine-tuning and MD.
    """
    args = [arg for profile in profiles for arg in ("--profile", str(profile))]
    # As users run it, with the workflow profile (profiles/default) loaded too.  A dry run
    # caps threads at --cores (1 by default there); a real cluster run does not.
    proc = snakemake(tmp_path, "-n", *args, "--cores", "1000",
                     "--configfile", str(repo / "config" / "config.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = planned_jobs(proc.stdout)
    assert {job["rule"] for job in jobs} >= {"prepare_frames", "fine_tune", "dft_metrics"}
    for job in jobs:
        res = job["resources"]
        for key in ("slurm_partition", "runtime", "mem_mb", "cpus_per_task"):
            assert key in res, f"{job['rule']}: no {key} ({res})"
        assert int(res["cpus_per_task"]) == job["threads"], job
        assert (res.get("gpu") == "1") == (job["rule"] in GPU_RULES), job


# --- The tiny study on Slurm -----------------------------------------------------------

# The DFT arm of config/test.yaml and one MD run: prepare_frames, fine-tuning (N = 2) and
# MD (N = 0), which both ask for the GPU, and two dft_metrics go to Slurm; fetch_data and
# vanilla_model are localrules.
SLURM_TARGETS = [
    "results/W/dft/test.extxyz",
    "results/W/chgnet/n0/seed0/dft_metrics.json",
    "results/W/chgnet/n2/seed0/dft_metrics.json",
    "results/W/chgnet/n0/seed0/md/md_run.json",
]
# The local reference run: the frames and the vanilla model's metrics (the fine-tuning
# run is not repeated locally, to keep the test within a few minutes).
LOCAL_TARGETS = SLURM_TARGETS[:2]
TEST_PARTITION = load_profile(TEST_PROFILE)["default-resources"]["slurm_partition"]


def slurm_unavailable() -> str | None:
    """Why the Slurm test cannot run here, or None."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (start a test Slurm with .ci/slurm-up, as root)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"no Slurm answers: sinfo: {err}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return f"no Slurm answers: sinfo: {last} (start one with .ci/slurm-up)"
    partitions = {p.rstrip("*") for p in proc.stdout.split()}
    if TEST_PARTITION not in partitions:
        return f"Slurm has no partition {TEST_PARTITION!r} (has {sorted(partitions)})"
    return None


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_study_through_sbatch_matches_local_run(repo, mirror, tmp_path):
    reason = slurm_unavailable()
    if reason and os.environ.get("DUALBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"DUALBENCH_REQUIRE_SLURM=1 but {reason}")
    if reason:
        pytest.skip(reason)
    config = str(repo / "config" / "test.yaml")
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"

    start = time.monotonic()
    proc = snakemake(
        on_slurm, "--profile", str(PROFILE), "--profile", str(TEST_PROFILE),
        "--verbose", *SLURM_TARGETS, "--configfile", config,
        mirror=mirror, timeout=1500,
    )
    slurm_s = time.monotonic() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-20000:]

    # Which jobs went through sbatch: Snakemake's log names each Slurm job id and log.
    submitted = re.findall(
        r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", output
    )
    rules = sorted(re.search(r"/(?:rule|group)_(\w+)/", log)[1] for _, log in submitted)
    assert rules == ["dft_metrics", "dft_metrics", "fine_tune", "prepare_frames", "run_md"], (
        output
    )
    for _, log in submitted:  # kept by slurm-keep-successful-logs, under the workdir
        assert Path(log).is_file(), log
        assert Path(log).is_relative_to(on_slurm / ".snakemake" / "slurm_logs"), log
    # fine_tune and run_md asked Slurm for the (fake) GPU and got it; the others did not.
    calls = [line for line in output.splitlines() if "sbatch call:" in line]
    assert len(calls) == len(submitted), calls
    for call in calls:
        gpu_rule = "/rule_fine_tune/" in call or "/rule_run_md/" in call
        assert ("--gpus=1" in call) == gpu_rule, call

    start = time.monotonic()
    proc = snakemake(local, "--cores", "2", *LOCAL_TARGETS, "--configfile", config,
                     mirror=mirror, timeout=1500)
    local_s = time.monotonic() - start
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-20000:]
    print(f"\nSlurm run ({len(submitted)} sbatch jobs): {slurm_s:.0f} s wall; "
          f"local reference run (2 targets): {local_s:.0f} s wall")

    # The same frames and the same vanilla metrics either way.
    for name in ("train_pool.extxyz", "test.extxyz", "frames.json"):
        path = f"results/W/dft/{name}"
        assert (on_slurm / path).read_bytes() == (local / path).read_bytes(), path
    metrics = "results/W/chgnet/n0/seed0/dft_metrics.json"
    ours, theirs = (json.loads((d / metrics).read_text()) for d in (on_slurm, local))
    for key in ("force_mae_eV_per_A", "energy_mae_eV_per_atom", "stress_mae_GPa",
                "force_slope"):
        # Same model, frames and code; torch's threaded sums are not bit-reproducible from
        # one process to the next (4e-6 relative on the force MAE and 2e-5 on the stress
        # MAE seen in full-suite runs), which is not the physics: equal to 4 digits.
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    tuned = json.loads((on_slurm / "results/W/chgnet/n2/seed0/dft_metrics.json").read_text())
    assert tuned["model"]["n_frames"] == 2
    assert math.isfinite(tuned["force_mae_eV_per_A"])
    assert (on_slurm / "results/W/chgnet/n0/seed0/md/snapshots.extxyz").stat().st_size > 0
