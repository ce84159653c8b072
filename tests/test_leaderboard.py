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


def _write_material(root: Path, material: str) -> Path:
    folder = root / material
    rows = []
    for (mat, model, n, seed), (s2, se, mse, lo, hi) in RUNS.items():
        if mat != material:
            continue
        md = folder / model / f"n{n}" / f"seed{seed}" / "md"
        md.mkdir(parents=True)
        pd.DataFrame({"shell": [1, 2], "neighbour": [material] * 2, "r_ideal_A": [2.7, 3.2],
                      "r_mean_A": [2.71, 3.21], "sigma2_A2": [s2, 2 * s2],
                      "sigma2_stderr_A2": [se, se], "n_eff": [4.0, 4.0],
                      "n_pairs": [1024, 768], "coordination": [8.0, 6.0]}
                     ).to_csv(md / "sigma2.csv", index=False)
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


def test_page_renders_in_headless_chromium(folders, tmp_path):
    browser = chromium()
    if browser is None and os.environ.get("DUALBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail("DUALBENCH_REQUIRE_BROWSER=1 but no chromium on PATH")
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    out = tmp_path / "out"
    write_leaderboard(folders, out / "leaderboard.csv", out / "heat", out / "index.html",
                      temperatures={"A": 300.0, "B": 300.0})
    page = (out / "index.html").read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page)
    assert links and all(link.startswith(("data:", "#")) for link in links), links
    # a copy with a probe that records, once loaded, whether every image decoded
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE))
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.rows == {"overall": 3, "material": 5}, dom.rows
    assert len(dom.images) == 1
    assert dom.body.get("data-decoded") == "true", dom.body
    assert int(dom.body["data-widths"]) > 100
    assert "Provenance" in proc.stdout and "0123456789abcdef" in proc.stdout
