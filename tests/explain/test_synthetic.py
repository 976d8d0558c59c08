"""Attribution on synthetic Black-Scholes histories whose true answer is known in closed form.

Every history is written as real Delta tables (LakeWriter, AuditLog) in a tmp dir and explained
through the public reader, exactly as the History page does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from tests.explain.book import EXPIRY, RATE, Holding, Market, fill, price, write_history
from v6core.explain import COMPONENTS, Mode, explain
from v6core.explain.read import frames_in_order
from v6core.lake import LakeReader

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)          # 10:00 New York, 28 days to expiry
SECOND = timedelta(seconds=1)
OPTIONS = [
    Holding(1, "SPY", 2, 600.0, "C", strategy_id="calls"),
    Holding(2, "SPY", -3, 580.0, "P", strategy_id="puts"),
    Holding(3, "SPY", 1, 620.0, "C", strategy_id="calls"),
]


def _explain(root: Path, points, fills=(), **kwargs):
    write_history(root, points, fills)
    return explain(LakeReader(root), 0, len(points) - 1, rate=RATE, **kwargs)


def _value(holdings, market: Market) -> float:
    return sum(h.quantity * h.multiplier * price(h, market)["price"] for h in holdings)


def _assert_adds_up(result) -> None:
    """actual = sum of components + residual at every level (the residual is never hidden)."""
    for frame in (result.legs, result.by_strategy, result.by_underlying, result.book):
        explained = sum(frame[c] for c in COMPONENTS)
        assert (explained - frame["actual"]).abs().max() < 1e-6


def test_pure_spot_move_is_delta_plus_gamma_with_a_third_order_residual(tmp_path):
    residuals = []
    for k, move in enumerate((0.01, 0.02)):
        start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
        end = Market(T0 + SECOND, {"SPY": 600.0 * (1 + move)}, {"SPY": 0.20})
        result = _explain(tmp_path / f"lake{k}", [(OPTIONS, start), (OPTIONS, end)])
        _assert_adds_up(result)
        actual = _value(OPTIONS, end) - _value(OPTIONS, start)
        assert result.actual == pytest.approx(actual, abs=1e-6)
        assert result.component("vega") == 0.0 and result.component("trades") == pytest.approx(0.0, abs=1e-9)
        assert abs(result.component("theta")) < 0.05                      # one second of decay
        assert result.component("gamma") > 0 and abs(result.residual) < 0.01 * abs(actual)
        residuals.append(result.residual)
    # Doubling the move multiplies a third-order residual by about 2**3 = 8.
    assert 6.0 < residuals[1] / residuals[0] < 10.0


def test_pure_time_decay_is_theta(tmp_path):
    start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
    end = Market(T0 + timedelta(days=1), {"SPY": 600.0}, {"SPY": 0.20})
    result = _explain(tmp_path / "lake", [(OPTIONS, start), (OPTIONS, end)])
    _assert_adds_up(result)
    actual = _value(OPTIONS, end) - _value(OPTIONS, start)
    assert actual < 0 and result.actual == pytest.approx(actual, abs=1e-6)
    # py_vollib's theta is the price change over one calendar day, so one day is all theta.
    assert result.component("theta") == pytest.approx(actual, rel=1e-6)
    assert result.component("delta") == result.component("gamma") == result.component("vega") == 0.0
    assert abs(result.residual) < 1e-4
    assert not result.large_residual and not result.warnings


def test_pure_iv_shock_is_vega_with_a_second_order_residual(tmp_path):
    residuals = []
    for k, points in enumerate((1.0, 2.0)):
        start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
        end = Market(T0 + SECOND, {"SPY": 600.0}, {"SPY": 0.20 + points / 100})
        result = _explain(tmp_path / f"lake{k}", [(OPTIONS, start), (OPTIONS, end)])
        _assert_adds_up(result)
        actual = _value(OPTIONS, end) - _value(OPTIONS, start)
        # vega is $ per share per vol point: points x per-contract vega x quantity x 100.
        expected = sum(h.quantity * 100 * price(h, start)["vega"] * points for h in OPTIONS)
        assert result.component("vega") == pytest.approx(expected, rel=1e-9)
        leg = result.legs.filter(pl.col("con_id") == 1).row(0, named=True)
        assert leg["vega"] == pytest.approx(2 * 100 * price(OPTIONS[0], start)["vega"] * points, rel=1e-9)
        assert result.component("delta") == result.component("gamma") == 0.0
        assert abs(result.residual) < 0.1 * abs(actual)
        residuals.append(result.residual)
    # What vega misses is volga, second order: twice the shock, about four times the residual.
    assert 3.0 < residuals[1] / residuals[0] < 5.0


def test_a_trade_in_the_middle_is_trades_with_commissions(tmp_path):
    start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
    end = Market(T0 + timedelta(minutes=10), {"SPY": 603.0}, {"SPY": 0.20})
    mid = T0 + timedelta(minutes=5)
    new_put = Holding(4, "SPY", 4, 590.0, "P", strategy_id="puts")
    after = [Holding(1, "SPY", 3, 600.0, "C", strategy_id="calls"),      # resized 2 -> 3
             OPTIONS[1], new_put]                                         # leg 3 closed, leg 4 opened
    fills = [
        fill(mid, OPTIONS[0], "BOT", 1, 11.0, commission=0.65),
        fill(mid, OPTIONS[2], "SLD", 1, 4.0, commission=0.65, realized=120.0),
        fill(mid, new_put, "BOT", 4, 7.5, commission=2.60),
    ]
    result = _explain(tmp_path / "lake", [(OPTIONS, start), (after, end)], fills)
    _assert_adds_up(result)
    legs = {r["con_id"]: r for r in result.legs.iter_rows(named=True)}
    assert {c: legs[c]["status"] for c in legs} == {1: "resized", 2: "held", 3: "closed", 4: "opened"}
    end_mark = {h.con_id: price(h, end)["price"] for h in after}
    start_mark = {h.con_id: price(h, start)["price"] for h in OPTIONS}
    # Bought one more call at 11.00: it is marked to the end price, less its commission.
    assert legs[1]["trades"] == pytest.approx(100 * (end_mark[1] - 11.0) - 0.65, abs=1e-6)
    # The closed call: exit at 4.00 against its start mark, all of it trades.
    assert legs[3]["trades"] == pytest.approx(100 * (4.0 - start_mark[3]) - 0.65, abs=1e-6)
    assert legs[3]["delta"] == legs[3]["theta"] == 0.0 and legs[3]["realized_pnl"] == 120.0
    assert legs[4]["trades"] == pytest.approx(4 * 100 * (end_mark[4] - 7.5) - 2.60, abs=1e-6)
    assert legs[4]["actual"] == pytest.approx(legs[4]["trades"]) and legs[4]["delta"] == 0.0
    assert result.component("trades") == pytest.approx(legs[1]["trades"] + legs[3]["trades"] + legs[4]["trades"])
    assert result.book["commissions"][0] == pytest.approx(3.90)
    # The book's actual P&L: value change less the cash paid for the trades and the commissions.
    cash = 100 * (11.0 - 4.0 + 4 * 7.5) + 3.90
    assert result.actual == pytest.approx(_value(after, end) - _value(OPTIONS, start) - cash, abs=1e-6)
    # The held start position (2 calls + 3 puts) is what the Greeks explain: small residual.
    held = result.legs.filter(pl.col("con_id").is_in([1, 2]))
    assert abs(held["residual"].sum()) < 0.01 * abs(held["held"].sum())
    puts = result.by_strategy.filter(pl.col("strategy_id") == "puts").row(0, named=True)
    assert puts["legs"] == 2 and puts["trades"] == pytest.approx(legs[4]["trades"])
    assert not any("Missing leg" in w for w in result.warnings)


def test_a_leg_expiring_in_between_ends_at_its_intrinsic_value(tmp_path):
    # Expiry day: 15:00 New York (20:00 UTC in December), the close at 16:00, next morning after.
    expiry = EXPIRY
    t0 = datetime(2026, 12, 18, 20, 0, tzinfo=UTC)
    expiring = Holding(7, "SPY", -2, 600.0, "P", expiry=expiry, strategy_id="short put")
    later = Holding(8, "SPY", 1, 600.0, "C", expiry=datetime(2027, 1, 15).date(), strategy_id="long call")
    before_close = Market(datetime(2026, 12, 18, 20, 59, tzinfo=UTC), {"SPY": 597.0}, {"SPY": 0.18})
    points = [
        ([expiring, later], Market(t0, {"SPY": 601.0}, {"SPY": 0.18})),
        ([expiring, later], before_close),                                    # last record before the close
        ([later], Market(datetime(2026, 12, 19, 15, 0, tzinfo=UTC), {"SPY": 590.0}, {"SPY": 0.18})),
    ]
    write_history(tmp_path / "lake", points)
    reader = LakeReader(tmp_path / "lake")
    start_mark = price(expiring, points[0][1])["price"]
    for mode in (Mode.GREEKS, Mode.REVALUATION):
        result = explain(reader, 0, 2, mode=mode, rate=RATE)
        _assert_adds_up(result)
        leg = result.legs.filter(pl.col("con_id") == 7).row(0, named=True)
        assert leg["status"] == "expired"
        assert leg["spot_end"] == 597.0 and leg["mark_end"] == pytest.approx(3.0)   # 600 put at 597
        assert leg["actual"] == pytest.approx(-2 * 100 * (3.0 - start_mark), abs=1e-6)
        assert leg["days"] == pytest.approx(1 / 24)                              # up to the close
        assert "expired at 597.00" in leg["notes"]
        if mode is Mode.REVALUATION:
            # Repricing to the close (T = 0) accounts for the whole time value the put lost.
            assert leg["residual"] == pytest.approx(0.0, abs=1e-6)
            assert leg["approx_time"] != 0.0


def test_full_revaluation_separates_what_the_greeks_missed(tmp_path):
    start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
    end = Market(T0 + timedelta(days=2), {"SPY": 570.0}, {"SPY": 0.26})   # a big move: -5 %, +6 vol points
    write_history(tmp_path / "lake", [(OPTIONS, start), (OPTIONS, end)])
    reader = LakeReader(tmp_path / "lake")
    greeks = explain(reader, 0, 1, rate=RATE)
    full = explain(reader, 0, 1, rate=RATE, mode="revaluation")
    _assert_adds_up(greeks)
    _assert_adds_up(full)
    assert greeks.large_residual
    assert any(w.startswith("Big move: SPY") for w in greeks.warnings)
    assert any(w.startswith("Big IV change") for w in greeks.warnings)
    assert any(w.startswith("Residual") for w in greeks.warnings)
    # Marks are Black-Scholes prices at the same rate: repricing leaves (almost) nothing unexplained,
    # and what it moved out of the residual is exactly the approximation component.
    assert abs(full.residual) < 1e-6
    assert full.component("approximation") == pytest.approx(greeks.residual, abs=1e-6)
    for name in ("delta", "gamma", "theta", "vega", "trades"):
        assert full.component(name) == pytest.approx(greeks.component(name))
    steps = dict(full.waterfall())
    assert steps["End P&L"] == pytest.approx(steps["Start P&L"] + full.actual)
    assert "Greeks approximation" in steps and "Greeks approximation" not in dict(greeks.waterfall())


def test_explaining_again_gives_the_identical_answer_and_the_path_sums_steps(tmp_path):
    markets = [Market(T0 + i * timedelta(minutes=1), {"SPY": 600.0 + 2 * i * (-1) ** i}, {"SPY": 0.20 + 0.002 * i})
               for i in range(6)]
    write_history(tmp_path / "lake", [(OPTIONS, m) for m in markets])
    reader = LakeReader(tmp_path / "lake")
    first = explain(reader, 0, 5)
    again = explain(LakeReader(tmp_path / "lake"), markets[0].when, markets[-1].when + SECOND)
    assert first.legs.equals(again.legs) and first.book.equals(again.book)
    # The step-by-step reader (one table handle moving forward) reads what LakeReader reads.
    for version, frame in frames_in_order(reader, [1, 2, 4, 5]):
        assert frame.equals(LakeReader(tmp_path / "lake").portfolio(version))
    path = explain(reader, 0, 5, path=True)
    assert path.steps == 5 and path.actual == pytest.approx(first.actual, abs=1e-6)
    steps = [explain(reader, i, i + 1) for i in range(5)]
    for name in COMPONENTS:
        assert path.component(name) == pytest.approx(sum(s.component(name) for s in steps), abs=1e-9)
    # Fresh Greeks at every step explain a zig-zag better than the start Greeks held for the span.
    assert abs(path.residual) < abs(first.residual)
    with pytest.raises(ValueError, match="before the start"):
        explain(reader, 3, 1)


def test_a_fill_recorded_later_changes_the_cached_answer(tmp_path):
    from v6core.explain import ExplainCache
    from v6core.lake import AuditLog

    start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
    end = Market(T0 + timedelta(minutes=2), {"SPY": 601.0}, {"SPY": 0.20})
    bigger = [Holding(1, "SPY", 3, 600.0, "C", strategy_id="calls"), *OPTIONS[1:]]
    write_history(tmp_path / "lake", [(OPTIONS, start), (bigger, end)])
    reader, cache = LakeReader(tmp_path / "lake"), ExplainCache()
    before = cache.get(reader, 0, 1)
    assert cache.get(reader, 0, 1) is before                                 # same question: no work
    assert any(w.startswith("Missing leg") for w in before.warnings)
    assert "fills say +0" in before.legs.filter(pl.col("con_id") == 1)["notes"][0]
    AuditLog(tmp_path / "lake").append_fills([fill(T0 + timedelta(minutes=1), OPTIONS[0], "BOT", 1, 10.0, 0.65)])
    after = cache.get(reader, 0, 1)
    leg = after.legs.filter(pl.col("con_id") == 1).row(0, named=True)
    assert leg["trades"] == pytest.approx(100 * (price(bigger[0], end)["price"] - 10.0) - 0.65)
    assert leg["notes"] == "" and not any(w.startswith("Missing leg") for w in after.warnings)


def test_a_vacuumed_version_is_refused_by_name(tmp_path):
    from v6core.lake import LakeMaintenance, VersionUnavailableError

    start = Market(T0, {"SPY": 600.0}, {"SPY": 0.20})
    write_history(tmp_path / "lake", [(OPTIONS, start), (OPTIONS, Market(T0 + SECOND, {"SPY": 601.0}, {"SPY": 0.2}))])
    LakeMaintenance(tmp_path / "lake").vacuum(0, dry_run=False)
    with pytest.raises(VersionUnavailableError, match="removed by vacuum"):
        explain(LakeReader(tmp_path / "lake"), 0, 1)
    with pytest.raises(VersionUnavailableError, match="removed by vacuum"):
        explain(LakeReader(tmp_path / "lake"), 0, 1, path=True)
