"""The leaderboard (issue 28): ratios, intervals and rank bands from small hand-made inputs in
the real files' formats, checked against hand computations with numpy/scipy; a missing DFT
arm; and the static page opened in a real headless Chromium."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dualbench.leaderboard_page import write_leaderboard
from dualbench.scoring.leaderboard import (
    bands_with_unstable,
    build_leaderboard,
    condition_column,
    material_inputs,
    rank_bands,
)

FIT = {"A": (0.003, 0.0002), "B": (0.004, 0.0003)}  # sigma2_shell1_A2 and its _err
#: (material, model, N, seed) -> (MD first-shell sigma^2, its stderr, exafs_mse_k, lo, hi)
RUNS = {
    ("A", "m1", 0, 0): (0.0060, 0.0003, 0.25, 0.22, 0.28),
    ("A", "m1", 0, 1): (0.0064, 0.0004, 0.26, 0.23, 0.29),
    ("A", "m1", 4, 0): (0.0031, 0.0002, 0.05, 0.04, 0.06),
    ("A", "m1", 4, 1): (0.0033, 0.0002, 0.06, 0.05, 0.07),
    ("A", "m2", 0, 0): (0.0045, 0.0002, 0.20, 0.18, 0.22),
    ("A", "m2", 0, 1): (0.0047, 0.0003, 0.22, 0.20, 0.24),
    ("B", "m1", 0, 0): (0.0050, 0.0004, 0.10, 0.08, 0.12),
    ("B", "m2", 0, 0): (0.0090, 0.0005, 0.30, 0.25, 0.35),
}


def sigma2_table(neighbour: str, s2: float, se: float) -> pd.DataFrame:
    """md/sigma2.csv of a run: two shells, the second with twice the first's sigma^2."""
    return pd.DataFrame({"shell": [1, 2], "neighbour": [neighbour] * 2, "r_ideal_A": [2.7, 3.2],
                         "r_mean_A": [2.71, 3.21], "sigma2_A2": [s2, 2 * s2],
                         "sigma2_stderr_A2": [se, se], "n_eff": [4.0, 4.0],
                         "n_pairs": [1024, 768], "coordination": [8.0, 6.0]})


def _write_material(root: Path, material: str) -> Path:
    folder = root / material
    rows = []
    for (mat, model, n, seed), (s2, se, mse, lo, hi) in RUNS.items():
        if mat != material:
            continue
        md = folder / model / f"n{n}" / f"seed{seed}" / "md"
        md.mkdir(parents=True)
        sigma2_table(material, s2, se).to_csv(md / "sigma2.csv", index=False)
        row = {"material": material, "model": model, "n_frames": n, "seed": seed,
               "exafs_arm": True, "exafs_mse_k": mse, "exafs_mse_k_lo": lo,
               "exafs_mse_k_hi": hi, "exafs_rfactor": mse / 2, "s02_fitted": 0.8 + mse,
               "exafs_mse_k_yardstick_sd": 0.01, "s02": 0.9}
        if material == "A":  # the DFT arm, overall and at the condition 300K
            row |= {"force_mae": 100.0 + n + seed, "force_slope": 0.5,
                    "force_mae[300K]": 200.0 + n + seed, "force_slope[300K]": 0.6 + seed / 10}
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    value, err = FIT[material]
    (folder / "experiment").mkdir()
    (folder / "experiment" / "fit.json").write_text(json.dumps(
        {"s02": 0.9, "sigma2_shell1_A2": value, "sigma2_shell1_A2_err": err,
         "provenance": {"config_hash": "0123456789abcdef"}}))
    return folder


@pytest.fixture
def folders(tmp_path):
    return [_write_material(tmp_path, "A"), _write_material(tmp_path, "B")]


@pytest.fixture
def table(folders):
    return build_leaderboard([material_inputs(folders[0], temperature_K=300.0),
                              material_inputs(folders[1], temperature_K=300.0)])


def _row(table, material, model, n):
    sub = table[(table["material"] == material) & (table["model"] == model)
                & (table["n_frames"] == n)]
    assert len(sub) == 1
    return sub.iloc[0]


def _hand_ratio(material, model, n):
    """The ratio and its 95 % interval by hand: seed mean, seeds' SE (or the one run's),
    relative errors added in quadrature, Welch-Satterthwaite t."""
    runs = [v for k, v in RUNS.items() if k[:3] == (material, model, n)]
    x = np.array([r[0] for r in runs])
    se_md = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else runs[0][1]
    y, e = FIT[material]
    r = x.mean() / y
    a, b = (se_md / x.mean()) ** 2, (e / y) ** 2
    q = stats.t.ppf(0.975, (a + b) ** 2 / (a ** 2 / (x.size - 1))) if x.size > 1 \
        else stats.norm.ppf(0.975)
    return r, r - q * r * np.sqrt(a + b), r + q * r * np.sqrt(a + b)


@pytest.mark.parametrize("key", [("A", "m1", 0), ("A", "m1", 4), ("A", "m2", 0),
                                 ("B", "m1", 0), ("B", "m2", 0)])
def test_sigma2_ratio_and_interval_by_hand(table, key):
    row = _row(table, *key)
    ratio, lo, hi = _hand_ratio(*key)
    assert row["sigma2_ratio"] == pytest.approx(ratio, rel=1e-12)
    assert row["sigma2_ratio_lo"] == pytest.approx(lo, rel=1e-9)
    assert row["sigma2_ratio_hi"] == pytest.approx(hi, rel=1e-9)


def test_one_seed_ratio_combines_both_errors():
    """B/m1 by hand in numbers: 0.005/0.004 with relative errors 0.08 and 0.075."""
    ratio, lo, hi = _hand_ratio("B", "m1", 0)
    half = 1.959964 * 1.25 * math.hypot(0.0004 / 0.005, 0.0003 / 0.004)
    assert (ratio, lo, hi) == pytest.approx((1.25, 1.25 - half, 1.25 + half), rel=1e-6)


def test_exafs_interval_student_t_over_seeds_or_the_run_bootstrap(table):
    row = _row(table, "A", "m2", 0)
    values = np.array([0.20, 0.22])
    half = stats.t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
    assert row["exafs_mse_k"] == pytest.approx(0.21)
    assert (row["exafs_mse_k_lo"], row["exafs_mse_k_hi"]) == pytest.approx(
        (0.21 - half, 0.21 + half))
    one = _row(table, "B", "m2", 0)
    assert (one["exafs_mse_k"], one["exafs_mse_k_lo"], one["exafs_mse_k_hi"]) == (
        pytest.approx(0.30), pytest.approx(0.25), pytest.approx(0.35))
    assert one["s02_fitted"] == pytest.approx(1.1)
    assert one["exafs_rfactor"] == pytest.approx(0.15)
    assert one["s02_experiment"] == pytest.approx(0.9)


def test_rank_bands_by_hand(table):
    """A: m1 N=4 [-0.008, 0.118], m2 [0.083, 0.337], m1 [0.191, 0.319]: m1 N=4 is surely
    ahead of m1 only.  B: m1 [0.08, 0.12] surely ahead of m2 [0.25, 0.35]."""
    assert _row(table, "A", "m1", 4)["rank"] == "1-2"
    assert _row(table, "A", "m2", 0)["rank"] == "1-3"
    assert _row(table, "A", "m1", 0)["rank"] == "2-3"
    assert _row(table, "B", "m1", 0)["rank"] == "1"
    assert _row(table, "B", "m2", 0)["rank"] == "2"
    # overall: mean bands m1 vanilla [1.5, 2], m1 N=4 [1, 2], m2 [1.5, 2.5]: all overlap
    assert set(table["overall_rank"]) == {"1-3"}
    assert list(table["material"]) == ["A", "A", "A", "B", "B"]


def test_rank_bands_separate_and_overlap():
    best, worst = rank_bands([0.0, 2.0, 2.5, 10.0], [1.0, 3.0, 4.0, 11.0])
    assert (best, worst) == ([1, 2, 2, 4], [1, 3, 3, 4])


def test_force_columns_prefer_the_temperature_condition(table):
    row = _row(table, "A", "m1", 4)
    assert row["force_column"] == "force_mae[300K]"
    assert row["force_mae"] == pytest.approx(204.5)
    assert row["force_slope"] == pytest.approx(0.65)
    assert condition_column(["force_mae", "force_mae[300K]"], "force_mae", 77.0) == "force_mae"
    assert condition_column(["force_mae", "force_mae[300K]"], "force_mae", None) == "force_mae"


def test_force_columns_take_the_experiment_condition_first():
    """dft.experiment_condition (mlearn's AIMD frames for a foil) wins over the temperature's
    condition; a condition the summary lacks falls back to the temperature rule."""
    columns = ["force_mae", "force_mae[300K]", "force_mae[AIMD]", "force_mae[Surface]"]
    assert condition_column(columns, "force_mae", 300.0, "AIMD") == "force_mae[AIMD]"
    assert condition_column(columns, "force_mae", 300.0, "Elastic") == "force_mae[300K]"
    assert condition_column(columns, "force_mae", None, None) == "force_mae"


def test_missing_dft_arm_gives_empty_force_columns(table, folders, tmp_path):
    for model in ("m1", "m2"):
        row = _row(table, "B", model, 0)
        assert math.isnan(row["force_mae"]) and math.isnan(row["force_slope"])
        assert row["force_column"] in ("", None) or pd.isna(row["force_column"])
    written = tmp_path / "out" / "leaderboard.csv"
    write_leaderboard(folders, written, tmp_path / "out" / "heat", tmp_path / "out" / "index.html")
    again = pd.read_csv(written)
    assert again.loc[again["material"] == "B", "force_mae"].isna().all()


def test_nuclei_label_from_each_run(folders):
    # B's m1 ran path-integral MD with 32 beads, m2 classical; A's runs have no md_run.json
    run = folders[1] / "m1" / "n0" / "seed0" / "md" / "md_run.json"
    run.write_text(json.dumps({"settings": {"nuclei": "pimd", "temperature_K": 10.0},
                               "result": {"nbeads": 32}}))
    run = folders[1] / "m2" / "n0" / "seed0" / "md" / "md_run.json"
    run.write_text(json.dumps({"settings": {"nuclei": "classical", "temperature_K": 10.0},
                               "result": {"nbeads": None}}))
    table = build_leaderboard([material_inputs(f) for f in folders])
    assert _row(table, "B", "m1", 0)["temperature_K"] == 10.0
    assert _row(table, "B", "m1", 0)["nuclei"] == "pimd P=32"
    assert _row(table, "B", "m2", 0)["nuclei"] == "classical"
    assert pd.isna(_row(table, "A", "m1", 0)["nuclei"]) or _row(table, "A", "m1", 0)[
        "nuclei"] == ""


def test_classical_rows_below_the_floor_leave_the_overall_rank(folders):
    # B at 10 K: m1 path-integral, m2 classical.  m2's overall band is then its A band alone
    for model, nuclei in (("m1", "pimd"), ("m2", "classical")):
        run = folders[1] / model / "n0" / "seed0" / "md" / "md_run.json"
        run.write_text(json.dumps({"settings": {"nuclei": nuclei, "temperature_K": 10.0},
                                   "result": {"nbeads": 16 if nuclei == "pimd" else None}}))
    table = build_leaderboard([material_inputs(folders[0], temperature_K=300.0),
                               material_inputs(folders[1])])
    assert not _row(table, "B", "m2", 0)["in_overall"]
    assert _row(table, "B", "m1", 0)["in_overall"] and _row(table, "A", "m2", 0)["in_overall"]
    # the page's overall table: m2 vanilla counts A alone (bands 1-3 there: mean 1.00 and
    # 3.00; with B's 2-2 it would be 1.50 and 2.50), m1 vanilla A (2-3) and B (1-1)
    from dualbench.leaderboard_page import overall_table

    page = overall_table(table)
    rows = re.findall(r'<tr class="row">(.*?)</tr>', page)
    cells = {tuple(re.findall(r"<td[^>]*>(.*?)</td>", r)[1:3]): re.findall(
        r"<td[^>]*>(.*?)</td>", r)[3:] for r in rows}
    assert cells[("m2", "vanilla")] == ["A", "1.00", "3.00"]
    assert cells[("m1", "vanilla")] == ["A, B", "1.50", "2.00"]


def test_without_an_experiment_the_ratio_is_empty(folders):
    (folders[1] / "experiment" / "fit.json").unlink()
    table = build_leaderboard([material_inputs(folders[1])])
    assert table["sigma2_ratio"].isna().all()
    assert table["exafs_mse_k"].notna().all()


# The page in a real browser.


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: dict[str, int] = {}
        self.table: str | None = None
        self.body: dict[str, str | None] = {}
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("class")
        elif tag == "tr" and attrs.get("class") == "row":
            self.rows[self.table] = self.rows.get(self.table, 0) + 1
        elif tag == "body":
            self.body = attrs
        elif tag == "img":
            self.images.append(attrs)


PROBE = """<script>
function decoded(img) {  // decoded whole: its last pixel row is drawn (opaque)
  if (!img.complete || !img.naturalWidth || !img.naturalHeight) return false;
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);  // synchronous: a data: image is loaded by the load event
  const last = g.getImageData(0, c.height - 1, c.width, 1).data;
  return last.some((v, i) => i % 4 === 3 && v > 0);
}
// synchronous in the load handler, so that --dump-dom cannot come before the answer
window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.widths = imgs.map(i => i.naturalWidth).join(",");
  document.body.dataset.decoded = imgs.map(decoded).join(",");
});
</script></body>"""


def require_chromium() -> str:
    browser = chromium()
    if browser is None and os.environ.get("DUALBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail("DUALBENCH_REQUIRE_BROWSER=1 but no chromium on PATH")
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return browser


def dump_dom(browser: str, page: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The DOM of ``page`` with :data:`PROBE` (whether every image decoded) as headless
    Chromium builds it."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_page_renders_in_headless_chromium(folders, tmp_path):
    browser = require_chromium()
    out = tmp_path / "out"
    write_leaderboard(folders, out / "leaderboard.csv", out / "heat", out / "index.html",
                      temperatures={"A": 300.0, "B": 300.0})
    page = (out / "index.html").read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page)
    assert links and all(link.startswith(("data:", "#")) for link in links), links
    # a copy with a probe that records, once loaded, whether every image decoded
    proc = dump_dom(browser, out / "index.html", tmp_path)
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.rows == {"overall": 3, "material": 5}, dom.rows
    assert len(dom.images) == 1
    assert dom.body.get("data-decoded") == "true", dom.body
    assert int(dom.body["data-widths"]) > 100
    assert "Provenance" in proc.stdout and "0123456789abcdef" in proc.stdout


# Failed runs: the MD-unstable contract (md_run.json, header-only tables, summary columns).

MD_FAILURE = {"stage": "md", "step": 9,
              "reason": "temperature 1600.0 K exceeds 3.0 x the target 300.0 K (runaway)"}
MD_TEXT = f"MD unstable at step 9: {MD_FAILURE['reason']}"
EXAFS_FAILURE = {"stage": "exafs", "snapshot": 12,
                 "reason": "atom 5 is 1.40 Å from its ideal site"}
EXAFS_TEXT = f"MD left the crystal at snapshot 12: {EXAFS_FAILURE['reason']}"
K_GRID, R_GRID = np.arange(0.0, 16.01, 0.05), np.arange(0.0, 8.0, 0.03)


def _md_files(run: Path, s2: float, se: float, failed: str | None) -> None:
    """md/: md_run.json, diagnostics.json, sigma2.csv and rdf.csv of a run."""
    md = run / "md"
    md.mkdir(parents=True)
    status = {"status": "unstable", "failure": MD_FAILURE} if failed == "md" else {
        "status": "ok"}
    (md / "md_run.json").write_text(json.dumps(
        {**status, "settings": {"temperature_K": 300.0, "nuclei": "classical"},
         "result": {"nbeads": None}}))
    (md / "diagnostics.json").write_text(json.dumps(status))
    sigma2 = sigma2_table(run.parents[2].name, s2, se)
    rdf = pd.DataFrame({"r_A": R_GRID, "g_r": np.exp(-((R_GRID - 2.7) ** 2) / (50 * s2))})
    if failed == "md":  # header-only: same columns, no rows
        sigma2, rdf = sigma2.iloc[:0], rdf.iloc[:0]
    sigma2.to_csv(md / "sigma2.csv", index=False)
    rdf.to_csv(md / "rdf.csv", index=False)


def _exafs_files(run: Path, s2: float, failed: str | None) -> None:
    """exafs/: chi_k.csv, chi_r.csv, convergence.csv (header-only when failed) and
    chi_snapshots.npz (with a failure key when failed)."""
    exafs = run / "exafs"
    exafs.mkdir(parents=True)
    chi = np.sin(2 * 2.74 * K_GRID) * np.exp(-2 * s2 * K_GRID**2) / np.maximum(K_GRID, 0.5) ** 2
    mag = 0.01 / (0.01 + s2) * np.exp(-((R_GRID - 2.5) ** 2) / (0.02 + s2))
    tables = {"chi_k": pd.DataFrame({"k": K_GRID, "chi": chi}),
              "chi_r": pd.DataFrame({"r": R_GRID, "chir_mag": mag}),
              "convergence": pd.DataFrame({"n_snapshots": [1, 2, 3, 4],
                                           "rms_dev_kw": [0.1, 0.05, 0.02, 0.0],
                                           "chir_max": [1.0, 0.9, 0.92, 0.91]})}
    for name, table in tables.items():
        (table.iloc[:0] if failed else table).to_csv(exafs / f"{name}.csv", index=False)
    extra = {"failure": np.array(json.dumps(MD_FAILURE if failed == "md" else EXAFS_FAILURE))
             } if failed else {}
    np.savez(exafs / "chi_snapshots.npz", k=K_GRID, snapshot_means=np.tile(chi, (4, 1)),
             frames=np.arange(4), **extra)


def write_run(folder: Path, model: str, n: int, seed: int, s2: float, se: float,
              slope: float = 0.8, failed: str | None = None) -> Path:
    """One run folder in the failed-run contract's formats.  ``failed``: None (ran fine),
    "md" (the MD ran away at step 9: header-only sigma^2, rdf and EXAFS tables) or "exafs"
    (an atom left its site: md_run.json ok, sigma^2 rows that must not be used,
    header-only EXAFS tables).  The force parity (DFT arm) is there either way."""
    run = folder / model / f"n{n}" / f"seed{seed}"
    _md_files(run, s2, se, failed)
    _exafs_files(run, s2, failed)
    ref = np.random.default_rng(seed).normal(size=200)
    pd.DataFrame({"force_dft_eV_per_A": ref, "force_pred_eV_per_A": slope * ref}).to_csv(
        run / "force_parity.csv", index=False)
    return run


def write_failed_material(root: Path, material: str, fit: tuple[float, float],
                          runs: dict) -> Path:
    """results/<material>/ with summary.csv (md_status, md_failure), experiment/fit.json,
    exafs/comparison.csv (status, failure) and every run's folder.  ``runs``: (model, N,
    seed) -> (sigma^2, its stderr, exafs_mse_k, lo, hi, force MAE, failed)."""
    folder = root / material
    rows, compared = [], []
    for (model, n, seed), (s2, se, mse, lo, hi, force, failed) in runs.items():
        write_run(folder, model, n, seed, s2, se, failed=failed)
        text = {"md": MD_TEXT, "exafs": EXAFS_TEXT}.get(failed, "")
        exafs = [math.nan] * 3 if failed else [mse, lo, hi]
        rows.append({"material": material, "model": model, "n_frames": n, "seed": seed,
                     "exafs_arm": True, **dict(zip(
                         ("exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi"), exafs,
                         strict=True)),
                     "exafs_rfactor": exafs[0] / 2, "s02_fitted": 0.8 + exafs[0],
                     "exafs_mse_k_yardstick_sd": math.nan if failed else 0.01,
                     "e0_shift_eV": math.nan if failed else 1.5,
                     "force_mae": force, "force_slope": 0.8,
                     "md_status": "unstable" if failed else "ok", "md_failure": text})
        compared.append({"model": model, "n_frames": n, "seed": seed,
                         "e0_shift_eV": math.nan if failed else 1.5,
                         "s02": math.nan if failed else 0.9,
                         "status": "unstable" if failed else "ok", "failure": text})
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    (folder / "exafs").mkdir()
    pd.DataFrame(compared).to_csv(folder / "exafs" / "comparison.csv", index=False)
    (folder / "experiment").mkdir()
    (folder / "experiment" / "fit.json").write_text(json.dumps(
        {"s02": 0.9, "sigma2_shell1_A2": fit[0], "sigma2_shell1_A2_err": fit[1],
         "provenance": {"config_hash": "0123456789abcdef"}}))
    return folder


#: C: m3's MD ran away (MD stage).  D: m2 left the crystal (EXAFS stage), its sigma2.csv
#: holds a perfect-looking sigma^2 (0.0040 = the fit) that must not be read.
FAILED_RUNS = {
    "C": ((0.003, 0.0002), {("m1", 0, 0): (0.0031, 0.0001, 0.10, 0.08, 0.12, 50.0, None),
                            ("m2", 0, 0): (0.0045, 0.0002, 0.30, 0.25, 0.35, 80.0, None),
                            ("m3", 0, 0): (0.0031, 0.0001, 0.01, 0.00, 0.02, 30.0, "md")}),
    "D": ((0.004, 0.0003), {("m1", 0, 0): (0.0050, 0.0004, 0.20, 0.15, 0.25, 60.0, None),
                            ("m2", 0, 0): (0.0040, 0.0001, 0.01, 0.00, 0.02, 40.0, "exafs"),
                            ("m3", 0, 0): (0.0042, 0.0002, 0.22, 0.18, 0.26, 70.0, None)}),
}


@pytest.fixture
def failed_folders(tmp_path):
    return [write_failed_material(tmp_path, name, fit, runs)
            for name, (fit, runs) in FAILED_RUNS.items()]


@pytest.fixture
def failed_table(failed_folders):
    return build_leaderboard([material_inputs(f) for f in failed_folders])


def test_failed_rows_keep_their_force_numbers_and_lose_their_md_ones(failed_table,
                                                                     failed_folders):
    ran_away, left = _row(failed_table, "C", "m3", 0), _row(failed_table, "D", "m2", 0)
    assert (ran_away["md_status"], ran_away["md_failure"]) == ("unstable", MD_TEXT)
    assert (left["md_status"], left["md_failure"]) == ("unstable", EXAFS_TEXT)
    assert (ran_away["force_mae"], left["force_mae"]) == (30.0, 40.0)
    # D/m2's sigma2.csv has rows (sigma^2 = the fit's: ratio 1), never read
    rows = pd.read_csv(failed_folders[1] / "m2" / "n0" / "seed0" / "md" / "sigma2.csv")
    assert len(rows) == 2
    for row in (ran_away, left):
        for column in ("sigma2_md_A2", "sigma2_ratio", "sigma2_ratio_lo", "sigma2_ratio_hi",
                       "exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi", "s02_fitted",
                       "exafs_rfactor", "exafs_mse_k_yardstick_sd"):
            assert math.isnan(row[column]), (row["model"], column)
        assert "sigma2.csv" not in row["sources"]
        assert row["nuclei"] == "classical" and row["in_overall"]
    assert _row(failed_table, "D", "m2", 0)["sigma2_exp_A2"] == 0.004  # the material's fit
    stable = failed_table[failed_table["md_status"] == "ok"]
    assert len(stable) == 4 and stable["sigma2_ratio"].notna().all()
    assert stable["md_failure"].isna().all() or set(stable["md_failure"]) == {""}


#: (material, model) -> (EXAFS band, sigma^2 band, overall band), by hand.  C: m1
#: [0.08, 0.12] ahead of m2 [0.25, 0.35]; sigma^2 ratios m1 1.033 [0.883, 1.183] (|log|
#: [0, 0.168]), m2 1.5 [1.264, 1.736] (|log| [0.235, 0.551]): m1 ahead.  m3 failed: k = 2,
#: n = 3, [3, 3].  D: m1 [0.15, 0.25] and m3 [0.18, 0.26] overlap; ratios m1 1.25 [0.981,
#: 1.519], m3 1.05 [0.867, 1.233] both hold 1: both [1, 2]; m2 failed: [3, 3].  Overall
#: mean bands: m1 [1, 1.5], m2 [2.5, 2.5], m3 [2, 2.5]: m1 ahead of both, m2 and m3 overlap.
HAND_BANDS = {("C", "m1"): ("1", (1, 1), "1"), ("C", "m2"): ("2", (2, 2), "2-3"),
              ("C", "m3"): ("3", (3, 3), "2-3"), ("D", "m1"): ("1-2", (1, 2), "1"),
              ("D", "m2"): ("3", (3, 3), "2-3"), ("D", "m3"): ("1-2", (1, 2), "2-3")}


def check_hand_bands(table: pd.DataFrame) -> None:
    for (material, model), (band, sigma2, overall) in HAND_BANDS.items():
        row = _row(table, material, model, 0)
        assert row["rank"] == band, (material, model, row["rank"])
        assert (row["rank_sigma2_best"], row["rank_sigma2_worst"]) == sigma2, (material, model)
        assert row["overall_rank"] == overall, (material, model, row["overall_rank"])


def test_failed_rows_rank_behind_every_stable_row_by_hand(failed_table):
    check_hand_bands(failed_table)
    # within a material the failed row comes last
    assert list(failed_table["model"]) == ["m1", "m2", "m3", "m1", "m3", "m2"]


def test_a_stable_row_keeps_its_band_beside_an_unstable_one(failed_table, tmp_path):
    fit, runs = FAILED_RUNS["C"]
    alone = write_failed_material(tmp_path / "alone", "C", fit, {
        key: value for key, value in runs.items() if key[0] != "m3"})
    without = build_leaderboard([material_inputs(alone)])
    for model in ("m1", "m2"):
        for column in ("rank_best", "rank_worst", "rank_sigma2_best", "rank_sigma2_worst"):
            assert _row(without, "C", model, 0)[column] == _row(
                failed_table, "C", model, 0)[column], (model, column)


def test_bands_with_unstable_rows_by_hand():
    # stable rows as in test_rank_bands_separate_and_overlap: [1, 1], [2, 3], [2, 3]; the
    # two unstable rows (whatever their numbers) behind them: k = 3, n = 5
    best, worst = bands_with_unstable([0.0, 2.0, 0.0, 2.5, 0.0], [1.0, 3.0, 0.1, 4.0, 0.1],
                                      [False, False, True, False, True])
    assert (best, worst) == ([1, 2, 4, 2, 4], [1, 3, 5, 3, 5])
    # no stable row: every row [1, n]
    assert bands_with_unstable([0.0, 1.0], [0.5, 2.0], [True, True]) == ([1, 1], [2, 2])
    # stable rows without an interval (nothing measured): the unstable row unranked too
    best, worst = bands_with_unstable([math.nan, 0.0], [math.nan, 1.0], [False, True])
    assert all(math.isnan(v) for v in best + worst)


def test_a_material_without_a_stable_row_gives_every_row_one_to_n(tmp_path):
    runs = {("m1", 0, 0): (0.0031, 0.0001, 0.1, 0.08, 0.12, 50.0, "md"),
            ("m2", 0, 0): (0.0030, 0.0001, 0.1, 0.08, 0.12, 60.0, "exafs")}
    table = build_leaderboard([material_inputs(
        write_failed_material(tmp_path, "E", (0.003, 0.0002), runs))])
    assert list(table["rank"]) == ["1-2", "1-2"]
    assert list(table["rank_sigma2_best"]) == [1, 1]
    assert list(table["rank_sigma2_worst"]) == [2, 2]
    assert table["sigma2_ratio"].isna().all() and table["exafs_mse_k"].isna().all()


def test_one_failed_seed_makes_the_row_unstable(tmp_path):
    """m1's seed 1 ran away, its seed 0 ran fine: the row is unstable (the stable seed
    alone would be a survivor), without sigma^2 or EXAFS numbers, ranked behind m2; its
    force MAE is the mean of both seeds."""
    runs = {("m1", 0, 0): (0.0031, 0.0001, 0.05, 0.04, 0.06, 50.0, None),
            ("m1", 0, 1): (0.0031, 0.0001, 0.05, 0.04, 0.06, 70.0, "md"),
            ("m2", 0, 0): (0.0045, 0.0002, 0.30, 0.25, 0.35, 80.0, None)}
    table = build_leaderboard([material_inputs(
        write_failed_material(tmp_path, "F", (0.003, 0.0002), runs))])
    row = _row(table, "F", "m1", 0)
    assert (row["md_status"], row["md_failure"]) == ("unstable", f"seed 1: {MD_TEXT}")
    assert math.isnan(row["exafs_mse_k"]) and math.isnan(row["sigma2_ratio"])
    assert row["force_mae"] == 60.0 and row["n_seeds"] == 2
    assert (row["rank"], _row(table, "F", "m2", 0)["rank"]) == ("2", "1")


def test_an_old_summary_without_the_status_columns_is_all_ok(table):
    assert set(table["md_status"]) == {"ok"}
    assert table["md_failure"].isna().all() or set(table["md_failure"]) == {""}


def test_the_hand_checks_catch_planted_bugs(failed_folders, monkeypatch):
    """Oracle of the checks above: an unstable row ranked first, and a failure read from
    md_run.json alone (so that D/m2's EXAFS-stage failure is missed and its sigma2.csv
    read), each make them fail."""
    from dualbench.scoring import leaderboard, md_status

    def first(lo, hi, unstable):
        best, worst = md_bands(lo, hi, unstable)
        return ([1.0 if u else b for b, u in zip(best, unstable, strict=True)],
                [float(len(unstable)) if u else w for w, u in zip(worst, unstable,
                                                                   strict=True)])

    md_bands = leaderboard.bands_with_unstable
    monkeypatch.setattr(leaderboard, "bands_with_unstable", first)
    with pytest.raises(AssertionError):
        check_hand_bands(build_leaderboard([material_inputs(f) for f in failed_folders]))
    monkeypatch.undo()

    def md_run_json_only(summary, folder):
        return {(str(r.model), int(r.n_frames), int(r.seed)): text
                for r in summary.itertuples()
                if (text := md_status.md_run_failure(md_status.run_folder(
                    folder, r.model, r.n_frames, r.seed)))}

    monkeypatch.setattr(leaderboard, "summary_failures", md_run_json_only)
    table = build_leaderboard([material_inputs(f) for f in failed_folders])
    assert _row(table, "D", "m2", 0)["sigma2_ratio"] == pytest.approx(1.0)  # it was read
    with pytest.raises(AssertionError):
        test_failed_rows_keep_their_force_numbers_and_lose_their_md_ones(table, failed_folders)


class _FailureDom(_Dom):
    """Also: the "MD unstable" cells (text, title), the footnotes' items and, per table,
    its header texts and each row's cell texts."""

    def __init__(self):
        super().__init__()
        self.unstable: list[tuple[str, str | None]] = []
        self.notes: list[str] = []
        self.tables: dict[str, dict[str, list]] = {}
        self._where: str | None = None
        self._list: str | None = None
        self._title: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        attrs = dict(attrs)
        if tag == "table":
            self.tables.setdefault(self.table, {"head": [], "rows": []})
        elif tag == "tr" and attrs.get("class") == "row":
            self.tables[self.table]["rows"].append([])
        elif tag == "ul":
            self._list = attrs.get("class")
        elif tag in ("td", "th") or (tag == "li" and self._list == "failures"):
            self._where, self._title, self._text = tag, attrs.get("title"), ""
            self._unstable = attrs.get("class") == "unstable"

    def handle_data(self, data):
        if self._where:
            self._text += data

    def handle_endtag(self, tag):
        if tag != self._where:
            return
        if tag == "th":
            self.tables[self.table]["head"].append(self._text)
        elif tag == "td":
            self.tables[self.table]["rows"][-1].append(self._text)
            if self._unstable:
                self.unstable.append((self._text, self._title))
        else:
            self.notes.append(self._text)
        self._where = None


def test_page_shows_failed_runs_in_headless_chromium(failed_folders, tmp_path):
    browser = require_chromium()
    out = tmp_path / "out"
    write_leaderboard(failed_folders, out / "leaderboard.csv", out / "heat", out / "index.html")
    proc = dump_dom(browser, out / "index.html", tmp_path)
    dom = _FailureDom()
    dom.feed(proc.stdout)
    assert dom.rows == {"overall": 3, "material": 6}, dom.rows
    assert dom.body.get("data-decoded") == "true", dom.body
    # the sigma^2 and EXAFS cells of both failed rows, the failure as their tooltip
    assert sorted(dom.unstable) == sorted([("MD unstable", MD_TEXT)] * 2
                                          + [("MD unstable", EXAFS_TEXT)] * 2)
    assert sorted(dom.notes) == sorted([f"m3 N=0: {MD_TEXT}", f"m2 N=0: {EXAFS_TEXT}"])
    # their rank cells: behind both stable rows
    material = dom.tables["material"]
    rank, model = material["head"].index("rank (MSE_k)"), material["head"].index("model")
    assert [(r[rank], r[model]) for r in material["rows"]][2] == ("3", "m3")
    overall = dom.tables["overall"]
    assert overall["head"][-1] == "MD unstable in"
    assert {r[1]: (r[0], r[-1]) for r in overall["rows"]} == {
        "m1": ("1", ""), "m2": ("2-3", "D"), "m3": ("2-3", "C")}


def test_heatmap_marks_failed_cells(failed_table, tmp_path, monkeypatch):
    """Both maps: a grey hatched cell reading "MD unstable" for each failed row, never a
    number; the CSV keeps the status and the failure."""
    from dualbench import plot_leaderboard

    drawn = {}

    def keep(fig, stem, table):
        from matplotlib.text import Text

        drawn["texts"] = [t.get_text() for t in fig.findobj(Text)]
        drawn["hatches"] = [p.get_hatch() for ax in fig.axes for p in ax.patches]
        return real(fig, stem, table)

    real = plot_leaderboard.save_figure
    monkeypatch.setattr(plot_leaderboard, "save_figure", keep)
    plot_leaderboard.leaderboard_figure(failed_table, tmp_path / "heat")
    assert drawn["texts"].count("MD unstable") == 4  # 2 failed rows x 2 maps
    assert drawn["hatches"] == ["///"] * 4
    assert "n/a" not in drawn["texts"]
    numbers = pd.read_csv(tmp_path / "heat.csv")
    failed = numbers[numbers["md_status"] == "unstable"]
    assert set(zip(failed["material"], failed["model"], failed["md_failure"], strict=True)) == {
        ("C", "m3", MD_TEXT), ("D", "m2", EXAFS_TEXT)}
    assert failed[["sigma2_ratio", "exafs_mse_k"]].isna().all().all()
