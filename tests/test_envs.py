"""Conda environments (envs/*.yaml) for `--sdm conda`: they parse, every rule names one,
and their pins agree with pyproject.toml.  Nothing is built (no conda channels here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge names that differ from the PyPI names used in pyproject.toml.
CONDA_TO_PYPI = {"pytorch": "torch", "dftd3-python": "dftd3"}


def pyproject_pins() -> dict[str, str]:
    """{canonical name: version} of the `==` pins in pyproject.toml (all dependency lists)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    pins = {}
    for spec in specs:
        req = Requirement(spec)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


def env_pins(env: dict) -> dict[str, tuple[str, str]]:
    """{canonical name: (version, how)} of the pinned packages of a conda env file:
    conda entries `name=1.2` or `name==1.2` and pip entries `name==1.2`."""
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                if pip_dep.startswith("-"):  # -e .., --index-url ...
                    continue
                req = Requirement(pip_dep)
                exact = [s.version for s in req.specifier if s.operator == "=="]
                if exact:
                    pins[canonicalize_name(req.name)] = (exact[0], f"pip: {pip_dep}")
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*={1,2}\s*([^=<>,\s|*]+)", dep)
        if match:
            name = CONDA_TO_PYPI.get(match[1], match[1])
            pins[canonicalize_name(name)] = (match[2], f"conda: {dep}")
    return pins


def load_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), f"{path.name}: not a mapping"
    return env


def test_env_files_exist():
    assert ENV_FILES, "no envs/*.yaml"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_parses(path):
    env = load_env(path)
    assert env.get("channels"), f"{path.name}: no channels"
    deps = env.get("dependencies")
    assert isinstance(deps, list) and deps, f"{path.name}: no dependencies list"
    for dep in deps:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected mapping {dep}"
            assert all(isinstance(d, str) for d in dep["pip"]), f"{path.name}: {dep}"
            assert "pip" in deps, f"{path.name}: a pip: list needs pip among the dependencies"
        else:
            assert isinstance(dep, str), f"{path.name}: {dep!r}"
    # Every pip requirement is well formed (a typo would only show when conda builds).
    for dep in deps:
        if isinstance(dep, dict):
            for pip_dep in dep["pip"]:
                if not pip_dep.startswith("-"):
                    Requirement(pip_dep)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(path):
    project_pins = pyproject_pins()
    disagree = [
        f"{how} but pyproject.toml pins {name}=={project_pins[name]}"
        for name, (version, how) in env_pins(load_env(path)).items()
        if name in project_pins and version != project_pins[name]
    ]
    assert disagree == [], f"{path.name}: " + "; ".join(disagree)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_meets_requires_python(path):
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    pythons = [d for d in load_env(path)["dependencies"]
               if isinstance(d, str) and re.match(r"python\s*=", d)]
    assert len(pythons) == 1, f"{path.name}: pin python exactly once ({pythons})"
    version = re.split(r"={1,2}", pythons[0], maxsplit=1)[1].strip()
    assert version in SpecifierSet(requires), f"{path.name}: python {version} vs {requires}"


def model_envs() -> dict[str, str]:
    """MODEL_ENVS of common.smk: the env of each model kind's rules, which it takes from
    the backend registry (relative to workflow/rules/)."""
    from dualbench.models.backend import conda_env, kinds

    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r"^MODEL_ENVS = .*conda_env\(kind\)", text, flags=re.M), \
        "common.smk: MODEL_ENVS does not ask the registry"
    return {kind: f"../../{conda_env(kind)}" for kind in kinds()}


#: conda: functions of common.smk, each returning one of MODEL_ENVS by model kind
ENV_FUNCTIONS = ("get_model_env", "get_sampling_env")


def rule_conda_envs() -> dict[str, tuple[Path, list[str] | None]]:
    """{rule: the env files its `conda:` directive can give, or None} for
    workflow/rules/*.smk: a literal path, or a function of ENV_FUNCTIONS (every model
    kind's env)."""
    envs = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks = re.split(r"^rule (\w+):\s*$", smk.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # up to the next top level
            match = re.search(r"^\s+conda:\s*\n\s+[\"']([^\"']+)[\"']", body, flags=re.M)
            function = re.search(r"^\s+conda:\s*\n\s+(\w+)\s*$", body, flags=re.M)
            if match:
                envs[name] = (smk, [match[1]])
            elif function and function[1] in ENV_FUNCTIONS:
                envs[name] = (smk, sorted(set(model_envs().values())))
            else:
                envs[name] = (smk, None)
    return envs


def test_every_model_kind_has_an_env():
    from dualbench.models.backend import kinds

    assert set(model_envs()) == set(kinds())


def test_every_rule_names_an_existing_env(workflow_rules):
    envs = rule_conda_envs()
    assert workflow_rules <= set(envs), "rules not found in workflow/rules/*.smk"
    problems = []
    for name, (smk, files) in sorted(envs.items()):
        if files is None:
            problems.append(f"{name} ({smk.name}): no conda: directive")
            continue
        for env in files:
            path = (smk.parent / env).resolve()  # Snakemake resolves it next to the .smk
            if not path.is_file():
                problems.append(f"{name} ({smk.name}): {env} does not exist")
            elif path.parent != REPO / "envs":
                problems.append(f"{name} ({smk.name}): {env} is not under envs/")
    assert problems == []


# --- what Snakemake does with an env file (snakemake/deployment/conda.py) ---------------
# `--sdm conda` copies envs/NAME.yaml to <conda prefix>/<hash>.yaml and runs
# `conda env create --file` on that copy, so a relative path in it (`-e ..`) points into
# the conda prefix, not at this repository.  It then copies envs/NAME.post-deploy.sh to
# <hash>.post-deploy.sh and runs it inside the new env, from Snakemake's working directory.


def _pip_entries(path: Path) -> list[str]:
    return [entry for dep in load_env(path)["dependencies"] if isinstance(dep, dict)
            for entry in dep.get("pip", [])]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_holds_no_local_path(path):
    """Nothing in an env file may depend on where Snakemake puts its copy of it."""
    for entry in _pip_entries(path):
        assert not entry.startswith(("-e", "-r", ".", "/", "file:")) and ".." not in entry, (
            f"{path.name}: pip entry {entry!r} is a local path, wrong in Snakemake's copy"
        )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_post_deploy_script_installs_the_repository_from_anywhere(path, tmp_path):
    """Snakemake's name for the script (the env file's .yaml replaced by .post-deploy.sh),
    run from a copy in a scratch folder as Snakemake runs it; pip only says what it would
    install (--dry-run, no build isolation: no download)."""
    script = path.with_name(path.name.removesuffix(".yaml") + ".post-deploy.sh")
    assert script.is_file(), f"{script.name} missing: the env would lack the dualbench package"
    copy = tmp_path / "0123abcd.post-deploy.sh"
    copy.write_bytes(script.read_bytes())
    env = {**os.environ, "DUALBENCH_REPO": str(REPO), "PIP_DRY_RUN": "1",
           "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["sh", str(copy)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would install dualbench-" in proc.stdout, proc.stdout
    # without the repository it stops with a message, not with pip's error
    env["DUALBENCH_REPO"] = str(tmp_path)
    proc = subprocess.run(["sh", str(copy)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "is not the dualbench repository" in proc.stderr


def test_snakefile_exports_the_repository_for_post_deploy():
    # update(), not os.environ["..."] = ...: `snakemake --lint` takes the latter for a read
    # of a variable that the user must set (tests/test_catalog.py).
    text = (REPO / "Snakefile").read_text()
    assert "os.environ.update(DUALBENCH_REPO=workflow.basedir)" in text


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pip_part_resolves(path):
    """The pip part of each env, offline: every pin is a valid requirement that the test
    environment (installed from pyproject.toml, whose pins these agree with) satisfies."""
    entries = _pip_entries(path)
    if not entries:
        pytest.skip(f"{path.name} has no pip part")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
         "--disable-pip-version-check", *entries],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would install" not in proc.stdout, proc.stdout
