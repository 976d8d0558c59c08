"""A request's fields as the session reads them, and the error a handler raises to answer with IB's error."""

from __future__ import annotations

from v6core.sim.codec import parse_bool, parse_float, parse_int


class BadRequest(Exception):
    """A request that parsed but cannot be served; answered with an IB error."""

    def __init__(self, req_id: int, code: int, message: str) -> None:
        super().__init__(message)
        self.req_id, self.code, self.message = req_id, code, message


class Fields:
    """Cursor over a request's fields (index 0 is the message id)."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.pos = 1

    def text(self) -> str:
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        return parse_int(self.text(), default)

    def float(self, default: float | None = None) -> float | None:
        return parse_float(self.text(), default)

    def bool(self) -> bool:
        return parse_bool(self.text())

    def skip(self, n: int = 1) -> None:
        self.pos += n
        if self.pos > len(self.fields):
            raise IndexError("message too short")

    def contract(self) -> dict:
        keys = ("con_id", "symbol", "sec_type", "expiry", "strike", "right", "multiplier",
                "exchange", "primary_exchange", "currency", "local_symbol", "trading_class")
        values = [self.text() for _ in keys]
        spec = dict(zip(keys, values))
        spec["con_id"] = parse_int(spec["con_id"])
        spec["strike"] = parse_float(spec["strike"], 0.0) or 0.0
        return spec


