"""Contract requests: contract details, option chain parameters, market rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.sim.chains import MARKET_RULES, SPEC_BY_SYMBOL
from v6core.sim.fields import BadRequest, Fields

if TYPE_CHECKING:
    from v6core.sim.session import Session


class ContractRequests:
    """Mixin of Session: what is listed and how it trades."""

    def req_contract_details(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        spec = f.contract()
        matches = self.server.resolve(spec, many=True)
        if not matches:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        for info in matches:
            self.send(self.server.contract_data(req_id, info, self.version))
        self.send([52, 1, req_id])

    def req_sec_def_opt_params(self, f: Fields) -> None:
        req_id = f.int()
        symbol = f.text().upper()
        universe = self.server.market.universe
        if symbol not in SPEC_BY_SYMBOL:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        expiries = [d.strftime("%Y%m%d") for d in universe.expiries[symbol]]
        strikes = universe.strikes[symbol]
        self.send([75, req_id, "SMART", SPEC_BY_SYMBOL[symbol].con_id, symbol, "100",
                   len(expiries), *expiries, len(strikes), *strikes])
        self.send([76, req_id])

    def req_market_rule(self, f: Fields) -> None:
        rule_id = f.int()
        increments = MARKET_RULES.get(rule_id)
        if increments is None:
            raise BadRequest(-1, 200, f"No market rule {rule_id}")
        fields: list = [93, rule_id, len(increments)]
        for low_edge, increment in increments:
            fields += [low_edge, increment]
        self.send(fields)



HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    9: ContractRequests.req_contract_details, 78: ContractRequests.req_sec_def_opt_params,
    91: ContractRequests.req_market_rule,
}
