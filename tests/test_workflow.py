"""The Snakemake workflow: the DAG of the default study, the fetch rule, config refusal."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys


def snakemake(repo, workdir, *args, mirror=None, check=True):
    env = {**os.environ}
    if mirror is not None:
        env["DUALBENCH_DATA_MIRROR"] = str(mirror)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"),
         "--directory", str(workdir), *args],
        capture_output=True, text=True, env=env, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    return counts


def test_dry_run_default_study(repo, tmp_path):
    proc = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config" / "config.yaml"))
    counts = job_counts(proc.stdout)
    n_runs = 6  # config.yaml: N in {0, 2, 10}, seeds 0 and 1, one model
    assert counts["fetch_data"] == 3
    assert counts["prepare_frames"] == 1
    assert counts["vanilla_model"] == 2  # one per seed (the vanilla MD's seed differs)
    assert counts["fine_tune"] == n_runs - 2
    assert counts["dft_metrics"] == n_runs
    assert counts["run_md"] == n_runs and counts["snapshot_chi"] == n_runs
    assert counts["summary"] == 1 and counts["convergence"] == 1


def test_exafs_arm_at_fewer_n_than_the_dft_arm(repo, tmp_path):
    """sweep.exafs_n_frames: every N is fine-tuned and scored on the DFT frames, but only
    the listed N run MD and the EXAFS arm."""
    text = (repo / "config" / "config.yaml").read_text()
    cfg = tmp_path / "fewer.yaml"
    cfg.write_text(text.replace("  n_frames: [0, 2, 10]\n",
                                "  n_frames: [0, 2, 10]\n  exafs_n_frames: [0, 10]\n", 1))
    proc = snakemake(repo, tmp_path, "-n", "--configfile", str(cfg))
    counts = job_counts(proc.stdout)
    assert counts["dft_metrics"] == 6 and counts["fine_tune"] == 4
    assert counts["run_md"] == 4 and counts["snapshot_chi"] == 4
    assert "/n2/seed0/md/" not in proc.stdout and "/n10/seed0/md/" in proc.stdout


def test_exafs_arm_at_fewer_seeds_than_the_dft_arm(repo, tmp_path):
    """sweep.exafs_seeds: every seed is fine-tuned and scored on the DFT frames, only the
    listed seeds run MD (and the fixed potentials come from one of them)."""
    text = (repo / "config" / "config.yaml").read_text()
    cfg = tmp_path / "fewer.yaml"
    cfg.write_text(text.replace("  seeds: [0, 1]", "  seeds: [0, 1, 2]\n  exafs_seeds: [1]", 1))
    proc = snakemake(repo, tmp_path, "-n", "--configfile", str(cfg))
    counts = job_counts(proc.stdout)
    assert counts["dft_metrics"] == 9 and counts["fine_tune"] == 6
    assert counts["run_md"] == 3 and counts["snapshot_chi"] == 3
    assert "/n10/seed1/md/" in proc.stdout
    assert "/seed0/md/" not in proc.stdout and "/seed2/md/" not in proc.stdout


def test_bad_config_stops_before_any_job(repo, tmp_path):
    text = (repo / "config" / "config.yaml").read_text()
    bad = tmp_path / "hot.yaml"
    bad.write_text(text.replace("temperature_K: 300", "temperature_K: hot"))
    proc = snakemake(repo, tmp_path, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert "materials.W.temperature_K: 'hot' is not of type 'number'" in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()


def test_configfile_replaces_default(repo, tmp_path):
    """A study config given with --configfile does not inherit config/config.yaml's keys."""
    cfg = tmp_path / "tiny.yaml"
    text = (repo / "config" / "test.yaml").read_text().replace("  W:\n", "  Wx:\n", 1)
    cfg.write_text(text)
    proc = snakemake(repo, tmp_path, "-n", "--configfile", str(cfg))
    assert "results/Wx/" in proc.stdout
    assert "results/W/" not in proc.stdout


def test_fetch_rule_uses_mirror_and_checks_sha(repo, mirror, tmp_path):
    target = "resources/W/experiment/W_metal_rt_01.xdi"
    snakemake(repo, tmp_path, target, "--cores", "1", "--configfile",
              str(repo / "config" / "test.yaml"), mirror=mirror)
    data = (tmp_path / target).read_bytes()
    assert hashlib.sha256(data).hexdigest().startswith("b2e50a28")
    assert (tmp_path / "results/W/logs/fetch_data/experiment/W_metal_rt_01.xdi.log").is_file()
    assert (tmp_path / "results/W/benchmarks/fetch_data/experiment/W_metal_rt_01.xdi.tsv").is_file()


def test_fetch_rule_refuses_wrong_checksum(repo, mirror, tmp_path):
    text = (repo / "config" / "test.yaml").read_text()
    wrong = text.replace("b2e50a289e34699288aae791de779a4883fa2a47d67d99a105e58d83066b0aed",
                         "f" * 64)
    cfg = tmp_path / "wrong.yaml"
    cfg.write_text(wrong)
    target = "resources/W/experiment/W_metal_rt_01.xdi"
    env_mirror = tmp_path / "only_xdi"
    env_mirror.mkdir()
    (env_mirror / "W_metal_rt_01.xdi").write_bytes(
        (mirror / "exafs/W_L3_foil/W_metal_rt_01.xdi").read_bytes()
    )
    proc = snakemake(repo, tmp_path, target, "--cores", "1", "--configfile", str(cfg),
                     mirror=env_mirror, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results/W/logs/fetch_data/experiment/W_metal_rt_01.xdi.log").read_text()
    # the mirror holds the file under its name: say that its checksum differs, both sums
    assert "checksum differs" in log and "f" * 64 in log
    assert "b2e50a289e34699288aae791de779a4883fa2a47d67d99a105e58d83066b0aed" in log
    assert not (tmp_path / target).exists()


def test_relative_mirror_from_the_shell_folder(repo, mirror, tmp_path):
    """The README's `DUALBENCH_DATA_MIRROR=../shared/data`, given in a shell whose folder
    is not Snakemake's working directory (--directory), as the tests run it."""
    shell = tmp_path / "clone"
    shell.mkdir()
    relative = os.path.relpath(mirror, shell)
    workdir = tmp_path / "deeper" / "work"  # where ../.. points elsewhere
    target = "resources/W/experiment/W_metal_rt_01.xdi"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
         str(workdir), target, "--cores", "1", "--configfile", str(repo / "config" / "test.yaml")],
        capture_output=True, text=True, timeout=600, cwd=shell,
        env={**os.environ, "DUALBENCH_DATA_MIRROR": relative, "PWD": str(shell)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = (workdir / target).read_bytes()
    assert hashlib.sha256(data).hexdigest().startswith("b2e50a28")


def test_every_rule_has_log_benchmark_conda_resources(repo, workflow_rules):
    seen = set()
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for rule in re.split(r"\nrule ", smk.read_text())[1:]:
            name = rule.split(":", 1)[0]
            seen.add(name)
            for directive in ("log:", "benchmark:", "conda:", "resources:"):
                assert directive in rule, f"{smk.name}: rule {name} lacks {directive}"
    assert seen == workflow_rules


def test_profile_slurm_by_name_from_the_repository_root(repo, tmp_path):
    """`snakemake --profile slurm`, as the README says, for a user with no profile of that
    name in their Snakemake config folder: Snakemake looks in the current folder first,
    where `slurm` links to profiles/slurm, so no install step is needed."""
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n",
         "--directory", str(tmp_path / "work"), "--configfile", "config/test.yaml"],
        capture_output=True, text=True, timeout=600, cwd=repo,
        env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Using profiles slurm and workflow specific profile" in proc.stderr
    assert "run_md" in proc.stdout


def test_scoring_rules_run_before_more_md(repo):
    """A run is scored as soon as its model or MD exists (a killed study keeps every
    score it could have had); MD, training and labelling keep the default priority."""
    rules = {}
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for rule in re.split(r"\nrule ", smk.read_text())[1:]:
            match = re.search(r"\n    priority: (\d+)", rule)
            rules[rule.split(":", 1)[0]] = int(match.group(1)) if match else 0
    scoring = {"dft_metrics", "md_diagnostics", "snapshot_chi", "average_chi"}
    assert {name for name, priority in rules.items() if priority > 0} == scoring
    # One thread each: beside single-thread MD on two cores a 2-thread job would wait for
    # two free cores at once, which comes only when the MD is all done.
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        for rule in re.split(r"\nrule ", smk.read_text())[1:]:
            if rule.split(":", 1)[0] in scoring:
                threads = re.search(r"\n    threads: (\d+)", rule)
                assert threads is None or threads.group(1) == "1", rule.split(":", 1)[0]
