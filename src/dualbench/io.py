"""Atomic output writing and provenance shared by every stage.

Outputs are written to a temporary file beside the target and renamed into place, so
a killed job never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PROVENANCE_PACKAGES = ("dualbench", "chgnet", "torch", "xraylarch", "ase", "pymatgen", "numpy")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Mode of finished outputs: what a plain open() would give (mkstemp's 0600 is too strict
#: for results shared on a cluster).
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_writable(
    target: str | Path, folder: bool = False, name: str | Path | None = None
) -> Path:
    """Make sure ``target`` (a folder when ``folder``; else a file, or a folder when it has
    no suffix) can be written, before a long computation whose result goes there.

    Creates the folder and a probe file in it; a ValueError names the path (or ``name``,
    the file to be written there) otherwise.
    """
    target = Path(target)
    directory = target if folder or not target.suffix else target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            f"{name or target}: cannot write there ({err.strerror or err}); nothing was"
            " computed"
        ) from None
    return directory


def write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(target: str | Path, frame: Any) -> None:
    """Write a pandas DataFrame as CSV atomically (no index)."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def package_versions(names: tuple[str, ...] = PROVENANCE_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this package's source),
    with ``-dirty`` when tracked files are modified; None outside a checkout."""
    path = Path(__file__).parent if path is None else path
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


_CONTEXT: dict[str, Any] = {}


def set_provenance_context(**values: Any) -> None:
    """Values every later :func:`provenance` record of this process carries (config hash,
    seeds, rule, wildcards); set once by a workflow job at its start."""
    _CONTEXT.update(values)


def provenance(config_hash: str | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance block every result JSON carries: package versions, git commit,
    config hash, seeds, plus the process context and ``extra``."""
    record: dict[str, Any] = {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "config_hash": config_hash,
        "seeds": None,
    }
    record.update(_CONTEXT)
    if config_hash is not None:
        record["config_hash"] = config_hash
    if "seed" in extra:
        record["seeds"] = [extra.pop("seed")]
    record.update(extra)
    return record


def read_json(path: str | Path) -> Mapping[str, Any]:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
