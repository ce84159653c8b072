"""Partial reruns: changing one material's entry reruns that material's jobs only.

A study of two materials, W and W2 (the W entry of config/test.yaml twice), is brought
to a finished state without computing anything: every output of `rule all` is created
empty and `snakemake --touch --forceall` records each job's provenance (params, inputs,
code, software env) exactly as a real run would (without --forceall, jobs whose empty
outputs already look up to date by mtime would get no record).  Those records are what
Snakemake's rerun triggers compare, and Snakemake, not the job scripts, decides what
reruns; so this costs seconds and does not depend on the models or FEFF, while the
check stays the real one.  A dry run with the unchanged config must then have nothing to
do (else the "after" state proves nothing).  Then one entry of W2 changes, and the dry
run must list jobs of W2, including the rule that reads the changed entry, and none of
W: no job writing under results/W/ or resources/W/.  A temperature change must also
leave W2's DFT arm (frames, fine-tuning, metrics) alone: only MD and what follows it.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml


def snakemake(repo, workdir, config, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"),
         "--directory", str(workdir), "--cores", "1", *args, "--configfile", str(config)],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, material) of every job with outputs in a dry run's job list."""
    jobs = []
    rule = None
    for line in dry_run_output.splitlines():
        match = re.match(r"^\s*(?:local)?rule (\w+):$", line)
        if match:
            rule = match[1]
            continue
        match = re.match(r"^\s+output: (.+)$", line)
        if match and rule is not None:
            first = match[1].split(", ")[0]
            parts = first.split("/")
            material = parts[1] if parts[0] in ("results", "resources") else None
            jobs.append((rule, material))
            rule = None
    return jobs


def write_config(repo, path, materials_edit=None):
    """The two-material study; materials_edit(materials) may change it before writing."""
    config = yaml.safe_load((repo / "config" / "test.yaml").read_text())
    config["materials"]["W2"] = copy.deepcopy(config["materials"]["W"])
    if materials_edit is not None:
        materials_edit(config["materials"])
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished_study(repo, tmp_path_factory):
    """A workdir where every job of the two-material study counts as done."""
    workdir = tmp_path_factory.mktemp("two_materials")
    config = write_config(repo, workdir / "two.yaml")

    # Every output of every job of `rule all`, created empty ...
    summary = snakemake(repo, workdir, config, "--summary").stdout
    outputs = [line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line]
    assert any(path.startswith("results/W2/") for path in outputs), summary
    for path in outputs:
        target = workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    # ... and recorded as made by its job with the current config.
    snakemake(repo, workdir, config, "--touch", "--forceall")

    unchanged = snakemake(repo, workdir, config, "-n")
    assert planned_jobs(unchanged.stdout) == [], unchanged.stdout
    assert "Nothing to be done" in unchanged.stdout + unchanged.stderr
    return workdir


def set_w2_temperature(materials):
    materials["W2"]["temperature_K"] = 600


def hold_out_w2_test_from_pool(materials):
    materials["W2"]["dft"]["test"] = None
    materials["W2"]["dft"]["test_fraction"] = 0.1


@pytest.mark.parametrize(
    ("edit", "changed_rule"),
    [(set_w2_temperature, "run_md"), (hold_out_w2_test_from_pool, "prepare_frames")],
    ids=["temperature", "dft_test_set"],
)
def test_changing_one_material_reruns_only_its_jobs(repo, finished_study, edit, changed_rule):
    config = write_config(repo, finished_study / f"{edit.__name__}.yaml", edit)
    proc = snakemake(repo, finished_study, config, "-n")
    jobs = planned_jobs(proc.stdout)

    # the study-wide leaderboard (results/suite/) reads every material's summary:
    # it, and only it, reruns beside W2's jobs
    study = sorted({rule for rule, material in jobs if material == "suite"})
    assert study in ([], ["leaderboard"]), proc.stdout
    others = sorted({rule for rule, material in jobs if material not in ("W2", "suite")})
    assert others == [], f"jobs outside W2 would rerun: {others}\n{proc.stdout}"
    assert changed_rule in {rule for rule, _ in jobs}, proc.stdout


def test_temperature_leaves_the_dft_arm_alone(repo, finished_study):
    """The MD temperature is no input of the DFT arm: W2's frames, fine-tuning (the GPU
    jobs) and DFT metrics stay as they are; its MD and what follows reruns."""
    config = write_config(repo, finished_study / "hot.yaml", set_w2_temperature)
    proc = snakemake(repo, finished_study, config, "-n")
    rules = {rule for rule, _ in planned_jobs(proc.stdout)}

    assert "run_md" in rules, proc.stdout
    dft_arm = {"fetch_data", "prepare_frames", "vanilla_model", "fine_tune", "dft_metrics"}
    assert sorted(rules & dft_arm) == [], proc.stdout


def _dump_study(repo, path, **dump_options):
    """The finished study's config, written back by yaml.safe_dump with ``dump_options``."""
    config = yaml.safe_load(write_config(repo, path).read_text())
    path.write_text("# written back by an editor\n" + yaml.safe_dump(config, **dump_options))
    return path


def params_changed(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, first output) of every job of a dry run that reruns because its params changed."""
    jobs, rule, output = [], None, None
    for line in dry_run_output.splitlines():
        match = re.match(r"^\s*(?:local)?rule (\w+):$", line)
        if match:
            rule, output = match[1], None
        elif (match := re.match(r"^\s+output: (.+)$", line)):
            output = match[1].split(", ")[0]
        elif re.match(r"^\s+reason: .*Params have changed", line) and rule:
            jobs.append((rule, output))
    return sorted(jobs)


@pytest.mark.parametrize(
    "dump_options",
    [{"sort_keys": True}, {"sort_keys": True, "default_flow_style": True, "indent": 4}],
    ids=["keys_sorted", "reformatted_flow_style"],
)
def test_same_config_in_another_form_reruns_nothing(repo, finished_study, dump_options):
    """Snakemake compares params by repr, and a dict's repr follows its key order: the same
    config with its keys sorted (what yaml.safe_dump or a sorting editor writes), or in
    flow style, must leave every job alone."""
    config = _dump_study(repo, finished_study / "sorted.yaml", **dump_options)
    assert config.read_text() != write_config(repo, finished_study / "orig.yaml").read_text()
    proc = snakemake(repo, finished_study, config, "-n")
    assert planned_jobs(proc.stdout) == [], proc.stdout


def test_changed_value_reruns_exactly_its_jobs(repo, finished_study):
    """A changed fine-tuning value, in a sorted config: the params of fine_tune, and only
    those, changed (the jobs after it rerun because their input does)."""
    config = yaml.safe_load(write_config(repo, finished_study / "base.yaml").read_text())
    config["finetune"]["epochs"] = config["finetune"].get("epochs", 10) + 1
    path = finished_study / "epochs.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    proc = snakemake(repo, finished_study, path, "-n")
    expected = sorted(
        ("fine_tune", f"results/{material}/chgnet/n{n}/seed0/model/model.json")
        for material in ("W", "W2")
        for n in config["sweep"]["n_frames"] if n > 0
    )
    assert params_changed(proc.stdout) == expected, proc.stdout


def test_dft_frames_leave_the_feff_and_experiment_jobs_alone(repo, finished_study):
    """The DFT frames are no input of FEFF or of the experiment's own fit: holding out
    W2's test set reruns its DFT arm and what its models make, never its potentials, path
    table, measured chi(k) or fit (they read the crystal, not the whole material entry)."""
    config = write_config(repo, finished_study / "held_out.yaml", hold_out_w2_test_from_pool)
    proc = snakemake(repo, finished_study, config, "-n")
    rules = {rule for rule, _ in planned_jobs(proc.stdout)}

    assert "prepare_frames" in rules, proc.stdout
    crystal = {"feff_potentials", "feff_paths", "experiment_chi", "fit_experiment"}
    assert sorted(rules & crystal) == [], proc.stdout
