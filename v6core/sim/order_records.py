"""The simulator's order records: the wire request, the working order, its fills, and the public view.

Plain data kept by the order engine (`v6core.sim.orders`) and persisted by `v6core.sim.persistence`;
`OrderSink` is what the engine reports to (the server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from v6core.models import ContractInfo

BAG_CON_ID = 28812380
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass(frozen=True, slots=True)
class SimComboLeg:
    con_id: int
    ratio: int
    action: str


@dataclass(frozen=True, slots=True)
class SimOrder:
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str
    con_id: int                     # BAG_CON_ID for combos
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    status: str
    filled: float
    avg_fill_price: float | None
    combo_legs: tuple[SimComboLeg, ...] = ()
    symbol: str = ""
    last_message: str = ""
    aux_price: float | None = None
    parent_id: int = 0
    oca_group: str = ""


@dataclass(slots=True)
class OrderRequest:
    """placeOrder as parsed from the wire."""

    order_id: int
    contract: ContractInfo | None          # None: unknown contract (or a BAG, see legs)
    sec_type: str
    symbol: str
    action: str
    quantity: float | None
    order_type: str
    limit_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    what_if: bool
    legs: list[tuple[ContractInfo | None, int, str]] = field(default_factory=list)
    parent_id: int = 0
    oca_group: str = ""


@dataclass(slots=True)
class Fill:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    contract: ContractInfo
    side: str                        # BOT / SLD
    quantity: float
    price: float
    time: datetime
    commission: float
    realized: float
    order_ref: str
    cum_qty: float
    avg_price: float
    account: str


@dataclass(slots=True)
class LiveOrder:
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str
    contract: ContractInfo            # the leg contract, or a synthetic BAG contract
    legs: list[tuple[ContractInfo, int, str]]
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    tif: str
    account: str
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    last_message: str = ""
    completed_time: str = ""
    aux_price: float | None = None    # a STP order's stop price
    parent_id: int = 0                # a bracket child's parent (same client)
    oca_group: str = ""
    transmitted: bool = True          # False: held at the "gateway" until its group is transmitted

    @property
    def is_combo(self) -> bool:
        return bool(self.legs)

    def public(self) -> SimOrder:
        return SimOrder(
            order_id=self.order_id, client_id=self.client_id, perm_id=self.perm_id,
            order_ref=self.order_ref, con_id=self.contract.con_id, action=self.action,
            quantity=self.quantity, order_type=self.order_type, limit_price=self.limit_price,
            tif=self.tif, status=self.status, filled=self.filled,
            avg_fill_price=self.avg_fill_price if self.filled else None,
            combo_legs=tuple(SimComboLeg(i.con_id, r, a) for i, r, a in self.legs),
            symbol=self.contract.symbol, last_message=self.last_message,
            aux_price=self.aux_price, parent_id=self.parent_id, oca_group=self.oca_group,
        )


class OrderSink(Protocol):
    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None: ...
    def order_open(self, order: LiveOrder, what_if: dict | None = None) -> None: ...
    def order_status(self, order: LiveOrder) -> None: ...
    def order_fill(self, order: LiveOrder, fill: Fill) -> None: ...
    def positions_changed(self, con_ids: list[int]) -> None: ...
