"""The leaderboard as one self-contained static page (``index.html``): the overall and
per-material tables, the heat maps embedded as base64 PNG, and a provenance section giving
every row's source files with their SHA-256, the config hash(es) the results were made
with, and the package versions and commit that built the page.  No external file, script
or network request: the page opens from a mail attachment.

``python -m dualbench.leaderboard_page results/W results/Cu --out results/suite``
writes leaderboard.csv, leaderboard_heatmap.{png,pdf,csv} and index.html there."""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dualbench.fetch import sha256_of
from dualbench.io import provenance, write_csv, write_text
from dualbench.plot_leaderboard import leaderboard_figure
from dualbench.scoring.leaderboard import (
    CLASSICAL_MIN_TEMPERATURE_K,
    build_leaderboard,
    material_inputs,
)
from dualbench.scoring.md_status import is_unstable

#: (column, header, format) of the tables.
TABLE_COLUMNS = (
    ("rank", "rank (MSE_k)", None), ("model", "model", None), ("n_frames", "N", None),
    ("n_seeds", "seeds", None), ("nuclei", "nuclei", None),
    ("sigma2_ratio", "σ² MD / fit", "interval"),
    ("exafs_mse_k", "EXAFS MSE_k", "interval"), ("exafs_mse_k_yardstick_sd",
                                                 "yardstick sd", "{:.3g}"),
    ("s02_fitted", "own S0²", "{:.3f}"), ("exafs_rfactor", "R-factor", "{:.4f}"),
    ("force_mae", "force MAE (meV/Å)", "{:.1f}"), ("force_slope", "parity slope", "{:.3f}"),
    ("rank_sigma2", "rank (σ²)", None),
)
#: Columns an unstable row (its MD failed) shows as "MD unstable", its failure as the title.
UNSTABLE_COLUMNS = ("sigma2_ratio", "exafs_mse_k")
UNSTABLE_TEXT = "MD unstable"
STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em}
th{background:#eee}td.num{text-align:right}code{font-size:90%}img{max-width:100%}
td.unstable{background:#ddd;color:#444;font-style:italic;text-align:center}
ul.failures{font-size:90%}"""


def _cell(row: Mapping[str, Any], column: str, fmt: str | None) -> str:
    if column == "rank_sigma2":
        best, worst = row["rank_sigma2_best"], row["rank_sigma2_worst"]
        if not (math.isfinite(best) and math.isfinite(worst)):
            return ""
        return f"{best:g}" if best == worst else f"{best:g}-{worst:g}"
    value = row[column]
    if fmt == "interval":
        if not math.isfinite(value):
            return ""
        lo, hi = row[f"{column}_lo"], row[f"{column}_hi"]
        span = f" [{lo:.3g}, {hi:.3g}]" if math.isfinite(lo) and math.isfinite(hi) else ""
        return f"{value:.3g}{span}"
    if fmt and isinstance(value, float):
        return fmt.format(value) if math.isfinite(value) else ""
    return "" if isinstance(value, float) and math.isnan(value) else str(value)


def _unstable(row: Mapping[str, Any]) -> bool:
    return is_unstable(row.get("md_status"))


def _failure(row: Mapping[str, Any]) -> str:
    text = row.get("md_failure")
    return text if isinstance(text, str) and text else UNSTABLE_TEXT


def _td(row: Mapping[str, Any], column: str, fmt: str | None) -> str:
    """One cell; an unstable row's sigma^2 and EXAFS cells say "MD unstable", with the
    failure as their title (the browser's tooltip)."""
    if column in UNSTABLE_COLUMNS and _unstable(row):
        return (f'<td class="unstable" title="{html.escape(_failure(row))}">'
                f"{UNSTABLE_TEXT}</td>")
    return f'<td class="{"num" if fmt else "txt"}">{html.escape(_cell(row, column, fmt))}</td>'


def html_table(table: pd.DataFrame, css_class: str,
               columns: Sequence[tuple[str, str, str | None]] = TABLE_COLUMNS) -> str:
    """One HTML table of leaderboard rows."""
    head = "".join(f"<th>{html.escape(header)}</th>" for _, header, _ in columns)
    body = []
    for row in table.to_dict("records"):
        cells = "".join(_td(row, c, fmt) for c, _, fmt in columns)
        body.append(f'<tr class="row">{cells}</tr>')
    return f'<table class="{css_class}"><tr>{head}</tr>{"".join(body)}</table>'


def failure_list(table: pd.DataFrame) -> str:
    """The footnote under a material's table: each unstable row and why its MD failed
    (empty when every row is stable)."""
    if "md_status" not in table:
        return ""
    items = [f"<li>{html.escape(str(row['model']))} N={row['n_frames']}: "
             f"{html.escape(_failure(row))}</li>"
             for row in table.to_dict("records") if _unstable(row)]
    if not items:
        return ""
    return (f'<p>{UNSTABLE_TEXT}: no σ² or EXAFS score; ranked behind every stable row.'
            f'</p><ul class="failures">{"".join(items)}</ul>')


def overall_table(table: pd.DataFrame) -> str:
    """The overall ranking: one row per (model, row kind), the materials it counts and
    their mean ranks (classical rows below the leaderboard's temperature floor left out)."""
    if "in_overall" in table and table["in_overall"].astype(bool).any():
        table = table[table["in_overall"].astype(bool)]
    table = table.assign(unstable_in=[
        m if is_unstable(s) else "" for m, s in
        zip(table["material"], table.get("md_status", [""] * len(table)), strict=True)])
    groups = table.groupby(["model", "row_kind"], sort=False)
    frame = groups.agg(overall_rank=("overall_rank", "first"),
                       overall_best=("overall_best", "first"),
                       materials=("material", lambda m: ", ".join(m)),
                       mean_best=("rank_best", "mean"),
                       mean_worst=("rank_worst", "mean"),
                       unstable_in=("unstable_in", lambda m: ", ".join(x for x in m if x))
                       ).reset_index()
    frame = frame.sort_values(["overall_best", "mean_best", "model"])
    columns = (("overall_rank", "overall rank", None), ("model", "model", None),
               ("row_kind", "row", None), ("materials", "materials", None),
               ("mean_best", "mean best rank", "{:.2f}"),
               ("mean_worst", "mean worst rank", "{:.2f}"))
    if frame["unstable_in"].astype(bool).any():
        columns += (("unstable_in", "MD unstable in", None),)
    return html_table(frame, "overall", columns)


def _config_hashes(paths: Sequence[Path]) -> list[str]:
    hashes = set()
    for path in paths:
        if path.suffix == ".json":
            prov = json.loads(path.read_text()).get("provenance") or {}
            if prov.get("config_hash"):
                hashes.add(str(prov["config_hash"]))
    return sorted(hashes)


def provenance_section(table: pd.DataFrame) -> str:
    """Per row: its source files and their SHA-256, and the config hashes they carry; and
    the versions and commit that built the page."""
    items, digests = [], {}
    for row in table.to_dict("records"):
        paths = [Path(p) for p in str(row["sources"]).split(";") if p]
        lines = []
        for path in paths:
            digests.setdefault(path, sha256_of(path))
            lines.append(f"<li><code>{html.escape(str(path))}</code> sha256 "
                         f"<code>{digests[path]}</code></li>")
        hashes = ", ".join(_config_hashes(paths)) or "not recorded"
        items.append(f"<h3>{html.escape(row['material'])}: {html.escape(row['model'])} "
                     f"N={row['n_frames']}</h3><p>config hash: <code>{html.escape(hashes)}"
                     f"</code></p><ul>{''.join(lines)}</ul>")
    built = provenance()
    packages = ", ".join(f"{k} {v}" for k, v in built["packages"].items() if v)
    commit = html.escape(str(built["git_commit"]))
    config = html.escape(str(built["config_hash"] or "not recorded"))
    return (f'<section id="provenance"><h2>Provenance</h2><p>Page built with '
            f"{html.escape(packages)}; commit <code>{commit}</code>; config hash "
            f"<code>{config}</code>.</p>{''.join(items)}</section>")


def render_page(table: pd.DataFrame, figure_png: str | Path) -> str:
    """The whole page as text."""
    image = base64.b64encode(Path(figure_png).read_bytes()).decode("ascii")
    sections = [f'<h2>{html.escape(m)}</h2>{html_table(sub, "material")}{failure_list(sub)}'
                for m, sub in table.groupby("material", sort=False)]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>dualbench leaderboard</title><style>{STYLE}</style></head><body>"
        "<h1>dualbench leaderboard</h1><p>Rows: each model at N = 0 (vanilla) and at the "
        "largest N of the sweep. Intervals are 95 %. Rank bands: a row is ahead of another "
        "only when its whole EXAFS MSE_k interval lies below the other's; rows whose "
        "intervals overlap share a band. The overall rank leaves out rows whose MD ran "
        f"classical nuclei below {CLASSICAL_MIN_TEMPERATURE_K:g} K (the missing zero-point "
        "motion, the same for every model, dominates their sigma^2); the nuclei column "
        "says which MD each row used. A row whose MD was unstable (a temperature runaway, "
        "atoms too close, an atom off its lattice site) has no σ² or EXAFS score and is "
        "ranked behind every stable row of its material: with k stable rows and n rows, "
        "its band is k+1 to n (1 to n when no row is stable), and it counts so in the "
        "overall rank.</p>"
        f'<h2>Overall</h2>{overall_table(table)}'
        f'<img id="heatmap" alt="sigma2 ratio and EXAFS MSE_k heat maps" '
        f'src="data:image/png;base64,{image}">'
        f"{''.join(sections)}{provenance_section(table)}</body></html>\n"
    )


def write_leaderboard(folders: Sequence[str | Path], out_csv: str | Path,
                      figure_stem: str | Path, out_html: str | Path,
                      temperatures: Mapping[str, float] | None = None,
                      conditions: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Build the leaderboard of ``folders`` (results/<material>) and write its CSV, figure
    and page; ``temperatures`` and ``conditions`` (``dft.experiment_condition``) by
    material name."""
    temperatures, conditions = temperatures or {}, conditions or {}
    materials = [material_inputs(f, temperature_K=temperatures.get(Path(f).name),
                                 condition=conditions.get(Path(f).name))
                 for f in folders]
    table = build_leaderboard(materials)
    write_csv(out_csv, table)
    leaderboard_figure(table, figure_stem)
    write_text(out_html, render_page(table, Path(figure_stem).with_suffix(".png")))
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the dualbench leaderboard.")
    parser.add_argument("folders", nargs="+", help="results/<material> folders")
    parser.add_argument("--out", required=True, help="folder for the CSV, figure and page")
    args = parser.parse_args(argv)
    out = Path(args.out)
    write_leaderboard(args.folders, out / "leaderboard.csv", out / "leaderboard_heatmap",
                      out / "index.html")


if __name__ == "__main__":
    main()
