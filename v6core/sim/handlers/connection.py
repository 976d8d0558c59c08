"""Connection requests: startApi, reqIds, managed accounts, current time, and the ignored ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from v6core.sim import messages as msg
from v6core.sim.fields import Fields

if TYPE_CHECKING:
    from v6core.sim.session import Session

FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class ConnectionRequests:
    """Mixin of Session: the handshake's second half and the small connection requests."""

    def ignore(self, f: Fields) -> None:
        return None

    def start_api(self, f: Fields) -> None:
        f.skip()
        client_id = f.int()
        if self.client_id is not None:
            return
        if not self.server.claim_client_id(self, client_id):
            self.error(-1, 326, "Unable to connect as the client id is already in use. "
                                "Retry with a unique client id.")
            self._flush()
            self.close()
            return
        self.client_id = client_id
        self.next_id = self.server.next_order_id(client_id)
        self.send(msg.managed_accounts(self.server.account.account_id))
        self.send(msg.next_valid_id(self.next_id))
        for code, text in FARM_NOTICES:
            self.error(-1, code, text)

    def req_ids(self, f: Fields) -> None:
        self.send(msg.next_valid_id(self.server.next_order_id(self.client_id)))

    def req_managed_accounts(self, f: Fields) -> None:
        self.send(msg.managed_accounts(self.server.account.account_id))

    def req_current_time(self, f: Fields) -> None:
        self.send([49, 1, int(self.server.market.clock.now().timestamp())])


HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    71: ConnectionRequests.start_api, 8: ConnectionRequests.req_ids,
    17: ConnectionRequests.req_managed_accounts, 49: ConnectionRequests.req_current_time,
    15: ConnectionRequests.ignore, 25: ConnectionRequests.ignore, 63: ConnectionRequests.ignore,
    57: ConnectionRequests.ignore, 56: ConnectionRequests.ignore,
}
