"""Conformance with the snakemake-workflows catalog: `snakemake --lint` clean, helper
functions in common.smk (and its common_<stage>.smk parts) only, one schema file, a
LICENSE and a config/README.md."""

from __future__ import annotations

import re
import subprocess
import sys


def test_snakemake_lint_reports_no_lints(repo):
    """`snakemake --lint` (the catalog's own check) finds nothing: it exits 1 on a lint, and
    its output is checked too, so that a lint can never pass silently."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--lint"],
        capture_output=True, text=True, timeout=300, cwd=repo,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output


def test_rule_files_hold_rules_only(repo):
    """Every helper `def` lives in common.smk or a common_<stage>.smk beside it, which hold
    no rules; the other rules files hold rules only; and none is past 500 lines."""
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        assert len(text.splitlines()) <= 500, f"{smk.name} is past 500 lines: split it"
        if smk.name == "common.smk" or smk.name.startswith("common_"):
            rules = re.findall(r"^(?:local)?rule (\w+)", text, flags=re.M)
            assert not rules, f"{smk.name} holds rules {rules}: helpers only"
            continue
        defs = re.findall(r"^\s*def (\w+)", text, flags=re.M)
        assert not defs, f"{smk.name} defines {defs}: move them to common.smk"


def test_one_schema_file_which_the_workflow_validates_with(repo):
    """The config schema exists once, in the package (src/dualbench/schemas/, which a pip
    install carries); the workflow validates through the package (common.smk calls
    dualbench.workflow.study_config), so there is no second copy to keep equal."""
    package_schema = repo / "src" / "dualbench" / "schemas" / "config.schema.yaml"
    assert package_schema.is_file() and not package_schema.is_symlink()
    copies = [p for p in repo.rglob("*.schema.yaml") if ".snakemake" not in p.parts]
    assert copies == [package_schema], copies
    common = (repo / "workflow" / "rules" / "common.smk").read_text()
    assert "study_config(" in common


def test_license_matches_pyproject(repo):
    license_text = (repo / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License\n")
    assert "Copyright (c) 2026, the dualbench authors" in license_text
    pyproject = (repo / "pyproject.toml").read_text()
    assert re.search(r'^license\s*=.*"BSD-3-Clause"', pyproject, flags=re.M)


def test_config_readme_describes_every_config(repo):
    readme = (repo / "config" / "README.md").read_text()
    configs = sorted(p.name for p in (repo / "config").glob("*.yaml"))
    assert configs
    missing = [name for name in configs if f"`{name}`" not in readme]
    assert not missing, f"config/README.md does not describe {missing}"
