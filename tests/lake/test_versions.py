"""Time travel: version v is snapshot v, date-times map through recorded snapshot times, exact diffs."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from tests.lake.factory import STEP, T0, snapshot_at
from v6core import __version__
from v6core.lake import PORTFOLIO_SCHEMA, LakeReader, LakeWriter, VersionUnavailableError, legs_table


def test_version_v_is_snapshot_v(small_lake):
    root, snapshots = small_lake
    reader = LakeReader(root)
    versions = reader.versions()
    assert versions["version"].to_list() == list(range(len(snapshots)))
    assert versions["seq"].to_list() == [s.seq for s in snapshots]
    assert versions["snapshot_time"].to_list() == [s.built_at for s in snapshots]
    assert set(versions["app_version"]) == {__version__}
    for v, snap in enumerate(snapshots):
        frame = reader.portfolio(v)
        assert frame.equals(pl.from_arrow(legs_table(snap)))
        # Independently of the row builder: the legs, their sizes and position Greeks as held.
        assert frame["con_id"].to_list() == [leg.contract.con_id for leg in snap.legs]
        assert frame["quantity"].to_list() == [leg.quantity for leg in snap.legs]
        assert frame["delta"].to_list() == [leg.position_greeks.delta for leg in snap.legs]
        assert frame["contract_theta"].to_list() == [leg.greeks.theta for leg in snap.legs]
        assert frame["quote_time"].to_list() == [leg.quote_time for leg in snap.legs]
        assert frame["flags"].to_list() == [list(leg.flags) for leg in snap.legs]
        assert set(frame["snapshot_seq"]) == {snap.seq}
    assert reader.portfolio().equals(reader.portfolio(len(snapshots) - 1))
    info = reader.snapshot_info(3)
    assert info["account"]["net_liquidation"] == snapshots[3].account.net_liquidation


def test_empty_portfolio_is_still_a_version(lake_root):
    writer = LakeWriter(lake_root)
    writer.write_snapshot(snapshot_at(0))
    empty = writer.write_snapshot(snapshot_at(1, legs=()))
    writer.write_snapshot(snapshot_at(2))
    writer.stop()
    reader = LakeReader(lake_root)
    assert empty == 1
    frame = reader.portfolio(1)
    assert frame.height == 0
    assert frame.columns == PORTFOLIO_SCHEMA.names
    assert reader.versions()["legs"].to_list() == [7, 0, 8]
    assert reader.diff(0, 1).legs_with("closed").height == 7


def test_unknown_version_is_refused(small_lake):
    root, snapshots = small_lake
    with pytest.raises(VersionUnavailableError):
        LakeReader(root).portfolio(len(snapshots) + 5)


def test_datetime_maps_to_the_version_current_then(small_lake):
    root, snapshots = small_lake
    reader = LakeReader(root)
    # The snapshots were built "yesterday" and committed now: file times would map everything
    # to the last version, recorded snapshot times map each moment to its own version.
    assert reader.version_at(T0 - timedelta(microseconds=1)) is None
    assert reader.version_at(T0) == 0
    assert reader.version_at(T0 + 2 * STEP) == 2
    assert reader.version_at(T0 + 2 * STEP + STEP / 2) == 2
    assert reader.version_at(T0 + 3 * STEP - timedelta(microseconds=1)) == 2
    assert reader.version_at(T0 + 3 * STEP) == 3
    assert reader.version_at(T0 + 1000 * STEP) == len(snapshots) - 1
    with pytest.raises(ValueError, match="timezone-aware"):
        reader.version_at(datetime(2026, 11, 20, 14, 33))


def test_reader_sees_new_versions_incrementally(lake_root):
    writer = LakeWriter(lake_root)
    writer.write_snapshot(snapshot_at(0))
    reader = LakeReader(lake_root)
    assert reader.versions().height == 1
    for i in range(1, 4):
        writer.write_snapshot(snapshot_at(i))
    writer.stop()
    assert reader.versions()["seq"].to_list() == [0, 1, 2, 3]
    assert reader.version_at(T0 + 10 * STEP) == 3


def _sums(snapshot, key):
    out: dict[str, dict[str, float]] = {}
    for leg in snapshot.legs:
        k = key(leg)
        row = out.setdefault(k, {"delta": 0.0, "theta": 0.0, "vega": 0.0, "unrealized_pnl": 0.0})
        row["delta"] += leg.position_greeks.delta
        row["theta"] += leg.position_greeks.theta
        row["vega"] += leg.position_greeks.vega
        row["unrealized_pnl"] += leg.unrealized_pnl
    return out


@pytest.mark.parametrize(("v1", "v2"), [(2, 3), (3, 4), (1, 2), (0, 7)])
def test_diff_of_two_known_snapshots_is_exact(small_lake, v1, v2):
    root, snapshots = small_lake
    before, after = snapshots[v1], snapshots[v2]
    diff = LakeReader(root).diff(v1, v2)
    assert (diff.v1, diff.v2, diff.time1, diff.time2) == (v1, v2, before.built_at, after.built_at)

    qty_b = {leg.contract.con_id: leg.quantity for leg in before.legs}
    qty_a = {leg.contract.con_id: leg.quantity for leg in after.legs}
    expected = {}
    for con_id in qty_b.keys() | qty_a.keys():
        b, a = qty_b.get(con_id, 0.0), qty_a.get(con_id, 0.0)
        if a != b:
            expected[con_id] = ("opened" if con_id not in qty_b else "closed" if con_id not in qty_a
                                else "resized", b, a)
    got = {r["con_id"]: (r["change"], r["quantity_before"], r["quantity_after"])
           for r in diff.legs.iter_rows(named=True)}
    assert got == expected

    for frame, key, col in ((diff.by_strategy, lambda leg: leg.strategy_id, "strategy_id"),
                            (diff.by_underlying, lambda leg: leg.contract.symbol, "underlying")):
        sb, sa = _sums(before, key), _sums(after, key)
        assert set(frame[col]) == sb.keys() | sa.keys()
        for row in frame.iter_rows(named=True):
            for metric in ("delta", "theta", "vega", "unrealized_pnl"):
                b = sb.get(row[col], {}).get(metric, 0.0)
                a = sa.get(row[col], {}).get(metric, 0.0)
                assert row[f"{metric}_before"] == pytest.approx(b, abs=1e-9)
                assert row[f"{metric}_after"] == pytest.approx(a, abs=1e-9)
                assert row[f"{metric}_change"] == pytest.approx(a - b, abs=1e-9)
            assert row["status"] == ("new" if row[col] not in sb else "gone" if row[col] not in sa else "kept")

    totals = diff.totals.row(0, named=True)
    assert totals["delta_change"] == pytest.approx(after.totals.delta - before.totals.delta, abs=1e-9)
    assert totals["vega_change"] == pytest.approx(after.totals.vega - before.totals.vega, abs=1e-9)
    assert totals["unrealized_pnl_change"] == pytest.approx(after.unrealized_pnl - before.unrealized_pnl, abs=1e-9)


def test_known_diff_reads_as_expected(small_lake):
    """Snapshot 2 -> 3: SPY shares 100 -> 110 and the TSLA put spread closed (see factory)."""
    root, _ = small_lake
    diff = LakeReader(root).diff(2, 3)
    assert diff.legs_with("resized")["con_id"].to_list() == [756733]
    assert diff.legs_with("closed")["con_id"].to_list() == [2001, 2002]
    assert diff.legs_with("opened").height == 0
    gone = diff.by_strategy.filter(pl.col("status") == "gone")
    assert gone["strategy_id"].to_list() == ["credit vertical:TSLA"]
    # -2 x -0.20 x 100 + 2 x -0.15 x 100 = +10 share-equivalents went away with the spread
    assert gone["delta_change"].to_list() == [pytest.approx(-10.0)]
