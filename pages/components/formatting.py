"""How every page writes numbers, times and contracts (issue #12, defect 9).

- money to the cent, prices to the contract's tick, ratios to two places, Greeks with their
  own precision and their names as words; a missing value is a dash, never "None" or "nan";
- times in the operator's time zone (setting `V6_TIME_ZONE`, default the machine's), with the
  exchange's time where it matters (expiries, fills);
- P&L coloured: markdown for text, a pandas Styler for tables.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

DASH = "—"
EXCHANGE_TZ = ZoneInfo("America/New_York")      # US options and stocks: the exchange's clock
GAIN_COLOR, LOSS_COLOR = "#21c354", "#ff4b4b"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")

_zone: tzinfo | None = None


# Beyond this a figure is a broker glitch (IB has sent 1e306 shares): shown as "1.0e+306", never
# as a 300-digit number. Legs carrying such figures are flagged and kept out of totals in the core.
HUGE = 1e15


def _huge(value: float, signed: bool) -> str | None:
    if abs(value) < HUGE:
        return None
    return f"{value:+.1e}" if signed else f"{value:.1e}"


def displayable(column):
    """A numeric table column with non-finite and absurd values blanked (flags explain them)."""
    return column.where(column.abs() < HUGE)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def text(value: Any) -> str:
    """Any value as shown text: a dash for None/NaN/empty, never the word "None"."""
    if value is None or (isinstance(value, float) and _missing(value)) or value == "":
        return DASH
    return str(value)


def fmt_money(value: float | None, *, signed: bool = False, decimals: int = 2) -> str:
    """`$1,234.56`; signed: `+$1,234.56` / `-$1,234.56`."""
    if _missing(value):
        return DASH
    value = float(value)
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    if (huge := _huge(abs(value), False)) is not None:
        return f"{sign}${huge}"
    value = round(value, decimals) + 0.0
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.{decimals}f}"


def fmt_number(value: float | None, *, decimals: int = 2, signed: bool = True) -> str:
    """`+1,234.57` (signed by default: Greeks and quantities have a direction)."""
    if _missing(value):
        return DASH
    if (huge := _huge(float(value), signed)) is not None:
        return huge
    value = round(float(value), decimals) + 0.0  # no "-0.0" for tiny negatives
    return f"{value:+,.{decimals}f}" if signed and value != 0 else f"{value:,.{decimals}f}"


def fmt_pct(value: float | None, *, decimals: int = 1, signed: bool = False) -> str:
    if _missing(value):
        return DASH
    if (huge := _huge(float(value), signed)) is not None:
        return f"{huge}%"
    return f"{value:+,.{decimals}f}%" if signed else f"{value:,.{decimals}f}%"


def fmt_ratio(value: float | None) -> str:
    """Ratios (beta, reward/risk, confidence scores) to two places."""
    return fmt_number(value, decimals=2, signed=False)


def tick_decimals(price: float | None, tick: float | None = None) -> int:
    """Decimals of the price grid: options under $3 trade in cents, above in nickels, stocks in
    cents; all of them show two places. A finer explicit tick (e.g. 0.005) shows three."""
    if tick:
        digits = f"{tick:.6f}".rstrip("0").split(".")[1]
        return max(2, len(digits))
    return 2


def fmt_price(value: float | None, tick: float | None = None) -> str:
    """A price to the tick: `412.35`, `0.05`."""
    if _missing(value):
        return DASH
    return f"{float(value):,.{tick_decimals(value, tick)}f}"


# Position Greeks precision: delta and dollar amounts read in whole-ish units, gamma is small.
GREEK_DECIMALS = {"delta": 1, "gamma": 2, "theta": 2, "vega": 2, "dollar_delta": 0, "beta_delta": 1}
GREEK_LABELS = {
    "delta": "Delta (shares)",
    "gamma": "Gamma (shares per $1)",
    "theta": "Theta ($/day)",
    "vega": "Vega ($ per vol pt)",
    "dollar_delta": "Dollar delta ($)",
    "beta_delta": "Beta-weighted delta (SPY sh)",
}
# Greek names as words wherever a page would be tempted by symbols (Δ, Θ) or code names.
GREEK_WORDS = {"delta": "Delta", "gamma": "Gamma", "theta": "Theta", "vega": "Vega",
               "dollar_delta": "Dollar delta", "beta_delta": "Beta-weighted delta"}


def fmt_greek(name: str, value: float | None) -> str:
    """A position Greek with the precision the dashboard uses everywhere (units live in labels)."""
    return fmt_number(value, decimals=GREEK_DECIMALS[name])


def fmt_age(seconds: float | None) -> str:
    """`3 s`, `4 min`, `2 h 5 min`, `3 d`."""
    if _missing(seconds):
        return DASH
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest // 60:.0f} min"
    return f"{seconds // 86400:.0f} d"


def age_seconds(then: datetime | None, now: datetime | None = None) -> float | None:
    if then is None:
        return None
    return ((now or utcnow()) - then).total_seconds()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- time zones


def set_operator_zone(name: str) -> None:
    """The zone every shown time uses (`Settings.time_zone`; empty: the machine's)."""
    global _zone
    _zone = ZoneInfo(name) if name else None


def operator_zone() -> tzinfo:
    """The operator's zone: the setting, else the machine's local zone."""
    if _zone is not None:
        return _zone
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else timezone.utc


def zone_name() -> str:
    """Short name of the operator's zone for labels, e.g. `CET` or `UTC`."""
    return datetime.now(operator_zone()).strftime("%Z") or "local"


def local(value: datetime) -> datetime:
    """An aware (or UTC-naive) time in the operator's zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(operator_zone())


def fmt_time(value: datetime | None, *, seconds: bool = True, exchange: bool = False) -> str:
    """`2026-12-02 09:31:05 CET`; exchange=True adds the exchange's clock, e.g. `(03:31 ET)`."""
    if value is None:
        return DASH
    shown = local(value)
    out = shown.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
    if exchange:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        out += f" ({aware.astimezone(EXCHANGE_TZ):%H:%M} ET)"
    return out


def fmt_date(value: date | None) -> str:
    return value.isoformat() if value is not None else DASH


# ---------------------------------------------------------------- text and colour


def plain(value: Any) -> str:
    """Text from outside (IB, gateway, LLM) made inert for Streamlit's markdown renderer."""
    return _MD_SPECIAL.sub(r"\\\1", text(value))


def colored(shown: str, value: float | None) -> str:
    """Markdown red/green for a signed figure (our own formatted text, safe to mark up); a figure
    that shows as zero (to the cent) stays uncoloured."""
    if _missing(value) or round(float(value), 2) == 0:
        return shown
    return f":green[{shown}]" if value > 0 else f":red[{shown}]"


def pnl_metric(shown: str) -> str:
    """A formatted P&L figure (`+$1.23`, `-$4.00`, `—`) as an st.metric value in red/green (markdown:
    the dollar signs escaped so they never start LaTeX)."""
    escaped = shown.replace("$", r"\$")
    if shown.startswith("+"):
        return f":green[{escaped}]"
    if shown.startswith("-"):
        return f":red[{escaped}]"
    return escaped


def pnl_css(value: Any) -> str:
    """Cell style for a P&L figure in a pandas Styler (none for a figure that shows as zero)."""
    if _missing(value) or round(float(value), 2) == 0:
        return ""
    return f"color: {GAIN_COLOR}" if value > 0 else f"color: {LOSS_COLOR}"


def style_pnl(frame, columns) -> Any:
    """A Styler colouring the given P&L columns red/green (the numbers keep their column formats)."""
    present = [c for c in columns if c in frame.columns]
    return frame.style.map(pnl_css, subset=present)


def frozen_style(style) -> Any:
    """A Styler whose styles are computed once, here.

    Streamlit computes a Styler's styles again each time it draws it, and turns every cell into
    its display string again; a Styler shared by every session (built once per snapshot) keeps
    its first result instead, so each further draw only copies bytes into the message."""
    style._compute()
    translated = _plain_translation(style) or style._translate(False, False)
    translated[_FROZEN] = {}                   # per-uuid CSS and the display values, filled once
    style._compute = lambda: style
    style._translate = lambda *args, **kwargs: translated
    _memo_styler_marshalling()
    return style


def _plain_translation(style) -> dict | None:
    """pandas' translation of a plain Styler, as far as Streamlit reads it: each data cell's id and
    display value ("body") and the cells' CSS grouped by identical properties ("cellstyle").

    Plain: styles from apply/map only, pandas' default formats, nothing hidden, trimmed or
    captioned, a flat index. pandas' `_translate` also renders every cell's HTML classes and
    attributes, which Streamlit never reads: at 500 legs that was 80–110 ms of the All legs
    table's 150. Any other Styler returns None and pandas translates it (the test compares the
    marshalled bytes of both paths)."""
    import pandas as pd

    data = style.data
    if (style._display_funcs or style.hidden_rows or style.hidden_columns or style.table_styles
            or style.ctx_index or style.ctx_columns or style.cell_context or style.caption is not None
            or style.tooltips is not None or style.concatenated
            or pd.get_option("styler.render.max_rows") is not None
            or pd.get_option("styler.render.max_columns") is not None
            or data.size > pd.get_option("styler.render.max_elements")
            or isinstance(data.index, pd.MultiIndex) or isinstance(data.columns, pd.MultiIndex)):
        return None
    display = style._display_funcs.default_factory()        # pandas' default formatter
    columns = [[display(value) for value in data.iloc[:, c]] for c in range(data.shape[1])]
    body = [[{"id": f"row{r}_col{c}", "display_value": column[r]} for c, column in enumerate(columns)]
            for r in range(data.shape[0])]
    grouped: dict[tuple, list[str]] = {}
    for r, c in sorted(key for key, props in style.ctx.items() if props):   # row-major, as pandas
        grouped.setdefault(tuple(style.ctx[r, c]), []).append(f"row{r}_col{c}")
    return {"body": body, "table_styles": [],
            "cellstyle": [{"props": list(props), "selectors": cells} for props, cells in grouped.items()]}


_FROZEN = "_v6_frozen"
_memo_installed = False


def _memo_styler_marshalling() -> None:
    """Let Streamlit's Styler marshalling reuse what it made for a frozen Styler's first draw.

    Only a frozen Styler's translated styles carry the memo (their cells never change after
    `frozen_style`); every other Styler goes through Streamlit unchanged."""
    global _memo_installed
    if _memo_installed:
        return
    from streamlit.elements.lib import pandas_styler_utils as styler_utils

    marshall_styles = styler_utils._marshall_styles
    marshall_display_values = styler_utils._marshall_display_values

    def styles_once(proto, styler, styles) -> None:
        memo = styles.get(_FROZEN) if isinstance(styles, dict) else None
        if memo is None:
            return marshall_styles(proto, styler, styles)
        key = ("styles", str(styler.uuid))
        if key not in memo:
            marshall_styles(proto, styler, styles)
            memo[key] = proto.styler.styles
        elif memo[key]:
            proto.styler.styles = memo[key]
        return None

    def display_values_once(proto, df, styles) -> None:
        memo = styles.get(_FROZEN) if isinstance(styles, dict) else None
        if memo is None:
            return marshall_display_values(proto, df, styles)
        if "display" not in memo:
            marshall_display_values(proto, df, styles)
            memo["display"] = proto.styler.display_values
        else:
            proto.styler.display_values = memo["display"]
        return None

    styler_utils._marshall_styles = styles_once
    styler_utils._marshall_display_values = display_values_once
    _memo_installed = True


# One look for a table of legs, live (Positions) or recorded (History): the columns a trader
# reads first (contract, quantity, price, P&L, Greeks) come first; all fit 1600 px.
LEG_COLUMN_CONFIG = {
    "Contract": st.column_config.TextColumn(pinned=True, width="medium"),
    "Qty": st.column_config.NumberColumn(format="%+,d", help="Signed: negative is short", width="small"),
    "Underlying price": st.column_config.NumberColumn("Und. price", format="%,.2f",
                                                      help="The underlying's last price"),
    "Avg cost": st.column_config.NumberColumn(format="%,.2f", help="Average price per share"),
    "Mark": st.column_config.NumberColumn(format="%,.2f",
                                          help="Mid, else last, else close (per share), when quoted or recorded"),
    "Mkt value": st.column_config.NumberColumn(format="%+,.2f"),
    "P&L": st.column_config.NumberColumn(format="%+,.2f", help="Unrealized P&L ($)"),
    "P&L %": st.column_config.NumberColumn(format="%+,.1f%%", help="Unrealized P&L / |cost basis|"),
    "Day P&L": st.column_config.NumberColumn(format="%+,.2f"),
    "Delta": st.column_config.NumberColumn(format="%+,.1f", help="Position delta, share-equivalents"),
    "Gamma": st.column_config.NumberColumn(format="%+,.2f", help="Position gamma, shares per $1"),
    "Theta $/day": st.column_config.NumberColumn(format="%+,.2f"),
    "Vega $/vol pt": st.column_config.NumberColumn(format="%+,.2f"),
    "Delta/contract": st.column_config.NumberColumn(format="%+.2f", help="Per-contract delta, in [-1, 1]"),
    "IV %": st.column_config.NumberColumn(format="%.1f"),
    "DTE": st.column_config.NumberColumn(format="%d", width="small",
                                         help="Calendar days to expiry (0 = expires today)"),
    "Greeks": st.column_config.TextColumn(width="small",
                                          help="IB = IB's model; COMPUTED = v6 (py_vollib); NONE = kept out of totals"),
    "Quote age": st.column_config.NumberColumn(format="%.0f s", width="small"),
    "Flags": st.column_config.TextColumn(help="Validation problems; flagged legs are kept out of the totals"),
}


# ---------------------------------------------------------------- tables without "None"

_PRINTF = re.compile(r"%([+]?)(,?)(?:\.(\d+))?([dfig])")


def printf(fmt: str, value: float) -> str:
    """A number by a column's printf-style format (st.column_config's `format`, e.g. "%+,.2f",
    "%.0f s", "%+,.1f%%"), as Streamlit's frontend would draw it."""
    def one(match: re.Match) -> str:
        sign, comma, decimals, kind = match.groups()
        if kind == "g":
            return format(value, f"{sign}{comma}{'' if decimals is None else '.' + decimals}g")
        places = 0 if kind in "di" else int(decimals if decimals is not None else 6)
        return format(value, f"{sign}{comma}.{places}f")
    return _PRINTF.sub(one, fmt, count=1).replace("%%", "%")


def _column_format(config: Any) -> str | None:
    if isinstance(config, dict):
        return (config.get("type_config") or {}).get("format") if isinstance(
            config.get("type_config"), dict) else None
    return None


def without_nulls(frame, column_config: dict | None = None):
    """(frame, column_config) for st.dataframe with no cell drawn as "None".

    st.dataframe draws a null as the word "None" whatever its column's format says. A column with
    a missing figure becomes text: each number by its column's format (or two places), a dash
    where it is missing, right-aligned; columns without nulls stay as they are (sortable numbers).
    Accepts a pandas or polars frame or a dict of columns."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = frame.to_pandas() if hasattr(frame, "to_pandas") else pd.DataFrame(frame)
    config = dict(column_config or {})
    shown = frame
    for name in frame.columns:
        column = frame[name]
        if not column.isna().any():
            continue
        if shown is frame:
            shown = frame.copy()
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            if pd.api.types.is_datetime64_any_dtype(column):
                shown[name] = [DASH if pd.isna(v) else fmt_time(v.to_pydatetime()) for v in column]
            else:
                shown[name] = [text(v) for v in column.astype(object).tolist()]
            continue
        current = config.get(name)
        fmt = _column_format(current) or ("%d" if pd.api.types.is_integer_dtype(column) else "%,.2f")
        shown[name] = [DASH if _missing(v) else (printf(fmt, float(v)) if abs(float(v)) < HUGE
                                                 else _huge(float(v), "+" in fmt))
                       for v in column.astype(object).tolist()]
        if isinstance(current, dict):
            config[name] = {**current, "alignment": "right",
                            "type_config": {"type": "text", "max_chars": None, "validate": None}}
        else:
            config[name] = st.column_config.TextColumn(current, alignment="right")
    return shown, config


def show_table(data, *, pnl: tuple[str, ...] = (), column_config: dict | None = None, **kwargs):
    """st.dataframe with no "None" cell (see `without_nulls`) and the named P&L columns red/green
    (coloured by their numbers even where a column became text)."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else (
        data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data))
    shown, config = without_nulls(frame, column_config)
    present = [c for c in pnl if c in frame.columns]
    if present:
        shown = shown.style.apply(lambda col: [pnl_css(v) for v in frame[col.name].tolist()], subset=present)
    return st.dataframe(shown, column_config=config or None, **kwargs)
