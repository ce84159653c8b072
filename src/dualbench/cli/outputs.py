"""One writer per output folder, and nothing left behind by a refused command.

The commands that write a folder (``md``, ``exafs-average``, ``experiment``,
``finetune``) run their stage inside :func:`output_folder`:

* the folder is made and probed before anything is read or computed: an ``--out`` that
  cannot be written is refused, naming it (:func:`dualbench.io.check_writable`);
* a lock, ``OUT/.dualbench.lock``, created with ``O_CREAT | O_EXCL`` and holding the pid,
  host, start time and command line, refuses a second run into the same folder, naming
  the folder and the holder.  It is removed on exit, also on SIGTERM or SIGHUP (a Slurm
  time limit, a lost terminal).  A lock whose process is gone (on this host: no such
  process, a zombie, another process under a reused pid, a restart since) is taken over
  with a log line; a lock of another host is never guessed at: it is refused;
* a folder holding the finished outputs of an earlier run is refused without
  ``--overwrite`` (the MD's checkpoint of an unfinished run is not a finished output:
  ``md`` run again with the same arguments continues it);
* when the command fails with an exception, what this run created is removed while the
  lock is still held: the folder's new entries (all of them when this run made the folder,
  else only those named as the command's outputs), then the folders it made, if empty.
  Entries matching ``keep`` (the MD's checkpoint and guard failure, a failed FEFF run's
  work folder, which the error names) stay.  Nothing that existed before is touched.

:func:`output_files` does the making, probing and cleaning for commands that write files
(``dft-metrics``).  Snakemake jobs call the stage functions, not these: Snakemake owns
their outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dualbench.io import check_writable

log = logging.getLogger("dualbench.cli")

LOCK_NAME = ".dualbench.lock"
#: A lock file without readable contents for longer than this belongs to a run that died
#: between creating it and writing its record (which takes microseconds).
UNREADABLE_GRACE_S = 10.0

OVERWRITE_HELP = (
    "replace the outputs of a finished run in OUT (they are replaced when this run"
    " finishes; without this flag such a folder is refused)"
)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """The ``--overwrite`` flag of a command that writes a folder."""
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (recorded in the lock)."""
    argv = getattr(args, "argv", None)
    return "dualbench " + shlex.join(sys.argv[1:] if argv is None else argv)


# --------------------------------------------------------------------------------------
# Folders made, entries created


def _missing_dirs(folder: Path) -> list[Path]:
    """The folders that making ``folder`` creates, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    return missing


def _make(folder: Path, made: list[Path], name: Path | None = None) -> None:
    """check_writable (its error naming ``name``, a file to write there), removing the
    folders made when it refuses."""
    try:
        check_writable(folder, folder=True, name=name)
    except ValueError:
        _remove_empty(made)
        raise


def _remove_empty(made: Iterable[Path]) -> None:
    """Remove the folders this run made (deepest first), as long as they are empty."""
    for path in sorted(made, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except OSError:
            return


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _remove_new(folder: Path, before: set[str], outputs: tuple[str, ...] | None,
                keep: tuple[str, ...]) -> None:
    """Remove the entries of ``folder`` not in ``before`` (only those matching ``outputs``
    unless it is None), except the lock and ``keep``."""
    try:
        names = set(os.listdir(folder)) - before - {LOCK_NAME}
    except OSError:
        return
    for name in sorted(names):
        if _matches(name, keep) or (outputs is not None and not _matches(name, outputs)):
            continue
        path = folder / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            log.info("removed %s, written by this run before it failed", path)
        except OSError as err:
            log.warning("could not remove %s: %s", path, err)


# --------------------------------------------------------------------------------------
# The lock


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None off Linux
    or when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), to tell a reused pid."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    fields = _proc_stat(pid)
    return not (fields and fields[0] in ("Z", "X"))  # a zombie has finished


def _record(command: str) -> dict[str, Any]:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "process_start": _process_start(pid),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": command,
        "token": uuid.uuid4().hex,
    }


def _read_lock(lock: Path) -> dict[str, Any] | None:
    """The lock's record; None when it is empty or unreadable; FileNotFoundError when
    it is gone."""
    try:
        record = json.loads(lock.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    except FileNotFoundError:
        raise
    except OSError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def _gone(holder: dict[str, Any] | None, lock: Path) -> str | None:
    """Why the holder of ``lock`` is known to be gone; None when it may be running."""
    if holder is None:
        age = time.time() - lock.stat().st_mtime
        return f"its lock has been unreadable for {age:.0f} s" if age > UNREADABLE_GRACE_S else None
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder["pid"]
    if holder.get("boot_id") and _boot_id() and holder["boot_id"] != _boot_id():
        return f"pid {pid} ran before this host restarted"
    if not _alive(pid):
        return f"no process {pid} on this host"
    start = _process_start(pid)
    if holder.get("process_start") and start and start != holder["process_start"]:
        return f"pid {pid} is another process now"
    return None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "a run whose lock is being written or cannot be read"
    return (f"pid {holder['pid']} on {holder.get('host')}, since {holder.get('started')}:"
            f" {holder.get('command')}")


def _take_over(lock: Path, holder: dict[str, Any] | None, reason: str) -> None:
    """Remove the lock of a run that is gone.  It is first renamed aside (atomic), and
    put back if what was moved is not the lock judged stale (a run took it meanwhile)."""
    aside = lock.with_name(f"{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    try:
        moved = _read_lock(aside)
    except FileNotFoundError:
        return
    if moved != holder:
        with contextlib.suppress(OSError):
            os.link(aside, lock)  # fails when yet another run holds the lock now
        aside.unlink(missing_ok=True)
        return
    aside.unlink(missing_ok=True)
    log.warning("%s: taking over the lock of a run that is gone (%s): %s",
                lock.parent, reason, _describe(holder))


def _in_use(lock: Path, holder: dict[str, Any] | None) -> ValueError:
    return ValueError(
        f"{lock.parent}: output folder in use by another run ({_describe(holder)}); wait"
        f" for it to finish or give another --out (if that run is gone, remove {lock})"
    )


def acquire_lock(folder: Path, command: str) -> dict[str, Any]:
    """Create ``folder``/.dualbench.lock for this process; a ValueError names the folder
    and the holder when another run holds it.  Returns the record written."""
    lock = folder / LOCK_NAME
    record = _record(command)
    for attempt in range(50):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = _read_lock(lock)
                reason = _gone(holder, lock)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if reason is not None:
                _take_over(lock, holder, reason)
                continue
            if holder is None and attempt < 10:
                time.sleep(0.2)  # being written: read it again
                continue
            raise _in_use(lock, holder) from None
        except OSError as err:
            raise ValueError(
                f"{folder}: cannot write there ({err.strerror or err}); nothing was computed"
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        return record
    raise _in_use(lock, None)


def release_lock(folder: Path, record: dict[str, Any]) -> None:
    """Remove the lock if it is still this process's (never in a forked child)."""
    if os.getpid() != record["pid"]:
        return
    lock = folder / LOCK_NAME
    with contextlib.suppress(OSError, ValueError):
        if _read_lock(lock) == record:
            lock.unlink()


@contextlib.contextmanager
def _exit_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (when not ignored) raise SystemExit, so that ``finally`` blocks
    (the lock's removal) run; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _exit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------
# The context managers of the commands


@contextlib.contextmanager
def output_folder(
    out: str | Path,
    command: str,
    *,
    finished: tuple[str, ...],
    outputs: tuple[str, ...],
    keep: tuple[str, ...] = (),
    overwrite: bool = False,
) -> Iterator[Path]:
    """Make, probe and lock ``out`` for one run; see the module's docstring.

    ``finished``: names whose presence means a finished earlier run (refused unless
    ``overwrite``); ``outputs``: name patterns the command writes (what a failure removes
    from a folder that existed before); ``keep``: patterns a failure never removes.
    """
    folder = Path(out)
    made = _missing_dirs(folder)
    _make(folder, made)
    before = set(os.listdir(folder))
    record = acquire_lock(folder, command)
    failed = False
    try:
        with _exit_on_signals():
            done = [name for name in finished if (folder / name).exists()]
            if done and not overwrite:
                raise ValueError(
                    f"{folder}: holds the outputs of a finished run ({', '.join(done)}); give"
                    " --overwrite to replace them, or another --out"
                )
            yield folder
    except Exception:
        failed = True
        _remove_new(folder, before, None if made else outputs, keep)
        raise
    finally:
        release_lock(folder, record)
        if failed:
            _remove_empty(made)


@contextlib.contextmanager
def output_files(*targets: str | Path | None) -> Iterator[None]:
    """Make and probe the folders of ``targets`` (files; None is skipped) before the
    computation; when it fails, remove the targets that did not exist before and the
    folders made here, if empty."""
    paths = [Path(t) for t in targets if t is not None]
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path}: is a folder, not a file to write; nothing was computed")
    made: list[Path] = []
    for path in paths:
        made += [d for d in _missing_dirs(path.parent) if d not in made]
    existed = {path: os.path.lexists(path) for path in paths}
    for path in paths:
        _make(path.parent, made, name=path)
    try:
        yield
    except Exception:
        for path in paths:
            if not existed[path] and not path.is_dir():
                path.unlink(missing_ok=True)
        _remove_empty(made)
        raise
