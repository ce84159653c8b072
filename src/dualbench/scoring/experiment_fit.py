"""The measured spectrum fitted on its own: the yardstick every model is scored with.

larch's ``feffit`` fits the measured chi(k) over the first shell(s) with FEFF8L's
single-scattering paths of the ideal crystal, computed from the same fixed potentials the
simulations use: one E0 shift and S0^2 for all paths, and each fitted shell's sigma^2 and
distance R = reff + deltaR.  The E0 shift is larch's ``e0`` of a path, the convention of
:mod:`dualbench.scoring.against_experiment`, so the fitted value places FEFF's energy
origin (the simulations' too) against the experiment's; S0^2 is the many-body amplitude
factor.  By default every simulation is scored with these two (``exafs.e0_shift:
experiment``, ``exafs.s02: experiment``): a model's score then depends on nothing but the
model and the measurement, and its disorder is not absorbed into a fitted amplitude.

``results/{material}/experiment/fit.json`` holds ``e0_shift_eV``, ``s02``,
``sigma2_shell{i}_A2`` and ``r_shell{i}_A`` (i = 1, 2, ...), each with an ``_err`` twin
(larch's standard errors), and the fit's R-factor, reduced chi-square and ranges, and
the experiment it belongs to: ``experiment`` (its chi_k.csv) and ``experiment_sha256``
(that file's SHA-256, which the comparison checks: :mod:`dualbench.scoring.fit_record`).

Units: energies in eV, distances in Å, sigma^2 in Å^2, k in 1/Å.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualbench.exafs import (
    POTENTIAL_FILES,
    FeffSettings,
    FTSettings,
    Potentials,
    cut_cluster,
    feff_input,
    import_larch,
    load_potentials,
    read_chi_k,
    run_feff_modules,
)
from dualbench.exafs.feff import work_folder
from dualbench.exafs.shells import SHELL_TOLERANCE_A, absorber_shells
from dualbench.fetch import sha256_of
from dualbench.io import provenance, write_json

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)

#: Starting E0 shifts (eV) of the fits; the best end point is kept (the shift is a few eV
#: to ten eV, and a fit started far from it can stop in a neighbouring minimum).
E0_STARTS_EV = (-10.0, -5.0, 0.0, 5.0, 10.0)


@dataclass(frozen=True)
class ShellFitSettings:
    """Which shells are fitted and over which R range (Å); k range, window and k weight
    are the study's FT settings."""

    shells: int = 1
    rmin_A: float = 1.0
    rmax_A: float = 3.0

    @classmethod
    def from_config(cls, fit: Mapping[str, Any]) -> ShellFitSettings:
        return cls(
            shells=int(fit["shells"]), rmin_A=float(fit["rmin_A"]), rmax_A=float(fit["rmax_A"])
        )


@dataclass(frozen=True)
class ShellPath:
    """FEFF's single-scattering path to one shell: its feffNNNN.dat, length and degeneracy."""

    file: Path
    reff_A: float
    degeneracy: float
    scatterer: str


def shell_distances(
    reference: Atoms, absorber_index: int, shells: int, radius_A: float
) -> list[float]:
    """The first ``shells`` distinct neighbour distances (Å) of an absorber
    (:func:`dualbench.exafs.shells.absorber_shells`)."""
    found = [s.distance_A for s in absorber_shells(reference, absorber_index, radius_A)]
    if len(found) < shells:
        raise ValueError(
            f"only {len(found)} shells within {radius_A} Å of the absorber; experiment_fit."
            f"shells asks for {shells}: raise exafs.cluster_radius_A"
        )
    return found[:shells]


def shell_paths(
    reference: Atoms,
    potentials: Potentials,
    cluster_radius_A: float,
    shells: int,
    folder: str | Path,
) -> list[ShellPath]:
    """FEFF8L's single-scattering paths to the first ``shells`` shells around the first
    absorber of ``reference``, with the fixed potentials, written as feffNNNN.dat files
    into ``folder`` (ff2x print level 3)."""
    folder = Path(folder)
    symbols = reference.get_chemical_symbols()
    absorber = symbols.index(potentials.absorber)
    distances = shell_distances(reference, absorber, shells, cluster_radius_A)
    settings = FeffSettings(
        edge=potentials.edge,
        rmax_A=distances[-1] + 0.5 * SHELL_TOLERANCE_A,
        nleg=2,
        cluster_radius_A=cluster_radius_A,
        scf_radius_A=potentials.scf_radius_A,
        criteria_pct=(0.0, 0.0),
    )
    cluster = cut_cluster(reference, absorber, cluster_radius_A)
    text = feff_input(cluster, potentials.ipots, settings, title="dualbench experiment fit")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feff.inp").write_text(re.sub(r"(?m)^PRINT .*$", "PRINT 0 0 0 0 0 3", text))
    run_feff_modules(folder, ("rdinp",))
    for name in POTENTIAL_FILES:
        shutil.copyfile(potentials.folder / name, folder / name)
    run_feff_modules(folder, ("pathfinder", "genfmt", "ff2x"))
    import_larch()
    from larch.xafs import feffpath

    paths = []
    for file in sorted(folder.glob("feff[0-9][0-9][0-9][0-9].dat")):
        path = feffpath(str(file))
        scatterer = str(path.geom[1][0]) if len(path.geom) > 1 else "?"
        paths.append(ShellPath(file, float(path.reff), float(path.degen), scatterer))
    if not paths:
        raise ValueError(f"{folder}: FEFF wrote no path files")
    return paths


def _shell_of(paths: list[ShellPath]) -> list[int]:
    """Shell number (0, 1, ...) of each path: paths of the same length are one shell."""
    shells, last = [], None
    for p in paths:
        if last is None or p.reff_A - last > SHELL_TOLERANCE_A:
            shells.append(len(set(shells)))
            last = p.reff_A
        else:
            shells.append(shells[-1])
    return shells


def fit_shells(
    k: np.ndarray, chi: np.ndarray, paths: list[ShellPath], ft: FTSettings, fit: ShellFitSettings
) -> dict[str, Any]:
    """larch feffit of chi(k) (on a uniform k grid) with ``paths``: E0 shift, S0^2, and
    sigma^2 and deltaR per shell; several E0 starts, the best fit kept."""
    import_larch()
    from larch import Group
    from larch.fitting import guess, param_group
    from larch.xafs import feffit, feffit_dataset, feffit_transform, feffpath

    shell = _shell_of(paths)
    n_shells = max(shell) + 1
    best = None
    for start in E0_STARTS_EV:
        params = param_group(
            s02=guess(1.0, min=0.2, max=2.5),
            e0=guess(start, min=-25.0, max=25.0),
            **{f"sig2_{i}": guess(0.003, min=0.0, max=0.05) for i in range(n_shells)},
            **{f"dr_{i}": guess(0.0, min=-0.3, max=0.3) for i in range(n_shells)},
        )
        feff_paths = [
            feffpath(str(p.file), label=f"p{j}", s02="s02", e0="e0",
                     sigma2=f"sig2_{shell[j]}", deltar=f"dr_{shell[j]}")
            for j, p in enumerate(paths)
        ]
        transform = feffit_transform(
            kmin=ft.kmin, kmax=ft.kmax, dk=ft.dk, kweight=ft.kweight, window=ft.window,
            rmin=fit.rmin_A, rmax=fit.rmax_A, fitspace="r",
        )
        data = Group(k=np.asarray(k, dtype=float), chi=np.asarray(chi, dtype=float))
        result = feffit(params, feffit_dataset(data=data, paths=feff_paths, transform=transform))
        if best is None or result.chi_square < best.chi_square:
            best = result
    return _fit_record(best, paths, shell, n_shells)


def _fit_record(result, paths: list[ShellPath], shell: list[int], n_shells: int) -> dict:
    params = result.params

    def value(name: str) -> tuple[float, float]:
        p = params[name]
        err = p.stderr if p.stderr is not None else float("nan")
        return float(p.value), float(err)

    record: dict[str, Any] = {}
    for key, name in (("e0_shift_eV", "e0"), ("s02", "s02")):
        record[key], record[f"{key}_err"] = value(name)
    # The yardstick's E0 and S0^2 are correlated: scoring.yardstick propagates both.
    correl = getattr(params["s02"], "correl", None) or {}
    record["correl_s02_e0"] = float(correl.get("e0", 0.0))
    for i in range(n_shells):
        first = paths[shell.index(i)]
        record[f"sigma2_shell{i + 1}_A2"], record[f"sigma2_shell{i + 1}_A2_err"] = value(
            f"sig2_{i}"
        )
        dr, dr_err = value(f"dr_{i}")
        record[f"r_shell{i + 1}_A"], record[f"r_shell{i + 1}_A_err"] = first.reff_A + dr, dr_err
        record[f"reff_shell{i + 1}_A"] = first.reff_A
        record[f"n_shell{i + 1}"] = sum(p.degeneracy for p, s in zip(paths, shell, strict=True)
                                        if s == i)
    record["rfactor"] = float(result.rfactor)
    record["chi_square_reduced"] = float(result.chi2_reduced)
    record["n_independent"] = float(result.n_independent)
    record["n_varys"] = int(result.nvarys)
    return record


def fit_stage(
    experiment_chi_k: str | Path,
    reference: Atoms,
    potentials_dir: str | Path,
    *,
    exafs: Mapping[str, Any],
    ft: Mapping[str, Any],
    fit: Mapping[str, Any],
    out: str | Path,
) -> dict[str, Any]:
    """The `fit_experiment` job: fit the measured chi(k); write ``out`` (fit.json)."""
    out = Path(out)
    potentials = load_potentials(potentials_dir)
    settings = ShellFitSettings.from_config(fit)
    ft_settings = FTSettings.from_config(ft)
    if not ft_settings.rmin <= settings.rmin_A < settings.rmax_A:
        raise ValueError(
            f"experiment_fit: rmin_A {settings.rmin_A} must lie below rmax_A {settings.rmax_A}"
        )
    work = work_folder(out.parent, ".fit-paths-")
    paths = shell_paths(
        reference, potentials, float(exafs["cluster_radius_A"]), settings.shells, work
    )
    k, chi = read_chi_k(experiment_chi_k)
    record = fit_shells(k, chi, paths, ft_settings, settings)
    shutil.rmtree(work)
    log.info(
        "experiment fit: E0 shift %.2f +- %.2f eV, S0^2 %.3f +- %.3f, sigma2 shell 1"
        " %.5f +- %.5f Å^2, R shell 1 %.4f Å, R-factor %.4f",
        record["e0_shift_eV"], record["e0_shift_eV_err"], record["s02"], record["s02_err"],
        record["sigma2_shell1_A2"], record["sigma2_shell1_A2_err"], record["r_shell1_A"],
        record["rfactor"],
    )
    write_json(
        out,
        {
            **record,
            "settings": {**asdict(settings), "ft": asdict(ft_settings)},
            "experiment": str(experiment_chi_k),
            # compare checks that a fit scores the chi_k.csv it was made from
            "experiment_sha256": sha256_of(experiment_chi_k),
            "potentials": str(potentials_dir),
            "provenance": provenance(),
        },
    )
    return record
