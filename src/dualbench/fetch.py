"""Public data sources: fetch by URL with a SHA-256 check, or copy from an offline mirror.

A source is the config mapping ``{url, sha256, format}`` or ``{path, format[, sha256]}``.
When the environment variable ``DUALBENCH_DATA_MIRROR`` names a folder, a file there
whose SHA-256 matches is copied instead of downloading, so studies and tests run
without a network.  A checksum mismatch is an error and leaves no file behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from dualbench.io import atomic_path

MIRROR_ENV = "DUALBENCH_DATA_MIRROR"
CHUNK = 1 << 20
log = logging.getLogger(__name__)


class FetchError(RuntimeError):
    """A source that could not be fetched or did not match its checksum."""


def sha256_of(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_filename(source: Mapping[str, Any]) -> str:
    """The file name a source is stored under in resources/ (the URL's or path's last part)."""
    if "url" in source:
        name = PurePosixPath(unquote(urlparse(source["url"]).path)).name
    else:
        name = Path(source["path"]).name
    if not name:
        raise FetchError(f"source {dict(source)} has no file name")
    return name


def mirror_folder(value: str | Path | None = None) -> Path | None:
    """The mirror folder ``value`` (default ``$DUALBENCH_DATA_MIRROR``) as an absolute path.

    A relative path means the folder it was given in: the shell's ``$PWD`` (which a
    ``snakemake --directory`` or a job's own working directory does not change), else the
    current directory.  None when unset.
    """
    value = os.environ.get(MIRROR_ENV) if value is None else value
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    candidates = []
    shell_dir = os.environ.get("PWD")
    if shell_dir and Path(shell_dir).is_dir():
        candidates.append(Path(shell_dir) / path)
    candidates.append(Path.cwd() / path)
    found = next((c for c in candidates if c.is_dir()), candidates[0])
    return Path(os.path.normpath(found))


def same_name_in_mirror(mirror: str | Path, name: str) -> list[tuple[Path, str]]:
    """(path, SHA-256) of every file under ``mirror`` named ``name``."""
    return [(p, sha256_of(p)) for p in sorted(Path(mirror).rglob(name)) if p.is_file()]


def find_in_mirror(mirror: str | Path, sha256: str, name: str | None = None) -> Path | None:
    """A file under ``mirror`` whose SHA-256 is ``sha256``; files named ``name`` are tried first."""
    mirror = Path(mirror)
    if not mirror.is_dir():
        raise FetchError(f"{MIRROR_ENV}={mirror} is not a folder")
    files = sorted(p for p in mirror.rglob("*") if p.is_file())
    if name:
        files.sort(key=lambda p: p.name != name)
    for path in files:
        if sha256_of(path) == sha256:
            return path
    return None


def _download(url: str, dest: Path, timeout_s: float = 60.0) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise FetchError(
            f"could not download {url}: {err}. Offline? Set {MIRROR_ENV} to a folder that "
            "holds the file (see README, 'Offline data')."
        ) from err


def _download_or_explain(source: Mapping[str, Any], dest: Path, mirror: Path | None) -> None:
    """Download; when that fails and the mirror holds a file of the same name whose
    checksum differs from the config's, say so with both sums (a typo in ``sha256`` or
    another version of the file), rather than only 'Offline?'."""
    try:
        _download(source["url"], dest)
    except FetchError as err:
        name = source_filename(source)
        near = same_name_in_mirror(mirror, name) if mirror is not None else []
        if not near:
            raise
        found = "; ".join(f"{path} has sha256 {digest}" for path, digest in near)
        raise FetchError(
            f"the mirror {mirror} holds {name}, but its checksum differs from the config's:"
            f" the config expects sha256 {source.get('sha256')}, {found}. Correct `sha256`"
            f" if the file is the right one (and the download failed too: {err})"
        ) from err


def fetch(source: Mapping[str, Any], dest: str | Path, mirror: str | Path | None = None) -> Path:
    """Put the source's file at ``dest`` after checking its SHA-256; returns ``dest``.

    ``mirror`` defaults to the folder named by ``DUALBENCH_DATA_MIRROR``.  Nothing is
    left at ``dest`` when the file cannot be had or its checksum differs.
    """
    dest = Path(dest)
    expected = source.get("sha256")
    if mirror is None:
        mirror = mirror_folder()
        if mirror is not None and not mirror.is_dir():
            log.warning("%s=%s is not a folder; ignoring it", MIRROR_ENV, mirror)
            mirror = None
    else:
        mirror = mirror_folder(mirror)
    with atomic_path(dest) as tmp:
        if "path" in source:
            local = Path(source["path"])
            if not local.is_file():
                raise FetchError(f"source path {local} does not exist")
            shutil.copyfile(local, tmp)
            origin = str(local)
        else:
            hit = None
            if mirror is not None and expected:
                hit = find_in_mirror(mirror, expected, source_filename(source))
            if hit is not None:
                log.info("copying %s from mirror %s", hit.name, mirror)
                shutil.copyfile(hit, tmp)
                origin = str(hit)
            else:
                if mirror is not None:
                    log.info("%s not in mirror %s; downloading", source_filename(source), mirror)
                log.info("downloading %s", source["url"])
                _download_or_explain(source, tmp, mirror)
                origin = source["url"]
        if expected:
            actual = sha256_of(tmp)
            if actual != expected:
                raise FetchError(
                    f"checksum mismatch for {origin}: expected sha256 {expected}, got {actual}; "
                    f"{dest} was not written"
                )
        log.info("wrote %s (sha256 %s)", dest, expected or "not checked")
    return dest
