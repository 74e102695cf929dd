"""The embedded store: one SQLite file in WAL mode.

One writer thread owns the only write connection. Operations from the event loop queue
up for it; it takes everything pending, runs each operation in its own savepoint inside
one transaction, commits once, and only then resolves the callers' futures (group
commit). So throughput does not depend on one fsync per job, and a caller's ``await``
returns only after its write is durable by the configured ``synchronous`` setting.
Reads run on a small pool of read connections, which WAL lets proceed beside the writer.

Several processes may share the file (a server and standalone workers): SQLite's lock
serialises their writers, busy waits are retried without surfacing "database is locked",
and wake-ups cross between processes through :mod:`jobwire.store.wakebus`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
import operator
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any, TypeVar

from jobwire import model
from jobwire.errors import (
    ConfigError,
    IdempotencyConflict,
    JobNotFound,
    JobwireError,
    StaleClaim,
    StoreUnavailable,
)
from jobwire.ids import new_token, new_tokens
from jobwire.model import Event, EventDraft, EventType, Job, Progress, State
from jobwire.store import queries
from jobwire.store import stats as job_stats
from jobwire.store.base import (
    Claim,
    Delivery,
    DeliveryStatus,
    Enqueued,
    FinishedQuery,
    HeartbeatReply,
    ListQuery,
    NewJob,
    Page,
    ScheduleState,
    Store,
    WorkerInfo,
    WorkflowRecord,
    WorkflowState,
    delivery_notices,
    notices_for,
    status_after_attempt,
    webhook_deliveries,
)
from jobwire.store.insight import Timing
from jobwire.store.wakebus import WakeBus, bus_directory
from jobwire.throttle import Limit, combined, refusal

log = logging.getLogger("jobwire.store.sqlite")

# 2: webhook_deliveries; 3: job_stats, workers; 4: job names; 5: jobs.crashes
SCHEMA_VERSION = "7"
SQL = queries.load("sqlite.sql")
T = TypeVar("T")

_MAX_BATCH = 512
_PREFETCH_CHUNK = 500  # ids per prefetch query, under SQLite's bound-parameter limit


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# The C encoder made once: ``JSONEncoder.encode`` builds a new one for every value, which
# costs more than encoding the small dicts of a job's events. It has no check for
# circular values: every value stored here was encoded once already where it was made
# (results by the worker, events by the reporter), and the fallback keeps the check.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
)


def _dumps(value: Any) -> str:
    if not value and isinstance(value, dict):
        return "{}"
    if _c_encode is None:
        return _encode(value)
    if isinstance(value, str):
        return json.encoder.encode_basestring(value)
    return "".join(_c_encode(value, 0))


def _loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# Column positions of ``SELECT * FROM jobs`` (the table's definition order). Rows are
# plain tuples: on the claim and finish paths, name lookups cost more than the SQL.
_JOB_COLUMNS = (
    "id",
    "job",
    "queue",
    "state",
    "owner",
    "priority",
    "args",
    "attempts",
    "max_attempts",
    "timeout",
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "progress",
    "result",
    "error",
    "lease_expires_at",
    "claim_token",
    "worker_id",
    "cancel_requested",
    "last_seq",
    "idempotency_key",
    "options",
    "crashes",
)
_STATES = {state.value: state for state in State}
_EVENT_TYPES = {kind.value: kind for kind in EventType}
_loads = json.JSONDecoder().decode


def _json_field(text: str | None) -> Any:
    if text is None:
        return None
    if text == "{}":
        return {}
    return _loads(text)


def row_to_job(row: tuple[Any, ...]) -> Job:
    (
        id_,
        job,
        queue,
        state,
        owner,
        priority,
        args,
        attempts,
        max_attempts,
        timeout,
        created_at,
        scheduled_at,
        started_at,
        finished_at,
        progress,
        result,
        error,
        lease_expires_at,
        claim_token,
        worker_id,
        cancel_requested,
        last_seq,
        idempotency_key,
        options,
        crashes,
    ) = row[:25]
    progress_value = _json_field(progress)
    return Job(
        id_,
        job,
        _json_field(args),
        queue,
        _STATES[state],
        owner,
        priority,
        attempts,
        max_attempts,
        timeout,
        created_at,
        scheduled_at,
        started_at,
        finished_at,
        Progress(**progress_value) if progress_value is not None else None,
        _json_field(result),
        _json_field(error),
        lease_expires_at,
        claim_token,
        worker_id,
        bool(cancel_requested),
        last_seq,
        idempotency_key,
        _json_field(options),
        crashes,
    )


def job_to_row(job: Job) -> dict[str, Any]:
    """Every column, for inserting a new job."""
    return {
        **state_row(job),
        "job": job.job,
        "queue": job.queue,
        "owner": job.owner,
        "priority": job.priority,
        "args": _dumps(job.args),
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "created_at": job.created_at,
        "idempotency_key": job.idempotency_key,
        "options": _dumps(job.options),
    }


def state_row(job: Job) -> dict[str, Any]:
    """The columns a transition may change (never args or options)."""
    return {"id": job.id, **{name: column(job) for name, column in _MUTABLE.items()}}


def _row_to_event(row: tuple[Any, ...]) -> Event:
    return Event(
        job_id=row[1],
        seq=row[2],
        type=_EVENT_TYPES[row[3]],
        data=_json_field(row[4]),
        at=row[5],
        cursor=row[0],
    )


def _row_to_delivery(row: tuple[Any, ...]) -> Delivery:
    """A ``webhook_deliveries`` row, its columns in the table's order."""
    (
        id_,
        job_id,
        seq,
        event,
        url,
        body,
        status,
        attempts,
        created_at,
        next_attempt_at,
        last_attempt_at,
        last_status_code,
        last_error,
        claim_token,
        lease_expires_at,
    ) = row[:15]
    return Delivery(
        id=id_,
        job_id=job_id,
        seq=seq,
        event=event,
        url=url,
        body=body,
        status=DeliveryStatus(status),
        attempts=attempts,
        created_at=created_at,
        next_attempt_at=next_attempt_at,
        last_attempt_at=last_attempt_at,
        last_status_code=last_status_code,
        last_error=last_error,
        claim_token=claim_token,
        lease_expires_at=lease_expires_at,
    )


_STATES = {state.value: state for state in State}


def _finished_params(query: FinishedQuery) -> dict[str, Any]:
    return {
        "states": _dumps(query.state_names),
        "owner": query.owner,
        "job": query.job,
        "queue": query.queue,
        "after": query.finished_after,
        "before": query.finished_before,
    }


# Columns added to a table after its first version: (table, column, definition).
_ADDED_COLUMNS = (("jobs", "crashes", "INTEGER NOT NULL DEFAULT 0"),)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older jobwire to the current columns (``CREATE TABLE IF
    NOT EXISTS`` leaves an existing table as it was)."""
    for table, column, definition in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@dataclass
class _Tx:
    """What one operation sees inside the writer's transaction.

    Transitions do not touch the database one statement at a time: their job updates
    and events wait here and go in as a few ``executemany`` calls, before anything reads
    through :attr:`conn` and before the commit, so every read still sees every write.
    Rows of the jobs a batch's operations will load are fetched with one query up front;
    such a row is dropped as soon as its job is written, so a load never sees it stale.
    A write to ``jobs`` that does not go through :meth:`apply` must call :meth:`forget`.

    The job an attempt's own operation loads (its outcome, its progress) may come from
    the writer's memory of the running jobs it last wrote, without a read: such a job's
    update is fenced on what was remembered (``last_seq``, the only column every other
    change moves with an event, and ``cancel_requested``, which a cancel request sets
    without one). An update the fence stops means another process changed the job
    meanwhile: :class:`_Outdated` is raised and the batch runs again from fresh rows.
    """

    raw_conn: sqlite3.Connection  # without the flush: for the writer's own bookkeeping
    now: float
    changed: list[Job] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)  # jobs given webhook deliveries
    tally: job_stats.Tally = field(default_factory=job_stats.Tally)

    before: dict[str, Job] = field(default_factory=dict)  # jobs as read in this tx
    rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # prefetched, unwritten
    # Deferred writes: runs of one UPDATE statement with their rows, in order; events.
    updates: list[tuple[str, list[Any]]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    flushes: int = 0
    # The writer's running jobs as last committed, and which job the operation now
    # running may take from there (its own); jobs so taken and not yet written.
    remembered: dict[str, Job] = field(default_factory=dict)
    own: str | None = None
    unverified: dict[str, tuple[int, int]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)  # written around apply()

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, with every deferred write applied first."""
        self.flush()
        return self.raw_conn

    def flush(self) -> None:
        self.flushes += 1
        if self.updates:
            for statement, rows in self.updates:
                written = self.raw_conn.executemany(statement, rows).rowcount
                if written != len(rows) and statement in _FENCED:
                    raise _Outdated
            self.updates = []
        if self.events:
            self.raw_conn.executemany(SQL["insert_event"], self.events)
            self.events = []

    def mark(self) -> tuple[int, int, int, int]:
        updates = self.updates
        last_rows = len(updates[-1][1]) if updates else 0
        return self.flushes, len(updates), last_rows, len(self.events)

    def undo_to(self, mark: tuple[int, int, int, int]) -> None:
        """Drop the deferred writes made since ``mark`` (an operation that was refused).

        What was flushed since is in the database already, as an operation's direct
        writes always were: only an atomic operation (in a savepoint) may write and
        then fail."""
        flushes, runs, last_rows, events = mark
        if flushes != self.flushes:
            self.updates.clear()
            self.events.clear()
            return
        del self.updates[runs:]
        if runs:
            del self.updates[runs - 1][1][last_rows:]
        del self.events[events:]

    def prefetch(self, job_ids: list[str]) -> None:
        statement = SQL["get_jobs"]
        for lo in range(0, len(job_ids), _PREFETCH_CHUNK):
            chunk = job_ids[lo : lo + _PREFETCH_CHUNK]
            query = statement.replace("?", ",".join("?" * len(chunk)), 1)
            for row in self.raw_conn.execute(query, chunk):
                self.rows[row[0]] = row

    def load(self, job_id: str) -> Job:
        row = self.rows.pop(job_id, None)
        if row is None and job_id == self.own:
            job = self.remembered.get(job_id)
            if job is not None and job_id not in self.before:
                self.unverified[job_id] = (job.last_seq, int(job.cancel_requested))
                return self.track(job)
        if row is None:
            row = self.conn.execute(SQL["get_job"], (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
        return self.track(row_to_job(row))

    def track(self, job: Job) -> Job:
        """Remember the job as read, so that applying a change writes only what changed."""
        self.before[job.id] = job
        self.rows.pop(job.id, None)
        return job

    def forget(self, job_id: str) -> None:
        self.before.pop(job_id, None)
        self.rows.pop(job_id, None)
        self.forgotten.append(job_id)

    def update(self, statement: str, row: Any) -> None:
        updates = self.updates
        if updates and updates[-1][0] is statement:
            updates[-1][1].append(row)
        else:
            updates.append((statement, [row]))

    def apply(self, change: model.Change, *, new: bool = False) -> Job:
        # Everything that can fail in Python (JSON encoding) happens before the first
        # write, so an operation that raises has written nothing.
        job = change.job
        insert: dict[str, Any] | None = None
        statement, row = "", ()
        before = None if new else self.before.get(job.id)
        if new:
            insert = job_to_row(job)
        else:
            if before is None:  # not read in this transaction: the counters need it
                before = self.load(job.id)
            statement, row = _update_for(before, job, change.fields)
            fence = self.unverified.pop(job.id, None)
            if fence is not None and statement:
                statement, row = _fenced(statement), (*row, *fence)
        self.tally.add(before, change)
        self.before[job.id] = job
        self.rows.pop(job.id, None)
        # str() of a StrEnum member is its plain text, without the enum's property.
        events = [(e.job_id, e.seq, str(e.type), _dumps(e.data), e.at) for e in change.events]
        deliveries = (
            [
                (d.id, d.job_id, d.seq, d.event, d.url, d.body, d.created_at, d.next_attempt_at)
                for d in webhook_deliveries(change, self.now, self._disabled)
            ]
            if job.options
            else None  # no webhook without options: the common case, decided here
        )
        if insert is not None:
            # Written at once: a duplicate id must fail this operation, not the batch.
            self.raw_conn.execute(SQL["insert_job"], insert)
        elif statement:
            self.update(statement, row)
        self.events.extend(events)
        if deliveries:
            # The outbox row is written with the event that triggers it: both or neither.
            self.conn.executemany(SQL["insert_delivery"], deliveries)
            self.outbox.append(change.job.id)
        self.changed.append(change.job)
        return change.job

    def _disabled(self, job_id: str, url: str) -> bool:
        rows = self.conn.execute(SQL["disabled_delivery_urls"], (job_id,)).fetchall()
        return any(r[0] == url for r in rows)


# The columns a transition may change, and how each is stored.
_MUTABLE: dict[str, Callable[[Job], Any]] = {
    # Enums bind as their plain text: sqlite3 would first look for an adapter for the
    # subclass, failing two attribute lookups per value on the hot path.
    "state": lambda j: str(j.state),
    "attempts": lambda j: j.attempts,
    "scheduled_at": lambda j: j.scheduled_at,
    "started_at": lambda j: j.started_at,
    "finished_at": lambda j: j.finished_at,
    "progress": lambda j: _dumps(j.progress.as_dict()) if j.progress is not None else None,
    "result": lambda j: _dumps(j.result) if j.result is not None else None,
    "error": lambda j: _dumps(j.error) if j.error is not None else None,
    "lease_expires_at": lambda j: j.lease_expires_at,
    "claim_token": lambda j: j.claim_token,
    "worker_id": lambda j: j.worker_id,
    "cancel_requested": lambda j: int(j.cancel_requested),
    "last_seq": lambda j: j.last_seq,
    "crashes": lambda j: j.crashes,
}
_JSON_COLUMNS = {"progress", "result", "error"}  # stored as text, encoded when written


@dataclass(frozen=True, slots=True)
class _Compare:
    """How to find what a transition changed, for one set of fields it may set."""

    columns: tuple[str, ...]
    values: Callable[[Job], tuple[Any, ...]]  # those fields, then the id


@dataclass(frozen=True, slots=True)
class _Statement:
    """An UPDATE of some columns, and how to take its parameters from a job."""

    sql: str
    values: Callable[[Job], tuple[Any, ...]]  # the columns' raw values, then the id
    encode: tuple[tuple[int, Callable[[Job], Any]], ...]  # positions stored otherwise


_COMPARES: dict[tuple[str, ...], _Compare] = {}
_STATEMENTS: dict[tuple[str, ...], _Statement] = {}


def _compare_for(fields: tuple[str, ...]) -> _Compare:
    wanted = set(fields) if fields else set(_MUTABLE)
    columns = tuple(name for name in _MUTABLE if name in wanted)
    # attrgetter of one name returns a value, not a 1-tuple: always ask for two.
    return _Compare(columns, operator.attrgetter(*columns, "id"))


def _statement_for(columns: tuple[str, ...]) -> _Statement:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    plain = {"state", "cancel_requested"} | _JSON_COLUMNS  # not bound as the field is
    return _Statement(
        f"UPDATE jobs SET {assignments} WHERE id = ?",
        operator.attrgetter(*columns, "id"),
        tuple((i, _MUTABLE[name]) for i, name in enumerate(columns) if name in plain),
    )


def _update_for(before: Job | None, after: Job, fields: tuple[str, ...] = ()) -> tuple[str, Any]:
    """An UPDATE of only the columns that changed.

    SQLite maintains every index whose columns appear in SET, changed or not; naming
    only the changed columns makes a claim or a finish markedly cheaper. The statement
    text is built from the fixed column list above, so at most a handful exist. When the
    transition says which fields it set, only those are compared.
    """
    if before is None:
        return SQL["update_job"], state_row(after)
    compare = _COMPARES.get(fields)
    if compare is None:
        compare = _COMPARES[fields] = _compare_for(fields)
    columns = tuple(
        compress(compare.columns, map(operator.ne, compare.values(before), compare.values(after)))
    )
    if not columns:
        return "", ()
    statement = _STATEMENTS.get(columns)
    if statement is None:
        statement = _STATEMENTS[columns] = _statement_for(columns)
    if not statement.encode:
        return statement.sql, statement.values(after)
    row = list(statement.values(after))
    for i, encode in statement.encode:
        row[i] = encode(after)
    return statement.sql, row


class _Outdated(Exception):
    """A fenced update found its job changed by another process since it was remembered."""


_FENCED_OF: dict[str, str] = {}  # an UPDATE → the same, fenced
_FENCED: set[str] = set()  # the fenced statements, to know one at flush


def _fenced(statement: str) -> str:
    fenced = _FENCED_OF.get(statement)
    if fenced is None:
        fenced = _FENCED_OF[statement] = statement + " AND last_seq = ? AND cancel_requested = ?"
        _FENCED.add(fenced)
    return fenced


# The running jobs a writer remembers between transactions; past this many (jobs that
# others finished, so this writer never saw them end) it starts again from none.
_REMEMBER_AT_MOST = 20_000

Op = Callable[[_Tx], Any]


@dataclass(slots=True)
class _Pending:
    op: Op
    future: asyncio.Future[Any]
    # An operation that may raise after it has written (one that stores several jobs)
    # runs in a savepoint so that only it is undone; the others write nothing before
    # they can fail, and skip the savepoint's cost.
    atomic: bool = False
    job_id: str | None = None  # the one job the operation loads, fetched for the batch
    result: Any = None
    error: BaseException | None = None


class _Writer(threading.Thread):
    """The single writer: batches pending operations into one transaction each."""

    def __init__(
        self,
        path: Path,
        synchronous: str,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[list[Job], list[str]], None],
    ) -> None:
        super().__init__(name="jobwire-sqlite-writer", daemon=True)
        self._path = path
        self._synchronous = synchronous
        self._loop = loop
        self._on_commit = on_commit
        self.inbox: queue.SimpleQueue[list[_Pending] | None] = queue.SimpleQueue()
        self._remembered: dict[str, Job] = {}  # running jobs as this writer last wrote them
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = _connect(self._path, self._synchronous)
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self.inbox.get()
            if first is None:
                return
            batch = list(first)
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.extend(item)
            self._run_batch(conn, batch)
            if stop:
                return

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        delay = 0.005
        remembered = self._remembered
        while True:
            tx = _Tx(conn, time.time(), remembered=remembered)
            try:
                conn.execute("BEGIN IMMEDIATE")
                loads = [
                    p.job_id for p in batch if p.job_id is not None and p.job_id not in remembered
                ]
                if len(loads) > 1:
                    tx.prefetch(loads)
                for pending in batch:
                    self._run_one(tx, pending)
                tx.flush()
                _add_stats(conn, tx.tally)
                conn.execute("COMMIT")
                self._remember(tx)
                break
            except _Outdated:
                # Another process changed a job this writer remembered: forget them all
                # and run the batch again from what is stored.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                remembered.clear()
                continue
            except sqlite3.OperationalError as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if _is_busy(exc):
                    # Another process holds the write lock past busy_timeout: wait and
                    # retry the whole batch; callers never see "database is locked".
                    log.warning("sqlite write lock busy; retrying in %.3f s", delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                for pending in batch:
                    pending.error = StoreUnavailable(f"sqlite write failed: {exc}")
                tx.changed.clear()
                tx.outbox.clear()
                break
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                for pending in batch:
                    pending.error = StoreUnavailable(f"sqlite write failed: {exc!r}")
                tx.changed.clear()
                tx.outbox.clear()
                break
        changed = tx.changed
        self._loop.call_soon_threadsafe(self._settle, batch, changed, tx.outbox)

    def _remember(self, tx: _Tx) -> None:
        """Keep the running jobs as this transaction left them; forget the others."""
        remembered = self._remembered
        if len(remembered) > _REMEMBER_AT_MOST:
            remembered.clear()
        running = State.RUNNING
        for job_id, job in tx.before.items():
            if job.state is running:
                remembered[job_id] = job
            else:
                remembered.pop(job_id, None)
        for job_id in tx.forgotten:
            remembered.pop(job_id, None)

    @classmethod
    def _run_one(cls, tx: _Tx, pending: _Pending) -> None:
        tx.own = pending.job_id
        taken = len(tx.unverified)
        cls._run_op(tx, pending)
        tx.own = None
        if pending.error is not None and len(tx.unverified) != taken:
            # Refused on a remembered job: only a fresh read may refuse it.
            tx.unverified.pop(pending.job_id or "", None)
            tx.forget(pending.job_id or "")
            cls._run_op(tx, pending)

    @staticmethod
    def _run_op(tx: _Tx, pending: _Pending) -> None:
        pending.result = None
        pending.error = None
        mark = len(tx.changed)
        outbox_mark = len(tx.outbox)
        tally_mark = tx.tally.mark()
        if pending.atomic:
            tx.conn.execute("SAVEPOINT op")
        writes = tx.mark()
        try:
            pending.result = pending.op(tx)
            if pending.atomic:
                tx.flush()  # inside the savepoint, so a failing write undoes only this op
        except (sqlite3.OperationalError, _Outdated):
            raise  # busy, broken or outdated: the whole batch is retried or refused
        except Exception as exc:
            # The operation was refused (stale token, illegal transition…) or cannot be
            # stored (a result that is not JSON): undo only it, not its batch.
            tx.undo_to(writes)
            if pending.atomic:
                tx.raw_conn.execute("ROLLBACK TO op")
            del tx.changed[mark:]
            del tx.outbox[outbox_mark:]
            tx.tally.undo_to(tally_mark)
            if isinstance(exc, sqlite3.Error):
                exc = StoreUnavailable(f"sqlite write failed: {exc}")
            pending.error = exc
        if pending.atomic:
            tx.raw_conn.execute("RELEASE op")

    def _settle(self, batch: list[_Pending], changed: list[Job], outbox: list[str]) -> None:
        for pending in batch:
            if pending.future.done():
                continue
            if pending.error is not None:
                pending.future.set_exception(pending.error)
            else:
                pending.future.set_result(pending.result)
        if changed:
            self._on_commit(changed, outbox)


def _add_stats(conn: sqlite3.Connection, tally: job_stats.Tally) -> None:
    """The counters of a whole group commit: one upsert per counter that moved."""
    totals = tally.totals()
    if totals:
        conn.executemany(SQL["add_stat"], [(*key, value) for key, value in totals.items()])


def _migrate_4(conn: sqlite3.Connection) -> None:
    """The workers' job names: a column that a workers table made before 4 lacks ("schema"
    creates tables only where missing, with every column of the current version)."""
    if "names" not in {name for (name,) in conn.execute(SQL["worker_columns"])}:
        conn.execute(SQL["migrate_4"])


def _row_to_worker(row: tuple[Any, ...]) -> WorkerInfo:
    return WorkerInfo(
        id=row[0],
        host=row[1],
        pid=row[2],
        queues=tuple(json.loads(row[3])),
        concurrency=row[4],
        version=row[5],
        started_at=row[6],
        last_heartbeat=row[7],
        running=tuple(json.loads(row[8])),
        names=tuple(json.loads(row[9])),
    )


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _check_directory(path: Path) -> None:
    """Refuse a database whose directory SQLite cannot write in, naming the setting.

    The directory is not created: a path that does not exist is more often a typo or a
    volume that is not mounted than a wish for new directories. SQLite writes its
    ``-wal`` and ``-shm`` files beside the database, so the directory must be writable.
    """
    directory = path.parent
    problem = None
    if not directory.exists():
        problem = f"its directory {directory} does not exist"
    elif not directory.is_dir():
        problem = f"{directory} is not a directory"
    elif not os.access(directory, os.W_OK | os.X_OK):
        problem = (
            f"its directory {directory} is not writable (SQLite keeps its -wal and -shm "
            "files beside the database)"
        )
    if problem is not None:
        raise ConfigError(f"JOBWIRE_URL: cannot use the SQLite database {path}: {problem}")


def _unusable(path: Path, exc: sqlite3.Error) -> JobwireError:
    """A driver error met while opening the database, in jobwire's terms."""
    if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
        return StoreUnavailable(f"cannot open {path}: {exc}")
    return ConfigError(f"JOBWIRE_URL: cannot use the SQLite database {path}: {exc}")


class SQLiteStore(Store):
    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        super().__init__()
        if str(path) in ("", ":memory:"):
            raise ConfigError(
                "the SQLite store needs a file path (several connections share it); "
                "use jobwire.store.memory.MemoryStore for an in-memory store"
            )
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError(
                f"sqlite synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._writer: _Writer | None = None
        self._outgoing: builtins.list[_Pending] = []
        self._readers: ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._bus: WakeBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        _check_directory(self.path)
        try:
            await asyncio.to_thread(self._migrate)
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from exc
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jobwire-sqlite-read")
        self._bus = WakeBus(bus_directory(self.path), self._notify)
        self._bus.start(loop)
        writer = _Writer(self.path, self.synchronous, loop, self._committed)
        writer.start()
        await asyncio.to_thread(writer.ready.wait)
        if writer.startup_error is not None:
            raise StoreUnavailable(f"cannot open {self.path}: {writer.startup_error}")
        self._writer = writer

    def _migrate(self) -> None:
        conn = _connect(self.path, self.synchronous)
        try:
            conn.executescript(SQL["schema"])
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(SQL["get_meta"], ("schema_version",)).fetchone()
                if row is None or row[0] != SCHEMA_VERSION:
                    found = 0 if row is None else int(row[0])
                    if found < 3:
                        # Counters start from the jobs already stored (none in a new file).
                        conn.execute(SQL["clear_state_stats"])
                        conn.execute(SQL["count_state_stats"])
                    if found < 4:
                        _migrate_4(conn)
                    if found < 5:
                        _add_missing_columns(conn)
                    # 6: the schedules table; 7: the workflows table and the rate limits'
                    # rate_starts and permits, which "schema" creates where missing.
                    conn.execute(SQL["set_meta"], ("schema_version", SCHEMA_VERSION))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            if self._outgoing:
                self._hand_over(writer)
            writer.inbox.put(None)
            await asyncio.to_thread(writer.join)
        if self._bus is not None:
            self._bus.stop()
            self._bus = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._reader_local = threading.local()

    async def ping(self) -> None:
        def check(conn: sqlite3.Connection) -> None:
            row = conn.execute(SQL["get_meta"], ("schema_version",)).fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                found = None if row is None else row[0]
                raise StoreUnavailable(f"schema version is {found}, expected {SCHEMA_VERSION}")

        await self._read(check)

    def _committed(self, changed: list[Job], outbox: list[str]) -> None:
        notices = notices_for(changed) + delivery_notices(outbox)
        self._notify(notices)
        if self._bus is not None:
            self._bus.publish(notices)

    # -- plumbing ----------------------------------------------------------------------

    async def _write(
        self, op: Callable[[_Tx], T], *, atomic: bool = False, job_id: str | None = None
    ) -> T:
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # Writes issued in one turn of the event loop go to the writer together: one
        # hand-off and, usually, one transaction for all the jobs that finished at once.
        if not self._outgoing:
            loop.call_soon(self._hand_over, writer)
        self._outgoing.append(_Pending(op, future, atomic, job_id))
        # If the caller is cancelled the write still commits (or is refused) as queued;
        # the writer skips resolving a future nobody waits for.
        return await future

    def _hand_over(self, writer: _Writer) -> None:
        outgoing, self._outgoing = self._outgoing, []
        writer.inbox.put(outgoing)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self.synchronous)
            conn.execute("PRAGMA query_only=1")
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreUnavailable("the store is not open")
        loop = asyncio.get_running_loop()

        def run() -> T:
            return fn(self._reader())

        try:
            return await loop.run_in_executor(self._readers, run)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc

    # -- producing ---------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        def op(tx: _Tx) -> list[Enqueued]:
            return [self._enqueue_one(tx, new) for new in jobs]

        return await self._write(op, atomic=True)

    @staticmethod
    def _enqueue_one(tx: _Tx, new: NewJob) -> Enqueued:
        if new.idempotency_key is not None:
            row = tx.conn.execute(
                SQL["get_idempotency"], (new.owner, new.idempotency_key)
            ).fetchone()
            if row is not None:
                existing = tx.conn.execute(SQL["get_job"], (row[1],)).fetchone()
                if existing is not None:
                    if row[0] != new.fingerprint:
                        raise IdempotencyConflict(new.idempotency_key)
                    return Enqueued(row_to_job(existing), created=False)
        job = Job(
            id=new.id,
            job=new.job,
            args=new.args,
            queue=new.queue,
            owner=new.owner,
            priority=new.priority,
            max_attempts=new.max_attempts,
            timeout=new.timeout,
            created_at=tx.now,
            scheduled_at=tx.now if new.scheduled_at is None else new.scheduled_at,
            idempotency_key=new.idempotency_key,
            options=new.options,
        )
        stored = tx.apply(model.enqueue(job, tx.now), new=True)
        if new.idempotency_key is not None:
            tx.conn.execute(
                SQL["insert_idempotency"],
                (new.owner, new.idempotency_key, new.fingerprint, new.id, tx.now),
            )
        return Enqueued(stored, created=True)

    # -- working -----------------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        names: Sequence[str],
        limit: int,
        lease: float,
    ) -> list[Claim]:
        if limit <= 0 or not queues or not names:
            return []
        names_json = _dumps(list(names))

        def op(tx: _Tx) -> list[Claim]:
            rows: list[tuple[Any, ...]] = []
            for queue_name in dict.fromkeys(queues):
                params = {"queue": queue_name, "names": names_json, "now": tx.now, "limit": limit}
                rows.extend(tx.conn.execute(SQL["due_jobs"], params).fetchall())
            if len(queues) > 1:
                rows.sort(key=lambda r: (-r[5], r[11], r[0]))
                del rows[limit:]
            claims = []
            for row, token in zip(rows, new_tokens(len(rows)), strict=True):
                change = model.claim(tx.track(row_to_job(row)), worker_id, token, tx.now, lease)
                claims.append(Claim(tx.apply(change), token))
            return claims

        return await self._write(op)

    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        if not tokens:
            return HeartbeatReply(frozenset(), frozenset())

        def op(tx: _Tx) -> HeartbeatReply:
            lost, cancel = set(), set()
            for job_id, token in tokens.items():
                try:
                    job = tx.load(job_id)
                    change = model.heartbeat(job, token, tx.now, lease)
                except JobwireError:
                    lost.add(job_id)
                    continue
                statement, row = _update_for(job, change.job, change.fields)
                if statement:
                    tx.update(statement, row)
                tx.track(change.job)
                if job.cancel_requested:
                    cancel.add(job_id)
            return HeartbeatReply(frozenset(lost), frozenset(cancel))

        return await self._write(op)

    async def report(self, job_id: str, token: str, events: Sequence[EventDraft]) -> None:
        if not events:
            return
        drafts = list(events)

        def op(tx: _Tx) -> None:
            tx.apply(model.report(tx.load(job_id), token, drafts, tx.now))

        await self._write(op, job_id=job_id)

    async def finish(self, job_id: str, token: str, result: Any) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.succeed(tx.load(job_id), token, result, tx.now)),
            job_id=job_id,
        )

    async def fail(
        self,
        job_id: str,
        token: str,
        error: dict[str, Any],
        retry_at: float | None,
        *,
        charge: bool = True,
    ) -> Job:
        return await self._write(
            lambda tx: tx.apply(
                model.fail(tx.load(job_id), token, error, tx.now, retry_at, charge)
            ),
            job_id=job_id,
        )

    async def release(self, job_id: str, token: str, due_at: float | None = None) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.release(tx.load(job_id), token, tx.now, due_at)),
            job_id=job_id,
        )

    async def mark_cancelled(
        self, job_id: str, token: str, reason: str = model.CANCELLED_WHILE_RUNNING
    ) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.cancelled(tx.load(job_id), token, tx.now, reason)),
            job_id=job_id,
        )

    # -- controlling -------------------------------------------------------------------

    async def cancel_expired(self, job_id: str) -> Job:
        return await self._write(
            lambda tx: tx.apply(model.expire_unstarted(tx.load(job_id), tx.now)), job_id=job_id
        )

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        def op(tx: _Tx) -> Job:
            job = tx.load(job_id)
            if owner is not None and job.owner != owner:
                raise JobNotFound(job_id)
            return tx.apply(model.request_cancel(job, tx.now))

        return await self._write(op)

    # -- reading -----------------------------------------------------------------------

    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        def fetch(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(SQL["get_job"], (job_id,)).fetchone()
            return None if row is None else row_to_job(row)

        job = await self._read(fetch)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    async def list(self, query: ListQuery) -> Page:
        limit = max(1, query.limit)
        params = {
            "owner": query.owner,
            "job": query.job,
            "queue": query.queue,
            "states": _dumps([s.value for s in query.states]) if query.states else None,
            "before": query.before_id,
            "limit": limit + 1,
        }

        def fetch(conn: sqlite3.Connection) -> builtins.list[Job]:
            return [row_to_job(row) for row in conn.execute(SQL["list_jobs"], params)]

        jobs = await self._read(fetch)
        more = len(jobs) > limit
        items = jobs[:limit]
        return Page(items, items[-1].id if more and items else None)

    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Event]:
        def fetch(conn: sqlite3.Connection) -> builtins.list[Event]:
            rows = conn.execute(SQL["events_after"], (job_id, after, limit)).fetchall()
            return [_row_to_event(row) for row in rows]

        return await self._read(fetch)

    async def feed(
        self, after: int, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[Event]:
        params = {"after": after, "owner": owner, "limit": limit}

        def fetch(conn: sqlite3.Connection) -> builtins.list[Event]:
            return [_row_to_event(row) for row in conn.execute(SQL["feed"], params)]

        return await self._read(fetch)

    async def last_cursor(self) -> int:
        def fetch(conn: sqlite3.Connection) -> int:
            return int(conn.execute(SQL["last_cursor"]).fetchone()[0])

        return await self._read(fetch)

    async def next_due(self, queues: Sequence[str], names: Sequence[str]) -> float | None:
        params = {"queues": _dumps(list(queues)), "names": _dumps(list(names))}

        def fetch(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(SQL["next_due"], params).fetchone()
            return None if row is None else row[0]

        return await self._read(fetch)

    # -- maintenance -------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> builtins.list[Job]:
        def op(tx: _Tx) -> builtins.list[Job]:
            at = tx.now if now is None else now
            rows = tx.conn.execute(SQL["expired_leases"], (at,)).fetchall()
            return [tx.apply(model.expire(tx.track(row_to_job(row)), at)) for row in rows]

        return await self._write(op, atomic=True)

    async def prune(self, finished_before: float) -> int:
        return await self.purge(FinishedQuery(finished_before=finished_before))

    async def purge(self, query: FinishedQuery) -> int:
        params = _finished_params(query)

        def op(tx: _Tx) -> int:
            rows = tx.conn.execute(SQL["purgeable"], params).fetchall()
            ids = [row[0] for row in rows]
            gone: dict[tuple[str, str, str], float] = {}
            for _, queue_name, name, state in rows:
                key = (queue_name, name, f"state:{state}")
                gone[key] = gone.get(key, 0) - 1
            if gone:
                tx.conn.executemany(SQL["add_stat"], [(*k, v) for k, v in gone.items()])
            for job_id in ids:
                tx.conn.execute(SQL["delete_events"], (job_id,))
                tx.conn.execute(SQL["delete_deliveries"], (job_id,))
                tx.conn.execute(SQL["delete_idempotency"], (job_id,))
                tx.conn.execute(SQL["delete_job"], (job_id,))
                tx.forget(job_id)
            return len(ids)

        total = 0
        while True:
            removed = await self._write(op, atomic=True)
            total += removed
            if removed < 1000:
                return total

    # -- the dashboard -----------------------------------------------------------------

    async def timings(
        self, since: float, owner: str | None = None, limit: int = 20_000
    ) -> builtins.list[Timing]:
        params = {"since": since, "owner": owner, "limit": max(0, limit)}

        def fetch(conn: sqlite3.Connection) -> builtins.list[Timing]:
            states = _STATES
            return [
                Timing(queue, states[state], scheduled, started, finished)
                for queue, state, scheduled, started, finished in conn.execute(
                    SQL["timings"], params
                )
            ]

        return await self._read(fetch)

    async def oldest_queued(self, now: float, owner: str | None = None) -> dict[str, float]:
        def fetch(conn: sqlite3.Connection) -> dict[str, float]:
            rows = conn.execute(SQL["oldest_queued"], {"now": now, "owner": owner})
            return {queue: at for queue, at in rows}

        return await self._read(fetch)

    async def count_finished(self, query: FinishedQuery) -> int:
        params = _finished_params(query)

        def fetch(conn: sqlite3.Connection) -> int:
            return int(conn.execute(SQL["count_finished"], params).fetchone()[0])

        return await self._read(fetch)

    async def idempotent_job(self, owner: str, key: str) -> str | None:
        def fetch(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(SQL["get_idempotency"], (owner, key)).fetchone()
            return None if row is None else str(row[1])

        return await self._read(fetch)

    # -- webhook outbox ----------------------------------------------------------------

    async def claim_deliveries(self, limit: int, lease: float) -> builtins.list[Delivery]:
        if limit <= 0:
            return []

        def op(tx: _Tx) -> builtins.list[Delivery]:
            rows = tx.conn.execute(SQL["due_deliveries"], {"now": tx.now, "limit": limit})
            claimed = []
            for row in rows.fetchall():
                due = _row_to_delivery(row)
                token, expires = new_token(), tx.now + lease
                tx.conn.execute(SQL["lease_delivery"], (token, expires, due.id))
                claimed.append(
                    dataclasses.replace(due, claim_token=token, lease_expires_at=expires)
                )
            return claimed

        return await self._write(op)

    async def record_delivery_attempt(
        self,
        delivery_id: str,
        token: str,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        next_attempt_at: float | None,
        disable_url: bool = False,
    ) -> Delivery:
        status = status_after_attempt(ok, disable_url, next_attempt_at)

        def op(tx: _Tx) -> Delivery:
            row = tx.conn.execute(SQL["get_delivery"], (delivery_id,)).fetchone()
            current = None if row is None else _row_to_delivery(row)
            if (
                current is None
                or current.claim_token != token
                or current.status is not DeliveryStatus.PENDING
            ):
                raise StaleClaim(delivery_id)
            params = {
                "id": delivery_id,
                "status": status.value,
                "next_attempt_at": next_attempt_at if status is DeliveryStatus.PENDING else None,
                "now": tx.now,
                "status_code": status_code,
                "error": error,
            }
            tx.conn.execute(SQL["record_delivery"], params)
            tx.conn.execute(SQL["add_stat"], (*job_stats.webhook_key(ok), 1))
            if status is DeliveryStatus.DISABLED:
                reason = f"disabled: delivery {delivery_id} to this URL was answered 410 Gone"
                params = {"job_id": current.job_id, "url": current.url, "id": delivery_id}
                tx.conn.execute(SQL["disable_deliveries"], {**params, "error": reason})
            return _row_to_delivery(tx.conn.execute(SQL["get_delivery"], (delivery_id,)).fetchone())

        return await self._write(op)

    async def deliveries_for(self, job_id: str) -> builtins.list[Delivery]:
        def fetch(conn: sqlite3.Connection) -> builtins.list[Delivery]:
            return [_row_to_delivery(r) for r in conn.execute(SQL["deliveries_for"], (job_id,))]

        return await self._read(fetch)

    async def next_delivery_at(self) -> float | None:
        def fetch(conn: sqlite3.Connection) -> float | None:
            value = conn.execute(SQL["next_delivery_at"]).fetchone()[0]
            return None if value is None else float(value)

        return await self._read(fetch)

    # -- statistics --------------------------------------------------------------------

    async def stat_rows(self) -> builtins.list[job_stats.StatRow]:
        def fetch(conn: sqlite3.Connection) -> builtins.list[job_stats.StatRow]:
            return conn.execute(SQL["stats"]).fetchall()

        return await self._read(fetch)

    # -- worker registry ---------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        row = (
            info.id,
            info.host,
            info.pid,
            _dumps(list(info.queues)),
            info.concurrency,
            info.version,
            info.started_at,
            info.last_heartbeat,
            _dumps(list(info.running)),
            _dumps(list(info.names)),
        )

        def op(tx: _Tx) -> None:
            tx.conn.execute(SQL["register_worker"], row)

        await self._write(op)

    async def worker_heartbeat(self, worker_id: str, running: Sequence[str], now: float) -> bool:
        params = (now, _dumps(list(running)), worker_id)

        def op(tx: _Tx) -> bool:
            return bool(tx.conn.execute(SQL["worker_heartbeat"], params).rowcount)

        return await self._write(op)

    async def deregister_worker(self, worker_id: str) -> None:
        def op(tx: _Tx) -> None:
            tx.conn.execute(SQL["deregister_worker"], (worker_id,))

        await self._write(op)

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        def fetch(conn: sqlite3.Connection) -> builtins.list[WorkerInfo]:
            return [_row_to_worker(row) for row in conn.execute(SQL["list_workers"])]

        return await self._read(fetch)

    async def prune_workers(self, last_heartbeat_before: float) -> int:
        def op(tx: _Tx) -> int:
            return tx.conn.execute(SQL["prune_workers"], (last_heartbeat_before,)).rowcount

        return await self._write(op)

    # -- known job names ---------------------------------------------------------------

    async def record_job_names(self, names: Sequence[str], now: float) -> None:
        rows = [(name, now) for name in dict.fromkeys(names)]

        def op(tx: _Tx) -> None:
            tx.conn.executemany(SQL["record_job_name"], rows)

        if rows:
            await self._write(op)

    async def job_names(self) -> dict[str, float]:
        def fetch(conn: sqlite3.Connection) -> dict[str, float]:
            return dict(conn.execute(SQL["job_names"]).fetchall())

        return await self._read(fetch)

    # -- schedules ---------------------------------------------------------------------

    async def track_schedules(self, names: Sequence[str], now: float) -> dict[str, ScheduleState]:
        unique = list(dict.fromkeys(names))

        def fetch(conn: sqlite3.Connection) -> dict[str, ScheduleState]:
            rows = conn.execute(SQL["schedule_states"], (json.dumps(unique),)).fetchall()
            return {row[0]: _row_to_schedule(row) for row in rows}

        states = await self._read(fetch)
        missing = [name for name in unique if name not in states]
        if not missing:  # the usual pass: a read, no write transaction
            return states

        def op(tx: _Tx) -> dict[str, ScheduleState]:
            tx.conn.executemany(SQL["track_schedule"], [(name, now, now) for name in missing])
            return fetch(tx.conn)

        return await self._write(op)

    async def record_schedule_fire(
        self, name: str, fire_at: float, job_id: str, now: float
    ) -> None:
        values = {"name": name, "fire_at": fire_at, "job_id": job_id, "now": now}

        def op(tx: _Tx) -> None:
            tx.conn.execute(SQL["record_schedule_fire"], values)

        await self._write(op)

    async def acquire_permit(
        self, limits: Sequence[Limit], holder: str, expires_at: float, now: float
    ) -> float | None:
        asked = time.monotonic()

        def op(tx: _Tx) -> float | None:
            # Dated when granted: a wait in the writer's queue moves it (and its expiry) on.
            waited = time.monotonic() - asked
            at, until = now + waited, expires_at + waited
            conn, views = tx.conn, []
            for limit in limits:
                conn.execute(SQL["prune_starts"], (limit.key, at - limit.period))
                conn.execute(SQL["prune_permits"], (limit.key, at))
                starts = [r[0] for r in conn.execute(SQL["window_starts"], (limit.key,))]
                others = [r[0] for r in conn.execute(SQL["other_permits"], (limit.key, holder))]
                views.append(refusal(limit, starts, others, at))
            retry_at = combined(views)
            if retry_at is not None:
                return retry_at
            for limit in limits:
                if limit.rate is not None:
                    conn.execute(SQL["add_start"], (limit.key, at, holder))
                if limit.concurrency is not None:
                    conn.execute(SQL["hold_permit"], (limit.key, holder, until))
            return None

        return await self._write(op)

    async def renew_permits(self, held: Sequence[tuple[str, str]], expires_at: float) -> None:
        rows = [(expires_at, key, holder) for key, holder in held]

        def op(tx: _Tx) -> None:
            tx.conn.executemany(SQL["renew_permit"], rows)

        await self._write(op)

    async def release_permit(self, keys: Sequence[str], holder: str) -> None:
        rows = [(key, holder) for key in keys]

        def op(tx: _Tx) -> None:
            tx.conn.executemany(SQL["release_permit"], rows)

        await self._write(op)

    async def set_schedule_paused(self, name: str, paused: bool, now: float) -> ScheduleState:
        values = {"name": name, "paused": int(paused), "now": now}

        def op(tx: _Tx) -> ScheduleState:
            tx.conn.execute(SQL["set_schedule_paused"], values)
            row = tx.conn.execute(SQL["schedule_states"], (json.dumps([name]),)).fetchone()
            return _row_to_schedule(row)

        return await self._write(op)

    # -- workflows ---------------------------------------------------------------------

    async def create_workflow(self, workflow: WorkflowRecord) -> None:
        values = {
            "id": workflow.id,
            "owner": workflow.owner,
            "state": workflow.state.value,
            "steps": json.dumps(workflow.steps, separators=(",", ":")),
            "created_at": workflow.created_at,
            "updated_at": workflow.updated_at,
        }

        def op(tx: _Tx) -> None:
            tx.conn.execute(SQL["insert_workflow"], values)

        await self._write(op)

    async def get_workflow(
        self, workflow_id: str, owner: str | None = None
    ) -> WorkflowRecord | None:
        def fetch(conn: sqlite3.Connection) -> WorkflowRecord | None:
            row = conn.execute(SQL["get_workflow"], (workflow_id,)).fetchone()
            return None if row is None else _row_to_workflow(row)

        found = await self._read(fetch)
        return found if found is not None and owner in (None, found.owner) else None

    async def open_workflows(self, limit: int = 1000) -> builtins.list[WorkflowRecord]:
        def fetch(conn: sqlite3.Connection) -> builtins.list[WorkflowRecord]:
            return [_row_to_workflow(r) for r in conn.execute(SQL["open_workflows"], (limit,))]

        return await self._read(fetch)

    async def end_workflow(
        self, workflow_id: str, state: WorkflowState, now: float
    ) -> WorkflowRecord | None:
        values = {"id": workflow_id, "state": state.value, "now": now}

        def op(tx: _Tx) -> WorkflowRecord | None:
            row = tx.conn.execute(SQL["end_workflow"], values).fetchone()
            return None if row is None else _row_to_workflow(row)

        return await self._write(op)


def _row_to_workflow(row: tuple[Any, ...]) -> WorkflowRecord:
    return WorkflowRecord(
        id=row[0],
        owner=row[1],
        state=WorkflowState(row[2]),
        steps=json.loads(row[3]),
        created_at=row[4],
        updated_at=row[5],
    )


def _row_to_schedule(row: tuple[Any, ...]) -> ScheduleState:
    return ScheduleState(
        name=row[0],
        paused=bool(row[1]),
        since=row[2],
        last_fire_at=row[3],
        last_job_id=row[4],
        updated_at=row[5],
    )
