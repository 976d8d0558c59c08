"""A small table of legs as HTML: P&L in red/green, a dash for a missing figure, stale quotes greyed.

Positions shows one such table per strategy. An `st.dataframe` cannot colour a cell without a
pandas Styler, and Streamlit re-marshals a Styler's display values on every draw (50–70 ms per
table here, whatever its size): twenty strategies would cost a second per run. This table is
built once per snapshot (the page shares it between sessions) and each draw only sends the text.
Columns, labels and number formats follow `LEG_COLUMN_CONFIG`, so it reads like the All legs view.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from pages.components.formatting import DASH, GAIN_COLOR, HUGE, LOSS_COLOR, text

CSS_CLASS = "v6-legs"
_STYLE_LINES = f"""<style>
.{CSS_CLASS} {{ overflow-x: auto; margin-bottom: 0.5rem; }}
.{CSS_CLASS} table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem;
  font-variant-numeric: tabular-nums; }}
.{CSS_CLASS} th {{ text-align: right; font-weight: 600; padding: 4px 8px; white-space: nowrap;
  border-bottom: 1px solid rgba(128, 128, 128, 0.4); opacity: 0.8; }}
.{CSS_CLASS} td {{ text-align: right; padding: 3px 8px; white-space: nowrap;
  border-bottom: 1px solid rgba(128, 128, 128, 0.15); }}
.{CSS_CLASS} th.text, .{CSS_CLASS} td.text {{ text-align: left; }}
.{CSS_CLASS} td.gain {{ color: {GAIN_COLOR}; }}
.{CSS_CLASS} td.loss {{ color: {LOSS_COLOR}; }}
.{CSS_CLASS} tr.stale td {{ opacity: 0.55; }}
.{CSS_CLASS} p.note {{ font-size: 0.8rem; opacity: 0.7; margin: 0 0 0.25rem 0; }}
</style>"""
STYLE = " ".join(line.strip() for line in _STYLE_LINES.splitlines())   # one line: one HTML block


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not math.isfinite(number) or abs(number) >= HUGE


def _num(fmt: str) -> Callable[[Any], str]:
    def show(value: Any) -> str:
        number = round(float(value), 6) + 0.0          # never "-0.00"
        shown = fmt.format(number)
        return shown.lstrip("+") if number == 0 else shown
    return show


def _int(signed: bool) -> Callable[[Any], str]:
    def show(value: Any) -> str:
        number = int(round(float(value)))
        return f"{number:+,d}" if signed and number else f"{number:,d}"
    return show


# column -> (header, how a value shows, tooltip); the same columns and formats as LEG_COLUMN_CONFIG
FORMATS: dict[str, tuple[str, Callable[[Any], str], str]] = {
    "Contract": ("Contract", text, ""),
    "Strategy": ("Strategy", text, ""),
    "Qty": ("Qty", _int(True), "Signed: negative is short"),
    "Underlying price": ("Und. price", _num("{:,.2f}"), "The underlying's last price"),
    "Mark": ("Mark", _num("{:,.2f}"), "Mid, else last, else close (per share), when quoted or recorded"),
    "P&L": ("P&L", _num("{:+,.2f}"), "Unrealized P&L ($)"),
    "Day P&L": ("Day P&L", _num("{:+,.2f}"), ""),
    "Delta": ("Delta", _num("{:+,.1f}"), "Position delta, share-equivalents"),
    "Gamma": ("Gamma", _num("{:+,.2f}"), "Position gamma, shares per $1"),
    "Theta $/day": ("Theta $/day", _num("{:+,.2f}"), ""),
    "Vega $/vol pt": ("Vega $/vol pt", _num("{:+,.2f}"), ""),
    "DTE": ("DTE", _int(False), "Calendar days to expiry (0 = expires today)"),
    "IV %": ("IV %", _num("{:.1f}"), ""),
    "Avg cost": ("Avg cost", _num("{:,.2f}"), "Average price per share"),
    "Mkt value": ("Mkt value", _num("{:+,.2f}"), ""),
    "P&L %": ("P&L %", _num("{:+,.1f}%"), "Unrealized P&L / |cost basis|"),
    "Delta/contract": ("Delta/contract", _num("{:+.2f}"), "Per-contract delta, in [-1, 1]"),
    "Greeks": ("Greeks", text, "IB = IB's model; COMPUTED = v6 (py_vollib); NONE = kept out of totals"),
    "Quote age": ("Quote age", _num("{:.0f} s"), ""),
    "Flags": ("Flags", text, "Validation problems; flagged legs are kept out of the totals"),
}
TEXT_COLUMNS = {"Contract", "Strategy", "Greeks", "Flags"}
PNL_COLUMNS = {"P&L", "Day P&L", "P&L %"}


def cell(column: str, value: Any) -> str:
    """How one value of `column` shows: its column's format, a dash when missing."""
    if column in TEXT_COLUMNS:
        return text(value)
    if _missing(value):
        return DASH
    return FORMATS[column][1](value) if column in FORMATS else str(value)


def _pnl_class(value: Any) -> str:
    if _missing(value) or round(float(value), 2) == 0:       # shows as 0.00: no colour
        return ""
    return "gain" if float(value) > 0 else "loss"


def column_values(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, list]:
    """The frame's columns as Python lists, once (a table then picks its rows by position)."""
    return {c: frame[c].tolist() for c in columns}


def legs_html(frame: pd.DataFrame, columns: Sequence[str], stale: Sequence[bool] | None = None) -> str:
    """The rows of `frame` as one HTML table of `columns` (every value escaped)."""
    stale = list(stale) if stale is not None else [False] * len(frame)
    return rows_html(column_values(frame, columns), columns, range(len(frame)), stale)


def rows_html(values: dict[str, list], columns: Sequence[str], rows: Sequence[int],
              stale: Sequence[bool], note: str = "") -> str:
    """Rows `rows` (positions in `values`' lists) as one HTML table of `columns`, under `note`
    (plain text, shown small: one element instead of a caption and a table)."""
    head = "".join(
        f'<th class="{"text" if c in TEXT_COLUMNS else "num"}"'
        + (f' title="{html.escape(FORMATS[c][2])}"' if c in FORMATS and FORMATS[c][2] else "")
        + f">{html.escape(FORMATS[c][0] if c in FORMATS else c)}</th>"
        for c in columns)
    out = []
    for i in rows:
        cells = []
        for c in columns:
            value = values[c][i]
            classes = "text" if c in TEXT_COLUMNS else "num"
            if c in PNL_COLUMNS and (pnl := _pnl_class(value)):
                classes += " " + pnl
            cells.append(f'<td class="{classes}" data-column="{html.escape(c)}">{html.escape(cell(c, value))}</td>')
        opening = '<tr class="stale">' if stale[i] else "<tr>"
        out.append(f'{opening}{"".join(cells)}</tr>')
    # The style travels with each table: a separate style element can be redrawn apart from the
    # tables by a live refresh, and the colours would flicker.
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (f'{STYLE}<div class="{CSS_CLASS}">{note_html}<table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(out)}</tbody></table></div>')
