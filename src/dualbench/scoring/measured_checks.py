"""Checks of a measured spectrum's rows as read from its file: a text file's data block
(free-text header and footer accepted, a broken row inside the data refused), finite
values in the columns mu(E) is made of, and one monotonic energy sweep.  Every refusal
is a :class:`SpectrumError` naming the file and the line, row or column."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class SpectrumError(ValueError):
    """A measured spectrum the study cannot use; names the file and the field."""

    def __init__(self, path: str | Path, field: str, message: str):
        self.path = str(path)
        self.field = field
        super().__init__(f"{path}: {field}: {message}")



def _text_rows(path: Path) -> list[tuple[int, str, list[float | None]]]:
    """(line number, text, values) of each non-blank line, as larch's column reader sees
    it: ``getfloats`` gives None for a word that is not a number (or a date-time), and for
    a line that starts with a comment character (``#;!<*%``)."""
    from larch.io.columnfile import getfloats, read_textfile

    rows = []
    for number, line in enumerate(read_textfile(str(path)).split("\n"), start=1):
        stripped = line.strip()
        if stripped:
            rows.append((number, stripped, getfloats(stripped)))
    return rows


def _starts_with_number(text: str) -> bool:
    try:
        float(text.split()[0].rstrip(",;"))
    except ValueError:
        return False
    return True


def check_numeric_rows(path: Path) -> list[int]:
    """The line numbers of a text spectrum's data rows; refuses a broken data block.

    The data, as larch reads them (``read_ascii``, and XDI likewise), are the last block
    of all-numeric rows; text after it is a footer, everything before it a header
    (XDAC-style free-text headers need no comment character).  A non-numeric row *inside*
    the data (between numeric data rows: a word, or a comment line) ends larch's data
    there, so the rows above it would be dropped silently; it is refused, naming the
    line.  So is a row that starts like a data row but is not all numbers next to the
    data (a broken first or last row, else taken as the column labels or a footer), and
    a data row with another number of values than the others (larch pads with NaN).
    """
    rows = _text_rows(path)
    numeric = [None not in values for _, _, values in rows]
    end = len(rows)
    while end > 0 and not numeric[end - 1]:
        end -= 1
    start = end
    while start > 0 and numeric[start - 1]:
        start -= 1
    if end == 0:
        raise SpectrumError(path, "data", "no row of numbers in the file")
    data = rows[start:end]
    ncol = Counter(len(values) for _, _, values in data).most_common(1)[0][0]

    def refuse(number: int, text: str, why: str) -> None:
        raise SpectrumError(
            path, f"line {number}", f"data row is not numeric: {text[:60]!r} ({why})"
        )

    def data_like(i: int) -> bool:
        return numeric[i] and len(rows[i][2]) == ncol

    # A non-numeric row right below data-like rows: below it either the data themselves,
    # or more data-like rows (two or more above it: a single numeric header line, like an
    # SSRL file's offsets, is not data).
    for i in range(1, start):
        if numeric[i] or not data_like(i - 1):
            continue
        run = 1
        while i - 1 - run >= 0 and data_like(i - 1 - run):
            run += 1
        if run >= 2 or i + 1 == start:
            refuse(rows[i][0], rows[i][1], "between data rows: larch would read only the"
                   " rows after it and drop those before")
    edges = ([start - 1] if start > 0 else []) + list(range(end, len(rows)))
    for i in edges:
        number, text, values = rows[i]
        if len(values) == ncol and _starts_with_number(text):
            refuse(number, text, "a data row with a word in it: larch would take it for"
                   " the column labels or a footer and drop it")
    for number, text, values in data:
        if len(values) != ncol:
            raise SpectrumError(
                path, f"line {number}",
                f"data row has {len(values)} values, the other rows {ncol}: {text[:60]!r}"
                " (larch would pad the shorter rows with NaN)",
            )
    return [number for number, _, _ in data]


def check_finite(
    path: Path, arrays: Mapping[str, np.ndarray], where: list[str] | None = None
) -> None:
    """Refuse a NaN or infinite value in the columns that form mu(E) (before, such rows
    were dropped silently), naming the first such row: ``where[i]`` (a file's line) if
    given for every row, else the row's number."""
    stacked = np.vstack([np.asarray(a, dtype=float) for a in arrays.values()])
    bad = np.flatnonzero(~np.all(np.isfinite(stacked), axis=0))
    if bad.size == 0:
        return
    i = int(bad[0])
    values = ", ".join(f"{n!r} is {a[i]}" for n, a in arrays.items() if not np.isfinite(a[i]))
    field = where[i] if where is not None and len(where) == stacked.shape[1] else f"row {i + 1}"
    more = f"; {bad.size - 1} more such rows" if bad.size > 1 else ""
    raise SpectrumError(
        path, field,
        f"{values}, not a finite number{more}: fix or remove the row (NaN rows are not"
        " dropped silently)",
    )


def check_one_sweep(path: Path, energy: np.ndarray, name: str) -> None:
    """Refuse energies that are not one monotonic sweep (a second, overlapping sweep
    appended, or repeated energies): sorting them would mix the sweeps silently."""
    steps = np.diff(energy)
    if len(steps) == 0 or np.all(steps > 0) or np.all(steps < 0):
        return
    back = int(np.flatnonzero(steps <= 0)[0] if steps[0] > 0 else np.flatnonzero(steps >= 0)[0])
    raise SpectrumError(
        path, f"column {name!r}",
        f"energies are not one monotonic sweep: row {back + 2} has {energy[back + 1]:.3f} eV"
        f" after {energy[back]:.3f} eV (a second sweep appended, or a repeated point);"
        " give one sweep, or merge the sweeps (e.g. larch merge_groups) first",
    )
