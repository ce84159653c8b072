"""Scoring against a reference model's simulation (issue 16, item 5), for a material
without an experiment.  Oracles: numpy on the same synthetic spectra, the variance of a
mean, and a planted difference between models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dualbench.scoring.against_reference_model import reference_stage, resolve_reference
from dualbench.scoring.convergence import convergence_record

K = np.round(np.arange(0.0, 16.0001, 0.05), 4)
KMIN, KMAX, KW = 3.0, 14.0, 2
FT = {"kmin": KMIN, "kmax": KMAX, "dk": 1.0, "window": "hanning", "kweight": KW,
      "rmin": 1.0, "rmax": 5.0}


def spectrum(amplitude: float) -> np.ndarray:
    return amplitude * np.sin(2 * 2.75 * K) * np.exp(-2 * 0.003 * K**2)


def write_run(folder, amplitude: float, noise: float, n_snap: int, rng) -> tuple[str, str]:
    """A run's chi_k.csv (the mean of its snapshots) and chi_snapshots.npz."""
    folder.mkdir(parents=True)
    snaps = spectrum(amplitude)[None, :] + rng.normal(0, noise, (n_snap, len(K))) / (K + 1)
    pd.DataFrame({"k": K, "chi": snaps.mean(axis=0)}).to_csv(folder / "chi_k.csv", index=False)
    np.savez(folder / "chi_snapshots.npz", k=K, snapshot_means=snaps)
    return str(folder / "chi_k.csv"), str(folder / "chi_snapshots.npz")


@pytest.fixture
def sweep(tmp_path):
    """Models soft (amplitude 0.6 at N=0) converging to 1.0 at N=10 and 50, two seeds."""
    rng = np.random.default_rng(5)
    amplitudes = {0: 0.6, 2: 0.85, 10: 1.0, 50: 1.0}
    runs, chis, snaps = [], [], []
    for n, amp in amplitudes.items():
        for seed in (0, 1):
            c, s = write_run(tmp_path / f"n{n}s{seed}", amp, 0.02, 40, rng)
            runs.append({"material": "WS2", "model": "chgnet", "n": n, "seed": seed})
            chis.append(c)
            snaps.append(s)
    return runs, chis, snaps


def test_scores_are_numpys_mse_against_the_reference_seed_mean(sweep, tmp_path):
    runs, chis, snaps = sweep
    table = reference_stage(runs, chis, snaps, reference=("chgnet", 50), ft=FT,
                            out_csv=tmp_path / "ref.csv")
    read = {(r["n"], r["seed"]): pd.read_csv(c)["chi"].to_numpy()
            for r, c in zip(runs, chis, strict=True)}
    inside = (K >= KMIN) & (K <= KMAX)
    # leave one seed out at every N: seed 1 is scored against the reference's seed 0
    expect = np.mean((K[inside] ** KW * (read[(0, 1)] - read[(50, 0)])[inside]) ** 2)
    row = table[(table.n_frames == 0) & (table.seed == 1)].iloc[0]
    assert row["exafs_mse_ref_k"] == pytest.approx(expect, rel=1e-10)
    assert row["exafs_mse_ref_k_lo"] <= row["exafs_mse_ref_k_debiased"] <= row[
        "exafs_mse_ref_k_hi"]
    # the reference's own runs are scored against its other seed, never against themselves
    own = table[(table.n_frames == 50) & (table.seed == 0)].iloc[0]
    other = np.mean((K[inside] ** KW * (read[(50, 0)] - read[(50, 1)])[inside]) ** 2)
    assert own["exafs_mse_ref_k"] == pytest.approx(other, rel=1e-10) and other > 0
    assert (table["reference"] == "chgnet N=50").all()
    assert (table["n_reference_seeds"] == 1).all()  # the same number at every N
    assert pd.read_csv(tmp_path / "ref.csv").shape == table.shape


def test_noise_floor_is_the_variance_of_the_two_means(sweep, tmp_path):
    """Equal spectra in expectation (N = 10 against N = 50): the score is of the order of
    its noise floor, the sum of both means' variances."""
    runs, chis, snaps = sweep
    table = reference_stage(runs, chis, snaps, reference=("chgnet", 50), ft=FT,
                            out_csv=tmp_path / "ref.csv")
    inside = (K >= KMIN) & (K <= KMAX)
    # 40 independent snapshots of noise 0.02/(k+1); one reference seed (the other one)
    var_run = (0.02 / (K + 1)) ** 2 / 40
    expect = np.mean((K[inside] ** (2 * KW)) * (var_run + var_run)[inside])
    floor = table.loc[table.n_frames == 10, "exafs_ref_noise_floor_k"]
    assert floor.to_numpy() == pytest.approx(expect, rel=0.3)
    converged = table.loc[table.n_frames == 10, "exafs_mse_ref_k"].mean()
    assert converged < 3 * expect
    soft = table.loc[table.n_frames == 0, "exafs_mse_ref_k"].mean()
    assert soft > 100 * expect


def test_the_simulation_converges_where_the_planted_difference_ends(sweep, tmp_path):
    runs, chis, snaps = sweep
    table = reference_stage(runs, chis, snaps, reference=("chgnet", 50), ft=FT,
                            out_csv=tmp_path / "ref.csv")
    record = convergence_record(table)["models"]["chgnet"]
    assert record["n_converged_exafs_mse_ref_k"] == 10


def test_reference_setting_resolves_and_refuses():
    assert resolve_reference({}, ["a", "b"], [0, 10, 50]) == ("a", 50)
    assert resolve_reference({"model": "b", "n_frames": 10}, ["a", "b"], [0, 10]) == ("b", 10)
    with pytest.raises(ValueError, match="not among"):
        resolve_reference({"model": "c"}, ["a"], [0])
    with pytest.raises(ValueError, match="not among the EXAFS arm's N"):
        resolve_reference({"n_frames": 5}, ["a"], [0, 10])


def test_one_seed_reference_cannot_tell_convergence(sweep, tmp_path):
    """With one seed no run has another reference seed to be scored against (leave one
    seed out at every N): the scores are NaN and the convergence record says unresolved
    (None), instead of comparing with the next largest N."""
    from dualbench.scoring.convergence import convergence_record

    runs, chis, snaps = sweep
    keep = [i for i, r in enumerate(runs) if r["seed"] == 0]
    table = reference_stage([runs[i] for i in keep], [chis[i] for i in keep],
                            [snaps[i] for i in keep], reference=("chgnet", 50), ft=FT,
                            out_csv=tmp_path / "ref.csv")
    assert table["exafs_mse_ref_k"].isna().all()
    record = convergence_record(table.assign(force_mae=1.0))
    assert record["models"]["chgnet"].get("n_converged_exafs_mse_ref_k") is None


def test_exafs_arm_at_fewer_n_converges_against_its_own_largest_n(sweep, tmp_path):
    """sweep.exafs_n_frames: the DFT arm scores N = 0, 2, 10, 50, the EXAFS arm runs at
    N = 0 and 10 only.  The summary marks which rows have the EXAFS arm, and the EXAFS
    score converges against its own largest N (10), not against N = 50 where it has no
    score (which would say it cannot tell)."""
    import json

    from dualbench.scoring.convergence import convergence_record
    from dualbench.summary import build_summary

    runs, chis, snaps = sweep
    keep = [i for i, r in enumerate(runs) if r["n"] in (0, 10)]
    reference_stage([runs[i] for i in keep], [chis[i] for i in keep], [snaps[i] for i in keep],
                    reference=("chgnet", 10), ft=FT, out_csv=tmp_path / "ref.csv")
    metrics = []
    for run in runs:
        path = tmp_path / f"dft_{run['n']}_{run['seed']}.json"
        mae = {0: 0.5, 2: 0.35, 10: 0.30, 50: 0.30}[run["n"]] + 0.001 * run["seed"]
        path.write_text(json.dumps({
            "energy_mae_eV_per_atom": 0.01, "energy_mae_offset_removed_eV_per_atom": 0.005,
            "force_mae_eV_per_A": mae, "stress_mae_GPa": None, "force_slope": 0.9}))
        metrics.append((str(path), run["model"], run["n"], run["seed"]))
    summary = build_summary("WS2", metrics, reference_comparison=tmp_path / "ref.csv")
    assert len(summary) == 8
    arm = summary.groupby("n_frames")["exafs_arm"].all().to_dict()
    assert arm == {0: True, 2: False, 10: True, 50: False}
    assert summary.loc[~summary.exafs_arm, "exafs_mse_ref_k"].isna().all()
    record = convergence_record(summary)["models"]["chgnet"]
    assert record["exafs_mse_ref_k"]["largest_n"] == 10
    assert [row["n_frames"] for row in record["exafs_mse_ref_k"]["table"]] == [0, 10]
    # N = 0 differs from N = 10, the only N below it: not converged below the largest N
    assert record["exafs_mse_ref_k"]["answer"] == "not converged"
    assert record["n_converged_force_mae"] == 10
