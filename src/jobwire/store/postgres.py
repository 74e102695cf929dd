"""The PostgreSQL store: many machines on one database, with transactional enqueue.

It speaks to PostgreSQL through asyncpg: the fastest async driver for it (the binary
protocol, statements prepared once per connection), with native ``LISTEN/NOTIFY``.
Install it with ``pip install jobwire[postgres]``; the URL is
``postgresql://user:password@host:5432/database?schema=name`` (schema: optional,
``public`` by default; every table is named ``jobwire_*`` inside it).

How it keeps the contract of :class:`~jobwire.store.base.Store`:

- **One transaction per operation.** It reads the rows it changes ``FOR UPDATE``, asks
  :mod:`jobwire.model` for the change, and writes the records, their events, the webhook
  deliveries they create and the wake-up (``NOTIFY``) in one statement, fenced by the
  claim token each row was read with. A claim reads its rows ``FOR UPDATE SKIP LOCKED``
  in one statement: concurrent claimers, in any number of processes, take different
  jobs and never wait on each other. "Accepted" means committed, as durable as the
  server's ``synchronous_commit`` and replication make a commit; claims and lease
  renewals do not wait for the WAL flush (see :meth:`PostgresStore._write`).
- **One statement per write from submit to start.** The two writes between a submit
  and its job's first statement are each one statement in autocommit, through
  functions of the schema (``jobwire_insert_jobs``, ``jobwire_claim``): an enqueue
  sends what the model decided, its times that are "now" left for the function to
  fill from the database's clock (a batch with a webhook or idempotency keys reads the
  clock first, in its own transaction); a claim is
  decided in SQL as :func:`jobwire.model.claim` decides it (the contract suite's state
  machine holds it to the model), except when a due job's webhook may want its
  ``started`` event: that claim is made as above.
- **A frozen or cut-off client lets go.** Every transaction of the store is a few
  statements with nothing between them but Python, so its connections end any
  transaction left idle for ``idle_in_transaction_timeout`` seconds (10 by default; the
  server's ``idle_in_transaction_session_timeout``). A worker frozen or cut off in the
  middle of a write (the server hears nothing, not even a reset) would otherwise keep
  its jobs' rows locked for as long as the server keeps the dead connection, often
  hours, and the claims and reaps that skip locked rows would skip those jobs all that
  time; its late writes are refused like any other.
- **The database's clock.** Created, due, lease and event times are read from the
  server in the transaction that uses them, so machines whose clocks drift still agree
  on which jobs are due and which leases ran out.
- **A feed that never skips.** Event cursors come from the id of the transaction that
  wrote them, and every transaction that appends events announces itself with an
  advisory lock before it has an id; :meth:`PostgresStore.feed` returns only cursors
  below the lowest span a running writer may still fill, so an event committed later
  always has a higher cursor than any already returned.
- **Wake-ups** are ``NOTIFY`` payloads sent in the same transaction as the write (so
  they arrive only if it commits), heard by one ``LISTEN`` connection per store, which
  is health-checked and reconnected with backoff. Notices are hints: one lost while the
  connection was down costs latency, never correctness.
- **Transactional enqueue.** ``await store.enqueue(jobs, connection=conn)`` or
  ``async with store.transaction(conn): await crunch.enqueue(n=1)`` writes the jobs in
  the application's own asyncpg transaction: they exist, and their wake-up is sent, if
  and only if it commits.
- **The schema** is versioned in ``jobwire_meta`` and brought up to date by
  :meth:`PostgresStore.open` under a transaction-level advisory lock, so several
  processes may open the same database at once.

Driver errors are mapped where they enter: a connection that cannot be made or was
lost raises :class:`~jobwire.errors.StoreUnavailable`; so does anything else the server
refuses, with its message.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jobwire import model
from jobwire.errors import (
    ConfigError,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    JobwireError,
    StaleClaim,
    StoreUnavailable,
)
from jobwire.ids import new_token, new_tokens
from jobwire.model import Event, EventDraft, EventType, Job, Progress, State
from jobwire.outage import Outage
from jobwire.retry import Backoff
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
    Notice,
    NoticeKind,
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
    webhook_target,
)
from jobwire.store.insight import Timing
from jobwire.throttle import Limit, combined, refusal

try:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "the PostgreSQL store needs asyncpg: pip install 'jobwire[postgres]'"
    ) from exc

log = logging.getLogger("jobwire.store.postgres")

_STAT_SHARDS = 8  # rows per counter: concurrent transactions seldom share one
# 2: jobwire_stats, jobwire_workers; 3: jobwire_insert_jobs, jobwire_claim; 4: job names;
# 5: jobwire_jobs.crashes; 6: jobwire_schedules; 7: jobwire_workflows and the rate limits'
# jobwire_rate_starts and jobwire_permits
SCHEMA_VERSION = 7
SQL = queries.load("postgres.sql")
T = TypeVar("T")

# An asyncpg connection of the store's pool, or one the application lends for a
# transactional enqueue.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

# Event cursors: (span - cursor_epoch) * 2^_SPAN_BITS + n for the n-th event a
# transaction appends, where its span is its own transaction id (or, for a write on an
# application's connection, an id drawn for it). Not a sequence: sequence numbers are
# taken in one order and committed in another, so a reader that has seen cursor 11 could
# later see 10 appear, and skip it. See PostgresStore.feed() for how a reader knows
# which spans may still be filled. A transaction appends at most 2^_SPAN_BITS - 1
# events; cursor_epoch keeps cursors small: exact in JavaScript (below 2^53) for the
# first 2^33 transactions of the database.
_SPAN_BITS = 20
_MAX_EVENTS = (1 << _SPAN_BITS) - 1

_PAYLOAD_LIMIT = 7900  # NOTIFY payloads must stay under 8000 bytes
_PRUNE_BATCH = 1000
_RETRIES = 5  # for serialization failures and deadlocks, which only ask to try again
_BATCH_MAX = 500  # transitions written in one transaction at most
_CLOSE_TIMEOUT = 10.0
_WAIT_BUCKETS = list(job_stats.BUCKETS)  # the wait histogram's bounds, for jobwire_claim
_LISTEN_BACKOFF = Backoff(base=0.05, factor=2.0, cap=5.0, jitter=0.5)

# Errors that mean the database cannot be reached (or the connection was lost).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.InternalClientError,  # a connection's protocol state broken by its loss
)
# …and everything else the server refuses: mapped to StoreUnavailable with its message.
_REFUSED: tuple[type[BaseException], ...] = (*_UNREACHABLE, asyncpg.PostgresError)
_TRY_AGAIN: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_decode = json.JSONDecoder().decode
_STATES = {state.value: state for state in State}
_EVENT_TYPES = {kind.value: kind for kind in EventType}


# -- values in and out ------------------------------------------------------------------


def _dumps(value: Any) -> str:
    """JSON text for a json column; NaN and infinities are refused as PostgreSQL does."""
    if not value and isinstance(value, dict):
        return "{}"
    return _encode(value)


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _json(value: Any) -> Any:
    """A json column's value. Text from the store's own connections; already decoded
    when an application's connection (transactional enqueue) has a codec for json."""
    if value is None or not isinstance(value, str):
        return value
    if value == "{}":
        return {}
    return _decode(value)


def _progress(value: Any) -> Progress | None:
    data = _json(value)
    return None if data is None else Progress(**data)


def _row_to_job(row: asyncpg.Record, at: int = 0) -> Job:
    """The ``jobwire_jobs`` columns of a row, in the table's order, from position ``at``."""
    return Job(
        row[at],
        row[at + 1],
        _json(row[at + 6]),
        row[at + 2],
        _STATES[row[at + 3]],
        row[at + 4],
        row[at + 5],
        row[at + 7],
        row[at + 8],
        row[at + 9],
        row[at + 10],
        row[at + 11],
        row[at + 12],
        row[at + 13],
        _progress(row[at + 14]),
        _json(row[at + 15]),
        _json(row[at + 16]),
        row[at + 17],
        row[at + 18],
        row[at + 19],
        row[at + 20],
        row[at + 21],
        row[at + 22],
        _json(row[at + 23]),
        row[at + 24],
    )


def _row_to_event(row: asyncpg.Record) -> Event:
    return Event(
        job_id=row[1],
        seq=row[2],
        type=_EVENT_TYPES[row[3]],
        data=_json(row[4]),
        at=row[5],
        cursor=row[0],
    )


def _row_to_delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(
        id=row[0],
        job_id=row[1],
        seq=row[2],
        event=row[3],
        url=row[4],
        body=row[5],
        status=DeliveryStatus(row[6]),
        attempts=row[7],
        created_at=row[8],
        next_attempt_at=row[9],
        last_attempt_at=row[10],
        last_status_code=row[11],
        last_error=row[12],
        claim_token=row[13],
        lease_expires_at=row[14],
    )


@dataclass(slots=True)
class _Encoded:
    """A job as the store writes it: its JSON already text, and the job as read back."""

    job: Job
    args: str
    progress: str | None
    result: str | None
    error: str | None
    options: str


def _encoded(job: Job, *, new: bool) -> _Encoded:
    """Encode what the write stores: every JSON column of a new job; of a changed one
    only those a transition may change (its args and options were read from the store)."""
    progress = _dumps_or_none(None if job.progress is None else job.progress.as_dict())
    result, error = _dumps_or_none(job.result), _dumps_or_none(job.error)
    changes: dict[str, Any] = {
        "progress": None if progress is None else _progress(progress),
        "result": _json(result),
        "error": _json(error),
    }
    args = options = ""
    if new:
        args, options = _dumps(job.args), _dumps(job.options)
        changes.update(args=_json(args), options=_json(options))
    return _Encoded(model.evolve(job, **changes), args, progress, result, error, options)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to columns, for ``unnest($1::type[], …)``: one array per column."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


# -- wake-ups ---------------------------------------------------------------------------


def _payloads(origin: str, notices: Iterable[Notice]) -> list[str]:
    """NOTIFY payloads: the sending store's origin, then one ``"<kind> <key>"`` a line."""
    head = origin + "\n"
    payloads: list[str] = []
    lines: list[str] = []
    size = len(head.encode())
    for notice in dict.fromkeys(notices):
        line = f"{notice.kind.value} {notice.key}"
        length = len(line.encode()) + 1
        if lines and size + length > _PAYLOAD_LIMIT:
            payloads.append(head + "\n".join(lines))
            lines, size = [], len(head.encode())
        lines.append(line)
        size += length
    if lines:
        payloads.append(head + "\n".join(lines))
    return payloads


def _parse_payload(payload: str) -> tuple[str, list[Notice]]:
    origin, _, body = payload.partition("\n")
    notices = []
    for line in body.splitlines():
        kind, _, key = line.partition(" ")
        with contextlib.suppress(ValueError):
            notices.append(Notice(NoticeKind(kind), key))
    return origin, notices


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()


class _Listener:
    """The store's one ``LISTEN`` connection, kept up: checked every ``check_every``
    seconds and reconnected with capped, jittered backoff whenever it is lost."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection[Any]]],
        channel: str,
        on_payload: Callable[[str], None],
        on_back: Callable[[], None],
        *,
        check_every: float = 10.0,
        backoff: Backoff = _LISTEN_BACKOFF,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._on_payload = on_payload
        self._on_back = on_back
        self._check_every = check_every
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.connection: asyncpg.Connection[Any] | None = None
        self.generation = 0  # how many times it has (re)connected
        self.last_error: BaseException | None = None

    async def start(self, within: float) -> None:
        """Start listening; raise StoreUnavailable unless connected ``within`` seconds."""
        self._task = asyncio.create_task(self._run(), name=f"jobwire-listen-{self._channel}")
        try:
            await asyncio.wait_for(self.wait(0), within)
        except TimeoutError:
            await self.stop()
            raise StoreUnavailable(
                f"cannot LISTEN on PostgreSQL: {self.last_error or 'timed out'}"
            ) from self.last_error

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self, after: int) -> int:
        """Wait until listening on a connection newer than generation ``after``."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.connection is not None and self.generation > after
            )
            return self.generation

    async def _run(self) -> None:
        outage = Outage(log, "PostgreSQL wake-ups (LISTEN)", self._backoff)
        while True:
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self._channel, self._heard)
                await self._up(conn)
                outage.succeeded()
                if self.generation > 1:
                    # Whatever was notified while it was down went unheard.
                    self._on_back()
                await self._watch(conn, lost)
                log.warning("the LISTEN connection to PostgreSQL was lost; reconnecting")
                delay = self._backoff.delay(1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = exc
                delay = outage.failed(exc)
            finally:
                self.connection = None
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)

    async def _up(self, conn: asyncpg.Connection[Any]) -> None:
        async with self._changed:
            self.connection = conn
            self.generation += 1
            self.last_error = None
            self._changed.notify_all()

    async def _watch(self, conn: asyncpg.Connection[Any], lost: asyncio.Event) -> None:
        """Return when the connection is closed or stops answering."""
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancellation
        # that arrives as the awaited call completes, and stop() would wait forever.
        while not conn.is_closed():
            try:
                async with asyncio.timeout(self._check_every):
                    await lost.wait()
                return
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(self._check_every):
                    await conn.execute("SELECT 1")
            except Exception as exc:  # the connection is unusable: reconnect
                self.last_error = exc
                return

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_payload(str(payload))


class _OneLinePerReconnect(logging.Filter):
    """asyncpg's pool, when it cannot reconnect its minimum connections, logs a full
    traceback at every try (after 1, 2, 4… s) while the server is down. The store logs
    the outage itself; each of those tries becomes one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Failed to restore the pool"):
            exc = record.exc_info[1]
            record.msg = f"{record.msg}: {type(exc).__name__}: {exc}"
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLinePerReconnect())


# -- one operation's transaction --------------------------------------------------------


@dataclass
class _Tx:
    """What one operation sees and stages inside its transaction.

    Reads happen as the operation goes; writes are staged and sent at the end in one
    statement, so anything that fails in Python (JSON encoding, a refused transition)
    fails before the first write.
    """

    store: PostgresStore
    conn: Connection
    now: float = 0.0
    disabled: dict[str, frozenset[str]] = field(default_factory=dict)  # job → URLs off
    inserts: list[_Encoded] = field(default_factory=list)
    updates: list[tuple[_Encoded, str | None]] = field(default_factory=list)  # and fence
    events: list[tuple[Any, ...]] = field(default_factory=list)  # as the columns take them
    deliveries: list[Delivery] = field(default_factory=list)
    changed: list[Job] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)  # jobs given webhook deliveries
    before: dict[str, Job] = field(default_factory=dict)  # jobs as read, for the counters
    tally: job_stats.Tally = field(default_factory=job_stats.Tally)
    webhooks: list[job_stats.StatKey] = field(default_factory=list)  # attempts recorded
    lent: bool = False  # runs in the application's transaction (see _add_stats)
    announced: bool = True  # holds the feed's advisory lock already (see feed())
    # New jobs' times are the clock the insert reads (jobwire_insert_jobs): staged as
    # NULL, with ``now`` a stand-in until ``clock`` holds what it read.
    clock_in_sql: bool = False
    due_now: set[str] = field(default_factory=set)  # new jobs due at that clock
    clock: float | None = None
    flushed: bool = False

    @property
    def sql(self) -> dict[str, str]:
        return self.store._sql

    def read(self, row: asyncpg.Record) -> Job:
        """A job read ``FOR UPDATE`` with the statement's ``now`` and disabled URLs."""
        self.now = row["now"]
        job = _row_to_job(row)
        self.disabled[job.id] = frozenset(row.get("disabled_urls") or ())
        self.before[job.id] = job
        return job

    async def lock(self, job_id: str) -> Job:
        row = await self.conn.fetchrow(self.sql["lock_job"], job_id)
        if row is None:
            raise JobNotFound(job_id)
        return self.read(row)

    def insert(self, change: model.Change) -> Job:
        encoded = _encoded(change.job, new=True)
        self.inserts.append(encoded)
        self.tally.add(None, change)
        return self._staged(encoded.job, change)

    def apply(self, change: model.Change, fence: str | None) -> Job:
        """Stage a change to a job that held claim token ``fence`` when it was read."""
        encoded = _encoded(change.job, new=False)
        self.updates.append((encoded, fence))
        self.tally.add(self.before[change.job.id], change)
        self.before[change.job.id] = change.job
        return self._staged(encoded.job, change)

    def _staged(self, stored: Job, change: model.Change) -> Job:
        events = []
        for event in change.events:
            data = _dumps(event.data)
            self.events.append((event.job_id, event.seq, event.type.value, data, event.at))
            if event.data:  # as it will read back: tuples become lists…
                event = Event(event.job_id, event.seq, event.type, _json(data), event.at)
            events.append(event)
        self.changed.append(stored)
        new = webhook_deliveries(model.Change(stored, tuple(events)), self.now, self._disabled)
        if new:
            self.deliveries.extend(new)
            self.outbox.append(stored.id)
        return stored

    def _disabled(self, job_id: str, url: str) -> bool:
        return url in self.disabled.get(job_id, ())

    def mark(self) -> tuple[int, ...]:
        """How much is staged: :meth:`undo` takes back what was staged after it."""
        return tuple(len(staged) for staged in self._staged_lists())

    def undo(self, mark: tuple[int, ...]) -> None:
        for staged, length in zip(self._staged_lists(), mark, strict=True):
            del staged[length:]

    def _staged_lists(self) -> tuple[list[Any], ...]:
        return (self.inserts, self.updates, self.events, self.deliveries, self.changed, self.outbox)

    @property
    def notices(self) -> list[Notice]:
        return notices_for(self.changed) + delivery_notices(self.outbox)

    async def flush(self, origin: str, span: int | None = None) -> None:
        """Send the staged writes and their NOTIFY in one statement. ``span``: the
        transaction id whose span the events' cursors take (None: this transaction's)."""
        if self.flushed:
            return
        self.flushed = True
        if not self.inserts and not self.updates:
            await self._add_stats()  # webhook attempts, if any
            return
        if len(self.events) > _MAX_EVENTS:
            raise ValueError(f"one transaction may append at most {_MAX_EVENTS} events")
        staged_events = self.events
        if self.clock_in_sql:
            if self.deliveries:
                raise AssertionError("a delivery's times are not left to the database's clock")
            staged_events = [_clock_left_to_sql(event, self.due_now) for event in staged_events]
        events = _columns(staged_events, 5)
        deliveries = _columns(
            [
                (d.id, d.job_id, d.seq, d.event, d.url, d.body, d.created_at, d.next_attempt_at)
                for d in self.deliveries
            ],
            8,
        )
        tail = [
            self.store._epoch,
            *events,
            *deliveries,
            self.store.channel,
            _payloads(origin, self.notices),
        ]
        if self.inserts:
            clock_in_sql, due_now = self.clock_in_sql, self.due_now
            rows = [_insert_row(e, clock_in_sql, e.job.id in due_now) for e in self.inserts]
            # The counters and, unless the transaction has done it, the announcement to
            # feed() readers ride in the same call (jobwire_insert_jobs).
            space = None if self.announced else self.store._lock_space
            shard = None if self.lent else random.randrange(_STAT_SHARDS)
            stats = _columns(self._stat_totals(), 4)
            try:
                self.clock = await self.conn.fetchval(
                    self.sql["insert_jobs"], *_columns(rows, 24), *tail, span, space, *stats, shard
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "jobwire_jobs_pkey":
                    raise
                taken = {e.job.id for e in self.inserts}
                job_id = next((i for i in taken if i in (exc.detail or "")), "?")
                raise InvalidTransition(job_id, "already stored", "enqueue it twice") from exc
            return
        rows = [_update_row(encoded, fence) for encoded, fence in self.updates]
        if self.lent:  # never so today: an application's transaction only enqueues
            await self._add_stats()
        stats = _columns([] if self.lent else self._stat_totals(), 4)
        shard = random.randrange(_STAT_SHARDS)
        written = await self.conn.fetchval(
            self.sql["update_jobs"], *_columns(rows, 15), *tail, *stats, shard
        )
        if written != len(rows):
            # Unreachable while rows are read FOR UPDATE; if it ever happens, nothing of
            # this transaction is kept.
            raise StaleClaim(self.updates[0][0].job.id)

    def tally_webhook(self, ok: bool) -> None:
        self.webhooks.append(job_stats.webhook_key(ok))

    def _stat_totals(self) -> list[tuple[str, str, str, float]]:
        """The transaction's counters, summed: one row per counter that moved."""
        summed = self.tally.totals()
        for key in self.webhooks:
            summed[key] = summed.get(key, 0) + 1
        return sorted((*key, value) for key, value in summed.items())

    async def _add_stats(self) -> None:
        """The transaction's counters, all in one shard picked at random (see
        ``add_stats``)."""
        totals = self._stat_totals()
        if not totals:
            return
        queues, names, stat_keys, values = _columns(totals, 4)
        if self.lent:
            # The application's transaction may stay open for long: a counter row
            # locked until it commits would stall every writer that picked its shard.
            await self.conn.execute(
                self.sql["add_pending_stats"], queues, names, stat_keys, list(values)
            )
            return
        shard = random.randrange(_STAT_SHARDS)
        await self.conn.execute(
            self.sql["add_stats"], queues, names, stat_keys, list(values), shard
        )


def _insert_row(encoded: _Encoded, clock_in_sql: bool, due_now: bool) -> tuple[Any, ...]:
    """A new job's columns; with ``clock_in_sql``, NULL for the times that are the clock
    the insert reads (created_at; scheduled_at when ``due_now``)."""
    job = encoded.job
    created_at = None if clock_in_sql else job.created_at
    scheduled_at = None if clock_in_sql and due_now else job.scheduled_at
    return (
        job.id, job.job, job.queue, job.state.value, job.owner, job.priority, encoded.args,
        job.attempts, job.max_attempts, job.timeout, created_at, scheduled_at,
        job.started_at, job.finished_at, encoded.progress, encoded.result, encoded.error,
        job.lease_expires_at, job.claim_token, job.worker_id, job.cancel_requested,
        job.last_seq, job.idempotency_key, encoded.options,
    )  # fmt: skip


def _clock_left_to_sql(event: tuple[Any, ...], due_now: set[str]) -> tuple[Any, ...]:
    """A new job's ``queued`` event as staged, its time left to the insert's clock (NULL),
    and its data too when the job is due at that clock (see jobwire_insert_jobs)."""
    job_id, seq, kind, data, _at = event
    return (job_id, seq, kind, None if job_id in due_now else data, None)


def _update_row(encoded: _Encoded, fence: str | None) -> tuple[Any, ...]:
    """The columns a transition may change (never args or options)."""
    job = encoded.job
    return (
        job.id, fence, job.state.value, job.attempts, job.scheduled_at, job.started_at,
        job.finished_at, encoded.progress, encoded.result, encoded.error,
        job.lease_expires_at, job.claim_token, job.worker_id, job.cancel_requested,
        job.last_seq,
    )  # fmt: skip


@dataclass
class _Pending:
    """A transition waiting for the next batch; ``done`` gets the job as committed."""

    job_id: str
    decide: Callable[[Job, float], model.Change]
    done: asyncio.Future[Job]


# -- the store --------------------------------------------------------------------------


def _finished_params(query: FinishedQuery) -> tuple[Any, ...]:
    return (
        query.state_names,
        query.owner,
        query.job,
        query.queue,
        query.finished_after,
        query.finished_before,
    )


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _one(conn: Connection, query: str, *args: Any) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(query, *args)
    assert row is not None, "an aggregate query returns one row"
    return row


async def _keep_session(conn: object) -> None:
    """Return a connection to the pool as it is. asyncpg rolls back a transaction left
    open; the default reset (UNLISTEN, RESET ALL…) would cost a round trip on every
    release, and the store never changes a session's state."""


async def _roll_back(conn: Connection) -> None:
    """End a failed operation's transaction. A connection that cannot (lost, or left
    mid-statement by a cancellation) is closed, so the pool never lends it again."""
    try:
        if not conn.is_closed():
            await conn.execute("ROLLBACK")
    except Exception:
        with contextlib.suppress(Exception):
            conn.terminate()


def _unavailable(exc: BaseException, doing: str) -> StoreUnavailable:
    return StoreUnavailable(f"PostgreSQL {doing} failed: {type(exc).__name__}: {exc}")


class PostgresStore(Store):
    """Jobs in PostgreSQL (13 or newer), through an asyncpg connection pool.

    ``dsn``: a ``postgresql://`` URL as asyncpg takes it. ``schema``: where the
    ``jobwire_*`` tables live (created if missing). ``min_size``/``max_size``: the
    pool's bounds. ``idle_in_transaction_timeout``: seconds after which the server ends
    a transaction of the store's that its client left idle (a frozen process). Other
    keyword arguments go to ``asyncpg.create_pool`` and ``asyncpg.connect`` (``ssl=``,
    ``command_timeout=``…).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        listen_check_every: float = 10.0,
        idle_in_transaction_timeout: float = 10.0,
        **connect_kwargs: Any,
    ) -> None:
        super().__init__()
        if not schema or len(schema.encode()) > 63:
            raise ConfigError(f"postgres schema: expected 1 to 63 bytes, got {schema!r}")
        if not 1 <= min_size <= max_size:
            raise ConfigError(
                f"postgres pool: expected 1 <= min_size <= max_size, got {min_size}, {max_size}"
            )
        self.dsn = dsn
        self.schema = schema
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._listen_check_every = listen_check_every
        if not idle_in_transaction_timeout > 0:
            raise ConfigError(
                "postgres idle_in_transaction_timeout: expected a positive number of seconds, "
                f"got {idle_in_transaction_timeout!r}"
            )
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self._connect_kwargs = connect_kwargs
        quoted = _quote_ident(schema)
        self._sql = {name: text.replace("{schema}", quoted) for name, text in SQL.items()}
        self._meta_table = f"{quoted}.jobwire_meta"
        # One channel per schema: stores of other schemas on the server hear nothing.
        digest = hashlib.sha256(schema.encode()).hexdigest()[:16]
        self.channel = f"jobwire.{schema}" if len(schema) <= 48 else f"jobwire.{digest}"
        self._origin = new_token()  # this store's own notices, heard back, are skipped
        # The advisory lock key space of this schema's writers (see feed()).
        self._lock_space = int.from_bytes(_digest(f"jobwire-feed:{schema}")[:4]) >> 1
        self._begin_appending = ""
        self._pool: asyncpg.Pool[Any] | None = None
        self._listener: _Listener | None = None
        self._epoch = 0
        self._open_lock = asyncio.Lock()
        self._pending: builtins.list[_Pending] = []
        self._batching: asyncio.Task[None] | None = None
        self._lent: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
            f"jobwire-postgres-{id(self)}", default=None
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """A store for ``postgresql://…[?schema=name]``; other query parameters go to
        asyncpg (``sslmode``…)."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = [value for key, value in query if key == "schema"]
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        dsn = urlunsplit(parts._replace(query=rest))
        if schema:
            options["schema"] = schema[-1]
        return cls(dsn, **options)

    def __repr__(self) -> str:
        return f"PostgresStore({_redacted(self.dsn)!r}, schema={self.schema!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        async with self._open_lock:
            if self._pool is not None:
                return
            kwargs = dict(self._connect_kwargs)
            settings = dict(kwargs.pop("server_settings", None) or {})
            if "application_name" not in self.dsn:
                settings.setdefault("application_name", "jobwire")
            # A store's transaction never waits for anything but the server: one left idle
            # is a client frozen mid-write (SIGSTOP, a VM pause, a cut link). Its row locks
            # would keep reapers (SKIP LOCKED) from reclaiming its jobs, and its feed
            # announcement would hold every feed reader back, for as long as it stays frozen.
            settings.setdefault(
                "idle_in_transaction_session_timeout",
                str(max(1, round(self.idle_in_transaction_timeout * 1000))),
            )
            try:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    timeout=self.connect_timeout,
                    server_settings=settings,
                    reset=_keep_session,
                    **kwargs,
                )
            except _REFUSED as exc:
                raise StoreUnavailable(
                    f"cannot connect to PostgreSQL at {_redacted(self.dsn)}: {exc}"
                ) from exc
            try:
                await self._migrate(pool)
                listener = _Listener(
                    self._listen_connection,
                    self.channel,
                    self._heard,
                    self._resync,
                    check_every=self._listen_check_every,
                )
                await listener.start(self.connect_timeout)
            except BaseException as exc:
                pool.terminate()
                if isinstance(exc, _REFUSED):
                    raise _unavailable(exc, "opening the store") from exc
                raise
            self._pool = pool
            self._listener = listener

    async def _listen_connection(self) -> asyncpg.Connection[Any]:
        kwargs = dict(self._connect_kwargs)
        settings = dict(kwargs.pop("server_settings", None) or {})
        if "application_name" not in self.dsn:
            settings.setdefault("application_name", "jobwire-listen")
        conn: asyncpg.Connection[Any] = await asyncpg.connect(
            self.dsn, timeout=self.connect_timeout, server_settings=settings, **kwargs
        )
        return conn

    async def _migrate(self, pool: asyncpg.Pool[Any]) -> None:
        """Bring the schema to SCHEMA_VERSION, once, whoever opens first."""
        async with pool.acquire() as conn:
            if await self._schema_version(conn) != SCHEMA_VERSION:
                async with conn.transaction():
                    await conn.execute(self._sql["lock_schema"], f"jobwire:{self.schema}")
                    found = await self._schema_version(conn)
                    if found is not None and found > SCHEMA_VERSION:
                        raise StoreUnavailable(
                            f"schema {self.schema!r} is at version {found}, newer than this "
                            f"jobwire (expects {SCHEMA_VERSION}): upgrade jobwire"
                        )
                    if not await conn.fetchval(self._sql["schema_exists"], self.schema):
                        await conn.execute(self._sql["create_schema"])
                    for version in range((found or 0) + 1, SCHEMA_VERSION + 1):
                        log.info("migrating schema %r to version %d", self.schema, version)
                        await conn.execute(self._sql[f"migrate_{version}"])
                    await conn.execute(self._sql["set_meta"], "schema_version", str(SCHEMA_VERSION))
            self._epoch = await self._cursor_epoch(conn)
        self._begin_appending = (
            self._sql["begin_appending"]
            .replace("{lock_space}", str(self._lock_space))
            .replace("{epoch}", str(self._epoch))
        )

    async def _schema_version(self, conn: Connection) -> int | None:
        if not await conn.fetchval(self._sql["meta_exists"], self._meta_table):
            return None
        value = await conn.fetchval(self._sql["get_meta"], "schema_version")
        return None if value is None else int(value)

    async def _cursor_epoch(self, conn: Connection) -> int:
        epoch = int(await conn.fetchval(self._sql["cursor_epoch"]))
        room, top_span, horizon = await _one(conn, self._sql["cursor_room"], epoch)
        if room:
            return epoch
        # Transaction ids restarted below the stored cursors (a restore from a logical
        # dump): move the epoch down so that new cursors stay above every old one.
        async with conn.transaction():
            await conn.execute(self._sql["lock_schema"], f"jobwire:{self.schema}")
            epoch = int(await conn.fetchval(self._sql["cursor_epoch"]))
            room, top_span, horizon = await _one(conn, self._sql["cursor_room"], epoch)
            if not room:
                epoch = horizon - top_span - 1
                await conn.execute(self._sql["set_meta"], "cursor_epoch", str(epoch))
                log.warning("event cursors rebased: transaction ids restarted below them")
        return epoch

    async def close(self) -> None:
        if self._batching is not None:
            # Transitions already handed over are written (or refused) before the pool goes.
            await asyncio.wait([self._batching])
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        if listener is not None:
            await listener.stop()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
            except _UNREACHABLE:  # TimeoutError among them
                pool.terminate()

    async def ping(self) -> None:
        pool = self._require_pool()
        try:
            async with pool.acquire() as conn:
                found = await self._schema_version(conn)
        except _REFUSED as exc:
            raise _unavailable(exc, "ping") from exc
        if found != SCHEMA_VERSION:
            raise StoreUnavailable(f"schema version is {found}, expected {SCHEMA_VERSION}")

    # -- wake-ups ----------------------------------------------------------------------

    def _heard(self, payload: str) -> None:
        origin, notices = _parse_payload(payload)
        if origin != self._origin:  # our own were delivered when we committed them
            self._notify(notices)

    def _resync(self) -> None:
        self._notify([Notice(NoticeKind.RESYNC, "")])

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the LISTEN connection, while it is up."""
        listener = self._listener
        conn = None if listener is None else listener.connection
        return None if conn is None else conn.get_server_pid()

    @property
    def listener_generation(self) -> int:
        """How many times the LISTEN connection has been made (1 after open)."""
        return 0 if self._listener is None else self._listener.generation

    async def wait_listening(self, after: int = 0) -> int:
        """Wait until wake-ups are heard on a LISTEN connection made after generation
        ``after`` (a reconnection, say); returns its generation."""
        listener = self._listener
        if listener is None:
            raise StoreUnavailable("the store is not open")
        return await listener.wait(after)

    # -- plumbing ----------------------------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return self._pool

    async def _write(
        self, op: Callable[[_Tx], Awaitable[T]], *, appends: bool = True, durable: bool = True
    ) -> T:
        """Run ``op`` in a transaction of its own; notify after it commits.

        ``appends``: the operation may append events, so its transaction announces
        itself to feed() readers before it gets a transaction id (see feed()).
        ``durable=False``: the commit returns without waiting for the WAL to reach disk
        (``synchronous_commit = off`` for this transaction only). For claims and lease
        renewals: a server crash may forget one that had committed, which hands the job
        back to ``queued``, exactly as a worker's crash would; every later durable
        commit (the attempt's outcome) makes it durable with itself, as the WAL is one
        sequence."""
        pool = self._require_pool()
        begin = self._begin_appending if appends else "BEGIN"
        if not durable:
            begin += "; SET LOCAL synchronous_commit = off"

        async def once() -> tuple[T, _Tx]:
            async with pool.acquire() as conn:
                try:
                    await conn.execute(begin)
                    tx = _Tx(self, conn, announced=appends)
                    result = await op(tx)
                    await tx.flush(self._origin)
                    await conn.execute("COMMIT")
                except BaseException:
                    await _roll_back(conn)
                    raise
            return result, tx

        return await self._retried(once)

    async def _write_alone(self, op: Callable[[_Tx], Awaitable[T]]) -> T:
        """Run ``op``, whose writes are all in the one statement its flush sends (or in
        one statement of its own, which announces itself to feed() readers), without
        ``BEGIN`` and ``COMMIT``: that statement is a transaction by itself (autocommit),
        one round trip. Whatever ``op`` reads before it (the clock) is read outside it."""
        pool = self._require_pool()

        async def once() -> tuple[T, _Tx]:
            async with pool.acquire() as conn:
                try:
                    tx = _Tx(self, conn, announced=False)
                    result = await op(tx)
                    await tx.flush(self._origin)
                except asyncpg.PostgresError:
                    raise  # refused by the server: the statement left nothing behind
                except BaseException:
                    await _roll_back(conn)  # closes a connection left mid-statement
                    raise
            return result, tx

        return await self._retried(once)

    async def _retried(self, once: Callable[[], Awaitable[tuple[T, _Tx]]]) -> T:
        """``once()`` again after a serialization failure or deadlock (a few times, with
        a short random pause); the store away as StoreUnavailable; notify once it held."""
        for attempt in itertools.count(1):
            try:
                result, tx = await once()
            except _TRY_AGAIN as exc:
                if attempt >= _RETRIES:
                    raise _unavailable(exc, "a write") from exc
                await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
                continue
            except _REFUSED as exc:
                raise _unavailable(exc, "a write") from exc
            self._notify(tx.notices)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_on(self, conn: Connection, op: Callable[[_Tx], Awaitable[T]]) -> T:
        """Run ``op`` on an application's connection, inside its transaction if one is
        open (as a savepoint: a refused enqueue leaves the application's writes as they
        were), in a transaction of its own if not. Its NOTIFY goes out when that
        transaction commits and reaches this store's listeners like any other."""
        pool = self._require_pool()  # the schema and cursor epoch must be known
        try:
            async with conn.transaction():
                await conn.execute(self._sql["announce_appending"], self._lock_space, self._epoch)
                # This transaction may have had an id for long: its cursors take the span
                # of an id assigned now, after its announcement, and never used again.
                span = await pool.fetchval(self._sql["fresh_span"])
                tx = _Tx(self, conn, lent=True)
                result = await op(tx)
                await tx.flush(origin="", span=span)
        except _REFUSED as exc:
            raise _unavailable(exc, "a write on the application's connection") from exc
        return result

    async def _fetch(self, name: str, *args: Any) -> builtins.list[asyncpg.Record]:
        try:
            return await self._require_pool().fetch(self._sql[name], *args)
        except _REFUSED as exc:
            raise _unavailable(exc, "a read") from exc

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._require_pool().fetchrow(self._sql[name], *args)
        except _REFUSED as exc:
            raise _unavailable(exc, "a read") from exc

    async def _fetchval(self, name: str, *args: Any) -> Any:
        try:
            return await self._require_pool().fetchval(self._sql[name], *args)
        except _REFUSED as exc:
            raise _unavailable(exc, "a read") from exc

    # -- producing ---------------------------------------------------------------------

    async def enqueue(
        self, jobs: Sequence[NewJob], *, connection: Connection | None = None
    ) -> builtins.list[Enqueued]:
        """Store new jobs (see :meth:`Store.enqueue`).

        With ``connection`` (or inside :meth:`transaction`), the jobs are written on
        that asyncpg connection, in the transaction open on it: they exist, and workers
        hear of them, only if it commits.
        """
        if not jobs:
            return []
        batch = list(jobs)

        async def op(tx: _Tx) -> builtins.list[Enqueued]:
            return await self._enqueue(tx, batch)

        lent = connection if connection is not None else self._lent.get()
        if lent is not None:
            return await self._write_on(lent, op)
        if any(new.idempotency_key is not None for new in batch):
            return await self._write(op)  # keys are taken before the jobs are written
        if any(webhook_target(new.options) is not None for new in batch):
            # A delivery's body holds its event's time: the clock is read first.
            return await self._write_alone(op)
        # The usual case: one statement (jobwire_insert_jobs), which reads the clock.
        return await self._write_alone(functools.partial(self._enqueue_clocked, batch=batch))

    @contextlib.asynccontextmanager
    async def transaction(self, connection: Connection) -> AsyncIterator[None]:
        """Join the application's transaction: every enqueue through this store in the
        block (``jobs.enqueue``, ``crunch.enqueue`` or ``store.enqueue``) is written on
        ``connection``, so the jobs exist if and only if its transaction commits::

            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO orders …")
                async with store.transaction(conn):
                    await send_receipt.enqueue(order_id=7)
        """
        token = self._lent.set(connection)
        try:
            yield
        finally:
            self._lent.reset(token)

    async def _enqueue_clocked(
        self, tx: _Tx, batch: builtins.list[NewJob]
    ) -> builtins.list[Enqueued]:
        """New jobs (no idempotency keys, no webhooks) in one statement whose clock gives
        their times: the jobs are decided by the model here with a stand-in time, written
        with that time left to the database, and returned with the time it read."""
        tx.clock_in_sql = True
        staged = await self._enqueue(tx, batch)
        await tx.flush(self._origin)
        now = tx.clock
        assert now is not None, "jobwire_insert_jobs returns the clock it read"
        return [
            Enqueued(
                model.evolve(
                    e.job,
                    created_at=now,
                    scheduled_at=now if e.job.id in tx.due_now else e.job.scheduled_at,
                ),
                e.created,
            )
            for e in staged
        ]

    async def _enqueue(self, tx: _Tx, batch: builtins.list[NewJob]) -> builtins.list[Enqueued]:
        if tx.clock_in_sql:
            tx.now = 0.0  # a stand-in: see _enqueue_clocked
            tx.due_now.update(new.id for new in batch if new.scheduled_at is None)
        else:
            tx.now = await tx.conn.fetchval(tx.sql["clock"])
        found = await self._existing_keys(tx, batch)
        results: builtins.list[Enqueued] = []
        for new in batch:
            key = None if new.idempotency_key is None else (new.owner, new.idempotency_key)
            if key is not None and key in found:
                fingerprint, earlier = found[key]
                if fingerprint != new.fingerprint:
                    raise IdempotencyConflict(key[1])
                results.append(Enqueued(earlier, created=False))
                continue
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
            enqueued = Enqueued(tx.insert(model.enqueue(job, tx.now)), created=True)
            results.append(enqueued)
            if key is not None:  # repeated later in the batch: the same job again
                found[key] = (new.fingerprint, enqueued.job)
        return results

    async def _existing_keys(
        self, tx: _Tx, batch: Sequence[NewJob]
    ) -> dict[tuple[str, str], tuple[str | None, Job]]:
        """The idempotency keys of the batch already used, with their jobs.

        Keys are taken here, first come first served across transactions: a key another
        transaction is taking makes this one wait until it commits (then its job is
        returned) or rolls back (then the key is this one's)."""
        first: dict[tuple[str, str], NewJob] = {}
        for new in batch:
            if new.idempotency_key is not None:
                first.setdefault((new.owner, new.idempotency_key), new)
        if not first:
            return {}
        # In one order, so two batches sharing keys cannot wait on each other in a circle.
        keys = sorted(first)
        rows = [(o, k, first[o, k].fingerprint, first[o, k].id) for o, k in keys]
        taken = await tx.conn.fetch(tx.sql["take_keys"], *_columns(rows, 4), tx.now)
        held = set(keys) - {(row[0], row[1]) for row in taken}
        if not held:
            return {}
        owners, names = _columns(sorted(held), 2)
        found: dict[tuple[str, str], tuple[str | None, Job]] = {}
        for row in await tx.conn.fetch(tx.sql["held_keys"], owners, names):
            key = (row["key_owner"], row["key_name"])
            if row["id"] is None:
                # The key outlived its job: it is free again, as if never used.
                new = first[key]
                await tx.conn.execute(tx.sql["retake_key"], *key, new.fingerprint, new.id, tx.now)
                continue
            found[key] = (row["key_fingerprint"], _row_to_job(row, at=3))
        return found

    # -- working -----------------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        names: Sequence[str],
        limit: int,
        lease: float,
    ) -> builtins.list[Claim]:
        if limit <= 0 or not queues or not names:
            return []
        queue_list, name_list = list(dict.fromkeys(queues)), list(dict.fromkeys(names))

        # One queue (the usual case): the index gives the order, no sort of the queue.
        due = "due_jobs_in_queue" if len(queue_list) == 1 else "due_jobs"
        queue_arg: str | builtins.list[str] = queue_list[0] if len(queue_list) == 1 else queue_list

        claims = await self._write_alone(
            functools.partial(
                self._claim_in_sql,
                worker_id=worker_id,
                queues=queue_list,
                names=name_list,
                limit=limit,
                lease=lease,
            )
        )
        if claims is not None:
            return claims

        async def op(tx: _Tx) -> builtins.list[Claim]:
            rows = await tx.conn.fetch(tx.sql[due], queue_arg, name_list, limit)
            claims = []
            for row in rows:
                job = tx.read(row)
                token = new_token()
                change = model.claim(job, worker_id, token, tx.now, lease)
                claims.append(Claim(tx.apply(change, fence=job.claim_token), token))
            return claims

        return await self._write(op, durable=False)

    async def _claim_in_sql(
        self,
        tx: _Tx,
        *,
        worker_id: str,
        queues: builtins.list[str],
        names: builtins.list[str],
        limit: int,
        lease: float,
    ) -> builtins.list[Claim] | None:
        """A claim in one statement, decided in SQL as :func:`jobwire.model.claim` decides
        it (``jobwire_claim``), not waiting for the WAL flush. None, having claimed
        nothing, when a due job's webhook may want its ``started`` event: the deliveries
        are built here, so that claim is decided in Python."""
        rows = await tx.conn.fetch(
            tx.sql["claim"],
            self._epoch,
            self._lock_space,
            queues,
            names,
            limit,
            worker_id,
            lease,
            new_tokens(limit),
            _WAIT_BUCKETS,
            random.randrange(_STAT_SHARDS),
            self.channel,
            self._origin,
        )
        if rows and rows[0]["id"] is None:
            return None
        jobs = [_row_to_job(row) for row in rows]
        tx.changed.extend(jobs)  # for the wake-ups of this process (see _write_alone)
        return [Claim(job, job.claim_token or "") for job in jobs]

    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        if not tokens:
            return HeartbeatReply(frozenset(), frozenset())

        async def op(tx: _Tx) -> HeartbeatReply:
            rows = await tx.conn.fetch(tx.sql["lock_jobs"], list(tokens))
            lost, cancel = set(tokens), set()
            leases = []
            for row in rows:
                job = tx.read(row)
                token = tokens[job.id]
                try:
                    change = model.heartbeat(job, token, tx.now, lease)
                except JobwireError:
                    continue
                lost.discard(job.id)
                leases.append((job.id, token, change.job.lease_expires_at))
                if job.cancel_requested:
                    cancel.add(job.id)
            if leases:
                # A longer lease is not news: no event, no notice.
                await tx.conn.execute(tx.sql["extend_leases"], *_columns(leases, 3))
            return HeartbeatReply(frozenset(lost), frozenset(cancel))

        return await self._write(op, appends=False, durable=False)

    async def report(self, job_id: str, token: str, events: Sequence[EventDraft]) -> None:
        if not events:
            return
        drafts = list(events)

        async def op(tx: _Tx) -> None:
            job = await tx.lock(job_id)
            tx.apply(model.report(job, token, drafts, tx.now), fence=job.claim_token)

        await self._write(op)

    async def _transition(self, job_id: str, decide: Callable[[Job, float], model.Change]) -> Job:
        """Decide and write one job's transition, in a transaction shared with the other
        transitions that arrive while the previous one is being written: one commit for
        many finishes when the worker is busy, no wait when it is not. The job is
        returned (or the transition refused) only once that transaction has committed."""
        self._require_pool()
        pending = _Pending(job_id, decide, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if self._batching is None:
            self._batching = asyncio.create_task(
                self._write_transitions(), name="jobwire-postgres-transitions"
            )
        return await pending.done

    async def _write_transitions(self) -> None:
        try:
            while self._pending:
                batch: builtins.list[_Pending] = []
                later: builtins.list[_Pending] = []
                ids: set[str] = set()
                for pending in self._pending:
                    # A job changes once per transaction: a second change waits for the next.
                    if pending.job_id in ids or len(batch) >= _BATCH_MAX:
                        later.append(pending)
                    elif not pending.done.done():  # its caller gave up before the write
                        ids.add(pending.job_id)
                        batch.append(pending)
                self._pending = later
                if not batch:
                    continue
                try:
                    outcomes = await self._write(functools.partial(self._decide, batch=batch))
                except Exception as exc:
                    outcomes = [exc] * len(batch)
                for pending, outcome in zip(batch, outcomes, strict=True):
                    if pending.done.done():
                        continue
                    if isinstance(outcome, Exception):
                        pending.done.set_exception(outcome)
                    else:
                        pending.done.set_result(outcome)
        finally:
            self._batching = None
            for pending in self._pending:  # only when this task itself was cancelled
                pending.done.cancel()
            self._pending = []

    async def _decide(
        self, tx: _Tx, batch: builtins.list[_Pending]
    ) -> builtins.list[Job | Exception]:
        """Each transition of the batch, decided by the model on its locked row; one
        that is refused stages nothing and leaves the others as they are."""
        rows = await tx.conn.fetch(tx.sql["lock_changing"], [p.job_id for p in batch])
        found = {row["id"]: row for row in rows}
        outcomes: builtins.list[Job | Exception] = []
        for pending in batch:
            row = found.get(pending.job_id)
            if row is None:
                outcomes.append(JobNotFound(pending.job_id))
                continue
            job = tx.read(row)
            mark = tx.mark()
            try:
                outcomes.append(tx.apply(pending.decide(job, tx.now), fence=job.claim_token))
            except Exception as exc:
                tx.undo(mark)
                outcomes.append(exc)
        return outcomes

    async def finish(self, job_id: str, token: str, result: Any) -> Job:
        return await self._transition(
            job_id, lambda job, now: model.succeed(job, token, result, now)
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
        return await self._transition(
            job_id, lambda job, now: model.fail(job, token, error, now, retry_at, charge)
        )

    async def release(self, job_id: str, token: str, due_at: float | None = None) -> Job:
        return await self._transition(
            job_id, lambda job, now: model.release(job, token, now, due_at)
        )

    async def mark_cancelled(
        self, job_id: str, token: str, reason: str = model.CANCELLED_WHILE_RUNNING
    ) -> Job:
        return await self._transition(
            job_id, lambda job, now: model.cancelled(job, token, now, reason)
        )

    # -- controlling -------------------------------------------------------------------

    async def cancel_expired(self, job_id: str) -> Job:
        return await self._transition(job_id, model.expire_unstarted)

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        def decide(job: Job, now: float) -> model.Change:
            if owner is not None and job.owner != owner:
                raise JobNotFound(job_id)
            return model.request_cancel(job, now)

        return await self._transition(job_id, decide)

    # -- reading -----------------------------------------------------------------------

    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        row = await self._fetchrow("get_job", job_id)
        if row is None:
            return None
        job = _row_to_job(row)
        if owner is not None and job.owner != owner:
            return None
        return job

    async def list(self, query: ListQuery) -> Page:
        limit = max(1, query.limit)
        states = [s.value for s in query.states] if query.states else None
        rows = await self._fetch(
            "list_jobs", query.owner, query.job, query.queue, states, query.before_id, limit + 1
        )
        jobs = [_row_to_job(row) for row in rows]
        items = jobs[:limit]
        return Page(items, items[-1].id if len(jobs) > limit and items else None)

    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Event]:
        rows = await self._fetch("events_after", job_id, after, max(0, limit))
        return [_row_to_event(row) for row in rows]

    async def feed(
        self, after: int, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[Event]:
        """Events after ``after`` in cursor order, never skipping one committed later.

        Cursors are taken in one order and committed in another, so a reader must not
        return a cursor while a lower one may still be committed. Each transaction that
        appends events first takes a shared advisory lock whose key is a lower bound of
        the span its cursors will take, and holds it until it ends. The server-side
        function ``jobwire_feed`` reads the horizon first, in a statement of its own:
        the lowest such bound among the writers running now, or the next transaction id
        when none is. Then it reads only cursors below it, in a later snapshot: every
        writer below the horizon has ended by then, and any writer still to come takes a
        span above it. Transactions that append no
        jobwire events (the application's own, autovacuum…) never hold the feed back.
        """
        limit = max(0, limit)
        rows = await self._fetch("feed", after, owner, limit, self._epoch, self._lock_space)
        return [_row_to_event(row) for row in rows]

    async def last_cursor(self) -> int:
        return int(await self._fetchval("last_cursor", self._epoch, self._lock_space))

    async def next_due(self, queues: Sequence[str], names: Sequence[str]) -> float | None:
        value = await self._fetchval("next_due", list(queues), list(names))
        return None if value is None else float(value)

    # -- maintenance -------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> builtins.list[Job]:
        async def op(tx: _Tx) -> builtins.list[Job]:
            reaped = []
            for row in await tx.conn.fetch(tx.sql["expired_leases"], now):
                job = tx.read(row)
                change = model.expire(job, tx.now)
                if change.job.crashes != job.crashes:
                    await tx.conn.execute(tx.sql["set_crashes"], job.id, change.job.crashes)
                reaped.append(tx.apply(change, fence=job.claim_token))
            return reaped

        reaped = await self._write(op)
        await self.fold_stats()
        return reaped

    async def fold_stats(self) -> None:
        """Move the counter increments of committed application transactions into the
        counters (the reaper does it at each round; reads count them either way)."""

        async def op(tx: _Tx) -> None:
            await tx.conn.execute(tx.sql["fold_stats"])

        await self._write(op, appends=False)

    async def prune(self, finished_before: float) -> int:
        return await self.purge(FinishedQuery(finished_before=finished_before))

    async def purge(self, query: FinishedQuery) -> int:
        params = _finished_params(query)

        async def op(tx: _Tx) -> int:
            shard = random.randrange(_STAT_SHARDS)
            return int(await tx.conn.fetchval(tx.sql["purge"], *params, _PRUNE_BATCH, shard))

        total = 0
        while True:
            removed = await self._write(op, appends=False)
            total += removed
            if removed < _PRUNE_BATCH:
                return total

    # -- the dashboard -----------------------------------------------------------------

    async def timings(
        self, since: float, owner: str | None = None, limit: int = 20_000
    ) -> builtins.list[Timing]:
        rows = await self._fetch("timings", since, owner, max(0, limit))
        return [
            Timing(
                r["queue"], State(r["state"]), r["scheduled_at"], r["started_at"], r["finished_at"]
            )
            for r in rows
        ]

    async def oldest_queued(self, now: float, owner: str | None = None) -> dict[str, float]:
        rows = await self._fetch("oldest_queued", now, owner)
        return {row["queue"]: float(row["at"]) for row in rows}

    async def count_finished(self, query: FinishedQuery) -> int:
        return int(await self._fetchval("count_finished", *_finished_params(query)))

    async def idempotent_job(self, owner: str, key: str) -> str | None:
        value = await self._fetchval("idempotent_job", owner, key)
        return None if value is None else str(value)

    # -- webhook outbox ----------------------------------------------------------------

    async def claim_deliveries(self, limit: int, lease: float) -> builtins.list[Delivery]:
        if limit <= 0:
            return []

        async def op(tx: _Tx) -> builtins.list[Delivery]:
            claimed = []
            for row in await tx.conn.fetch(tx.sql["due_deliveries"], limit):
                due = _row_to_delivery(row)
                leased = dataclasses.replace(
                    due, claim_token=new_token(), lease_expires_at=row["now"] + lease
                )
                claimed.append(leased)
            if claimed:
                leases = [(d.id, d.claim_token, d.lease_expires_at) for d in claimed]
                await tx.conn.execute(tx.sql["lease_deliveries"], *_columns(leases, 3))
            return claimed

        return await self._write(op, appends=False)

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

        async def op(tx: _Tx) -> Delivery:
            row = await tx.conn.fetchrow(tx.sql["lock_delivery"], delivery_id)
            current = None if row is None else _row_to_delivery(row)
            if (
                row is None
                or current is None
                or current.claim_token != token
                or current.status is not DeliveryStatus.PENDING
            ):
                raise StaleClaim(delivery_id)
            recorded = await tx.conn.fetchrow(
                tx.sql["record_delivery"],
                delivery_id,
                status.value,
                next_attempt_at if status is DeliveryStatus.PENDING else None,
                row["now"],
                status_code,
                error,
                token,
            )
            if recorded is None:
                raise StaleClaim(delivery_id)
            tx.tally_webhook(ok)
            if status is DeliveryStatus.DISABLED:
                reason = f"disabled: delivery {delivery_id} to this URL was answered 410 Gone"
                await tx.conn.execute(
                    tx.sql["disable_deliveries"], current.job_id, current.url, delivery_id, reason
                )
            return _row_to_delivery(recorded)

        return await self._write(op, appends=False)

    async def deliveries_for(self, job_id: str) -> builtins.list[Delivery]:
        return [_row_to_delivery(row) for row in await self._fetch("deliveries_for", job_id)]

    async def next_delivery_at(self) -> float | None:
        value = await self._fetchval("next_delivery_at")
        return None if value is None else float(value)

    # -- statistics --------------------------------------------------------------------

    async def stat_rows(self) -> builtins.list[job_stats.StatRow]:
        rows = await self._fetch("stats")
        return [(r["queue"], r["job"], r["key"], r["value"]) for r in rows]

    # -- worker registry ---------------------------------------------------------------

    async def _execute(self, name: str, *args: Any) -> str:
        try:
            result: str = await self._require_pool().execute(self._sql[name], *args)
        except _REFUSED as exc:
            raise _unavailable(exc, "a write") from exc
        return result

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._execute(
            "register_worker",
            info.id,
            info.host,
            info.pid,
            list(info.queues),
            info.concurrency,
            info.version,
            info.started_at,
            info.last_heartbeat,
            list(info.running),
            list(info.names),
        )

    async def worker_heartbeat(self, worker_id: str, running: Sequence[str], now: float) -> bool:
        status = await self._execute("worker_heartbeat", worker_id, now, list(running))
        return status != "UPDATE 0"

    async def deregister_worker(self, worker_id: str) -> None:
        await self._execute("deregister_worker", worker_id)

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        return [
            WorkerInfo(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                queues=tuple(r["queues"]),
                concurrency=r["concurrency"],
                version=r["version"],
                started_at=r["started_at"],
                last_heartbeat=r["last_heartbeat"],
                running=tuple(r["running"]),
                names=tuple(r["names"]),
            )
            for r in await self._fetch("list_workers")
        ]

    async def prune_workers(self, last_heartbeat_before: float) -> int:
        status = await self._execute("prune_workers", last_heartbeat_before)
        return int(status.rsplit(" ", 1)[-1])

    # -- known job names ---------------------------------------------------------------

    async def record_job_names(self, names: Sequence[str], now: float) -> None:
        if names:
            await self._execute("record_job_names", list(dict.fromkeys(names)), now)

    async def job_names(self) -> dict[str, float]:
        return {r["name"]: r["last_seen"] for r in await self._fetch("job_names")}

    # -- schedules ---------------------------------------------------------------------

    async def track_schedules(self, names: Sequence[str], now: float) -> dict[str, ScheduleState]:
        unique = list(dict.fromkeys(names))
        states = {r["name"]: _schedule(r) for r in await self._fetch("schedule_states", unique)}
        missing = [name for name in unique if name not in states]
        if not missing:  # the usual pass: one read
            return states
        await self._execute("track_schedules", missing, now)
        return {r["name"]: _schedule(r) for r in await self._fetch("schedule_states", unique)}

    async def record_schedule_fire(
        self, name: str, fire_at: float, job_id: str, now: float
    ) -> None:
        await self._execute("record_schedule_fire", name, fire_at, job_id, now)

    async def acquire_permit(
        self, limits: Sequence[Limit], holder: str, expires_at: float, now: float
    ) -> float | None:
        sql, asked = self._sql, time.monotonic()
        try:
            async with self._require_pool().acquire() as conn, conn.transaction():
                for key in sorted({limit.key for limit in limits}):
                    await conn.execute(sql["lock_permit"], f"jobwire-permit:{self.schema}:{key}")
                # Dated when granted: a wait for another acquirer's turn moves it (and
                # the expiry it asks for) on, so a long wait cannot expire other holders
                # early against a permit that would then outlive its lease.
                waited = time.monotonic() - asked
                now, expires_at = now + waited, expires_at + waited
                views = []
                for limit in limits:
                    await conn.execute(sql["prune_starts"], limit.key, now - limit.period)
                    await conn.execute(sql["prune_permits"], limit.key, now)
                    starts = [r[0] for r in await conn.fetch(sql["window_starts"], limit.key)]
                    others = [
                        r[0] for r in await conn.fetch(sql["other_permits"], limit.key, holder)
                    ]
                    views.append(refusal(limit, starts, others, now))
                retry_at = combined(views)
                if retry_at is not None:
                    return retry_at
                for limit in limits:
                    if limit.rate is not None:
                        await conn.execute(sql["add_start"], limit.key, now, holder)
                    if limit.concurrency is not None:
                        await conn.execute(sql["hold_permit"], limit.key, holder, expires_at)
                return None
        except _REFUSED as exc:
            raise _unavailable(exc, "a write") from exc

    async def renew_permits(self, held: Sequence[tuple[str, str]], expires_at: float) -> None:
        try:
            await self._require_pool().executemany(
                self._sql["renew_permit"], [(expires_at, key, holder) for key, holder in held]
            )
        except _REFUSED as exc:
            raise _unavailable(exc, "a write") from exc

    async def release_permit(self, keys: Sequence[str], holder: str) -> None:
        try:
            await self._require_pool().executemany(
                self._sql["release_permit"], [(key, holder) for key in keys]
            )
        except _REFUSED as exc:
            raise _unavailable(exc, "a write") from exc

    async def set_schedule_paused(self, name: str, paused: bool, now: float) -> ScheduleState:
        row = await self._fetchrow("set_schedule_paused", name, paused, now)
        assert row is not None  # an upsert with RETURNING answers its row
        return _schedule(row)

    # -- workflows ---------------------------------------------------------------------

    async def create_workflow(self, workflow: WorkflowRecord) -> None:
        steps = json.dumps(workflow.steps, separators=(",", ":"))
        await self._execute(
            "insert_workflow",
            workflow.id,
            workflow.owner,
            workflow.state.value,
            steps,
            workflow.created_at,
            workflow.updated_at,
        )

    async def get_workflow(
        self, workflow_id: str, owner: str | None = None
    ) -> WorkflowRecord | None:
        row = await self._fetchrow("get_workflow", workflow_id)
        found = None if row is None else _workflow(row)
        return found if found is not None and owner in (None, found.owner) else None

    async def open_workflows(self, limit: int = 1000) -> builtins.list[WorkflowRecord]:
        return [_workflow(r) for r in await self._fetch("open_workflows", limit)]

    async def end_workflow(
        self, workflow_id: str, state: WorkflowState, now: float
    ) -> WorkflowRecord | None:
        row = await self._fetchrow("end_workflow", workflow_id, state.value, now)
        return None if row is None else _workflow(row)


def _workflow(row: asyncpg.Record) -> WorkflowRecord:
    return WorkflowRecord(
        id=row["id"],
        owner=row["owner"],
        state=WorkflowState(row["state"]),
        steps=json.loads(row["steps"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _schedule(row: asyncpg.Record) -> ScheduleState:
    return ScheduleState(
        name=row["name"],
        paused=row["paused"],
        since=row["since"],
        last_fire_at=row["last_fire_at"],
        last_job_id=row["last_job_id"],
        updated_at=row["updated_at"],
    )
