"""The experiment's fit (fit.json of :mod:`dualbench.scoring.experiment_fit`) as a
comparison reads it: a malformed record, unphysical values or a fit of another experiment
are refused, naming the file and the key, before any model is scored with it.

The fit belongs to the measured chi_k.csv it was made from: ``experiment_sha256`` (the
file's SHA-256, recorded at fit time) must be that of the chi_k.csv being scored; a record
made before the SHA-256 was recorded is checked by its ``experiment`` path (resolved).

Units: energies in eV.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dualbench.fetch import sha256_of

log = logging.getLogger(__name__)

#: The bounds the fit's S0^2 and E0 shift are fitted within (experiment_fit.fit_shells):
#: S0^2 in (0, S02_MAX], E0 shift in E0_BOUNDS_EV (eV).
S02_MAX = 2.5
E0_BOUNDS_EV = (-25.0, 25.0)
#: Keys every fit record needs: the yardstick's values and their errors.
REQUIRED_KEYS = ("s02", "e0_shift_eV", "s02_err", "e0_shift_eV_err")


def _number(fit: Mapping[str, Any], key: str, source: str) -> float:
    value = fit[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{source}: {key} {value!r} is not a number")
    if not math.isfinite(value):
        raise ValueError(
            f"{source}: {key} is {value}: the fit gave no finite value (a parameter at its"
            " bound, or no error estimate); check the fit and rerun it"
        )
    return float(value)


def check_fit_values(fit: Mapping[str, Any], source: str) -> None:
    """Refuse unphysical values among those ``fit`` holds: S0^2 outside (0, 2.5], an E0
    shift outside the fit's bounds, a non-finite or negative error, a correlation outside
    [-1, 1]; ``source`` names the record."""
    if "s02" in fit:
        s02 = _number(fit, "s02", source)
        if not 0.0 < s02 <= S02_MAX:
            raise ValueError(
                f"{source}: s02 {s02:g} is not a physical S0^2 (0 < S0^2 <= {S02_MAX:g}, the"
                " fit's bound): the fit is wrong; check it and rerun it"
            )
    if "e0_shift_eV" in fit:
        de = _number(fit, "e0_shift_eV", source)
        if not E0_BOUNDS_EV[0] <= de <= E0_BOUNDS_EV[1]:
            raise ValueError(
                f"{source}: e0_shift_eV {de:g} lies outside the fit's bounds"
                f" {list(E0_BOUNDS_EV)} eV: the fit is wrong; check it and rerun it"
            )
    for key in ("s02_err", "e0_shift_eV_err"):
        if key in fit and _number(fit, key, source) < 0:
            raise ValueError(f"{source}: {key} {fit[key]:g} is negative")
    if fit.get("correl_s02_e0") is not None:
        rho = _number(fit, "correl_s02_e0", source)
        if not -1.0 <= rho <= 1.0:
            raise ValueError(f"{source}: correl_s02_e0 {rho:g} is not a correlation")


def check_same_experiment(fit: Mapping[str, Any], source: str, experiment_chi_k: str | Path,
                          ) -> None:
    """Refuse a fit made from another chi_k.csv than ``experiment_chi_k``."""
    exp = Path(experiment_chi_k)
    recorded = fit.get("experiment")
    digest = fit.get("experiment_sha256")
    if digest is not None:
        actual = sha256_of(exp)
        if digest != actual:
            raise ValueError(
                f"{source}: experiment_sha256 {str(digest)[:16]}... is not that of {exp}"
                f" ({actual[:16]}...): the fit was made for another experiment (its"
                f" experiment: {recorded}); fit this experiment (fit_experiment) and use"
                " its fit.json"
            )
        return
    if recorded is None:
        raise ValueError(
            f"{source}: key experiment_sha256 missing (nor an experiment path): which"
            " chi_k.csv the fit belongs to cannot be told; rerun the fit (fit_experiment)"
        )
    if Path(str(recorded)).resolve() != exp.resolve():
        raise ValueError(
            f"{source}: experiment {recorded} is not {exp}: the fit was made for another"
            " experiment; fit this experiment (fit_experiment) and use its fit.json"
        )
    log.warning("%s records no experiment_sha256 (an older fit): its experiment checked by"
                " path only; rerun the fit to record it", source)


def read_fit(path: str | Path, experiment_chi_k: str | Path) -> dict[str, Any]:
    """The fit record ``path`` (fit.json) of the experiment ``experiment_chi_k``: JSON
    with :data:`REQUIRED_KEYS`, physical values (:func:`check_fit_values`), made from
    that very chi_k.csv (:func:`check_same_experiment`); refused otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such fit record (fit.json)")
    try:
        fit = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: not a fit record: not JSON ({err}); rerun the fit (fit_experiment)"
        ) from None
    if not isinstance(fit, dict):
        raise ValueError(f"{path}: not a fit record: a JSON {type(fit).__name__}, not an object")
    for key in REQUIRED_KEYS:
        if key not in fit:
            raise ValueError(
                f"{path}: key {key} missing: not a fit record of experiment_fit; rerun the"
                " fit (fit_experiment)"
            )
    check_fit_values(fit, str(path))
    check_same_experiment(fit, str(path), experiment_chi_k)
    return fit
