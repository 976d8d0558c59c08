"""Account requests: positions, account updates (single and multi), account summary, P&L."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.sim import messages as msg
from v6core.sim.fields import Fields

if TYPE_CHECKING:
    from v6core.sim.session import Session

ACCOUNT_TEXT_VALUES = (("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD"))


def summary_tags(values: dict[str, float]) -> dict[str, tuple[str, str]]:
    """Every tag of the documented AllTags set -> (value text, currency), consistent with the
    account: no cash accrues, nothing changes ahead (look-ahead = now), no pending severity,
    unlimited day trades (-1, an account over $25k), leverage = gross position / net liquidation.
    Reg T figures follow the sim's risk-based margin (it has no separate Reg T engine)."""
    money = {tag: value for tag, value in values.items()
             if tag != "Cushion"}
    net_liq = values["NetLiquidation"]
    money.update({
        "AccruedCash": 0.0,
        "PreviousDayEquityWithLoanValue": values["EquityWithLoanValue"] - values["DailyPnL"],
        "RegTEquity": values["EquityWithLoanValue"],
        "RegTMargin": values["InitMarginReq"],
        "SMA": max(values["EquityWithLoanValue"] - values["InitMarginReq"], 0.0),
        "LookAheadInitMarginReq": values["InitMarginReq"],
        "LookAheadMaintMarginReq": values["MaintMarginReq"],
        "LookAheadAvailableFunds": values["AvailableFunds"],
        "LookAheadExcessLiquidity": values["ExcessLiquidity"],
    })
    money["ReqTEquity"], money["ReqTMargin"] = money["RegTEquity"], money["RegTMargin"]  # ibapi's spelling
    rows = {tag: (f"{value:.2f}", "USD") for tag, value in money.items()}
    rows.update({
        "AccountType": ("INDIVIDUAL", ""),
        "Cushion": (f"{values['Cushion']:.6f}", ""),
        "LookAheadNextChange": ("0", ""),
        "HighestSeverity": ("0", ""),
        "DayTradesRemaining": ("-1", ""),
        "Leverage": (f"{values['GrossPositionValue'] / net_liq if net_liq else 0.0:.2f}", ""),
    })
    return rows


class AccountRequests:
    """Mixin of Session: what the account holds and is worth."""

    def req_positions(self, f: Fields) -> None:
        self.positions_sub = True
        acct = self.server.account
        for h in acct.holdings.values():
            if h.quantity:
                self.send(msg.position(acct.account_id, h.contract, h.quantity, h.avg_cost))
        for row in self.server.faults.extra_positions():     # a broken gateway's positions
            self.send([61, 3, acct.account_id, *row])
        self.send([62, 1])

    def cancel_positions(self, f: Fields) -> None:
        self.positions_sub = False

    def req_account_updates(self, f: Fields) -> None:
        f.skip()
        subscribe = f.bool()
        self.account_updates = subscribe
        if subscribe:
            self.send_account_values(include_portfolio=True)
            self.send([54, 1, self.server.account.account_id])

    def send_account_values(self, include_portfolio: bool) -> None:
        acct = self.server.account
        values = self.server.account_summary()
        for key, value in values.items():
            text = self.server.faults.account_override(key, f"{value:.2f}")
            self.send(msg.account_value(key, text, "USD", acct.account_id))
        for key, value, currency in ACCOUNT_TEXT_VALUES:
            self.send(msg.account_value(key, value, currency, acct.account_id))
        self.send(msg.account_value("AccountCode", acct.account_id, "", acct.account_id))
        if include_portfolio:
            for h in acct.holdings.values():
                if h.quantity:
                    self.send_portfolio_row(h)
        self.send([8, 1, self.server.market.clock.now().strftime("%H:%M")])

    def send_portfolio_row(self, h) -> None:
        acct = self.server.account
        row = self.server.portfolio_row(h)
        self.send(msg.portfolio_value(acct.account_id, h.contract, h.quantity, row, h.avg_cost,
                                      h.realized))

    def req_account_updates_multi(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        acct = self.server.account
        for key, value in self.server.account_summary().items():
            text = self.server.faults.account_override(key, f"{value:.2f}")
            self.send([73, 1, req_id, acct.account_id, "", key, text, "USD"])
        self.send([74, 1, req_id])

    def cancel_account_updates_multi(self, f: Fields) -> None:
        return None

    def req_account_summary(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        f.text()
        tags = [t.strip() for t in f.text().split(",") if t.strip()]
        acct = self.server.account
        values = self.server.account_summary()
        rows = summary_tags(values)
        for tag in tags:
            if tag in rows:
                value, currency = rows[tag]
                value = self.server.faults.account_override(tag, value)
                self.send([63, 1, req_id, acct.account_id, tag, value, currency])
            elif tag.startswith("$LEDGER"):
                for key in ("CashBalance", "TotalCashBalance"):
                    self.send([63, 1, req_id, acct.account_id, key,
                               f"{values['TotalCashValue']:.2f}", "USD"])
                self.send([63, 1, req_id, acct.account_id, "NetLiquidationByCurrency",
                           f"{values['NetLiquidation']:.2f}", "USD"])
        self.send([64, 1, req_id])

    def req_pnl(self, f: Fields) -> None:
        req_id = f.int()
        self.pnl_reqs[req_id] = None
        self.server.send_pnl(self, req_id, None)

    def req_pnl_single(self, f: Fields) -> None:
        req_id = f.int()
        f.text()
        f.text()
        con_id = f.int()
        self.pnl_reqs[req_id] = con_id
        self.server.send_pnl(self, req_id, con_id)

    def cancel_pnl(self, f: Fields) -> None:
        self.pnl_reqs.pop(f.int(), None)

HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    61: AccountRequests.req_positions, 64: AccountRequests.cancel_positions,
    6: AccountRequests.req_account_updates, 76: AccountRequests.req_account_updates_multi,
    77: AccountRequests.cancel_account_updates_multi, 62: AccountRequests.req_account_summary,
    92: AccountRequests.req_pnl, 93: AccountRequests.cancel_pnl,
    94: AccountRequests.req_pnl_single, 95: AccountRequests.cancel_pnl,
}
