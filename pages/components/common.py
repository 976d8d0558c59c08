"""Shared pieces of the dashboard pages (not a page itself).

- `get_services()`: THE process-wide factory (one runtime, one IB connection for every tab);
- formatting (`pages.components.formatting`), the sidebar and page runner
  (`pages.components.shell`) and the per-snapshot cache (`pages.components.shared`), re-exported
  here so a page needs one import.
"""

from __future__ import annotations

from pages.components.formatting import (  # noqa: F401 (re-exported)
    DASH,
    EXCHANGE_TZ,
    GREEK_DECIMALS,
    GREEK_LABELS,
    GREEK_WORDS,
    HUGE,
    LEG_COLUMN_CONFIG,
    age_seconds,
    colored,
    displayable,
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
    pnl_metric,
    set_operator_zone,
    show_table,
    style_pnl,
    text,
    utcnow,
    without_nulls,
    zone_name,
)
from pages.components.shared import live_snapshot, per_snapshot  # noqa: F401 (re-exported)
from pages.components.shell import (  # noqa: F401 (re-exported)
    PAUSE_KEY,
    REFRESH_CHOICES,
    REFRESH_KEY,
    SESSION_KEY,
    STATUS_SLOT_KEY,
    connection_line,
    lake_alerts,
    live_fragment,
    ensure_app_shell,
    no_legs_notice,
    no_legs_text,
    refresh_seconds,
    render_page,
    session_id,
    settings_error_screen,
    sidebar,
)
import v6core.services as _wiring  # the real module (imported after app.py's first screen)
from v6core.config import load_settings


def get_services():
    """The process-wide services (one runtime, one IB connection for every tab). They live in
    `v6core.services`, not in `st.cache_resource`, which any client's "Clear cache" empties."""
    from v6core.services import start_services  # looked up per call: tests substitute the module

    return _wiring.process_services(lambda: start_services(load_settings()))


get_services.clear = _wiring.forget_process_services  # type: ignore[attr-defined]  # tests only
