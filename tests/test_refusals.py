"""Hostile but fair inputs (issue 15): each is refused with a message naming the file and the
field or frame, and leaves nothing half-written.  The expected values come from the inputs
themselves (a planted payload, a planted force, a renamed key), never from the code tested."""

from __future__ import annotations

import builtins
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dualbench.models import load_model


class _Payload:
    """Unpickling this runs ``exec`` on code that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_checkpoint_with_code_payload_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pth.tar"
    torch.save({"model": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match=r"evil\.pth\.tar: not a loadable CHGNet checkpoint"):
        load_model(str(evil), "cpu")
    assert not marker.exists()
    # the same refusal through the command line, exit status 2, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "dft-metrics", "--model", str(evil),
         "--frames", str(evil), "--out", str(tmp_path / "m.json")],
        capture_output=True, text=True,
    )
    assert not marker.exists()
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr


def test_checkpoint_of_another_shape_is_refused(tmp_path):
    other = tmp_path / "weights.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match=r"weights\.pth\.tar: not a CHGNet checkpoint"):
        load_model(str(other), "cpu")


def test_a_real_checkpoint_still_loads(tmp_path):
    from dualbench.finetune import save_checkpoint

    vanilla = load_model("chgnet", "cpu")
    save_checkpoint(vanilla, tmp_path / "checkpoint.pth.tar")
    loaded = load_model(str(tmp_path / "checkpoint.pth.tar"), "cpu")
    ref = vanilla.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in loaded.state_dict().items())
