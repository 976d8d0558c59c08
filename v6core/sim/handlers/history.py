"""Historical bars (reqHistoricalData)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.sim.fields import BadRequest, Fields
from v6core.sim.history import HistoryError, bars, format_bar_time, parse_end

if TYPE_CHECKING:
    from v6core.sim.session import Session


class HistoryRequests:
    """Mixin of Session: bars built from the same seeded market the live ticks come from."""

    def req_historical_data(self, f: Fields) -> None:
        req_id = f.int()
        spec = f.contract()
        f.bool()
        end_text = f.text()
        bar_size = f.text().strip()
        duration = f.text()
        f.text()
        what_to_show = f.text() or "TRADES"
        format_date = f.int(1)
        info = self.server.resolve(spec)
        if info is None:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        try:
            rows = bars(self.server.market, self.server.seed, info, bar_size, duration,
                        parse_end(end_text), what_to_show)
        except (HistoryError, ValueError) as exc:
            raise BadRequest(req_id, 162, str(exc)) from exc
        start = format_bar_time(rows[0][0], format_date)
        end = format_bar_time(rows[-1][0], format_date)
        fields: list = [17, req_id, start, end, len(rows)]
        for stamp, o, h, lo, c, v, wap, count in rows:
            fields += [format_bar_time(stamp, format_date), o, h, lo, c, v, wap, count]
        self.send(fields)


HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    20: HistoryRequests.req_historical_data,
}
