"""Text spectra as beamlines write them (issue 27, items 3 and 8), on a synthetic W L3 foil.

An XDAC file (NSLS-I beamlines) has a free-text header without a comment character,
a dashed line and the column names; larch's ``read_ascii`` reads it (its NSLS XDAC
parser takes the labels from the line after the dashes).  It must be read and reduced
like any other file, while a non-numeric row or a NaN *inside* the data is refused,
naming the file and the line.  No data mirror needed: the spectrum is made here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dualbench.exafs import FTSettings
from dualbench.scoring.measured import ColumnSpec, process_experiment, read_spectrum
from dualbench.scoring.measured_checks import SpectrumError

FT = FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)
E0 = 10207.0  # W L3 (xraydb: 10207 eV)
ETOK = 0.2624682917  # k^2 = ETOK (E - E0), k in 1/Å, E in eV
STEP = 1.2  # edge step of ln(I0/I)
SHELLS = ((8, 2.741, 0.0030), (6, 3.165, 0.0040))  # bcc W: N, R (Å), sigma^2 (Å^2)

XDAC_HEADER = """\
XDAC V1.2 Datafile V1
W_foil.001 created on 4/12/2008 at 4:02:44 AM on X23A2
Diffraction Grating: 0.000000 lines/mm
Ring energy= 2.80 GeV
E0= 10207.00
NUM_REGIONS= 3
SRB= -150 -25 30 17k
SRSSB= 5 0.25 0.05k
SPP= 1 1 1
Settling time= 0.00
Offsets= 0.0 0.0 0.0
Gains= 8 9 9
Reference
--------------------------------------------------------------------------------
 Energy        I0          I"""
HEADER_LINES = len(XDAC_HEADER.splitlines())  # the first data row is line HEADER_LINES + 1
COLUMNS = {"mode": "transmission", "energy": "Energy", "i0": "I0", "itrans": "I"}
SPEC = ColumnSpec.from_config(COLUMNS)


def synthetic_chi(k: np.ndarray) -> np.ndarray:
    """Two bcc W shells, plain EXAFS equation (S0^2 0.9, constant amplitude, no phase)."""
    chi = np.zeros_like(k)
    amplitude = 0.9 * 0.3 * np.exp(-(((k - 7.0) / 7.0) ** 2))
    for n, r, sigma2 in SHELLS:
        chi += n * amplitude * np.exp(-2 * sigma2 * k**2) * np.sin(2 * k * r) / (k * r**2)
    return chi


def synthetic_scan(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """energy, I0, I of a W L3 transmission scan as a step scan takes it: 5 eV steps
    below the edge, 0.25 eV across it, 0.05 1/Å in k to k = 17 1/Å."""
    energy = np.concatenate([
        np.arange(E0 - 150.0, E0 - 25.0, 5.0),
        np.arange(E0 - 25.0, E0 + 30.0, 0.25),
        E0 + np.arange(np.sqrt(30.0 * ETOK), 17.0 + 1e-9, 0.05) ** 2 / ETOK,
    ])
    de = energy - E0
    edge = 0.5 + np.arctan(de / 1.5) / np.pi  # 1.5 eV core-hole broadening
    white_line = 1.1 / (1.0 + ((de - 2.5) / 2.5) ** 2)  # the W L3 white line
    k = np.sqrt(np.clip(de, 0.0, None) * ETOK)
    chi = np.where(k > 0, synthetic_chi(np.where(k > 0, k, 1.0)), 0.0)
    post = STEP * (1.0 - 1.5e-4 * np.clip(de, 0.0, None))  # slowly falling atomic mu
    mu = 0.9 - 2.0e-4 * de + edge * (post * (1.0 + chi) + white_line)
    rng = np.random.default_rng(seed)
    noise = 2e-4 * rng.standard_normal((2, energy.size))
    i0 = 8.0e4 * (1.0 + 0.02 * np.sin(energy / 97.0)) * (1.0 + noise[0])
    i = i0 * np.exp(-mu) * (1.0 + noise[1])
    return energy, i0, i


def data_rows(energy: np.ndarray, i0: np.ndarray, i: np.ndarray) -> list[str]:
    return [f"{e:12.3f} {a:12.2f} {b:12.2f}" for e, a, b in zip(energy, i0, i, strict=True)]


def write_xdac(path: Path, rows: list[str]) -> Path:
    path.write_text(XDAC_HEADER + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def scan():
    return synthetic_scan()


@pytest.fixture
def xdac(scan, tmp_path) -> Path:
    return write_xdac(tmp_path / "W_foil.001", data_rows(*scan))


def test_xdac_file_is_read_and_reduced_end_to_end(xdac, scan, tmp_path):
    """The experiment_chi job's function reads an XDAC header (before, its first line was
    refused as 'data row is not numeric') and gives the same chi(k) as the same columns
    under a commented header; E0, the edge step and the first shell are the synthetic ones."""
    from larch.io import read_ascii

    assert read_ascii(str(xdac)).array_labels == ["energy", "i0", "i"]  # larch's XDAC parser
    spec = read_spectrum(xdac, "ascii", SPEC)
    energy, i0, i = scan
    np.testing.assert_allclose(spec.energy, energy, atol=6e-4)
    np.testing.assert_allclose(spec.mu, np.log(i0 / i), atol=1e-6)

    out = tmp_path / "xdac_out"
    result = process_experiment(xdac, "W", "L3", out, fmt="ascii", columns=COLUMNS, ft=FT)
    assert abs(result.e0_eV - E0) < 3.0
    assert result.edge_step == pytest.approx(STEP, rel=0.1)
    window = (result.k >= FT.kmin) & (result.k <= FT.kmax)
    expected = synthetic_chi(result.k[window])
    assert np.corrcoef(result.chi[window], expected)[0, 1] > 0.95
    assert 2.55 < result.r[np.argmax(result.chir_mag)] < 2.95  # first shell, no phase shift
    record = json.loads((out / "experiment.json").read_text())
    assert record["format"] == "ascii" and record["columns"]["itrans"] == "I"
    assert (out / "chi_k.csv").is_file() and (out / "chi_r.csv").is_file()

    plain = tmp_path / "w_plain.dat"
    plain.write_text("# Energy I0 I\n" + "\n".join(data_rows(*scan)) + "\n")
    same = process_experiment(plain, "W", "L3", tmp_path / "plain_out", fmt="ascii",
                              columns=COLUMNS, ft=FT)
    assert np.array_equal(same.chi, result.chi) and same.e0_eV == result.e0_eV


def test_xdac_file_with_a_text_footer_is_read(scan, tmp_path):
    """Text after the data (a footer) is not data: larch keeps it apart, so is it here."""
    path = tmp_path / "W_foil.002"
    path.write_text(XDAC_HEADER + "\n" + "\n".join(data_rows(*scan)) + "\nscan ended\n")
    assert read_spectrum(path, "ascii", SPEC).energy.size == scan[0].size


@pytest.mark.parametrize(
    ("row", "text"),
    [(300, "{e} abc 1.0"),  # a word in a row in the middle
     (1, "{e} 80000.0 ---"),  # the second row
     (0, "{e} n/a 1.0"),  # the first row (larch would take it for the labels)
     (-1, "{e} 80000.0 overflow")],  # the last row (larch would take it for a footer)
)
def test_non_numeric_row_inside_the_data_is_refused_naming_the_line(
    scan, tmp_path, row, text
):
    rows = data_rows(*scan)
    index = row % len(rows)
    rows[index] = text.format(e=rows[index].split()[0])
    path = write_xdac(tmp_path / "bad.001", rows)
    line = HEADER_LINES + 1 + index
    with pytest.raises(SpectrumError, match=rf"line {line}: data row is not numeric") as err:
        process_experiment(path, "W", "L3", tmp_path / "out", fmt="ascii",
                           columns=COLUMNS, ft=FT)
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_comment_or_text_line_between_data_rows_is_refused(scan, tmp_path):
    """larch's reader (and XDI's) ends the data at any non-numeric line, a comment too:
    the rows above it would be dropped silently."""
    for extra in ("# beam lost, refilled", "scan paused"):
        rows = data_rows(*scan)
        rows.insert(200, extra)
        path = write_xdac(tmp_path / "paused.001", rows)
        with pytest.raises(SpectrumError, match=rf"line {HEADER_LINES + 201}: data row is"
                                                r" not numeric: .*between data rows"):
            read_spectrum(path, "ascii", SPEC)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf"])
def test_nan_row_is_refused_naming_the_line(scan, tmp_path, value):
    """Before, rows with a NaN were dropped silently between reading and reduction."""
    rows = data_rows(*scan)
    e, a, _ = rows[250].split()
    rows[250] = f"{e} {a} {value}"
    path = write_xdac(tmp_path / "nan.001", rows)
    line = HEADER_LINES + 251
    with pytest.raises(SpectrumError, match=rf"line {line}: 'I' is (nan|inf), not a finite") as err:
        process_experiment(path, "W", "L3", tmp_path / "out", fmt="ascii",
                           columns=COLUMNS, ft=FT)
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_nan_row_in_an_xdi_file_and_a_short_row_are_refused(scan, tmp_path):
    energy, i0, i = scan
    rows = data_rows(energy, i0, i)
    header = ["# XDI/1.0", "# Column.1: energy eV", "# Column.2: i0", "# Column.3: itrans",
              "# Element.symbol: W", "# Element.edge: L3", "# Mono.d_spacing: 3.13555",
              "#----", "# energy i0 itrans"]
    e, a, _ = rows[400].split()
    rows[400] = f"{e} {a} nan"
    path = tmp_path / "nan.xdi"
    path.write_text("\n".join(header + rows) + "\n")
    with pytest.raises(SpectrumError, match=rf"line {len(header) + 401}: 'itrans' is nan"):
        read_spectrum(path, "xdi")

    rows = data_rows(energy, i0, i)
    rows[100] = " ".join(rows[100].split()[:2])  # a value missing: larch pads it with NaN
    path = write_xdac(tmp_path / "short.001", rows)
    with pytest.raises(SpectrumError, match=rf"line {HEADER_LINES + 101}: data row has 2 values"):
        read_spectrum(path, "ascii", SPEC)



def test_nan_in_an_athena_group_is_refused_naming_the_row(scan, tmp_path):
    from larch import Group
    from larch.io.athena_project import AthenaProject

    energy, i0, i = scan
    mu = np.log(i0 / i)
    mu[77] = np.nan
    path = tmp_path / "nan.prj"
    project = AthenaProject(str(path))
    project.add_group(Group(energy=energy, mu=mu, i0=i0, filename="W foil", groupname="w_foil"))
    project.save()
    with pytest.raises(SpectrumError, match=r"group \w+: row 78: 'mu' is nan") as err:
        read_spectrum(path, "athena", ColumnSpec(mode="mu"))
    assert str(path) in str(err.value)
