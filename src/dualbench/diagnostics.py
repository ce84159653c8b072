"""Structural and thermal diagnostics of MD snapshots.

* Temperature statistics against the canonical ensemble: the kinetic temperature of N
  atoms with the centre of mass fixed (n_dof = 3N - 3) fluctuates with standard deviation
  ``T * sqrt(2 / n_dof)`` (``T * sqrt(2 / 3N)`` for large N).
* The radial distribution function g(r), total and absorber-centred.
* Per absorber-neighbour shell, the mean-square relative displacement
  ``sigma^2 = <(|r_ij| - <|r_ij|>)^2>``, the quantity an EXAFS Debye-Waller factor
  measures.  Pairs are found once in the reference (ideal) structure and followed
  through every snapshot in fractional coordinates:
  ``r_ij(t) = (s0_ij + ds_j(t) - ds_i(t)) H(t)`` with ``s0_ij`` the reference pair
  vector (the periodic image fixed), ``ds`` each atom's minimum-image fractional
  displacement from its reference site and ``H(t)`` the snapshot's cell (the reference's
  under NVT, where this is ``d0_ij + u_j - u_i``; the snapshot's own under NPT, whose
  volume fluctuations are then part of sigma^2, as the EXAFS engines see them).  A pair
  therefore never jumps to another image.
  Pairs are grouped into shells by neighbour element and reference distance (within
  ``shell_tol_A``), up to ``cutoff_A`` but below the supercell's inscribed radius, so
  that every pair is a distinct atom pair.  The average is over all pairs of the shell
  and all snapshots (the shell's full distance distribution, as EXAFS sees it).
* The mean pressure (virial plus kinetic ``N kB T / V``) and, for NPT runs, the mean cell
  (lengths, angles, volume per atom, lattice parameter per supercell repetition), each
  with a block-average standard error (:func:`dualbench.stats.block_standard_error`).

Units: Å, Å^2, Å^3, degrees, K, eV, GPa.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.io import provenance, write_csv, write_json
from dualbench.md.cell_stats import (  # noqa: F401  (the pressure ones re-exported)
    cell_stats,
    frame_pressures_GPa,
    kinetic_temperature,
    mean_pressure_GPa,
    pressure_stats,
)
from dualbench.stats import SeriesStats, standard_error

log = logging.getLogger(__name__)

RDF_FILE = "rdf.csv"
SIGMA2_FILE = "sigma2.csv"
DIAGNOSTICS_FILE = "diagnostics.json"
SIGMA2_COLUMNS = (
    "shell",
    "neighbour",
    "r_ideal_A",
    "r_mean_A",
    "sigma2_A2",
    "sigma2_stderr_A2",
    "n_eff",
    "n_pairs",
    "coordination",
)


def absorber_indices(atoms: Atoms, absorber: str) -> np.ndarray:
    """Indices of the atoms of element ``absorber``; ValueError when there is none."""
    idx = np.flatnonzero(np.asarray(atoms.get_chemical_symbols()) == absorber)
    if idx.size == 0:
        raise ValueError(
            f"no {absorber!r} atom in the structure ({atoms.get_chemical_formula()})"
        )
    return idx


# --------------------------------------------------------------------------------------
# Temperature


def temperature_stats(
    temperatures_K: Sequence[float] | np.ndarray,
    target_K: float,
    n_atoms: int,
    n_dof: int | None = None,
) -> dict[str, float | int]:
    """Mean and spread of the kinetic temperature against the canonical expectation.

    ``n_dof`` defaults to ``3 * n_atoms - 3`` (centre of mass fixed, as in
    :mod:`dualbench.md.driver`).  ``expected_std_T_K = target * sqrt(2 / n_dof)``.
    """
    t = np.asarray(temperatures_K, dtype=float)
    if t.size == 0:
        raise ValueError("no temperatures to average")
    n_dof = int(n_dof if n_dof is not None else 3 * n_atoms - 3)
    expected_std = target_K * np.sqrt(2.0 / n_dof)
    std = float(t.std(ddof=1)) if t.size > 1 else float("nan")
    return {
        "mean_T_K": float(t.mean()),
        "std_T_K": std,
        "target_T_K": float(target_K),
        "expected_std_T_K": float(expected_std),
        "mean_T_error_K": float(t.mean() - target_K),
        "std_T_ratio": float(std / expected_std),
        "n_dof": n_dof,
        "n_T_samples": int(t.size),
    }


# --------------------------------------------------------------------------------------
# Radial distribution function


def radial_distribution(
    frames: Sequence[Atoms],
    r_max_A: float = 6.0,
    bin_A: float = 0.02,
    absorber: str | None = None,
) -> Any:
    """g(r) averaged over frames: columns ``r_A`` (bin centre), ``g_r`` and, with an
    absorber, ``g_absorber_r`` (neighbours of any element around the absorbers).

    Normalised to each frame's number density of all atoms, so g -> 1 at large r.
    """
    import pandas as pd
    from ase.neighborlist import neighbor_list

    edges = np.arange(0.0, r_max_A + 0.5 * bin_A, bin_A)
    counts = np.zeros(edges.size - 1)
    counts_abs = np.zeros(edges.size - 1)
    n_atoms = len(frames[0])
    absorbers = absorber_indices(frames[0], absorber) if absorber else None
    for frame in frames:
        # Each frame's pairs weighted by its own volume (NPT cells differ).
        weight = abs(frame.get_volume()) / n_atoms
        i, d = neighbor_list("id", frame, r_max_A)
        counts += weight * np.histogram(d, bins=edges)[0]
        if absorbers is not None:
            counts_abs += weight * np.histogram(d[np.isin(i, absorbers)], bins=edges)[0]
    shell_volume = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = 1.0  # the weights above hold each frame's 1 / density
    n_frames = len(frames)
    table = {
        "r_A": 0.5 * (edges[1:] + edges[:-1]),
        "g_r": counts / (n_frames * n_atoms * density * shell_volume),
    }
    if absorbers is not None:
        table["g_absorber_r"] = counts_abs / (n_frames * absorbers.size * density * shell_volume)
    return pd.DataFrame(table)


# --------------------------------------------------------------------------------------
# Shell sigma^2


def reference_shells(
    reference: Atoms,
    absorber: str,
    cutoff_A: float = 6.0,
    shell_tol_A: float = 0.1,
) -> tuple[list[dict[str, Any]], float]:
    """Absorber-neighbour pairs of the reference grouped into shells.

    Returns (shells, cutoff used).  Each shell is a dict with ``neighbour`` (element),
    ``i``, ``j`` (atom indices), ``d0`` (reference pair vectors, Å) and ``r_ideal_A``.
    The cutoff is ``min(cutoff_A, inscribed radius)``; pairs at or beyond the inscribed
    radius are left out (an atom would meet its own periodic image there).
    """
    from ase.neighborlist import neighbor_list

    from dualbench.structure import inscribed_radius

    r_in = inscribed_radius(np.asarray(reference.cell))
    cutoff = min(float(cutoff_A), r_in)
    absorbers = absorber_indices(reference, absorber)
    i, j, vec = neighbor_list("ijD", reference, cutoff)
    dist = np.linalg.norm(vec, axis=1)
    keep = np.isin(i, absorbers) & (dist < r_in - 1e-6) & (dist <= cutoff)
    i, j, vec, dist = i[keep], j[keep], vec[keep], dist[keep]
    symbols = np.asarray(reference.get_chemical_symbols())
    groups: list[dict[str, Any]] = []
    for element in sorted(set(symbols[j].tolist())):
        sel = np.flatnonzero(symbols[j] == element)
        sel = sel[np.argsort(dist[sel], kind="stable")]
        start = 0
        while start < sel.size:
            first = dist[sel[start]]
            stop = start
            while stop < sel.size and dist[sel[stop]] - first <= shell_tol_A:
                stop += 1
            members = sel[start:stop]
            groups.append(
                {
                    "neighbour": element,
                    "i": i[members],
                    "j": j[members],
                    "d0": vec[members],
                    "r_ideal_A": float(dist[members].mean()),
                }
            )
            start = stop
    groups.sort(key=lambda g: (g["r_ideal_A"], g["neighbour"]))
    return groups, cutoff


def shell_sigma2(
    frames: Sequence[Atoms],
    reference: Atoms,
    absorber: str,
    cutoff_A: float = 6.0,
    shell_tol_A: float = 0.1,
) -> Any:
    """sigma^2 (Å^2) per absorber-neighbour shell over ``frames`` (see the module text).

    ``reference`` is the ideal structure in the frames' atom order (and, under NVT, cell;
    NPT frames have their own cells, see the module text).  Returns a
    DataFrame with columns shell, neighbour, r_ideal_A, r_mean_A, sigma2_A2, n_pairs
    (distinct pairs per frame) and coordination (pairs per absorber).
    """
    import pandas as pd

    if not frames:
        raise ValueError("no frames")
    inv_ref = np.linalg.inv(np.asarray(reference.cell))
    for k, frame in enumerate(frames):
        if len(frame) != len(reference) or not np.array_equal(frame.numbers, reference.numbers):
            raise ValueError(f"frame {k} does not hold the reference's atoms in the same order")
    shells, cutoff = reference_shells(reference, absorber, cutoff_A, shell_tol_A)
    n_abs = absorber_indices(reference, absorber).size
    if not shells:
        log.warning("no absorber-neighbour pair below %.3f Å", cutoff)

    # Fractional displacement of every atom from its reference site, minimum image.
    cells = np.stack([np.asarray(f.cell, dtype=float) for f in frames])
    frac_ref = reference.positions @ inv_ref
    dfrac = np.stack(
        [f.positions @ np.linalg.inv(c) - frac_ref for f, c in zip(frames, cells, strict=True)]
    )
    dfrac -= np.round(dfrac)
    disp = np.einsum("fak,fkl->fal", dfrac, cells)  # Å, in each frame's cell
    nearest = min((s["r_ideal_A"] for s in shells), default=np.inf)
    max_disp = float(np.linalg.norm(disp, axis=2).max())
    if max_disp > 0.5 * nearest:
        log.warning(
            "an atom moved %.2f Å from its reference site (over half the nearest-neighbour"
            " distance %.2f Å): diffusion or melting, sigma^2 is not a vibrational width",
            max_disp,
            nearest,
        )
    rows = []
    for number, shell in enumerate(shells, start=1):
        s0 = shell["d0"] @ inv_ref  # fractional reference pair vectors
        frac = s0[None, :, :] + dfrac[:, shell["j"], :] - dfrac[:, shell["i"], :]
        r = np.linalg.norm(np.einsum("fpk,fkl->fpl", frac, cells), axis=2)  # (frames, pairs)
        # sigma^2 is the time average of each frame's mean square deviation from the
        # shell's mean: its error counts that series' autocorrelation.
        series = ((r - r.mean()) ** 2).mean(axis=1)
        corr = SeriesStats.of(series) if len(series) >= 2 else SeriesStats(len(series), 1.0)
        rows.append(
            {
                "shell": number,
                "neighbour": shell["neighbour"],
                "r_ideal_A": shell["r_ideal_A"],
                "r_mean_A": float(r.mean()),
                "sigma2_A2": float(r.var()),
                "sigma2_stderr_A2": float(standard_error(series)),
                "n_eff": corr.n_eff,
                "n_pairs": int(r.shape[1]),
                "coordination": r.shape[1] / n_abs,
            }
        )
    return pd.DataFrame(rows, columns=list(SIGMA2_COLUMNS))


# --------------------------------------------------------------------------------------
# Everything for one run


def _supercell_of_run(md_log: str | Path | None) -> list[int] | None:
    """The supercell repetitions in md_run.json beside ``md_log`` (dualbench md's), if any."""
    import json

    if md_log is None:
        return None
    info = Path(md_log).with_name("md_run.json")
    if not info.is_file():
        return None
    supercell = json.loads(info.read_text()).get("supercell")
    return [int(r) for r in supercell] if supercell else None


def _production_rows(md_log: str | Path | None) -> Any | None:
    """The production rows of an md_log.csv (all rows of a log without phases), or None."""
    import pandas as pd

    if md_log is None:
        return None
    table = pd.read_csv(md_log)
    return table[table["phase"] == "production"] if "phase" in table else table


def _first_shell(sigma2: Any) -> dict[str, Any] | None:
    if not len(sigma2):
        return None
    first = sigma2.iloc[0]
    return {
        "neighbour": first["neighbour"],
        "r_ideal_A": float(first["r_ideal_A"]),
        "r_mean_A": float(first["r_mean_A"]),
        "sigma2_A2": float(first["sigma2_A2"]),
        "coordination": float(first["coordination"]),
    }


def md_diagnostics(
    snapshots: str | Path | Sequence[Atoms],
    reference: str | Path | Atoms,
    absorber: str,
    temperature_K: float,
    out_dir: str | Path,
    *,
    md_log: str | Path | None = None,
    supercell: Sequence[int] | None = None,
    cutoff_A: float = 6.0,
    shell_tol_A: float = 0.1,
    rdf_bin_A: float = 0.02,
    config_hash: str | None = None,
) -> dict[str, Any]:
    """Write ``rdf.csv``, ``sigma2.csv`` and ``diagnostics.json`` to ``out_dir``.

    Temperature statistics come from the production rows of ``md_log`` (md_log.csv of
    :func:`dualbench.md.driver.run_md`) when given, else from the snapshots' momenta; the
    pressure from the log's pressure_GPa column (NPT runs) or else the snapshots; the
    cell from the snapshots.  ``supercell`` (repetitions of the unit cell; default: those
    in md_run.json beside ``md_log``) gives the lattice per repetition.  Returns the
    diagnostics dict.  A run whose md_run.json (beside ``snapshots``) says it is unstable
    (:mod:`dualbench.runstatus`) gets header-only CSVs and its failure in the JSON.
    """
    from dualbench.md.snapshots import read_snapshots
    from dualbench.runstatus import md_failure
    from dualbench.structure import inscribed_radius

    if isinstance(snapshots, (str, Path)) and (failure := md_failure(Path(snapshots).parent)):
        return _unstable_diagnostics(Path(out_dir), failure, config_hash)
    frames = read_snapshots(snapshots) if isinstance(snapshots, (str, Path)) else list(snapshots)
    ref = read_snapshots(reference)[0] if isinstance(reference, (str, Path)) else reference
    out_dir = Path(out_dir)
    n_atoms = len(ref)
    n_dof = 3 * n_atoms - 3

    table = _production_rows(md_log)
    if table is not None:
        temperatures = table["temperature_K"].to_numpy()
        t_source = "md_log production rows"
        epot = table["epot_eV"].to_numpy()
    else:
        temperatures = np.array([kinetic_temperature(f, n_dof) for f in frames])
        t_source = "snapshots"
        epot = np.array([f.get_potential_energy() for f in frames if f.calc is not None])
    stats = temperature_stats(temperatures, temperature_K, n_atoms, n_dof)

    rdf = radial_distribution(frames, cutoff_A, rdf_bin_A, absorber)
    sigma2 = shell_sigma2(frames, ref, absorber, cutoff_A, shell_tol_A)
    write_csv(out_dir / RDF_FILE, rdf)
    write_csv(out_dir / SIGMA2_FILE, sigma2)

    r_in = inscribed_radius(np.asarray(ref.cell))
    result: dict[str, Any] = {
        **stats,
        "T_source": t_source,
        "n_snapshots": len(frames),
        "n_atoms": n_atoms,
        "absorber": absorber,
        "n_absorbers": int(absorber_indices(ref, absorber).size),
        "mean_epot_eV_per_atom": float(epot.mean() / n_atoms) if epot.size else None,
        "std_epot_eV_per_atom": float(epot.std() / n_atoms) if epot.size else None,
        **pressure_stats(frames, table, n_dof),
        **cell_stats(frames, supercell if supercell is not None else _supercell_of_run(md_log)),
        "inscribed_radius_A": r_in,
        "sigma2_cutoff_A": min(cutoff_A, r_in),
        "shell_tol_A": shell_tol_A,
        "first_shell": _first_shell(sigma2),
        "provenance": provenance(config_hash=config_hash),
    }
    write_json(out_dir / DIAGNOSTICS_FILE, result)
    _log_summary(result, sigma2, temperature_K)
    return result


def _unstable_diagnostics(out_dir: Path, failure: Any, config_hash: str | None) -> dict:
    """The outputs of a run a guard stopped: no rows, the failure in diagnostics.json."""
    import pandas as pd

    write_csv(out_dir / RDF_FILE, pd.DataFrame(columns=["r_A", "g_r", "g_absorber_r"]))
    write_csv(out_dir / SIGMA2_FILE, pd.DataFrame(columns=list(SIGMA2_COLUMNS)))
    result = {"status": "unstable", "failure": failure.to_dict(), "first_shell": None,
              "provenance": provenance(config_hash=config_hash)}
    write_json(out_dir / DIAGNOSTICS_FILE, result)
    log.warning("no diagnostics: %s", failure.text())
    return result


def _log_summary(result: dict[str, Any], sigma2: Any, temperature_K: float) -> None:
    log.info(
        "T = %.1f +- %.1f K (target %g, canonical spread %.1f K) over %d samples; %d snapshots",
        result["mean_T_K"],
        result["std_T_K"],
        temperature_K,
        result["expected_std_T_K"],
        result["n_T_samples"],
        result["n_snapshots"],
    )
    if result["mean_pressure_GPa"] is not None:
        log.info(
            "P = %.3f GPa (standard error %s, from %s); volume %.4f Å^3/atom; lattice %s Å",
            result["mean_pressure_GPa"],
            result["sem_pressure_GPa"],
            result["pressure_source"],
            result["mean_volume_A3_per_atom"],
            result["mean_lattice_parameter_A"] or result["mean_lattice_A"],
        )
    for row in sigma2.itertuples():
        log.info(
            "shell %d %s-%s: R = %.4f Å (ideal %.4f), N = %g, sigma^2 = %.5f Å^2",
            row.shell,
            result["absorber"],
            row.neighbour,
            row.r_mean_A,
            row.r_ideal_A,
            row.coordination,
            row.sigma2_A2,
        )
