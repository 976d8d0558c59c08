"""SignalService: bars -> indicators -> analyst (LLM or rules) -> validated record -> Delta.

The service reads from the runtime only through `historical_bars` and `snapshot`. It has no path
to order placement: a signal becomes an order only through an order ticket that a human confirms
(`OrderDesk.draft_from_signal`, called by the page on the operator's click).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import plotly.graph_objects as go
import polars as pl

from v6core.config import Settings
from v6core.models import PortfolioSnapshot
from v6core.signals.charts import build_chart
from v6core.signals.indicators import add_indicators, check_bars, resample_weekly, summarize
from v6core.signals.llm import LLMAnalyst, LLMOutcome
from v6core.signals.prompt import build_messages, input_payload, prompt_hash
from v6core.signals.rules import RULES_ANALYST, InsufficientData, analyse_with_rules
from v6core.signals.schema import AnalystInput, SignalRecord
from v6core.signals.screening import SUSPECT_RUN
from v6core.signals.store import SignalStore, row_to_record

log = logging.getLogger(__name__)

DAILY_BAR_SIZE, DAILY_DURATION = "1 day", "2 Y"
WEEKLY_BAR_SIZE, WEEKLY_DURATION = "1 week", "5 Y"
MIN_WEEKLY_BARS = 30                   # fewer weekly bars from the gateway: resample daily instead
RECENT_BARS = 10

ProgressCallback = Callable[[int, int, str, SignalRecord | None], None]


class BarsSource(Protocol):
    """The part of the runtime the signal service uses (and all it can reach)."""

    def historical_bars(self, symbol: str, bar_size: str = ..., duration: str = ...) -> Any: ...

    def snapshot(self) -> PortfolioSnapshot | None: ...


@dataclass(slots=True, frozen=True, eq=False)
class LastAnalysis:
    """What the last analysis of a symbol used: the analyst's input, its frames and prompt."""

    input: AnalystInput
    daily: pl.DataFrame
    weekly: pl.DataFrame
    messages: tuple[dict[str, str], ...]   # what an LLM is (or would be) sent
    analyst: str


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def exposure_in(snapshot: PortfolioSnapshot | None, symbol: str) -> dict[str, Any]:
    """The current position in one underlying: its legs with position Greeks, and totals."""
    if snapshot is None:
        return {"known": False, "note": "no portfolio snapshot yet"}
    legs = [leg for leg in snapshot.legs if leg.contract.symbol == symbol]
    rows = []
    for leg in legs:
        g = leg.position_greeks
        rows.append({
            "contract": leg.contract.label, "sec_type": leg.contract.sec_type,
            "quantity": leg.quantity, "avg_price": round(leg.avg_price, 4),
            "mark": None if leg.mark is None else round(leg.mark, 4), "dte": leg.dte,
            "delta": round(g.delta, 2), "gamma": round(g.gamma, 4), "theta": round(g.theta, 2),
            "vega": round(g.vega, 2),
            "unrealized_pnl": None if leg.unrealized_pnl is None else round(leg.unrealized_pnl, 2),
        })
    summary = snapshot.underlying(symbol)
    totals: dict[str, Any] = {}
    if summary is not None:
        g = summary.greeks
        totals = {"delta": round(g.delta, 2), "gamma": round(g.gamma, 4), "theta": round(g.theta, 2),
                  "vega": round(g.vega, 2), "dollar_delta": round(g.dollar_delta, 2),
                  "beta_delta_spy_shares": round(g.beta_delta, 2),
                  "unrealized_pnl": round(summary.unrealized_pnl, 2)}
    return {"known": True, "legs": rows, "totals": totals,
            "note": "no position in this underlying" if not rows else ""}


def recent_bars(daily: pl.DataFrame, count: int = RECENT_BARS) -> tuple[dict[str, Any], ...]:
    rows = daily.tail(count).select(
        pl.col("time").dt.strftime("%Y-%m-%d").alias("date"),
        pl.col("open", "high", "low", "close").round(4), pl.col("volume").round(0))
    return tuple(rows.iter_rows(named=True))


class SignalService:
    def __init__(self, settings: Settings, runtime: BarsSource | None,
                 lake_root: Path | None = None, *, llm: LLMAnalyst | None = None,
                 bars_timeout: float = 30.0, weekly_from_gateway: bool = True) -> None:
        self.settings = settings
        self._bars = runtime
        self.store = SignalStore(Path(lake_root) if lake_root is not None else settings.lake_path)
        self.bars_timeout = bars_timeout
        self.weekly_from_gateway = weekly_from_gateway
        self.llm_error = ""
        self.llm = llm
        if self.llm is None and settings.llm_enabled:
            try:
                self.llm = LLMAnalyst(settings)
            except Exception as exc:  # a bad endpoint setting must not take the page down
                self.llm_error = f"LLM analyst unavailable ({exc.__class__.__name__}); using rules"
                log.warning("%s", self.llm_error)
        self._last: dict[str, LastAnalysis] = {}
        self._chart_frames: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}
        self._run_lock = threading.Lock()      # one analysis at a time (LLM calls are costly)

    # ----------------------------------------------------------------- reading
    @property
    def analyst_name(self) -> str:
        return self.llm.name if self.llm is not None else RULES_ANALYST

    def latest(self) -> dict[str, SignalRecord]:
        """The newest final record of each symbol analysed so far (from Delta)."""
        return self.store.latest()

    def history(self, symbol: str) -> pl.DataFrame:
        """Every record of one symbol, newest first (accepted and rejected)."""
        return self.store.read(symbol)

    def history_table(self, symbol: str) -> pl.DataFrame:
        """`history(symbol)` as display columns (lists joined into text)."""
        frame = self.history(symbol)
        return frame.select(
            "created_at", "state",
            pl.when(pl.col("actionable")).then(pl.lit("actionable"))
            .otherwise(pl.col("not_actionable_reason")).alias("actionable"),
            "status", "action", "confidence", "confidence_score", "analyst",
            "entry", "stop", "target", "risk_reward", "reference_price", "reject_reason",
            pl.col("flags").list.join(" | "), "attempts", "final", "prompt_hash", "run_id",
        )

    def history_records(self, symbol: str) -> list[SignalRecord]:
        return self.store.history(symbol)

    def run_records(self, run_id: str) -> list[SignalRecord]:
        """The records of one analysis run (e.g. a rejected LLM answer and its rules fallback)."""
        frame = self.store.read().filter(pl.col("run_id") == run_id)
        return [row_to_record(row) for row in frame.iter_rows(named=True)]

    def last_input(self, symbol: str) -> AnalystInput | None:
        """What the analyst was given in this process's last analysis of `symbol`."""
        last = self._last.get(symbol.upper())
        return None if last is None else last.input

    def last_analysis(self, symbol: str) -> LastAnalysis | None:
        return self._last.get(symbol.upper())

    def input_payload(self, symbol: str) -> dict[str, Any] | None:
        inp = self.last_input(symbol)
        return None if inp is None else input_payload(inp)

    def charts(self, symbol: str, fetch: bool = False) -> dict[str, go.Figure]:
        """Daily and weekly figures from the last analysis of `symbol`, else from bars loaded for
        charting; with `fetch`, bars are loaded now if there are none (no analysis is made)."""
        symbol = symbol.upper()
        last = self._last.get(symbol)
        frames = (last.daily, last.weekly) if last is not None else self._chart_frames.get(symbol)
        if frames is None and fetch:
            daily, weekly, _ = self._frames(symbol)
            frames = self._chart_frames[symbol] = (daily, weekly)
        if frames is None:
            return {}
        return {"daily": build_chart(frames[0], symbol, "daily"),
                "weekly": build_chart(frames[1], symbol, "weekly")}

    # --------------------------------------------------------------- analysing
    def analyse_all(self, symbols: Iterable[str] | None = None,
                    progress_cb: ProgressCallback | None = None) -> list[SignalRecord]:
        todo = [s.upper() for s in (symbols if symbols is not None else self.settings.watchlist)]
        records = []
        for i, symbol in enumerate(todo):
            if progress_cb is not None:
                progress_cb(i, len(todo), symbol, None)
            record = self.analyse(symbol)
            records.append(record)
            if progress_cb is not None:
                progress_cb(i + 1, len(todo), symbol, record)
        return records

    def analyse(self, symbol: str) -> SignalRecord:
        """Analyse one symbol and store the outcome; returns the final record (never raises for
        missing data or a failing LLM: those become REJECTED records or the rules fallback)."""
        symbol = symbol.strip().upper()
        with self._run_lock:
            records = self._analyse(symbol, uuid.uuid4().hex)
            self.store.append(records)
        return records[-1]

    def _new_id(self) -> str:
        return uuid.uuid4().hex

    def _fetch(self, symbol: str, bar_size: str, duration: str) -> pl.DataFrame:
        if self._bars is None:
            raise RuntimeError("no runtime to fetch bars from")
        return check_bars(self._bars.historical_bars(symbol, bar_size, duration)
                          .result(timeout=self.bars_timeout))

    def _snapshot(self) -> PortfolioSnapshot | None:
        try:
            return None if self._bars is None else self._bars.snapshot()
        except Exception:  # exposure is context, not a reason to fail the analysis
            log.exception("snapshot for signal exposure failed")
            return None

    def _frames(self, symbol: str) -> tuple[pl.DataFrame, pl.DataFrame, str]:
        """Daily and weekly indicator frames, and where the weekly bars came from."""
        daily = add_indicators(self._fetch(symbol, DAILY_BAR_SIZE, DAILY_DURATION))
        if daily.height == 0:
            raise InsufficientData("the gateway returned no daily bars")
        weekly_bars, weekly_source = None, "resampled from daily"
        if self.weekly_from_gateway:
            try:
                weekly_bars = self._fetch(symbol, WEEKLY_BAR_SIZE, WEEKLY_DURATION)
                weekly_source = "gateway"
                if weekly_bars.height < MIN_WEEKLY_BARS:
                    weekly_bars, weekly_source = None, "resampled from daily (gateway gave too few)"
            except Exception as exc:  # weekly is a confirmation: daily bars can stand in for it
                log.info("weekly bars for %s unavailable (%s); resampling daily", symbol, exc)
                weekly_bars, weekly_source = None, "resampled from daily (gateway weekly failed)"
        weekly = add_indicators(weekly_bars if weekly_bars is not None else resample_weekly(daily))
        return daily, weekly, weekly_source

    def _build_input(self, symbol: str) -> tuple[AnalystInput, pl.DataFrame, pl.DataFrame]:
        daily, weekly, weekly_source = self._frames(symbol)
        snapshot = self._snapshot()
        live = live_price(snapshot, symbol)
        if live is not None:
            price, price_source = live, "live quote"
        else:
            price, price_source = float(daily["close"][-1]), "last daily close"
        inp = AnalystInput(
            symbol=symbol, as_of=utc_now(), reference_price=round(price, 4), price_source=price_source,
            daily=summarize(daily), weekly=summarize(weekly), recent_bars=recent_bars(daily),
            exposure=exposure_in(snapshot, symbol), weekly_source=weekly_source,
        )
        return inp, daily, weekly

    def _analyse(self, symbol: str, run_id: str) -> list[SignalRecord]:
        try:
            inp, daily, weekly = self._build_input(symbol)
        except Exception as exc:
            reason = f"no analysis: {exc}" if isinstance(exc, InsufficientData) else \
                f"no analysis: could not get bars ({exc.__class__.__name__}: {exc})"
            return [SignalRecord.rejected(symbol=symbol, reason=reason, record_id=self._new_id(),
                                          run_id=run_id, analyst=self.analyst_name, prompt_hash="",
                                          created_at=utc_now())]
        messages = build_messages(inp)
        self._last[symbol] = LastAnalysis(inp, daily, weekly, tuple(messages), self.analyst_name)

        records: list[SignalRecord] = []
        fallback_flags: tuple[str, ...] = ()
        if self.llm is not None:
            outcome = self.llm.analyse(inp)
            record = self._llm_record(outcome, inp, run_id)
            records.append(record)
            if record.accepted:
                return records
            fallback_flags = (f"fallback: the LLM answer was rejected ({outcome.reason})",)
            if record.suspect:
                # The model stepped outside its contract in this run: the fallback is shown for
                # review but is not actionable either (rerun the analysis to get a clean one).
                fallback_flags += (f"{SUSPECT_RUN}: {record.suspect_flags[0]}",)
        records.append(self._rules_record(inp, run_id, fallback_flags,
                                          not_before=records[-1].created_at if records else None))
        return records

    def _llm_record(self, outcome: LLMOutcome, inp: AnalystInput, run_id: str) -> SignalRecord:
        common = dict(record_id=self._new_id(), run_id=run_id, analyst=outcome.analyst,
                      prompt_hash=outcome.prompt_hash, created_at=utc_now(),
                      reference_price=inp.reference_price, raw_answer=outcome.raw_text,
                      flags=outcome.flags, attempts=outcome.attempts)
        if outcome.answer is not None:
            return SignalRecord.from_answer(outcome.answer, **common)
        return SignalRecord.rejected(symbol=inp.symbol, reason=outcome.reason, final=False, **common)

    def _rules_record(self, inp: AnalystInput, run_id: str, flags: tuple[str, ...],
                      not_before: datetime | None) -> SignalRecord:
        created = utc_now()
        if not_before is not None and created <= not_before:
            created = not_before + timedelta(microseconds=1)
        digest = prompt_hash(input_payload(inp))
        try:
            answer = analyse_with_rules(inp)
        except ValueError as exc:  # InsufficientData, or rules producing an invalid plan
            return SignalRecord.rejected(symbol=inp.symbol, reason=f"rules: {exc}",
                                         record_id=self._new_id(), run_id=run_id,
                                         analyst=RULES_ANALYST, prompt_hash=digest,
                                         created_at=created, reference_price=inp.reference_price,
                                         flags=flags)
        return SignalRecord.from_answer(answer, record_id=self._new_id(), run_id=run_id,
                                        analyst=RULES_ANALYST, prompt_hash=digest,
                                        created_at=created, reference_price=inp.reference_price,
                                        flags=flags)


def live_price(snapshot: PortfolioSnapshot | None, symbol: str) -> float | None:
    """The underlying's live price from the snapshot, if it has one."""
    summary = None if snapshot is None else snapshot.underlying(symbol)
    if summary is None or summary.spot is None or summary.spot <= 0:
        return None
    return float(summary.spot)


def plan_rows(record: SignalRecord, live: float | None) -> list[dict[str, Any]]:
    """Entry / stop / target / support / resistance against the live price (for display)."""
    rows = []
    for label, level in (("Entry", record.entry), ("Stop", record.stop), ("Target", record.target),
                         ("Support", record.support), ("Resistance", record.resistance)):
        if level is None:
            continue
        rows.append({"Level": label, "Price": round(level, 4),
                     "vs live %": None if not live else round((level / live - 1) * 100, 2)})
    return rows
