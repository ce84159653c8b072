"""The measured spectrum: read with larch, reduce to chi(k) and |chi(R)| with larch.

Formats: XDI (``read_xdi``), column ASCII (``read_ascii``) and Athena projects
(``read_athena``).  mu(E) is formed from the columns named in the material's
``experiment_columns``: transmission ln(i0/itrans), fluorescence ifluor/i0, or mu given.
Then larch ``pre_edge`` (E0, pre-edge line, normalisation), ``autobk`` (background,
chi(k)) and ``xftf`` with the config's ``experiment`` and ``ft`` parameters.

A file that cannot be the material's spectrum is refused with :class:`SpectrumError`,
whose message names the file and the field: an XDI header ``Element.symbol`` or
``Element.edge`` (or an Athena group's element / edge) for another element or edge, an
E0 far from the tabulated edge energy (xraydb), a missing column, or an FT k-range
beyond the data.

Units: energies in eV, k in 1/Å, R in Å.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualbench.exafs import FTSettings, fourier_transform, import_larch, write_chi_k, write_chi_r
from dualbench.io import provenance, write_json
from dualbench.scoring.measured_checks import (
    SpectrumError,
    check_finite,
    check_numeric_rows,
    check_one_sweep,
)

log = logging.getLogger(__name__)

FORMATS = ("xdi", "ascii", "athena")
MODES = ("transmission", "fluorescence", "mu")


@dataclass(frozen=True)
class ColumnSpec:
    """How mu(E) is formed: ``mode`` and the column names (as in the file's header)."""

    mode: str = "transmission"
    energy: str = "energy"
    i0: str = "i0"
    itrans: str = "itrans"
    ifluor: str = "ifluor"
    mu: str = "mu"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"column mode {self.mode!r} is not one of {', '.join(MODES)}")

    @classmethod
    def from_config(cls, columns: Mapping[str, Any] | None) -> ColumnSpec:
        """From a material's ``experiment_columns`` (missing keys take the defaults)."""
        return cls(**{k: v for k, v in (columns or {}).items() if v is not None})


@dataclass(frozen=True)
class ReductionSettings:
    """larch pre_edge / autobk parameters (config section ``experiment``).

    Energies in eV: ``e0_eV`` absolute (None: larch finds it), the pre-edge and
    normalisation ranges relative to E0 (``norm2_eV`` None: to the data's end);
    ``rbkg_A`` the autobk cutoff in Å; ``e0_tolerance_eV`` the largest distance allowed
    between E0 and the tabulated edge energy.
    """

    e0_eV: float | None = None
    pre1_eV: float = -150.0
    pre2_eV: float = -30.0
    norm1_eV: float = 150.0
    norm2_eV: float | None = None
    rbkg_A: float = 1.0
    e0_tolerance_eV: float = 50.0

    @classmethod
    def from_config(cls, experiment: Mapping[str, Any]) -> ReductionSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in experiment.items() if k in known})


@dataclass
class MeasuredSpectrum:
    """mu(E) of a file, with the element and edge its header states (None if it does not)."""

    path: Path
    energy: np.ndarray
    mu: np.ndarray
    element: str | None = None
    edge: str | None = None
    element_field: str = "Element.symbol"
    edge_field: str = "Element.edge"


@dataclass
class ExperimentChi:
    """The reduced spectrum: chi(k) on larch's 0.05 1/Å grid and its FT."""

    path: Path
    k: np.ndarray
    chi: np.ndarray
    r: np.ndarray
    chir: np.ndarray
    e0_eV: float
    edge_step: float
    edge_energy_eV: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def chir_mag(self) -> np.ndarray:
        return np.abs(self.chir)


def guess_format(path: str | Path) -> str:
    """xdi for ``.xdi``, athena for ``.prj``, else ascii."""
    suffix = Path(path).suffix.lower()
    return {".xdi": "xdi", ".prj": "athena"}.get(suffix, "ascii")


def _column(group: Any, labels: list[str], name: str, path: Path, fmt: str) -> np.ndarray:
    """The column ``name`` of a larch group (case-insensitive), or a SpectrumError."""
    wanted = name.strip().lower()
    for label in labels:
        if label.lower() == wanted and hasattr(group, label):
            return np.asarray(getattr(group, label), dtype=float)
    if hasattr(group, wanted):
        return np.asarray(getattr(group, wanted), dtype=float)
    raise SpectrumError(
        path, f"column {name!r}", f"not in the {fmt} file (columns: {', '.join(labels)})"
    )


@dataclass
class _Opened:
    """A spectrum file as larch read it: its group, the column labels, and the element
    and edge its header states (with the fields that name them in a refusal)."""

    data: Any
    labels: list[str]
    element: str | None = None
    edge: str | None = None
    element_field: str = "Element.symbol"
    edge_field: str = "Element.edge"


def _open_xdi(path: Path) -> _Opened:
    from larch.io import read_xdi

    try:
        data = read_xdi(str(path))
    except Exception as err:  # larch raises bare errors for malformed XDI
        raise SpectrumError(path, "format", f"not a readable XDI file: {err}") from None
    attrs = getattr(data, "attrs", {}) or {}
    element = (attrs.get("element", {}) or {}).get("symbol") or None
    edge = (attrs.get("element", {}) or {}).get("edge") or None
    labels = list(getattr(data, "array_labels", []))
    return _Opened(data, labels, element, edge)


def _open_ascii(path: Path) -> _Opened:
    from larch.io import read_ascii

    data = read_ascii(str(path))
    if data is None or not hasattr(data, "array_labels"):
        raise SpectrumError(path, "format", "not a readable column ASCII file")
    labels = list(data.array_labels) + list(getattr(data, "array_labels_orig", []) or [])
    return _Opened(data, labels)


def _open_athena(path: Path, group: str | None) -> _Opened:
    from larch.io import read_athena

    try:
        project = read_athena(str(path), do_preedge=False)
    except Exception as err:
        raise SpectrumError(path, "format", f"not a readable Athena project: {err}") from None
    names = list(getattr(project, "groups", {}) or {})
    if not names:
        raise SpectrumError(path, "group", "the Athena project holds no group")
    if group is None:
        name = names[0]
        if len(names) > 1:
            log.warning("%s: %d groups, using the first, %r", path, len(names), name)
    else:
        matches = [n for n in names if n == group or getattr(
            project.groups[n], "label", None) == group]
        if not matches:
            raise SpectrumError(path, "group", f"no group {group!r} (groups: {names})")
        name = matches[0]
    data = project.groups[name]
    labels = [a for a in ("energy", "mu", "i0", "itrans", "ifluor", "signal")
              if hasattr(data, a)]
    return _Opened(
        data, labels,
        element=getattr(data, "atsym", None) or None,
        edge=getattr(data, "edge", None) or None,
        element_field=f"group {name}: element", edge_field=f"group {name}: edge",
    )


def _energy_and_mu(
    opened: _Opened, path: Path, fmt: str, columns: ColumnSpec, lines: list[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(energy, mu) as read, in file order: the columns of ``columns.mode``, checked
    finite (``lines``: the data rows' line numbers of a text file) and combined."""
    data, labels = opened.data, opened.labels
    energy = _column(data, labels, columns.energy, path, fmt)
    if columns.mode == "transmission":
        i0 = _column(data, labels, columns.i0, path, fmt)
        it = _column(data, labels, columns.itrans, path, fmt)
        used = {columns.i0: i0, columns.itrans: it}
    elif columns.mode == "fluorescence":
        i0 = _column(data, labels, columns.i0, path, fmt)
        fl = _column(data, labels, columns.ifluor, path, fmt)
        used = {columns.i0: i0, columns.ifluor: fl}
    else:
        mu = _column(data, labels, columns.mu, path, fmt)
        used = {columns.mu: mu}
    if lines is not None:  # a text file: the line of each data row
        where = [f"line {n}" for n in lines]
    else:  # an Athena group: its row
        group_field = opened.element_field.rsplit(": ", 1)[0]
        where = [f"{group_field}: row {i + 1}" for i in range(len(energy))]
    check_finite(path, {columns.energy: energy, **used}, where)
    if columns.mode == "transmission":
        if np.any((i0 <= 0) | (it <= 0)):
            raise SpectrumError(
                path, f"column {columns.i0!r}/{columns.itrans!r}",
                "transmission needs positive i0 and itrans",
            )
        mu = np.log(i0 / it)
    elif columns.mode == "fluorescence":
        if np.any(i0 == 0):
            raise SpectrumError(path, f"column {columns.i0!r}", "i0 is zero")
        mu = fl / i0
    return energy, mu


def read_spectrum(
    path: str | Path,
    fmt: str | None = None,
    columns: ColumnSpec | None = None,
    group: str | None = None,
) -> MeasuredSpectrum:
    """mu(E) of an XDI, column ASCII or Athena file (``fmt`` None: from the suffix).

    ``group`` picks an Athena project's group by label (default: the first).  Energies
    are sorted.  A text file may have a free-text header (XDAC and other beamline ASCII
    formats) and footer; a non-numeric row inside its data is refused
    (:func:`check_numeric_rows`), and so is a NaN or infinite value in a column used
    (:func:`check_finite`), naming the line.
    """
    import_larch()
    path = Path(path)
    fmt = fmt or guess_format(path)
    columns = columns or ColumnSpec()
    if fmt not in FORMATS:
        raise SpectrumError(path, "format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: spectrum file not found")
    # Text formats: the data rows' line numbers; a broken data block is refused here,
    # before larch reads (and silently truncates) it.
    lines = check_numeric_rows(path) if fmt in ("xdi", "ascii") else None
    if fmt == "xdi":
        opened = _open_xdi(path)
    elif fmt == "ascii":
        opened = _open_ascii(path)
    else:
        opened = _open_athena(path, group)
    energy, mu = _energy_and_mu(opened, path, fmt, columns, lines)

    check_one_sweep(path, energy, columns.energy)
    order = np.argsort(energy, kind="stable")
    energy, mu = energy[order], mu[order]
    if len(energy) < 20:
        raise SpectrumError(path, f"column {columns.energy!r}", f"only {len(energy)} points")
    element, edge = opened.element, opened.edge
    return MeasuredSpectrum(
        path=path,
        energy=energy,
        mu=mu,
        element=str(element).strip() if element else None,
        edge=str(edge).strip() if edge else None,
        element_field=opened.element_field,
        edge_field=opened.edge_field,
    )


def edge_energy(element: str, edge: str) -> float:
    """Tabulated edge energy (eV) from xraydb."""
    import xraydb

    return float(xraydb.xray_edge(element, edge).energy)


def check_header(spectrum: MeasuredSpectrum, element: str, edge: str) -> None:
    """Refuse a file whose header states another element or edge."""
    if spectrum.element is not None and spectrum.element.lower() != element.lower():
        raise SpectrumError(
            spectrum.path, spectrum.element_field,
            f"the file is for {spectrum.element}, not the absorber {element}",
        )
    if spectrum.edge is not None and spectrum.edge.upper() != edge.upper():
        raise SpectrumError(
            spectrum.path, spectrum.edge_field,
            f"the file is for the {spectrum.edge} edge, not {edge}",
        )


def check_e0(path: Path, e0: float, element: str, edge: str, tolerance_eV: float) -> float:
    """Refuse an E0 more than ``tolerance_eV`` from the tabulated edge; returns the latter."""
    tabulated = edge_energy(element, edge)
    if abs(e0 - tabulated) > tolerance_eV:
        raise SpectrumError(
            path, "E0",
            f"{e0:.1f} eV is {e0 - tabulated:+.1f} eV from the tabulated {element} {edge} edge"
            f" ({tabulated:.1f} eV; tolerance {tolerance_eV:g} eV, experiment.e0_tolerance_eV):"
            " wrong element or edge, or energies not in eV",
        )
    return tabulated


def reduce_spectrum(
    spectrum: MeasuredSpectrum,
    element: str,
    edge: str,
    settings: ReductionSettings | None = None,
    ft: FTSettings | None = None,
) -> ExperimentChi:
    """Pre-edge normalisation, E0, autobk background, chi(k) and its FT, all with larch."""
    import_larch()
    from larch import Group
    from larch.xafs import autobk, pre_edge

    settings = settings or ReductionSettings()
    ft = ft or FTSettings()
    check_header(spectrum, element, edge)
    path = spectrum.path
    tabulated = edge_energy(element, edge)
    if not spectrum.energy[0] < tabulated < spectrum.energy[-1]:
        raise SpectrumError(
            path, "energy",
            f"the data ({spectrum.energy[0]:.1f}-{spectrum.energy[-1]:.1f} eV) do not span the"
            f" {element} {edge} edge at {tabulated:.1f} eV",
        )
    if settings.e0_eV is not None:
        check_e0(path, float(settings.e0_eV), element, edge, settings.e0_tolerance_eV)
    group = Group(energy=spectrum.energy, mu=spectrum.mu)
    pre_edge(
        group,
        e0=settings.e0_eV,
        pre1=settings.pre1_eV,
        pre2=settings.pre2_eV,
        norm1=settings.norm1_eV,
        norm2=settings.norm2_eV,
    )
    check_e0(path, float(group.e0), element, edge, settings.e0_tolerance_eV)
    autobk(group, rbkg=settings.rbkg_A, ek0=float(group.e0), edge_step=float(group.edge_step))
    k, chi = np.asarray(group.k), np.asarray(group.chi)
    kmax_data = float(k[-1])
    if ft.window_end > kmax_data + 1e-6:
        raise SpectrumError(
            path, "ft.kmax",
            f"the FT window reaches k = {ft.window_end:g} 1/Å (kmax {ft.kmax:g} + dk/2) but the"
            f" data end at k = {kmax_data:.2f} 1/Å",
        )
    r, chir = fourier_transform(k, chi, ft)
    log.info(
        "%s: E0 %.2f eV (tabulated %.1f), edge step %.4g, k to %.2f 1/Å, max |chi(R)| %.3f",
        path, group.e0, tabulated, group.edge_step, kmax_data, float(np.abs(chir).max()),
    )
    return ExperimentChi(
        path=path,
        k=k,
        chi=chi,
        r=r,
        chir=chir,
        e0_eV=float(group.e0),
        edge_step=float(group.edge_step),
        edge_energy_eV=tabulated,
        info={"kmax_data": kmax_data},
    )


def process_experiment(
    path: str | Path,
    element: str,
    edge: str,
    out_dir: str | Path,
    *,
    fmt: str | None = None,
    columns: ColumnSpec | Mapping[str, Any] | None = None,
    settings: ReductionSettings | Mapping[str, Any] | None = None,
    ft: FTSettings | Mapping[str, Any] | None = None,
    group: str | None = None,
) -> ExperimentChi:
    """Read, check and reduce a measured spectrum; write ``out_dir``/chi_k.csv (k, chi),
    chi_r.csv (r, chir_mag) and experiment.json (E0, edge step, settings, provenance)."""
    if not isinstance(columns, ColumnSpec):
        columns = ColumnSpec.from_config(columns)
    if settings is not None and not isinstance(settings, ReductionSettings):
        settings = ReductionSettings.from_config(settings)
    if ft is not None and not isinstance(ft, FTSettings):
        ft = FTSettings.from_config(ft)
    spectrum = read_spectrum(path, fmt, columns, group=group)
    result = reduce_spectrum(spectrum, element, edge, settings, ft)
    out_dir = Path(out_dir)
    write_chi_k(out_dir / "chi_k.csv", result.k, result.chi)
    write_chi_r(out_dir / "chi_r.csv", result.r, result.chir)
    write_json(
        out_dir / "experiment.json",
        {
            "file": str(path),
            "format": fmt or guess_format(path),
            "element": element,
            "edge": edge,
            "e0_eV": result.e0_eV,
            "edge_energy_eV": result.edge_energy_eV,
            "edge_step": result.edge_step,
            "kmax_data": result.info["kmax_data"],
            "chir_mag_max": float(result.chir_mag.max()),
            "columns": asdict(columns),
            "settings": asdict(settings or ReductionSettings()),
            "ft": asdict(ft or FTSettings()),
            "provenance": provenance(),
        },
    )
    return result
