"""Shared fixtures: the repository, the public data mirror, small real DFT frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_mirror() -> Path:
    """The offline mirror of public data: $DUALBENCH_DATA_MIRROR or ../shared/data.

    A relative $DUALBENCH_DATA_MIRROR (the README's `../shared/data`) is taken from the
    folder it was given in, as dualbench.fetch does, and made absolute in the environment
    of this session, so Snakemake runs in temporary folders find it too.
    """
    from dualbench.fetch import mirror_folder

    env = mirror_folder()
    if env is None:
        return REPO.parent / "shared" / "data"
    os.environ["DUALBENCH_DATA_MIRROR"] = str(env)
    return env


data_mirror()  # at import: every subprocess of the session gets the absolute path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def workflow_rules() -> set[str]:
    """The rules Snakemake itself sees (`snakemake --list-rules`), `all` excluded."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--list-rules",
         "--configfile", str(REPO / "config" / "test.yaml")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return {line.strip() for line in proc.stdout.splitlines() if line.strip()} - {"all"}


def require_mirror() -> Path:
    """The mirror's path; skip the test when it is missing, or fail it when
    DUALBENCH_REQUIRE_MIRROR=1 (CI sets it: a wrong path must not pass as skips)."""
    path = data_mirror()
    if not (path / "README.md").is_file():
        reason = f"public data mirror not found at {path} (set DUALBENCH_DATA_MIRROR)"
        if os.environ.get("DUALBENCH_REQUIRE_MIRROR") == "1":
            pytest.fail(f"DUALBENCH_REQUIRE_MIRROR=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def mirror() -> Path:
    return require_mirror()


@pytest.fixture(scope="session")
def snap_dir(mirror: Path) -> Path:
    return mirror / "dft" / "W_bcc_snap"


@pytest.fixture(scope="session")
def w_test_frames(snap_dir: Path):
    """The 30 held-out SNAP W frames (54 atoms, VASP PBE) in the internal form."""
    from dualbench.data import read_frames

    return read_frames(snap_dir / "W_Test.json", "pymatgen-json", ["W"])


@pytest.fixture(scope="session")
def vanilla_chgnet():
    """Pretrained CHGNet 0.3.0, loaded offline from the chgnet package."""
    from dualbench.models.device import set_threads
    from dualbench.models.resolve import load_model

    set_threads(2)
    return load_model("chgnet", "cpu")
