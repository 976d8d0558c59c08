"""Wires one process's services: runtime, Delta lake writer/reader, audit, order desk, signals.

`start_services` never blocks on the gateway: the runtime connects in its own thread and the
pages render "connecting" until data arrives. A start that fails halfway stops everything it had
started (runtime, embedded simulator, lake writer and its lock, order follower) before raising.

`process_services()` is THE process-wide instance: held here, under a lock, started once. It is
deliberately not in `st.cache_resource`: any browser client can empty that cache (the
`clear_cache` BackMsg of the menu's "Clear cache"), and services kept there would be started a
second time (a second runtime and simulator, a lake locked by its own pid, trading off). Pages
reach it through `pages.components.common.get_services()`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from v6core.config import Settings, load_settings
from v6core.models import Alert

if TYPE_CHECKING:  # the heavy parts are imported when services start, not when pages import this
    from v6core.lake import AuditLog, HealthMonitor, LakeReader, LakeWriter, TableHealth
    from v6core.orders import OrderDesk
    from v6core.runtime import Runtime
    from v6core.signals import SignalService

log = logging.getLogger(__name__)


class DeskAudit:
    """The audit log as the order desk uses it: a damaged audit table refuses the ticket action
    with TradingUnavailable naming the table and the repair, instead of a raw Delta error."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def __getattr__(self, name: str) -> Any:
        from v6core.lake import TableDamagedError
        from v6core.orders import TradingUnavailable

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
    took_over: str = ""                # when (and from whom) this process took the writer role over
    lost_role: str = ""                # when and how this process lost the writer role (S3 lease)
    standby: Any = None                # v6core.lake.standby.WriterStandby while read-only
    health: HealthMonitor | None = None
    chains: Any = None                 # v6core.chainfeed.ChainFeed: option chains on screen
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)
    _role: threading.RLock = field(default_factory=threading.RLock, repr=False)   # writer / standby swaps

    @property
    def read_only(self) -> bool:
        return self.writer is None

    @property
    def lake_status(self) -> str:
        """Who writes snapshots to this lake, for the sidebar (the root's str never holds credentials)."""
        return lake_status_line(self.lake.root, self.writer, self.lake_error, self.took_over)

    def take_over_writer(self, writer: LakeWriter) -> None:
        """This read-only process won the lake's writer role (its holder stopped): record
        snapshots and open the audit log, so the desk trades again; the sidebar says so."""
        from datetime import datetime, timezone

        from v6core.lake import AuditLog

        before = writer.took_over_from
        who = f" from {before.get('host', '?')} pid {before.get('pid', '?')}" if before else ""
        at = datetime.now(timezone.utc).strftime("%H:%M:%S")
        self.took_over = f"took the writer role over{who} at {at} UTC, when its lock was released or expired"
        with self._role:
            if self.audit is None:
                self.audit = AuditLog(self.lake.root)
            self.writer = writer
            writer.on_lost = self.writer_lost
            self.lake_error = self.lost_role = ""
            self.orders.attach_audit(DeskAudit(self.audit))
        if self.health is not None:
            self.health.invalidate()
        log.warning("lake %s: %s", self.lake.root, self.took_over)

    def writer_lost(self, lost: LakeWriter) -> None:
        """The writer lost its S3 lease (renewals failed for a whole lease, then another process
        took it, or the store refused a renewal): it has already stopped writing snapshots. Say
        so and stand by to take the role back. The desk keeps its audit log and trades on, as it
        did before: audit appends are safe from any number of processes (Delta's conditional
        commit, rows deduplicated by event id, each acknowledged row in this host's journal
        first) and a confirmation is decided by its claim in the store, never by the writer role."""
        from datetime import datetime, timezone

        from v6core.lake import LakeWriter
        from v6core.lake.standby import WriterStandby

        at = datetime.now(timezone.utc).strftime("%H:%M:%S")
        how = lost.lost_how or "was lost"
        with self._role:
            if self._stopped.is_set() or self.writer is not lost:
                return
            self.lost_role = f"this process's writer lease {how} at {at} UTC"
            self.writer, self.took_over = None, ""
            self.lake_error = _held_by(lost.lost_to, self.lost_role)
            fresh = LakeWriter(self.lake.root, lost.source, interval=lost.interval, poll=lost.poll)
            self.standby = WriterStandby(fresh, self.take_over_writer, on_waiting=self._holder_seen,
                                         delay=fresh.lease_seconds)
            self.standby.start()
        if self.health is not None:
            self.health.invalidate()
        log.warning("lake %s: read-only here: %s", self.lake.root, self.lake_error)

    def _holder_seen(self, refused: Exception) -> None:
        """The standby was refused the role: name the process that holds it now."""
        holder = getattr(refused, "holder", None)
        with self._role:
            if self.lost_role and self.writer is None and holder:
                self.lake_error = _held_by(holder, self.lost_role)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def lake_alerts(self) -> list[Alert]:
        """What is wrong with recording history and the audit trail, for the sidebar and Overview.

        Cheap (reads attributes the writer thread sets); empty when everything records normally.
        """
        from v6core.lake.health import repair_command

        alerts: list[Alert] = []
        root = self.lake.root
        if self.lost_role and self.writer is None:
            alerts.append(Alert("warning", f"History is read-only here: {self.lake_error}. This process "
                                           "takes the writer role back if that process stops."))
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
        with self._role:
            self._stopped.set()
        # The standby first: a takeover in progress finishes, and its writer is then stopped below.
        _stop_parts([("standby", self.standby)])
        _stop_parts([("orders", self.orders), ("writer", self.writer), ("runtime", self.runtime)])


def _stop_runtime(runtime: Runtime) -> None:
    runtime.stop()
    # A runtime whose start failed after its simulator began listening is not "started", so its
    # stop() does nothing: the simulator is stopped here.
    if runtime.sim is not None:
        runtime.sim.stop()


def _stop_parts(parts: list[tuple[str, object | None]]) -> None:
    """Stop each part in the order given; one failing stop never keeps the others running."""
    for name, part in parts:
        if part is None:
            continue
        try:
            if name == "runtime":
                _stop_runtime(part)  # type: ignore[arg-type]
            else:
                part.stop()  # type: ignore[attr-defined]
        except Exception:  # shutdown must go on for the other parts
            log.exception("stopping %s failed", name)


def _held_by(holder: dict | None, lost_role: str) -> str:
    """Who writes the lake now that this process lost the role, for the sidebar."""
    if holder:
        return f"another process (holder {holder.get('host', '?')} pid {holder.get('pid', '?')}) writes this lake; {lost_role}"
    return f"another process may write this lake now (none holds its lease yet); {lost_role}"


def lake_status_line(root: object, writer: LakeWriter | None, lake_error: str, took_over: str = "") -> str:
    if writer is None:
        return (f"Lake {root}: read-only here; {lake_error or 'no writer in this process'}"
                + ("; this process takes over if that writer stops" if lake_error else ""))
    if writer.holds_lake:
        return f"Lake {root}: this process writes snapshots" + (f" ({took_over})" if took_over else "")
    return f"Lake {root}: not writing snapshots ({writer.last_error or 'the writer lock was lost'})"


def start_services(settings: Settings | None = None) -> Services:
    from v6core.lake import AuditLog, HealthMonitor, LakeLockedError, LakeReader, LakeWriter
    from v6core.orders import OrderDesk
    from v6core.chainfeed import ChainFeed
    from v6core.runtime import Runtime
    from v6core.signals import SignalService

    settings = settings or load_settings()
    root = settings.lake_root()
    root.mkdir(parents=True, exist_ok=True)

    started: list[tuple[str, object | None]] = []    # newest first: stopped in that order
    try:
        runtime = Runtime(settings)
        started.insert(0, ("runtime", runtime))
        runtime.start()

        writer: LakeWriter | None = LakeWriter(root, runtime.snapshot,
                                               interval=settings.snapshot_interval)
        audit: AuditLog | None = None
        standby_writer: LakeWriter | None = None
        lake_error = ""
        try:
            started.insert(0, ("writer", writer))
            writer.start()   # only LakeLockedError: a damaged table is retried by the writer and shown
            audit = AuditLog(root)
        except LakeLockedError as exc:
            # Another v6 process owns the lake: history stays readable, trading needs the audit log.
            # This process stands by and takes the role over when that writer stops.
            started.pop(0)
            standby_writer, writer, lake_error = writer, None, str(exc)
            log.warning("%s", exc)

        orders = OrderDesk(settings, runtime, DeskAudit(audit) if audit is not None else None)
        started.insert(0, ("orders", orders))
        orders.start()
        services = Services(
            settings=settings, runtime=runtime, lake=LakeReader(root), audit=audit, writer=writer,
            orders=orders, signals=SignalService(settings, runtime, root), lake_error=lake_error,
            health=HealthMonitor(root),
            chains=ChainFeed(runtime, max_lines=settings.chain_max_lines),
        )
        if standby_writer is not None:
            from v6core.lake.standby import WriterStandby

            services.standby = WriterStandby(standby_writer, services.take_over_writer)
            started.insert(0, ("standby", services.standby))
            services.standby.start()
        if writer is not None:
            writer.on_lost = services.writer_lost     # a lost S3 lease: read-only, standing by
    except BaseException:
        log.error("starting services failed; stopping what had started")
        _stop_parts(started)
        raise
    atexit.register(services.stop)
    return services


# ------------------------------------------------------------------ the process-wide instance

_PROCESS_LOCK = threading.Lock()
_process_services: Services | None = None


def process_services(start: Callable[[], Services] | None = None) -> Services:
    """The one Services of this process, started on first use (by `start`, default
    `start_services(load_settings())`). Concurrent first callers wait for the one start; a start
    that raises leaves nothing behind and the next call tries again."""
    global _process_services
    with _PROCESS_LOCK:
        current = _process_services
        if current is None or getattr(current, "stopped", False):
            current = _process_services = (start or (lambda: start_services(load_settings())))()
        return current


def forget_process_services() -> Services | None:
    """Drop the reference without stopping anything (tests that build their own services use it
    between cases); returns what was held. No page or client action calls this."""
    global _process_services
    with _PROCESS_LOCK:
        held, _process_services = _process_services, None
        return held
