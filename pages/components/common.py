"""Shared pieces of the dashboard pages (not a page itself).

- `get_services()`: THE process-wide factory (one runtime, one IB connection for every tab);
- formatting (`pages.components.formatting`), the sidebar and page runner
  (`pages.components.shell`) and the per-snapshot cache (`pages.components.shared`), re-exported
  here so a page needs one import.
"""

from __future__ import annotations

import streamlit as st

from pages.components.formatting import (  # noqa: F401 (re-exported)
    DASH,
    EXCHANGE_TZ,
    GREEK_DECIMALS,
    GREEK_LABELS,
    GREEK_WORDS,
    LEG_COLUMN_CONFIG,
    age_seconds,
    colored,
    fmt_age,
    fmt_date,
    fmt_greek,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_time,
    frozen_style,
    local,
    operator_zone,
    plain,
    pnl_css,
    set_operator_zone,
    style_pnl,
    text,
    utcnow,
    zone_name,
)
from pages.components.shared import per_snapshot  # noqa: F401 (re-exported)
from pages.components.shell import (  # noqa: F401 (re-exported)
    PAUSE_KEY,
    REFRESH_CHOICES,
    REFRESH_KEY,
    SESSION_KEY,
    connection_line,
    ensure_app_shell,
    no_legs_notice,
    refresh_seconds,
    render_page,
    session_id,
    settings_error_screen,
    sidebar,
)
from v6core.config import load_settings


# Keep this factory tiny and stable: Streamlit keys the cache on its source, so any edit here
# starts a second runtime (and a second IB connection) in a running server.
@st.cache_resource(show_spinner=False)
def get_services():
    from v6core.services import start_services

    return start_services(load_settings())
