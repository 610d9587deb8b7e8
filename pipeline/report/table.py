"""The one Markdown table helper of the report: every section builds its tables with `table`.

    table(["artifact", "p50 ms"], [["keras__tflite_fp32", 0.0213], ["torch__ptl_fp32", None]])
    # | artifact | p50 ms |  /  |---|---|  /  | keras__tflite_fp32 | 0.0213 |  /  | torch__ptl_fp32 | – |
"""
from __future__ import annotations


def fmt(v, digits: int = 3) -> str:
    """A cell: None = no value ("–"); a float to `digits` significant digits (thousands without
    decimals); text as given ("" = a blank cell)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def status_cell(status: str, text: str, title: str = "") -> str:
    """A cell coloured by its status in report.html (its CSS class `st-<status>`, colours from
    parity.STATUS_COLOR) with `title` shown on hover; report.md shows the same markup, GitHub the text."""
    clean = title.replace('"', "'").replace("|", "/").replace("<", "(").replace(">", ")")
    return f'<span class="st-{status}" title="{clean}">{text.replace("|", "/").replace("<", "(")}</span>'


def kib(b) -> str:
    return f"{b / 1024:.1f}" if b else "–"


def row(cells: list) -> str:
    """One table line; a "|" inside a cell (`|x| == FLT_MAX`) is escaped, so it cannot split the cell."""
    return "|" + "|".join(f" {str(c).replace('|', chr(92) + '|')} " if c != "" else " " for c in cells) + "|"


def grid(rows: list, cols: list, cells: dict, cell) -> list[list]:
    """The rows of a two-key table (support matrices): each row's key, then per column
    `cell(row, col, cells[(row, col)])`, or None ("–") where `cells` has nothing for the pair."""
    return [[r, *(cell(r, c, cells[(r, c)]) if cells.get((r, c)) else None for c in cols)] for r in rows]


def table(header: list[str], rows: list[list]) -> list[str]:
    """Header, separator, one line per row (cells through `fmt`), then a blank line."""
    return [row(header), "|" + "|".join("---" for _ in header) + "|"] + [row([fmt(c) for c in r]) for r in rows] + [""]
