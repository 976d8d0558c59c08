"""Wires one process's services: runtime, Delta lake writer/reader, audit, order desk, signals.

`start_services` never blocks on the gateway: the runtime connects in its own thread and the
pages render "connecting" until data arrives. Pages get the one instance through
`pages.components.common.get_services()` (a `st.cache_resource` factory).
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field

from v6core.config import Settings, load_settings
from v6core.lake import AuditLog, LakeLockedError, LakeReader, LakeWriter
from v6core.orders import OrderDesk
from v6core.runtime import Runtime
from v6core.signals import SignalService

log = logging.getLogger(__name__)


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
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def read_only(self) -> bool:
        return self.writer is None

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
        writer.start()
        audit = AuditLog(root)
    except LakeLockedError as exc:
        # Another v6 process owns the lake: history stays readable, trading needs the audit log.
        writer, lake_error = None, str(exc)
        log.warning("%s", exc)

    orders = OrderDesk(settings, runtime, audit)
    orders.start()
    services = Services(
        settings=settings, runtime=runtime, lake=LakeReader(root), audit=audit, writer=writer,
        orders=orders, signals=SignalService(settings, runtime, root), lake_error=lake_error,
    )
    atexit.register(services.stop)
    return services
