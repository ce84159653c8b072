"""The command line applies the config schema's bounds (issue 27, item 4): what a config
file refuses, an option refuses too, naming the option and the config key."""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.io import write

from dualbench.cli import main

BASE = ["exafs-average", "--snapshots", "snap.extxyz", "--absorber", "W", "--edge", "L3",
        "--out", "out"]


@pytest.mark.parametrize("option, value, words", [
    ("--n-snapshots", "-1", "exafs.snapshots"),
    ("--absorbers-per-snapshot", "-3", "exafs.absorbers_per_snapshot"),
    ("--workers", "0", ">= 1"),
    ("--seed", "-5", "sweep.seeds"),
    ("--cluster-radius", "0", "exafs.cluster_radius_A"),
    ("--shell-margin", "-0.1", "exafs.shell_margin_A"),
    ("--nleg", "9", "exafs.nleg"),
    ("--kweight", "4", "ft.kweight"),
    ("--kmin", "nan", "finite"),
])
def test_options_out_of_the_schema_bounds_are_refused(option, value, words, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*BASE, option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert option in err and words in err and "Traceback" not in err


def test_criteria_outside_0_100_percent_are_refused(capsys):
    with pytest.raises(SystemExit):
        main([*BASE, "--criteria", "200", "200"])
    assert "exafs.criteria_pct" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*BASE, "--criteria", "-5", "2"])


def test_cluster_radius_beyond_the_inscribed_radius_is_refused(tmp_path, capsys, monkeypatch):
    """As from a config: a 2x2x2 bcc W cell (inscribed radius 3.17 Å) with the default
    7 Å cluster is refused before any FEFF run, and leaves no output behind."""
    monkeypatch.chdir(tmp_path)
    cell = bulk("W", "bcc", a=3.1652, cubic=True).repeat((2, 2, 2))
    write("snap.extxyz", [cell, cell])
    assert main(BASE) == 2
    err = capsys.readouterr().err
    assert "snap.extxyz" in err and "inscribed radius 3.17" in err
    assert "cluster_radius_A" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
