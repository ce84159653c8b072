"""Data sources: mirror hits, checksum mismatches, missing sources; nothing half-written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from dualbench.fetch import FetchError, fetch, find_in_mirror, source_filename

W_XDI_SHA = "b2e50a289e34699288aae791de779a4883fa2a47d67d99a105e58d83066b0aed"
UNREACHABLE = "http://127.0.0.1:9/W_metal_rt_01.xdi"  # discard port on loopback: refused


def _leftovers(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_mirror_hit_copies_the_file(mirror, tmp_path):
    dest = tmp_path / "out" / "W_metal_rt_01.xdi"
    source = {"url": UNREACHABLE, "sha256": W_XDI_SHA, "format": "xdi"}
    fetch(source, dest, mirror=mirror)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == W_XDI_SHA
    assert _leftovers(dest.parent) == ["W_metal_rt_01.xdi"]


def test_mirror_found_by_checksum_not_name(tmp_path):
    mirror = tmp_path / "mirror" / "deep"
    mirror.mkdir(parents=True)
    (mirror / "renamed.bin").write_bytes(b"payload")
    (mirror / "other.bin").write_bytes(b"other")
    sha = hashlib.sha256(b"payload").hexdigest()
    assert find_in_mirror(tmp_path / "mirror", sha, "wanted.bin") == mirror / "renamed.bin"
    assert find_in_mirror(tmp_path / "mirror", "0" * 64) is None


def test_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "data.txt"
    src.write_text("real content")
    dest = tmp_path / "out" / "data.txt"
    with pytest.raises(FetchError, match="checksum mismatch.*was not written"):
        fetch({"url": src.as_uri(), "sha256": "0" * 64, "format": "ascii"}, dest, mirror=None)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_file_url_download_with_checksum(tmp_path):
    src = tmp_path / "data.txt"
    src.write_text("real content")
    sha = hashlib.sha256(b"real content").hexdigest()
    dest = tmp_path / "out" / "copy.txt"
    fetch({"url": src.as_uri(), "sha256": sha, "format": "ascii"}, dest, mirror=None)
    assert dest.read_text() == "real content"


def test_missing_source_names_url_and_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv("DUALBENCH_DATA_MIRROR", raising=False)
    dest = tmp_path / "out" / "W_metal_rt_01.xdi"
    with pytest.raises(FetchError, match=r"could not download http://127\.0\.0\.1:9/.*"
                                         r"DUALBENCH_DATA_MIRROR"):
        fetch({"url": UNREACHABLE, "sha256": W_XDI_SHA, "format": "xdi"}, dest)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_mirror_without_the_file_falls_back_to_url(tmp_path):
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    with pytest.raises(FetchError, match="could not download"):
        fetch({"url": UNREACHABLE, "sha256": W_XDI_SHA, "format": "xdi"},
              tmp_path / "x.xdi", mirror=empty)


def test_mirror_env_variable_is_used(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("DUALBENCH_DATA_MIRROR", str(mirror))
    dest = tmp_path / "W.xdi"
    fetch({"url": UNREACHABLE, "sha256": W_XDI_SHA, "format": "xdi"}, dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == W_XDI_SHA


def test_local_path_source(tmp_path):
    src = tmp_path / "frames.xyz"
    src.write_text("x")
    fetch({"path": str(src), "format": "extxyz"}, tmp_path / "copy.xyz")
    assert (tmp_path / "copy.xyz").read_text() == "x"
    with pytest.raises(FetchError, match="does not exist"):
        fetch({"path": str(tmp_path / "nope.xyz"), "format": "extxyz"}, tmp_path / "c2.xyz")


def test_source_filename():
    assert source_filename({"url": "https://host/a/b/W%20Test.json"}) == "W Test.json"
    assert source_filename({"path": "data/frames.xyz"}) == "frames.xyz"


def test_cli_fetch(mirror, tmp_path):
    dest = tmp_path / "W.xdi"
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "fetch", "--url", UNREACHABLE,
         "--sha256", W_XDI_SHA, "--out", str(dest), "--mirror", str(mirror)],
        capture_output=True, text=True, env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == W_XDI_SHA
    assert dest.read_bytes() == (mirror / "exafs/W_L3_foil/W_metal_rt_01.xdi").read_bytes()
    bad = subprocess.run(
        [sys.executable, "-m", "dualbench", "fetch", "--url", UNREACHABLE,
         "--sha256", "1" * 64, "--out", str(tmp_path / "bad.xdi"), "--mirror", str(mirror)],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2
    assert "could not download" in bad.stderr
    assert not (tmp_path / "bad.xdi").exists()


def test_missing_mirror_fails_when_required(repo, tmp_path):
    """With DUALBENCH_REQUIRE_MIRROR=1 (as in CI) a test needing the mirror fails instead of
    skipping when the mirror is not where DUALBENCH_DATA_MIRROR says."""
    test = "tests/test_fetch.py::test_mirror_env_variable_is_used"
    base = {**os.environ, "DUALBENCH_DATA_MIRROR": str(tmp_path / "nowhere")}
    base.pop("DUALBENCH_REQUIRE_MIRROR", None)
    results = {}
    for required in ("0", "1"):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
            capture_output=True, text=True, cwd=repo,
            env={**base, "DUALBENCH_REQUIRE_MIRROR": required},
        )
        results[required] = (proc.returncode, proc.stdout)
    assert results["0"][0] == 0 and "1 skipped" in results["0"][1]
    assert results["1"][0] == 1 and "DUALBENCH_REQUIRE_MIRROR=1" in results["1"][1]
    assert "nowhere" in results["1"][1]


def test_sha_typo_with_the_file_in_the_mirror_says_checksum_differs(tmp_path):
    """A typo in `sha256` while the mirror holds the file under its name: the error gives
    both sums instead of only 'could not download ... Offline?'."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "W_metal_rt_01.xdi").write_bytes(b"the measured spectrum")
    real = hashlib.sha256(b"the measured spectrum").hexdigest()
    typo = real[:-1] + ("0" if real[-1] != "0" else "1")
    dest = tmp_path / "out" / "W_metal_rt_01.xdi"
    with pytest.raises(FetchError) as err:
        fetch({"url": UNREACHABLE, "sha256": typo, "format": "xdi"}, dest, mirror=mirror)
    message = str(err.value)
    assert "checksum differs" in message
    assert f"expects sha256 {typo}" in message
    assert f"{mirror / 'W_metal_rt_01.xdi'} has sha256 {real}" in message
    assert _leftovers(dest.parent) == []


def test_relative_mirror_is_taken_from_the_folder_it_was_given_in(tmp_path, monkeypatch):
    """`DUALBENCH_DATA_MIRROR=../shared/data` means the shell's folder ($PWD), also from a
    job running in another working directory (snakemake --directory)."""
    from dualbench.fetch import mirror_folder

    shell = tmp_path / "clone"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    shell.mkdir()
    job = tmp_path / "elsewhere"
    job.mkdir()
    monkeypatch.setenv("PWD", str(shell))
    monkeypatch.chdir(job)
    monkeypatch.setenv("DUALBENCH_DATA_MIRROR", "../shared/data")
    assert mirror_folder() == tmp_path / "shared" / "data"
    assert mirror_folder("../shared/data") == tmp_path / "shared" / "data"
    monkeypatch.delenv("DUALBENCH_DATA_MIRROR")
    assert mirror_folder() is None
