"""RPATH and the cluster radius kept clear of the ideal crystal's coordination shells
(``exafs.shell_margin_A``): at config load and in ``exafs-average``.

The expected shells are analytic, of crystals built here by hand (simple cubic, bcc, CsCl,
2H-WS2's a*sqrt(3) and S shells from its cell parameters), never from the code tested.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from ase import Atoms
from ase.io import write

from dualbench.config import load_config, load_yaml, prepare_config
from dualbench.exafs import ExafsSettings, FeffSettings
from dualbench.exafs.shells import check_cut_between_shells, shells_around
from dualbench.schema import ConfigError, SettingError, section_defaults

A_PO = 3.345  # Å, simple cubic alpha-Po
A_W = 3.1652  # Å, bcc W
A_CSCL = 4.123  # Å, CsCl
REPO = Path(__file__).resolve().parents[1]


def cubic(symbols: str, scaled: list[list[float]], a: float, repeat: int = 1) -> Atoms:
    atoms = Atoms(symbols, scaled_positions=scaled, cell=[a, a, a], pbc=True)
    return atoms.repeat(repeat)


def simple_cubic(repeat: int = 1) -> Atoms:
    return cubic("Po", [[0, 0, 0]], A_PO, repeat)


def bcc_w(repeat: int = 1) -> Atoms:
    return cubic("W2", [[0, 0, 0], [0.5, 0.5, 0.5]], A_W, repeat)


#: (distance / a, count) of the shells of simple cubic up to 2a and of bcc up to 2a.
SC_SHELLS = [(1.0, 6), (math.sqrt(2), 12), (math.sqrt(3), 8), (2.0, 6)]
BCC_SHELLS = [(math.sqrt(3) / 2, 8), (1.0, 6), (math.sqrt(2), 12), (math.sqrt(11) / 2, 24),
              (math.sqrt(3), 8), (2.0, 6)]


def as_pairs(site) -> list[tuple[float, int]]:
    return [(round(s.distance_A, 6), s.count) for s in site.shells]


# ----------------------------------------------------------------------------- the shells


@pytest.mark.parametrize(("atoms", "symbol", "a", "expected"), [
    (simple_cubic(), "Po", A_PO, SC_SHELLS),
    (simple_cubic(3), "Po", A_PO, SC_SHELLS),
    (bcc_w(), "W", A_W, BCC_SHELLS),
    (bcc_w(4), "W", A_W, BCC_SHELLS),
], ids=["sc", "sc-3x3x3", "bcc", "bcc-4x4x4"])
def test_shells_of_cubic_crystals_are_the_analytic_ones(atoms, symbol, a, expected):
    sites = shells_around(atoms, symbol, 2.0 * a + 0.05)
    assert len(sites) == 1  # every site of these crystals is equivalent
    assert sites[0].sites == len(atoms)
    assert as_pairs(sites[0]) == [(round(f * a, 6), n) for f, n in expected]
    assert all(s.species == ((symbol, s.count),) for s in sites[0].shells)


def test_shell_species_around_each_absorber_of_cscl():
    atoms = cubic("CsCl", [[0, 0, 0], [0.5, 0.5, 0.5]], A_CSCL)
    expected = [((math.sqrt(3) / 2), "Cl", 8), (1.0, "Cs", 6), (math.sqrt(2), "Cs", 12),
                (math.sqrt(11) / 2, "Cl", 24)]
    (site,) = shells_around(atoms, "Cs", 1.7 * A_CSCL)
    got = [(round(s.distance_A, 6), s.species) for s in site.shells]
    assert got == [(round(f * A_CSCL, 6), ((el, n),)) for f, el, n in expected]
    (site,) = shells_around(atoms, "Cl", 1.2 * A_CSCL)
    assert [s.species for s in site.shells] == [(("Cs", 8),), (("Cl", 6),)]
    assert shells_around(atoms, "Na", 5.0) == []


def chain() -> Atoms:
    """Three inequivalent Po sites along c (z = 0, 2.5, 5.5 Å in a 10 Å cell; in-plane
    6 Å): the nearest neighbours are 2.5 Å (site 0), 2.5 and 3.0 Å (site 1), 3.0 Å (2)."""
    return Atoms("Po3", positions=[[0, 0, 0], [0, 0, 2.5], [0, 0, 5.5]],
                 cell=[6.0, 6.0, 10.0], pbc=True)


def test_inequivalent_sites_each_have_their_shells():
    sites = shells_around(chain(), "Po", 3.2)
    assert [(s.site, s.sites) for s in sites] == [(0, 1), (1, 1), (2, 1)]
    assert [as_pairs(s) for s in sites] == [[(2.5, 1)], [(2.5, 1), (3.0, 1)], [(3.0, 1)]]
    # a cut at 3.0 Å hits no shell of the first site, only those of the others
    with pytest.raises(SettingError, match=r"1 Po at 3.000 Å around Po \(site 1\)"):
        check_cut_between_shells(chain(), "Po", 3.0, 3.2, 0.1)


# ----------------------------------------------------------------------------- the check


@pytest.mark.parametrize("key", ["exafs.rmax_A", "exafs.cluster_radius_A"])
@pytest.mark.parametrize("offset", [-0.099, -0.05, 0.0, 0.05, 0.099])
def test_a_cut_within_the_margin_of_a_shell_is_refused(key, offset):
    shell = math.sqrt(2) * A_PO  # 12 Po
    cut = shell + offset
    rmax, radius = (cut, 5.5) if key == "exafs.rmax_A" else (3.9, cut)
    with pytest.raises(SettingError) as err:
        check_cut_between_shells(simple_cubic(), "Po", rmax, radius, 0.1)
    assert err.value.key == key
    message = err.value.message
    assert f"{cut:g} Å" in message and f"12 Po at {shell:.3f} Å" in message
    # the nearest values between shells: the gaps less the margin, below and above
    below = f"{A_PO + 0.1:.3f}-{shell - 0.1:.3f} Å"
    above = f"{shell + 0.1:.3f}-{math.sqrt(3) * A_PO - 0.1:.3f} Å"
    assert f"{below} or {above}" in message


@pytest.mark.parametrize("cut", [
    A_PO + 0.101, 0.5 * (1 + math.sqrt(2)) * A_PO, math.sqrt(2) * A_PO - 0.101,
    math.sqrt(2) * A_PO + 0.101,
])
def test_a_cut_between_shells_is_accepted(cut):
    check_cut_between_shells(simple_cubic(), "Po", cut, cut, 0.1)
    check_cut_between_shells(simple_cubic(2), "Po", cut, cut, 0.1)


def test_margin_zero_checks_nothing():
    on_shell = math.sqrt(2) * A_PO
    check_cut_between_shells(simple_cubic(), "Po", on_shell, 2 * A_PO, 0.0)
    with pytest.raises(SettingError):
        check_cut_between_shells(simple_cubic(), "Po", on_shell, 2 * A_PO, 0.05)


def test_the_margin_sets_the_width():
    shell = math.sqrt(3) * A_PO
    check_cut_between_shells(simple_cubic(), "Po", shell - 0.21, 5.0, 0.2)
    with pytest.raises(SettingError):
        check_cut_between_shells(simple_cubic(), "Po", shell - 0.19, 5.0, 0.2)


def test_the_margin_is_a_setting():
    assert section_defaults("exafs")["shell_margin_A"] == 0.1
    assert ExafsSettings.from_config({"shell_margin_A": 0.25}, "L3").shell_margin_A == 0.25
    assert ExafsSettings.from_config({}, "L3").shell_margin_A == 0.1
    with pytest.raises(SettingError, match="exafs.shell_margin_A"):
        ExafsSettings(feff=FeffSettings(), shell_margin_A=-0.1)


# ----------------------------------------------------------------------------- at config load


#: Configs that are overlays, given after their base (`--configfile base overlay`).
OVERLAYS = {"suite_cluster.yaml": "suite.yaml"}


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    if path.name in OVERLAYS:
        from snakemake.utils import update_config

        raw = load_yaml(path.parent / OVERLAYS[path.name])
        update_config(raw, load_yaml(path))   # as Snakemake merges two --configfile
        config = prepare_config(raw, str(path))
    else:
        config = load_config(path)
    assert config["exafs"]["shell_margin_A"] == 0.1


@pytest.fixture(scope="module")
def w_config():
    return load_yaml(REPO / "config" / "config.yaml")


@pytest.mark.parametrize(("key", "value", "shell"), [
    ("rmax_A", 5.5, f"8 W at {math.sqrt(3) * A_W:.3f} Å"),
    ("rmax_A", 4.5, f"12 W at {math.sqrt(2) * A_W:.3f} Å"),
    ("cluster_radius_A", 6.3, f"6 W at {2 * A_W:.3f} Å"),
])
def test_a_config_cut_inside_a_shell_is_refused(w_config, key, value, shell):
    config = copy.deepcopy(w_config)
    config["exafs"][key] = value
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "study.yaml")
    message = str(err.value)
    assert message.startswith(f"study.yaml: exafs.{key}: {value:g} Å lies within 0.1 Å")
    assert shell in message and "material W" in message
    config["exafs"]["shell_margin_A"] = 0
    prepare_config(config, "study.yaml")


def test_a_config_cut_between_shells_is_accepted(w_config):
    config = copy.deepcopy(w_config)
    config["exafs"].update(rmax_A=5.9, cluster_radius_A=6.2)
    assert prepare_config(config)["exafs"]["rmax_A"] == 5.9


def test_the_former_tmd_rpath_is_refused_naming_the_metal_shell():
    """RPATH 5.5 Å on 2H-WS2: 6 W at a*sqrt(3) and 12 S at sqrt(a^2 + (0.371 c)^2)
    (S straight above W's site, one lattice vector over) lie either side of it."""
    config = load_yaml(REPO / "config" / "tmd.yaml")
    config["exafs"]["rmax_A"] = 5.5
    structure = config["materials"]["WS2"]["structure"]
    a, c = structure["cellpar"][0], structure["cellpar"][2]
    (_, _, z_w), (_, _, z_s) = structure["basis"]
    dz = (z_s - z_w) * c
    with pytest.raises(ConfigError) as err:
        prepare_config(config, "tmd.yaml")
    message = str(err.value)
    assert message.startswith("tmd.yaml: exafs.rmax_A: 5.5 Å")
    assert f"6 W at {a * math.sqrt(3):.3f} Å" in message and "5.461 Å" in message
    assert f"12 S at {math.sqrt(a**2 + dz**2):.3f} Å" in message
    assert "material WS2" in message


# ----------------------------------------------------------------------------- exafs-average


def _snapshots(tmp_path: Path, reference: bool, beside: bool = False) -> list[str]:
    ideal = bcc_w(3)  # inscribed radius 4.75 Å
    write(tmp_path / "snaps.extxyz", [ideal, ideal], format="extxyz")
    args = ["exafs-average", "--snapshots", str(tmp_path / "snaps.extxyz"), "--absorber", "W",
            "--edge", "L3", "--nleg", "2", "--out", str(tmp_path / "out")]
    if reference:
        write(tmp_path / "ideal.extxyz", ideal)
        args += ["--reference", str(tmp_path / "ideal.extxyz")]
    if beside:
        write(tmp_path / "supercell.extxyz", ideal)
    return args


@pytest.mark.parametrize(("engine", "reference", "beside", "named"), [
    ("fast", True, False, "ideal.extxyz"),
    ("feff", False, True, "supercell.extxyz"),
    ("feff", False, False, "the mean positions of"),
])
@pytest.mark.parametrize(("option", "key", "rmax", "radius"), [
    ("--rmax", "exafs.rmax_A", "4.5", "4.6"),
    ("--cluster-radius", "exafs.cluster_radius_A", "4.3", "4.5"),
])
def test_exafs_average_refuses_a_cut_inside_a_shell(
        tmp_path, capsys, engine, reference, beside, named, option, key, rmax, radius):
    from dualbench.cli import main

    args = _snapshots(tmp_path, reference, beside)
    code = main([*args, "--engine", engine, "--rmax", rmax, "--cluster-radius", radius])
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: {key} ({option}) " in err and "Traceback" not in err
    assert f"12 W at {math.sqrt(2) * A_W:.3f} Å" in err and named in err
    assert "--shell-margin" in err
    assert not (tmp_path / "out").exists()  # refused before any FEFF run


def test_exafs_average_accepts_a_cut_between_shells(tmp_path, capsys, monkeypatch):
    """Past the check the potentials are computed: stopped there (no FEFF run)."""
    from dualbench.cli import main
    from dualbench.exafs import stages

    def stop(*args, **kwargs):
        raise RuntimeError("past the shell check")

    monkeypatch.setattr(stages, "compute_potentials", stop)
    args = _snapshots(tmp_path, reference=True)
    assert main([*args, "--rmax", "4.3", "--cluster-radius", "4.6"]) == 2
    assert "past the shell check" in capsys.readouterr().err
    assert main([*args, "--rmax", "4.5", "--cluster-radius", "4.6", "--shell-margin", "0"]) == 2
    assert "past the shell check" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the fit's shells


def test_experiment_fit_takes_the_same_shells():
    from dualbench.scoring.experiment_fit import shell_distances

    distances = shell_distances(bcc_w(2), 0, 3, 5.0)
    assert [round(d, 6) for d in distances] == [round(f * A_W, 6) for f, _ in BCC_SHELLS[:3]]
    with pytest.raises(ValueError, match="only 3 shells within 4.6 Å"):
        shell_distances(bcc_w(2), 0, 4, 4.6)
