"""Wires one process's services: runtime, Delta lake writer/reader, audit, order desk, signals.

`start_services` never blocks on the gateway: the runtime connects in its own thread and the
pages render "connecting" until data arrives. Pages get the one instance through
`pages.common.get_services()` (a `st.cache_resource` factory).
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from v6core.config import Settings, load_settings
from v6core.lake import (
    AuditLog, HealthMonitor, LakeLockedError, LakeReader, LakeWriter, TableDamagedError, TableHealth,
)
from v6core.lake.health import repair_command
from v6core.models import Alert
from v6core.orders import OrderDesk, TradingUnavailable
from v6core.runtime import Runtime
from v6core.signals import SignalService

log = logging.getLogger(__name__)


class DeskAudit:
    """The audit log as the order desk uses it: a damaged audit table refuses the ticket action
    with TradingUnavailable naming the table and the repair, instead of a raw Delta error."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._audit, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except TableDamagedError as exc:
                raise TradingUnavailable(str(exc)) from exc
        return guarded


@dataclass
class Services:
    settings: Settings
    runtime: Runtime
    lake: LakeReader
    audit: AuditLog | None
    writer: LakeWriter | None
    orders: OrderDesk
    signals: SignalService
    lake_error: str = ""               # why history is read-only (another process holds the lake)
    health: HealthMonitor | None = None
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def read_only(self) -> bool:
        return self.writer is None

    def lake_alerts(self) -> list[Alert]:
        """What is wrong with recording history and the audit trail, for the sidebar and Overview.

        Cheap (reads attributes the writer thread sets); empty when everything records normally.
        """
        alerts: list[Alert] = []
        root = self.settings.lake_path
        for table in self.table_health():
            if not table.ok:
                alerts.append(Alert("error", f"Lake table {table.table} is damaged: {table.problem}. "
                                             f"{table.meaning} Repair: stop v6, run "
                                             f"`{repair_command(root, table.table)}`, start v6."))
        writer = self.writer
        if writer is not None:
            if writer.lock_lost:
                alerts.append(Alert("error", writer.lock_lost))
            elif writer.last_error:
                alerts.append(Alert("error", "Lake writer failing, history is not being recorded: "
                                             + writer.last_error))
        return alerts

    def table_health(self) -> list[TableHealth]:
        """Per lake table: readable or damaged, and what that means (checked at most every 15 s)."""
        return self.health.tables() if self.health is not None else []

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        for name, part in (("orders", self.orders), ("writer", self.writer), ("runtime", self.runtime)):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:  # shutdown must go on for the other parts
                log.exception("stopping %s failed", name)


def start_services(settings: Settings | None = None) -> Services:
    settings = settings or load_settings()
    root = settings.lake_path
    root.mkdir(parents=True, exist_ok=True)

    runtime = Runtime(settings)
    runtime.start()

    writer: LakeWriter | None = LakeWriter(root, runtime.snapshot, interval=settings.snapshot_interval)
    audit: AuditLog | None = None
    lake_error = ""
    try:
        writer.start()       # only LakeLockedError: a damaged table is retried by the writer and shown
        audit = AuditLog(root)
    except LakeLockedError as exc:
        # Another v6 process owns the lake: history stays readable, trading needs the audit log.
        writer, lake_error = None, str(exc)
        log.warning("%s", exc)

    orders = OrderDesk(settings, runtime, DeskAudit(audit) if audit is not None else None)
    orders.start()
    services = Services(
        settings=settings, runtime=runtime, lake=LakeReader(root), audit=audit, writer=writer,
        orders=orders, signals=SignalService(settings, runtime, root), lake_error=lake_error,
        health=HealthMonitor(root),
    )
    atexit.register(services.stop)
    return services
