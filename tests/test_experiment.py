"""EXAFS arm, experiment side: the W L3 foil spectrum with larch, and every refusal.

The data are read from the public mirror ($DUALBENCH_DATA_MIRROR, else ../shared/data
beside the checkout), never copied into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dualbench.exafs import FTSettings
from dualbench.scoring.measured import (
    ColumnSpec,
    ReductionSettings,
    process_experiment,
    read_spectrum,
)
from dualbench.scoring.measured_checks import SpectrumError

FT = FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)


@pytest.fixture(scope="module")
def w_xdi(mirror: Path) -> Path:
    return mirror / "exafs" / "W_L3_foil" / "W_metal_rt_01.xdi"


@pytest.fixture(scope="module")
def w_columns(w_xdi):
    """energy, itrans, i0 of the XDI file."""
    data = np.loadtxt(w_xdi, comments="#")
    return data[:, 0], data[:, 1], data[:, 2]


@pytest.fixture(scope="module")
def larch_direct(w_xdi):
    """The same reduction called directly in larch: transmission, pre_edge, autobk, xftf."""
    from larch import Group
    from larch.io import read_xdi
    from larch.xafs import autobk, pre_edge, xftf

    d = read_xdi(str(w_xdi))
    g = Group(energy=d.energy, mu=np.log(d.i0 / d.itrans))
    pre_edge(g, pre1=-150.0, pre2=-30.0, norm1=150.0)
    autobk(g, rbkg=1.0)
    xftf(g, kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2)
    return g


def test_w_foil_chi_matches_larch(w_xdi, larch_direct, tmp_path):
    result = process_experiment(w_xdi, "W", "L3", tmp_path, fmt="xdi", ft=FT)
    g = larch_direct
    assert abs(result.e0_eV - g.e0) < 1e-6 and abs(result.e0_eV - 10207.0) < 5.0
    assert np.allclose(result.k, g.k) and np.allclose(result.chi, g.chi, atol=1e-10)
    assert np.allclose(result.r, g.r) and np.allclose(result.chir_mag, g.chir_mag, atol=1e-10)
    assert result.chir_mag.max() == pytest.approx(2.67, abs=0.02)
    assert 2.4 < result.r[np.argmax(result.chir_mag)] < 2.8  # first shell, uncorrected phase
    chi_k = pd.read_csv(tmp_path / "chi_k.csv")
    chi_r = pd.read_csv(tmp_path / "chi_r.csv")
    assert list(chi_k.columns) == ["k", "chi"] and list(chi_r.columns) == ["r", "chir_mag"]
    assert np.allclose(chi_k["chi"], g.chi) and np.allclose(chi_r["chir_mag"], g.chir_mag)
    import xraydb

    record = json.loads((tmp_path / "experiment.json").read_text())
    assert record["element"] == "W" and record["edge"] == "L3" and record["format"] == "xdi"
    assert record["e0_eV"] == pytest.approx(g.e0, abs=1e-6)
    assert record["edge_step"] == pytest.approx(g.edge_step, rel=1e-9)
    assert record["edge_energy_eV"] == pytest.approx(xraydb.xray_edge("W", "L3").energy)
    assert record["chir_mag_max"] == pytest.approx(g.chir_mag.max(), rel=1e-9)
    assert record["kmax_data"] == pytest.approx(g.k.max(), abs=0.06)
    assert record["ft"] == {**record["ft"], "kmin": 3.0, "kmax": 14.0, "kweight": 2,
                            "window": "hanning"}


def test_ascii_fluorescence_and_mu_columns_and_athena(w_xdi, w_columns, larch_direct, tmp_path):
    energy, itrans, i0 = w_columns
    mu = np.log(i0 / itrans)
    ascii_file = tmp_path / "w.dat"
    np.savetxt(ascii_file, np.column_stack([energy, i0, i0 * mu, mu]),
               header="Energy I0 IF mu_trans", comments="# ")
    spec = read_spectrum(ascii_file, "ascii",
                         ColumnSpec(mode="fluorescence", energy="Energy", i0="I0", ifluor="IF"))
    assert np.allclose(spec.mu, mu) and spec.element is None
    result = process_experiment(ascii_file, "W", "L3", tmp_path / "ascii", ft=FT,
                                columns={"mode": "mu", "energy": "energy", "mu": "mu_trans"})
    assert np.allclose(result.chi, larch_direct.chi, atol=1e-10)

    from larch import Group
    from larch.io.athena_project import AthenaProject

    prj = tmp_path / "w.prj"
    project = AthenaProject(str(prj))
    project.add_group(Group(energy=energy, mu=mu, i0=i0, filename="W foil", groupname="w_foil"))
    project.save()
    result = process_experiment(prj, "W", "L3", tmp_path / "athena", ft=FT,
                                columns={"mode": "mu"})
    assert np.allclose(result.chi, larch_direct.chi, atol=1e-8)


def _edited(w_xdi: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = w_xdi.read_text()
    assert old in text
    path = tmp_path / f"edited_{abs(hash(new))}.xdi"
    path.write_text(text.replace(old, new))
    return path


def test_refuses_wrong_element_in_xdi_header(w_xdi, tmp_path):
    path = _edited(w_xdi, tmp_path, "# Element.symbol:  W", "# Element.symbol:  Mo")
    with pytest.raises(SpectrumError, match="Element.symbol") as err:
        process_experiment(path, "W", "L3", tmp_path / "out", ft=FT)
    assert str(path) in str(err.value) and "Mo" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_refuses_wrong_edge_in_xdi_header(w_xdi, tmp_path):
    path = _edited(w_xdi, tmp_path, "# Element.edge:  L3", "# Element.edge:  K")
    with pytest.raises(SpectrumError, match="Element.edge") as err:
        process_experiment(path, "W", "L3", tmp_path / "out", ft=FT)
    assert str(path) in str(err.value)


def test_refuses_e0_far_from_the_tabulated_edge(w_columns, tmp_path):
    energy, itrans, i0 = w_columns
    path = tmp_path / "no_header.dat"  # column ASCII: no element in the file
    np.savetxt(path, np.column_stack([energy, itrans, i0]), header="energy itrans i0")
    # Claimed to be Re L3 (10535 eV): the data span it, but E0 is 10205 eV.
    with pytest.raises(SpectrumError, match=r"E0: 10205.0 eV is -330.0 eV") as err:
        process_experiment(path, "Re", "L3", tmp_path / "out", ft=FT)
    assert str(path) in str(err.value) and "Re L3" in str(err.value)
    # A given E0 that is off is refused too.
    with pytest.raises(SpectrumError, match="E0"):
        process_experiment(path, "W", "L3", tmp_path / "out", ft=FT,
                           settings=ReductionSettings(e0_eV=10100.0))
    # Data that do not reach the claimed edge.
    with pytest.raises(SpectrumError, match="energy: .* do not span the Ta L3 edge"):
        process_experiment(path, "Ta", "L3", tmp_path / "out", ft=FT)


def test_refuses_k_range_beyond_the_data(w_xdi, tmp_path):
    ft = FTSettings(kmin=3.0, kmax=17.0, dk=1.0)
    with pytest.raises(SpectrumError, match=r"ft.kmax: .* data end at k = 17.00") as err:
        process_experiment(w_xdi, "W", "L3", tmp_path / "out", ft=ft)
    assert str(w_xdi) in str(err.value)


def test_refuses_missing_column(w_xdi, tmp_path):
    with pytest.raises(SpectrumError, match="column 'i1'") as err:
        process_experiment(w_xdi, "W", "L3", tmp_path / "out", ft=FT,
                           columns={"mode": "transmission", "itrans": "i1"})
    assert str(w_xdi) in str(err.value) and "itrans" in str(err.value)  # lists the columns
    with pytest.raises(SpectrumError, match="column 'ifluor'"):
        read_spectrum(w_xdi, "xdi", ColumnSpec(mode="fluorescence"))


def test_experiment_cli(w_xdi, larch_direct, tmp_path, capsys):
    from dualbench.cli import main

    out = tmp_path / "exp"
    assert main(["experiment", "--data", str(w_xdi), "--element", "W", "--edge", "L3",
                 "--out", str(out)]) == 0
    chi_k = pd.read_csv(out / "chi_k.csv")
    np.testing.assert_allclose(chi_k["k"], larch_direct.k)
    np.testing.assert_allclose(chi_k["chi"], larch_direct.chi, atol=1e-10)
    record = json.loads((out / "experiment.json").read_text())
    assert record["e0_eV"] == pytest.approx(larch_direct.e0, abs=1e-6)
    # The CLI's default FT is the one of larch_direct (kmin 3, kmax 14, dk 1, k^2, Hanning).
    chi_r = pd.read_csv(out / "chi_r.csv")
    np.testing.assert_allclose(chi_r["chir_mag"], larch_direct.chir_mag, atol=1e-10)
    capsys.readouterr()
    assert main(["experiment", "--data", str(w_xdi), "--element", "Mo", "--edge", "K",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert str(w_xdi) in err and "Element.symbol" in err


def test_refuses_a_second_sweep_and_a_non_numeric_row(w_xdi, tmp_path):
    """An overlapping second sweep appended to the data, or a data row with a word in it,
    is refused naming the file and where (before, sorting mixed the sweeps silently and a
    bad row truncated the spectrum)."""
    text = w_xdi.read_text()
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    twice = tmp_path / "two_sweeps.xdi"
    twice.write_text(text.rstrip("\n") + "\n" + "\n".join(rows[100:140]) + "\n")
    with pytest.raises(SpectrumError, match="not one monotonic sweep: row") as err:
        read_spectrum(twice, "xdi")
    assert str(twice) in str(err.value)
    bad = tmp_path / "bad_row.xdi"
    bad.write_text(text.replace(rows[300], rows[300].split()[0] + " abc 1.0", 1))
    with pytest.raises(SpectrumError, match=r"line \d+: data row is not numeric"):
        read_spectrum(bad, "xdi")
    assert read_spectrum(w_xdi, "xdi").energy.size > 100  # the real file passes
