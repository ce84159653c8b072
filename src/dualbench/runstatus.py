"""A run whose MD leaves the physical regime is a result ("MD unstable"), not a crash.

A benchmark has to report that a model cannot hold the crystal at the experiment's
condition, and go on scoring the others.  Two stages find it:

* ``md``: a guard of :mod:`dualbench.md.guards` stops the run (non-finite forces, atoms
  closer than ``md.min_distance_A``, a temperature above ``md.max_temperature_factor``
  times the target);
* ``exafs``: the fast engine finds an atom farther than half the nearest-neighbour
  distance from its lattice site (diffusion or melting of a crystal well below its
  melting point).

With ``md.on_unstable: record`` (the default) the job still writes every output: the MD
writes ``md_run.json`` with ``"status": "unstable"`` and ``"failure"`` (this module's
:class:`RunFailure` as a dict), an empty snapshot file and a header-only log; each
later stage writes its files header-only (CSV) or with a ``failure`` entry (JSON,
.npz), and the scores are NaN with ``status`` and ``failure`` columns beside them.  With
``stop`` the job fails as any error does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_OK = "ok"
STATUS_UNSTABLE = "unstable"
#: What ``md.on_unstable`` may say.
ON_UNSTABLE = ("record", "stop")
#: The run's record of its MD (the name :mod:`dualbench.md.runfiles` also gives it).
MD_RUN_FILE = "md_run.json"


@dataclass(frozen=True)
class RunFailure:
    """Why a run is unstable: the stage that found it (``md`` or ``exafs``), the reason,
    and the MD step (``md``) or snapshot index (``exafs``) where it was found."""

    stage: str
    reason: str
    step: int | None = None
    snapshot: int | None = None

    def text(self) -> str:
        """One line for tables: 'MD unstable at step 9: ...' or 'MD left the crystal at
        snapshot 12: ...'."""
        if self.stage == "md":
            return f"MD unstable at step {self.step}: {self.reason}"
        return f"MD left the crystal at snapshot {self.snapshot}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunFailure:
        return cls(
            stage=str(record["stage"]),
            reason=str(record["reason"]),
            step=None if record.get("step") is None else int(record["step"]),
            snapshot=None if record.get("snapshot") is None else int(record["snapshot"]),
        )

    @classmethod
    def from_json(cls, text: str) -> RunFailure:
        return cls.from_dict(json.loads(text))


def md_run_record(md_dir: str | Path) -> dict[str, Any]:
    """The ``md_run.json`` of the MD folder ``md_dir`` ({} when there is none)."""
    path = Path(md_dir) / MD_RUN_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err


def md_failure(md_dir: str | Path) -> RunFailure | None:
    """The MD's failure recorded in ``md_dir/md_run.json`` (None: it ran, or no record)."""
    record = md_run_record(md_dir)
    if record.get("status", STATUS_OK) == STATUS_OK:
        return None
    if not isinstance(record.get("failure"), dict):
        raise ValueError(f"{Path(md_dir) / MD_RUN_FILE}: status {record['status']!r} without"
                         " a failure record")
    return RunFailure.from_dict(record["failure"])


def on_unstable(md_dir: str | Path) -> str:
    """The ``md.on_unstable`` the run in ``md_dir`` was made with (``record`` when its
    md_run.json predates the setting or is missing)."""
    value = md_run_record(md_dir).get("settings", {}).get("on_unstable", "record")
    if value not in ON_UNSTABLE:
        raise ValueError(f"{Path(md_dir) / MD_RUN_FILE}: on_unstable {value!r} is not one of"
                         f" {', '.join(ON_UNSTABLE)}")
    return value


def npz_failure(data: Any) -> RunFailure | None:
    """The failure stored in an open .npz (``failure`` key, JSON), or None."""
    if "failure" not in getattr(data, "files", ()):
        return None
    text = str(data["failure"])
    return RunFailure.from_json(text) if text else None


def file_failure(path: str | Path) -> RunFailure | None:
    """The failure stored in the .npz ``path`` (a chunk or chi_snapshots.npz), or None."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return npz_failure(data)
