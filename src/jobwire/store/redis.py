"""The Redis store: many machines, lowest latency, atomic claims in Lua.

Every operation that changes a job is one Lua script (``store/lua/redis.lua``), so it
runs atomically in Redis: it reads the job, checks exactly the preconditions of the
:mod:`jobwire.model` function it mirrors (the state, and the claim token: fencing),
applies the same field changes, appends the same events, keeps the indexes below in
step and publishes the wake-ups, or refuses before writing anything. Python encodes
the inputs (times as exact decimal strings, JSON as text, fresh claim tokens from the
OS CSPRNG); Lua decides. The contract suite and its Hypothesis state machine check
that the scripts and the model agree.

Data layout (every key starts with the prefix, ``jobwire:`` by default; ``<x>``
stands for a name with ``%`` and ``:`` percent-encoded):

=================================== =========================================================
``meta``                            hash: ``schema_version``
``job:<id>``                        hash: one field per :class:`~jobwire.model.Job` field;
                                    args, options, result, error and progress as JSON text,
                                    times as Python's exact float text, absent when None;
                                    and ``webhook_url``, ``webhook_events`` (read from the
                                    options at enqueue) and ``webhook_off`` (after a 410)
``events:<id>``                     list: the job's log; entry *n - 1* is event *n*, as JSON
                                    ``{"c": cursor, "s": seq, "t": type, "a": at, "d": data}``
``cursor``                          counter (INCR): the store-wide event cursor; it only grows
``feed``, ``feed:<owner>``          sorted sets, score = cursor, member = ``"<seq> <id>"``:
                                    every event in cursor order, for ``feed()``
``levels:<queue>:<name>``           sorted set of the priorities that have queued jobs of this
                                    queue and job name (score = -priority)
``due:<queue>:<name>:<priority>``   sorted set of queued jobs, score = scheduled_at, ties by
                                    id: a claim walks the levels from the highest priority and
                                    takes the earliest due of every matching set
``leases``                          sorted set of running jobs, score = lease_expires_at (reap)
``finished``                        sorted set of terminal jobs, score = finished_at (prune)
``ids``, ``ids:<owner>``            sorted sets of job ids, all score 0, so ordered by id
                                    (UUIDv7: by time); ``list()`` walks them newest first and
                                    applies the state, job and queue filters while paging
``idem:<owner>:<key>``              hash: ``fingerprint``, ``job``, ``created_at``
``delivery:<id>``                   hash: a webhook delivery (the fields of
                                    :class:`~jobwire.store.base.Delivery`), with a snapshot
                                    of the job taken with its event, from which the body is
                                    rendered by :func:`~jobwire.store.base.webhook_body`
``deliveries:<job id>``             sorted set of the job's deliveries, score = seq
``outbox``                          sorted set of pending deliveries not leased, score =
                                    next_attempt_at (ties by id)
``outbox-leased``                   sorted set of leased deliveries, score = lease expiry
``workers``                         hash: worker id → its registry entry, as JSON (its
                                    ``running`` jobs and job ``names`` as JSON text inside)
``job_names``                       hash: every job name a server or worker registered →
                                    when one last started with it (absent in a store written
                                    before names were kept: read as none, no migration)
``schedule:<name>``                  hash: a schedule's state (the fields of
                                    :class:`~jobwire.store.base.ScheduleState`, times as
                                    exact decimal text); none before schedules were kept
``workflow:<id>``                   hash: a workflow's ``record`` (JSON of its id, owner,
                                    steps and creation time, written once), ``state`` and
                                    ``updated_at``; none before workflows were kept
``workflows:open``                  sorted set of running workflows, score = created_at
``wake``, ``wake:news``               pub/sub channels (below)
``ready:<queue>:<name>``            list: the doorbell, wake-ups for idle workers (below)
``bell:<worker>``                   list: a worker's own interrupt of its doorbell wait,
                                    gone a minute after its last use
=================================== =========================================================

Wake-ups: each script that changes jobs PUBLISHes, in the same script, a line
``from <store instance>`` then its notices: ``job <id>`` and ``jobs <queue>`` on
``wake:news``, ``cancel <id>`` and ``webhooks <id>`` on ``wake``. Every store subscribes
to ``wake``; to ``wake:news`` only once something in its process follows jobs
(:meth:`Store.follow_news`, awaited before a follower first reads), so a worker process
is not woken three times for every job of every other worker. Each store holds one
subscriber connection,
checked with a PING when it has been silent for ``health_check_interval`` seconds and
reconnected with exponential backoff when it drops or the PING goes unanswered; it
hands other instances' notices to :meth:`Store._notify`. A store's own notices (the
script returns them) are delivered as soon as the script returns. Notices are hints:
one lost while the subscriber reconnects costs a follower latency (it re-reads the
log), never an event.

Workers do not claim on the ``jobs`` notice, which every process hears: each idle
worker would run a claim script for every new job, and the one that finds the job would
wait in Redis behind the others. They wait at a doorbell (:class:`RedisDoorbell`): the
scripts that make a job queued and due (enqueue, release, retry, reap) push one token
per such job onto ``ready:<queue>:<name>`` in the same script (at most 64 waiting; a
job due later pushes one only when none is waiting, so that a worker learns when it
falls due), and each idle worker blocks in ``BLPOP`` on the lists of its queues and of
the job names it has free slots for, on a connection of its own, so Redis hands each
token to one worker. A claim leaves no more tokens than jobs still due, and one when it
took all it asked for and jobs are left, for another idle worker. Tokens are hints too:
a worker killed holding one, or a doorbell connection that drops, loses it, and the job
is found by the next claim of any worker (at the latest its ``poll_seconds`` backstop).

Durability is whatever the Redis server is configured to keep; a script's writes are
acknowledged once they are in Redis's memory (and its AOF buffer, when AOF is on):

* no persistence (``save ""``, ``appendonly no``): a Redis restart loses everything —
  every job, its log and its idempotency keys. **The default server on the development
  machines of this project runs like this: it keeps nothing on disk.**
* RDB snapshots only (``save <seconds> <changes>``): a restart brings back the last
  snapshot; everything acknowledged after it is lost.
* AOF with ``appendfsync everysec`` (the usual production setting): a crash of the Redis
  process loses nothing already written to the operating system, which is normally
  every acknowledged write (Redis writes the AOF before it answers; a disk too slow to
  keep up can postpone that write by up to 2 s); a crash or power loss of the host
  loses up to about one second of acknowledged jobs and events.
* AOF with ``appendfsync always``: nothing acknowledged is lost, at the cost of an fsync
  per write.
* Replication is asynchronous: a failover to a replica can lose the writes the old
  primary acknowledged but had not yet sent.

So "accepted" (the 202) means "in Redis's memory", and survives exactly what that
server's persistence settings survive.

Driver errors become :class:`~jobwire.errors.StoreUnavailable` where they enter (each
call below); no redis exception leaves this module. Redis Cluster is not supported:
the scripts derive their keys from the prefix instead of declaring them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from jobwire.errors import (
    AlreadyTerminal,
    ConfigError,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    JobwireError,
    StaleClaim,
    StoreUnavailable,
)
from jobwire.ids import new_token
from jobwire.model import (
    CANCELLED_WHILE_RUNNING,
    Event,
    EventDraft,
    EventType,
    Job,
    Progress,
    State,
)
from jobwire.outage import Outage
from jobwire.retry import Backoff
from jobwire.store import stats as job_stats
from jobwire.store.base import (
    Claim,
    Delivery,
    DeliveryStatus,
    Doorbell,
    Enqueued,
    FinishedQuery,
    HeartbeatReply,
    ListQuery,
    NewJob,
    Notice,
    NoticeKind,
    Page,
    Ring,
    ScheduleState,
    Store,
    WorkerInfo,
    WorkflowRecord,
    WorkflowState,
    status_after_attempt,
    webhook_body,
    webhook_target,
)
from jobwire.store.insight import Timing
from jobwire.throttle import Limit

log = logging.getLogger("jobwire.store.redis")

SCHEMA_VERSION = "2"  # 2: the stats and workers hashes
DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "jobwire:"

_REAP_BATCH = 500  # expired leases per reap, as in the SQLite store
_PRUNE_BATCH = 1000  # jobs deleted per script; prune() loops until fewer are left
_SCAN_PAGE = 1000  # job ids the dashboard's reads look at per round trip
_LIST_BUDGET = 1000  # ids one list script looks at before handing back to Python
_SUBSCRIBE_BACKOFF = Backoff(base=0.05, factor=2.0, cap=5.0, jitter=0.5)
_BELL_TTL_MS = 60_000  # how long a worker's interrupt outlives a worker killed mid-wait
# The shortest BLPOP timeout: a server that truncates it to 0 ms would block forever.
_SHORTEST_BLOCK = 0.01

_checked: set[str] = set()  # servers whose persistence was looked at, once per process
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def scripts() -> dict[str, str]:
    """The named scripts of ``lua/redis.lua``, each with the ``lib`` section in front."""
    text = resources.files("jobwire.store").joinpath("lua", "redis.lua").read_text("utf-8")
    parts = _HEADER.split(text)
    named = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    lib = named.pop("lib")
    return {name: f"{lib}\n\n{body}\n" for name, body in named.items()}


# -- encoding ---------------------------------------------------------------------------

# ASCII-only JSON: every string survives Redis and Lua byte for byte.
_encode = json.JSONEncoder(separators=(",", ":")).encode
_decode = json.JSONDecoder().decode
_STATES = {state.value: state for state in State}
_EVENT_TYPES = {kind.value: kind for kind in EventType}


def _time(value: float) -> str:
    """A time as text that parses back to the same float (Lua would keep 14 digits)."""
    return repr(float(value))


def _float_or_none(text: str | None) -> float | None:
    return None if text is None else float(text)


def _json_or_none(text: str | None) -> Any:
    return None if text is None else _decode(text)


def _job(record: str) -> Job:
    """A job from the JSON object of its hash fields that the scripts answer with."""
    return _job_from(_decode(record))


def _job_from(h: Mapping[str, str]) -> Job:
    progress = _json_or_none(h.get("progress"))
    return Job(
        id=h["id"],
        job=h["job"],
        args=_decode(h["args"]),
        queue=h["queue"],
        state=_STATES[h["state"]],
        owner=h["owner"],
        priority=int(h["priority"]),
        attempts=int(h["attempts"]),
        max_attempts=int(h["max_attempts"]),
        timeout=_float_or_none(h.get("timeout")),
        created_at=float(h["created_at"]),
        scheduled_at=float(h["scheduled_at"]),
        started_at=_float_or_none(h.get("started_at")),
        finished_at=_float_or_none(h.get("finished_at")),
        progress=None if progress is None else Progress(**progress),
        result=_json_or_none(h.get("result")),
        error=_json_or_none(h.get("error")),
        lease_expires_at=_float_or_none(h.get("lease_expires_at")),
        claim_token=h.get("claim_token"),
        worker_id=h.get("worker_id"),
        cancel_requested=h.get("cancel_requested") == "1",
        last_seq=int(h["last_seq"]),
        idempotency_key=h.get("idempotency_key"),
        options=_decode(h["options"]),
        crashes=int(h.get("crashes") or 0),
    )


def _event(job_id: str, entry: str) -> Event:
    e = _decode(entry)
    return Event(job_id, e["s"], _EVENT_TYPES[e["t"]], e["d"], float(e["a"]), e["c"])


def _delivery(record: str) -> Delivery:
    """A delivery from its fields; the body is rendered from the snapshot of the job
    taken in the script that appended the event, so it is the one the event fixed."""
    h: dict[str, str] = _decode(record)
    snap = _decode(h["snapshot"])
    seq = int(h["seq"])
    progress = snap["progress"]
    job = Job(
        id=h["job_id"],
        job=snap["job"],
        args={},
        state=_STATES[snap["state"]],
        attempts=snap["attempts"],
        max_attempts=snap["max_attempts"],
        result=snap["result"],
        error=snap["error"],
        progress=None if progress is None else Progress(**progress),
        last_seq=seq,
    )
    event = Event(h["job_id"], seq, _EVENT_TYPES[h["event"]], snap["data"], float(snap["at"]))
    code = h.get("last_status_code")
    return Delivery(
        id=h["id"],
        job_id=h["job_id"],
        seq=seq,
        event=h["event"],
        url=h["url"],
        body=webhook_body(job, event),
        status=DeliveryStatus(h["status"]),
        attempts=int(h["attempts"]),
        created_at=float(h["created_at"]),
        next_attempt_at=_float_or_none(h.get("next_attempt_at")),
        last_attempt_at=_float_or_none(h.get("last_attempt_at")),
        last_status_code=None if code is None else int(code),
        last_error=h.get("last_error"),
        claim_token=h.get("claim_token"),
        lease_expires_at=_float_or_none(h.get("lease_expires_at")),
    )


_NOTICE_KINDS = {kind.value: kind for kind in NoticeKind}


def _notices(lines: Sequence[str]) -> builtins.list[Notice]:
    """Notices from ``"<kind> <key>"`` lines, as the scripts publish them."""
    notices = []
    for line in lines:
        kind, _, key = line.partition(" ")
        if kind in _NOTICE_KINDS:
            notices.append(Notice(_NOTICE_KINDS[kind], key))
    return notices


def _refusal(exc: ResponseError) -> JobwireError | None:
    """The jobwire exception a script raised with ``refuse()``, if it was one."""
    text = str(exc)
    if not text.startswith("JOBWIRE "):
        return None
    # Redis appends " script: <sha>, on @user_script:<line>." after the JSON.
    (kind, a, b, c), _ = json.JSONDecoder().raw_decode(text, len("JOBWIRE "))
    if kind == "notfound":
        return JobNotFound(a)
    if kind == "stale":
        return StaleClaim(a)
    if kind == "invalid":
        return InvalidTransition(a, b, c)
    if kind == "terminal":
        return AlreadyTerminal(a, b, c)
    if kind == "conflict":
        return IdempotencyConflict(a)
    return None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _unavailable(what: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"redis {what} failed: {type(exc).__name__}: {exc}")


class RedisStore(Store):
    """Jobs in Redis; see the module docstring for the layout and what survives what.

    ``url`` is a redis-py URL (``redis://[[user]:password@]host[:port][/db]``,
    ``rediss://`` for TLS, ``unix://path?db=N``); ``prefix`` starts every key, so that
    several applications (or tests) can share one database. ``max_connections``: the
    most commands in flight at once; more wait for a free connection.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        health_check_interval: float = 10.0,
        socket_timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        super().__init__()
        if not prefix:
            raise ConfigError("the Redis store needs a non-empty key prefix, e.g. 'jobwire:'")
        if not health_check_interval > 0:
            raise ConfigError(
                f"health_check_interval: expected a positive number, got {health_check_interval!r}"
            )
        self.url = url
        self.prefix = prefix
        self.health_check_interval = health_check_interval
        self.socket_timeout = socket_timeout
        if max_connections < 1:
            raise ConfigError(f"max_connections: expected at least 1, got {max_connections!r}")
        self.max_connections = max_connections
        self._origin = uuid.uuid4().hex  # tells this instance's own wake-ups from others'
        self._channel = prefix + "wake"  # cancels and webhooks: every process hears them
        # Job news (job, jobs): heard only once something here follows jobs (follow_news):
        # a worker process is not woken three times for every job of every other worker.
        self._news_channel = prefix + "wake:news"
        self._news_wanted = False
        self._news_heard = asyncio.Event()  # the subscription to the news is confirmed
        self._pubsub: PubSub | None = None
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._subscriber_client: aioredis.Redis | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Condition()
        self.subscriptions = 0  # how many times the wake-up channel was (re)subscribed

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://host:port/db?prefix=myapp:``: the ``prefix`` parameter is jobwire's;
        every other one goes to redis-py."""
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        prefix = DEFAULT_PREFIX
        rest = []
        for key, value in params:
            if key == "prefix":
                if not value:
                    raise ConfigError(f"JOBWIRE_URL: the prefix in {_redacted(url)!r} is empty")
                prefix = value
            else:
                rest.append((key, value))
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
        return cls(bare, prefix=prefix)

    def __repr__(self) -> str:
        return f"RedisStore({_redacted(self.url)!r}, prefix={self.prefix!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            return
        self._subscribed = asyncio.Condition()  # on this event loop
        self._news_heard = asyncio.Event()
        client = self._connect(
            socket_timeout=self.socket_timeout, health_check_interval=30, name="jobwire"
        )
        subscriber_client = self._connect(
            socket_timeout=None, health_check_interval=0, name=self.subscriber_name
        )
        try:
            meta = self.prefix + "meta"
            await client.hsetnx(meta, "schema_version", SCHEMA_VERSION)  # type: ignore[misc]
            found = cast("str | None", await client.hget(meta, "schema_version"))  # type: ignore[misc]
            if found == "1":
                migrate = client.register_script(scripts()["migrate_2"])
                await migrate(args=[self.prefix])
                found = cast("str | None", await client.hget(meta, "schema_version"))  # type: ignore[misc]
            if found != SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"the data under prefix {self.prefix!r} has schema version {found}; "
                    f"this jobwire expects {SCHEMA_VERSION}"
                )
            await self._warn_about_persistence(client)
            self._scripts = {name: client.register_script(text) for name, text in scripts().items()}
            pubsub = await self._subscribe(subscriber_client)
        except (RedisError, OSError, TimeoutError) as exc:
            await client.aclose()
            await subscriber_client.aclose()
            reason = f"{type(exc).__name__}: {exc}"
            raise StoreUnavailable(f"cannot open redis at {_redacted(self.url)}: {reason}") from exc
        except BaseException:
            await client.aclose()
            await subscriber_client.aclose()
            raise
        self._client = client
        self._subscriber_client = subscriber_client
        self._subscriber = asyncio.create_task(
            self._listen(pubsub), name=f"jobwire-redis-wakeups-{self.prefix}"
        )

    @property
    def subscriber_name(self) -> str:
        """The CLIENT SETNAME of this store's wake-up subscriber connection."""
        return f"jobwire-wakeups-{self._origin}"

    def _connect(
        self, *, socket_timeout: float | None, health_check_interval: int, name: str
    ) -> aioredis.Redis:
        # A burst of commands beyond max_connections waits for a free connection (up to
        # socket_timeout) instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=socket_timeout,
            decode_responses=True,
            # No automatic retries: a script whose reply was lost may have run, and
            # running it again would answer "stale claim" or "enqueued twice" about one's
            # own write.
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=5.0,
            socket_timeout=socket_timeout,
            socket_keepalive=True,
            health_check_interval=health_check_interval,
            client_name=name,
            protocol=2,  # no HELLO round trip per connection; every reply here is RESP2-shaped
        )
        return aioredis.Redis.from_pool(pool)

    async def _warn_about_persistence(self, client: aioredis.Redis) -> None:
        if self.url in _checked:
            return
        _checked.add(self.url)
        try:
            info = await client.info("persistence")
        except ResponseError:  # INFO may be disabled on managed servers
            return
        if not info.get("aof_enabled"):
            log.warning(
                "redis at %s has AOF off: a Redis restart keeps only what its last RDB "
                "snapshot holds, if it takes any (see jobwire.store.redis for what each "
                "persistence setting survives)",
                _redacted(self.url),
            )

    async def close(self) -> None:
        client, self._client = self._client, None
        task, self._subscriber = self._subscriber, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscriber_client, self._subscriber_client = self._subscriber_client, None
        if subscriber_client is not None:
            await subscriber_client.aclose()
        if client is not None:
            await client.aclose()

    async def ping(self) -> None:
        found: str | None = await self._call(
            "ping", lambda c: c.hget(self.prefix + "meta", "schema_version")
        )
        if found != SCHEMA_VERSION:
            raise StoreUnavailable(f"schema version is {found}, expected {SCHEMA_VERSION}")

    # -- plumbing ----------------------------------------------------------------------

    def _open_client(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreUnavailable("the store is not open")
        return self._client

    async def _call(self, what: str, command: Callable[[aioredis.Redis], Any]) -> Any:
        """Run one plain command (redis-py types its results loosely: callers say what
        they get)."""
        client = self._open_client()
        try:
            return await command(client)
        except (RedisError, OSError) as exc:
            raise _unavailable(what, exc) from exc

    async def _run(self, name: str, *args: Any) -> Any:
        self._open_client()
        try:
            return await self._scripts[name](args=[self.prefix, *args])
        except ResponseError as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise refusal from None
            raise _unavailable(f"script {name}", exc) from exc
        except (RedisError, OSError) as exc:
            raise _unavailable(f"script {name}", exc) from exc

    async def _write(self, name: str, *args: Any, now: float | None = None) -> Any:
        """Run a script that writes; deliver the wake-ups it published to our listeners."""
        at = time.time() if now is None else now
        result, lines = await self._run(name, self._origin, _time(at), *args)
        self._notify(_notices(lines))
        return result

    async def _change(self, name: str, *args: Any) -> Job:
        """Run a script that changes one job and answers with its fields."""
        return _job(await self._write(name, *args))

    # -- producing ---------------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Enqueued]:
        if not jobs:
            return []
        now = time.time()
        specs = [_encode(self._spec(new, now)) for new in jobs]
        rows = await self._write("enqueue", *specs, now=now)
        return [Enqueued(_job(fields), created=bool(created)) for created, fields in rows]

    @staticmethod
    def _spec(new: NewJob, now: float) -> dict[str, Any]:
        # The options never change, so the webhook they ask for is read once, here.
        target = webhook_target(new.options)
        url, wanted = target if target is not None else (None, frozenset())
        return {
            "id": new.id,
            "job": new.job,
            "queue": new.queue,
            "owner": new.owner,
            "priority": str(int(new.priority)),
            "max_attempts": str(int(new.max_attempts)),
            "timeout": None if new.timeout is None else _time(new.timeout),
            "scheduled_at": _time(now if new.scheduled_at is None else new.scheduled_at),
            "args": _encode(new.args),
            "options": _encode(new.options),
            "key": new.idempotency_key,
            "fp": _encode(new.fingerprint),
            "webhook_url": url,
            "webhook_events": " " + "".join(f"{kind.value} " for kind in sorted(wanted)),
        }

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
        queue_list = list(dict.fromkeys(queues))
        name_list = list(dict.fromkeys(names))
        now = time.time()
        rows = await self._write(
            "claim",
            _time(now + lease),
            worker_id,
            limit,
            len(queue_list),
            *queue_list,
            len(name_list),
            *name_list,
            *(new_token() for _ in range(limit)),
            now=now,
        )
        jobs = [_job(fields) for fields in rows]
        return [Claim(job, job.claim_token or "") for job in jobs]

    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        if not tokens:
            return HeartbeatReply(frozenset(), frozenset())
        pairs = [part for item in tokens.items() for part in item]
        now = time.time()
        lost, cancel = await self._write("heartbeat", _time(now + lease), *pairs, now=now)
        return HeartbeatReply(frozenset(lost), frozenset(cancel))

    async def report(self, job_id: str, token: str, events: Sequence[EventDraft]) -> None:
        if not events:
            return
        args: list[str] = []
        for draft in events:
            progress = ""
            if draft.type is EventType.PROGRESS:
                data = draft.data
                current = Progress(data.get("current", 0), data.get("total"), data.get("message"))
                progress = _encode(current.as_dict())
            args += [draft.type.value, _encode(draft.data), progress]
        await self._change("report", job_id, token, *args)

    async def finish(self, job_id: str, token: str, result: Any) -> Job:
        return await self._change("succeed", job_id, token, _encode(result))

    async def fail(
        self,
        job_id: str,
        token: str,
        error: dict[str, Any],
        retry_at: float | None,
        *,
        charge: bool = True,
    ) -> Job:
        retry = "" if retry_at is None else _time(retry_at)
        charged = "1" if charge else "0"
        return await self._change("fail", job_id, token, _encode(error), retry, charged)

    async def release(self, job_id: str, token: str, due_at: float | None = None) -> Job:
        return await self._change("release", job_id, token, "" if due_at is None else _time(due_at))

    async def mark_cancelled(
        self, job_id: str, token: str, reason: str = CANCELLED_WHILE_RUNNING
    ) -> Job:
        return await self._change("cancelled", job_id, token, reason)

    # -- controlling -------------------------------------------------------------------

    async def cancel_expired(self, job_id: str) -> Job:
        return await self._change("cancel_expired", job_id)

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        return await self._change("cancel", job_id, _encode(owner))

    # -- reading -----------------------------------------------------------------------

    async def get(self, job_id: str, owner: str | None = None) -> Job | None:
        key = self._job_key(job_id)
        fields: dict[str, str] = await self._call("get", lambda c: c.hgetall(key))
        if not fields:
            return None
        job = _job_from(fields)
        if owner is not None and job.owner != owner:
            return None
        return job

    async def list(self, query: ListQuery) -> Page:
        limit = max(1, query.limit)
        states = [state.value for state in query.states]
        items: builtins.list[Job] = []
        before = query.before_id
        while True:
            filters = {
                "owner": query.owner,
                "before": before,
                "job": query.job,
                "queue": query.queue,
                "states": states,
            }
            found, last, exhausted = await self._run(
                "list_page", _encode(filters), limit + 1 - len(items), _LIST_BUDGET
            )
            items.extend(_job(fields) for fields in found)
            if len(items) > limit or exhausted or not last:
                break
            before = last
        page = items[:limit]
        return Page(page, page[-1].id if len(items) > limit else None)

    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> builtins.list[Event]:
        if limit <= 0:
            return []
        start = max(0, after)
        key = self._events_key(job_id)
        entries: builtins.list[str] = await self._call(
            "events", lambda c: c.lrange(key, start, start + limit - 1)
        )
        return [_event(job_id, entry) for entry in entries]

    async def feed(
        self, after: int, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[Event]:
        if limit <= 0:
            return []
        flat = await self._run("feed", int(after), _encode(owner), limit)
        return [_event(job_id, entry) for job_id, entry in zip(flat[::2], flat[1::2], strict=True)]

    async def last_cursor(self) -> int:
        value: str | None = await self._call("last_cursor", lambda c: c.get(self.prefix + "cursor"))
        return int(value or 0)

    async def next_due(self, queues: Sequence[str], names: Sequence[str]) -> float | None:
        if not queues or not names:
            return None
        queue_list = list(dict.fromkeys(queues))
        due = await self._run("next_due", len(queue_list), *queue_list, *dict.fromkeys(names))
        return None if due is None else float(due)

    # -- maintenance -------------------------------------------------------------------

    async def reap(self, now: float | None = None) -> builtins.list[Job]:
        at = time.time() if now is None else now
        rows = await self._write("reap", _time(at), _REAP_BATCH)
        return [_job(fields) for fields in rows]

    async def prune(self, finished_before: float) -> int:
        total = 0
        while True:
            removed = int(await self._write("prune", _time(finished_before), _PRUNE_BATCH))
            total += removed
            if removed < _PRUNE_BATCH:
                return total

    # -- the dashboard -----------------------------------------------------------------

    async def _hmget(
        self, ids: Sequence[str], names: Sequence[str]
    ) -> builtins.list[builtins.list[str | None]]:
        """The named fields of these jobs, one round trip."""

        async def run(client: aioredis.Redis) -> builtins.list[builtins.list[str | None]]:
            async with client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(self._job_key(job_id), list(names))
                return list(await pipe.execute())

        return await self._call("read jobs", run) if ids else []

    async def _finished_ids(
        self, low: str, high: str, newest_first: bool, offset: int, count: int
    ) -> builtins.list[str]:
        key = self.prefix + "finished"

        async def run(client: aioredis.Redis) -> Any:
            if newest_first:
                return await client.zrevrangebyscore(key, high, low, start=offset, num=count)
            return await client.zrangebyscore(key, low, high, start=offset, num=count)

        ids: builtins.list[str] = await self._call("finished", run)
        return ids

    async def timings(
        self, since: float, owner: str | None = None, limit: int = 20_000
    ) -> builtins.list[Timing]:
        names = ("owner", "queue", "state", "scheduled_at", "started_at", "finished_at")
        found: builtins.list[Timing] = []
        offset = 0
        while len(found) < limit:
            ids = await self._finished_ids(_time(since), "+inf", True, offset, _SCAN_PAGE)
            offset += len(ids)
            for row in await self._hmget(ids, names):
                who, queue, state, scheduled, started, finished = row
                if state is None or finished is None or (owner is not None and who != owner):
                    continue
                found.append(
                    Timing(
                        queue or "",
                        State(state),
                        float(scheduled or 0.0),
                        _float_or_none(started),
                        float(finished),
                    )
                )
            if len(ids) < _SCAN_PAGE:
                break
        return found[: max(0, limit)]

    async def oldest_queued(self, now: float, owner: str | None = None) -> dict[str, float]:
        levels = self.prefix + "levels:"
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", levels) + "*"

        async def scan(client: aioredis.Redis) -> builtins.list[str]:
            return [key async for key in client.scan_iter(match=pattern, count=500)]

        oldest: dict[str, float] = {}
        for key in await self._call("oldest queued", scan):
            queue_part, _, name_part = key[len(levels) :].partition(":")
            queue, name = unquote(queue_part), unquote(name_part)
            priorities = await self._zrange(key)
            for priority in priorities:
                due = f"{self.prefix}due:{_key_part(queue)}:{_key_part(name)}:{priority}"
                at = await self._earliest_due(due, now, owner)
                if at is not None:
                    oldest[queue] = min(oldest.get(queue, at), at)
        return oldest

    async def _zrange(self, key: str) -> builtins.list[str]:
        members: builtins.list[str] = await self._call("levels", lambda c: c.zrange(key, 0, -1))
        return members

    async def _earliest_due(self, key: str, now: float, owner: str | None) -> float | None:
        offset = 0
        while True:
            entries: builtins.list[tuple[str, float]] = await self._call(
                "oldest queued",
                functools.partial(
                    _due_page, key=key, until=_time(now), offset=offset, count=_SCAN_PAGE
                ),
            )
            if owner is None:
                return entries[0][1] if entries else None
            owners = await self._hmget([job_id for job_id, _ in entries], ("owner",))
            for (_, at), (who,) in zip(entries, owners, strict=True):
                if who == owner:
                    return float(at)
            if len(entries) < _SCAN_PAGE:
                return None
            offset += len(entries)

    async def _matching_finished(self, query: FinishedQuery) -> builtins.list[str]:
        """Ids of the terminal jobs the query matches, oldest finished first."""
        low = "-inf" if query.finished_after is None else _time(query.finished_after)
        high = "+inf" if query.finished_before is None else "(" + _time(query.finished_before)
        states = set(query.state_names)
        names = ("owner", "state", "job", "queue")
        matched: builtins.list[str] = []
        offset = 0
        while True:
            ids = await self._finished_ids(low, high, False, offset, _SCAN_PAGE)
            offset += len(ids)
            for job_id, (who, state, name, queue) in zip(
                ids, await self._hmget(ids, names), strict=True
            ):
                if (
                    state in states
                    and (query.owner is None or who == query.owner)
                    and (query.job is None or name == query.job)
                    and (query.queue is None or queue == query.queue)
                ):
                    matched.append(job_id)
            if len(ids) < _SCAN_PAGE:
                return matched

    async def count_finished(self, query: FinishedQuery) -> int:
        return len(await self._matching_finished(query))

    async def purge(self, query: FinishedQuery) -> int:
        doomed = await self._matching_finished(query)
        total = 0
        for first in range(0, len(doomed), _PRUNE_BATCH):
            total += int(await self._write("purge_ids", *doomed[first : first + _PRUNE_BATCH]))
        return total

    async def idempotent_job(self, owner: str, key: str) -> str | None:
        name = f"{self.prefix}idem:{_key_part(owner)}:{_key_part(key)}"
        value: str | None = await self._call("idempotent job", lambda c: c.hget(name, "job"))
        return value

    # -- webhook outbox ----------------------------------------------------------------

    async def claim_deliveries(self, limit: int, lease: float) -> builtins.list[Delivery]:
        if limit <= 0:
            return []
        now = time.time()
        tokens = [new_token() for _ in range(limit)]
        rows = await self._write("claim_deliveries", _time(now + lease), limit, *tokens, now=now)
        return [_delivery(fields) for fields in rows]

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
        pending = status is DeliveryStatus.PENDING and next_attempt_at is not None
        fields = await self._write(
            "record_delivery",
            delivery_id,
            token,
            status.value,
            _time(next_attempt_at) if pending and next_attempt_at is not None else "",
            "" if status_code is None else str(int(status_code)),
            _encode(error),
        )
        return _delivery(fields)

    async def deliveries_for(self, job_id: str) -> builtins.list[Delivery]:
        rows = await self._run("deliveries_for", job_id)
        return [_delivery(fields) for fields in rows]

    async def next_delivery_at(self) -> float | None:
        at = await self._run("next_delivery_at")
        return None if at is None else float(at)

    # -- statistics --------------------------------------------------------------------

    async def stat_rows(self) -> builtins.list[job_stats.StatRow]:
        flat: dict[str, str] = await self._call("stats", lambda c: c.hgetall(self.prefix + "stats"))
        rows = []
        for field_, value in flat.items():
            queue, name, key = json.loads(field_)
            rows.append((queue, name, key, float(value)))
        return rows

    # -- worker registry ---------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        record = {
            "host": info.host,
            "pid": info.pid,
            "queues": list(info.queues),
            "concurrency": info.concurrency,
            "version": info.version,
            "started_at": _time(info.started_at),
            "last_heartbeat": _time(info.last_heartbeat),
            "running": _encode(list(info.running)),
            # JSON text, like "running": the heartbeat script's cjson would turn [] into {}.
            "names": _encode(list(info.names)),
        }
        await self._call(
            "register_worker",
            lambda c: c.hset(self.prefix + "workers", info.id, _encode(record)),
        )

    async def worker_heartbeat(self, worker_id: str, running: Sequence[str], now: float) -> bool:
        found = await self._run("worker_heartbeat", worker_id, _time(now), _encode(list(running)))
        return bool(found)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._call("deregister_worker", lambda c: c.hdel(self.prefix + "workers", worker_id))

    async def list_workers(self) -> builtins.list[WorkerInfo]:
        flat: dict[str, str] = await self._call(
            "list_workers", lambda c: c.hgetall(self.prefix + "workers")
        )
        workers = []
        for worker_id, text in sorted(flat.items()):
            r = json.loads(text)
            workers.append(
                WorkerInfo(
                    id=worker_id,
                    host=r["host"],
                    pid=int(r["pid"]),
                    queues=tuple(r["queues"]),
                    concurrency=int(r["concurrency"]),
                    version=r["version"],
                    started_at=float(r["started_at"]),
                    last_heartbeat=float(r["last_heartbeat"]),
                    running=tuple(json.loads(r["running"])),
                    names=tuple(json.loads(r.get("names", "[]"))),
                )
            )
        return workers

    async def prune_workers(self, last_heartbeat_before: float) -> int:
        return int(await self._run("prune_workers", _time(last_heartbeat_before)))

    # -- known job names ---------------------------------------------------------------

    async def record_job_names(self, names: Sequence[str], now: float) -> None:
        if names:
            await self._run("record_job_names", _time(now), *dict.fromkeys(names))

    async def job_names(self) -> dict[str, float]:
        flat: dict[str, str] = await self._call(
            "job_names", lambda c: c.hgetall(self.prefix + "job_names")
        )
        return {name: float(seen) for name, seen in sorted(flat.items())}

    # -- schedules ---------------------------------------------------------------------

    async def track_schedules(self, names: Sequence[str], now: float) -> dict[str, ScheduleState]:
        unique = list(dict.fromkeys(names))
        states = await self._schedule_states(unique)
        missing = [name for name in unique if name not in states]
        if not missing:  # the usual pass: one round trip of reads
            return states
        await self._run("track_schedules", _time(now), *missing)
        return await self._schedule_states(unique)

    async def _schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        async def read(client: aioredis.Redis) -> list[dict[str, str]]:
            async with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self._schedule_key(name))
                return list(await pipe.execute())

        found = await self._call("schedule states", read) if names else []
        return {name: _schedule(flat) for name, flat in zip(names, found, strict=True) if flat}

    async def record_schedule_fire(
        self, name: str, fire_at: float, job_id: str, now: float
    ) -> None:
        await self._run("record_schedule_fire", name, _time(fire_at), job_id, _time(now))

    async def acquire_permit(
        self, limits: Sequence[Limit], holder: str, expires_at: float, now: float
    ) -> float | None:
        args: list[str] = [holder, _time(expires_at), _time(now)]
        for limit in limits:
            args += [
                limit.key,
                "" if limit.rate is None else str(limit.rate),
                _time(limit.period),
                "" if limit.concurrency is None else str(limit.concurrency),
            ]
        retry_at = await self._run("acquire_permit", *args)
        return None if retry_at is None else float(retry_at)

    async def renew_permits(self, held: Sequence[tuple[str, str]], expires_at: float) -> None:
        if held:
            await self._run(
                "renew_permits", _time(expires_at), *(part for pair in held for part in pair)
            )

    async def release_permit(self, keys: Sequence[str], holder: str) -> None:
        if keys:
            await self._run("release_permit", holder, *keys)

    async def set_schedule_paused(self, name: str, paused: bool, now: float) -> ScheduleState:
        flat = await self._run("set_schedule_paused", name, "1" if paused else "0", _time(now))
        return _schedule(dict(zip(flat[::2], flat[1::2], strict=True)))

    def _schedule_key(self, name: str) -> str:
        return f"{self.prefix}schedule:{_key_part(name)}"

    # -- workflows ---------------------------------------------------------------------

    async def create_workflow(self, workflow: WorkflowRecord) -> None:
        fixed = {
            "id": workflow.id,
            "owner": workflow.owner,
            "steps": workflow.steps,
            "created_at": workflow.created_at,
        }
        mapping: dict[Any, Any] = {
            "record": json.dumps(fixed, separators=(",", ":")),
            "state": workflow.state.value,
            "updated_at": _time(workflow.updated_at),
        }

        async def write(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self._workflow_key(workflow.id), mapping=mapping)
                if workflow.state is WorkflowState.RUNNING:
                    pipe.zadd(f"{self.prefix}workflows:open", {workflow.id: workflow.created_at})
                await pipe.execute()

        await self._call("create workflow", write)

    async def get_workflow(
        self, workflow_id: str, owner: str | None = None
    ) -> WorkflowRecord | None:
        async def read(client: aioredis.Redis) -> Any:
            return await client.hgetall(self._workflow_key(workflow_id))

        flat: dict[str, str] = await self._call("get workflow", read)
        found = _workflow(flat) if flat else None
        return found if found is not None and owner in (None, found.owner) else None

    async def open_workflows(self, limit: int = 1000) -> builtins.list[WorkflowRecord]:
        async def read(client: aioredis.Redis) -> builtins.list[dict[str, str]]:
            ids = await client.zrange(f"{self.prefix}workflows:open", 0, max(0, limit - 1))
            async with client.pipeline(transaction=False) as pipe:
                for workflow_id in ids:
                    pipe.hgetall(self._workflow_key(str(workflow_id)))
                return list(await pipe.execute())

        found = await self._call("open workflows", read) if limit > 0 else []
        return [_workflow(flat) for flat in found if flat]

    async def end_workflow(
        self, workflow_id: str, state: WorkflowState, now: float
    ) -> WorkflowRecord | None:
        flat = await self._run("end_workflow", workflow_id, state.value, _time(now))
        if not flat:
            return None
        return _workflow(dict(zip(flat[::2], flat[1::2], strict=True)))

    def _workflow_key(self, workflow_id: str) -> str:
        return f"{self.prefix}workflow:{_key_part(workflow_id)}"

    # -- keys (as the scripts build them) ------------------------------------------------

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{_key_part(job_id)}"

    def _events_key(self, job_id: str) -> str:
        return f"{self.prefix}events:{_key_part(job_id)}"

    # -- wake-ups ----------------------------------------------------------------------

    def doorbell(self, waiter: str) -> Doorbell:
        return RedisDoorbell(self, waiter)

    @property
    def doorbell_name(self) -> str:
        """The CLIENT SETNAME of this store's doorbell connections (one per worker)."""
        return f"jobwire-doorbell-{self._origin}"

    def _ready_key(self, queue: str, name: str) -> str:
        return f"{self.prefix}ready:{_key_part(queue)}:{_key_part(name)}"

    async def _subscribe(self, client: aioredis.Redis) -> PubSub:
        """Subscribe and wait for Redis to confirm, so no PUBLISH after this is missed."""
        pubsub = client.pubsub()
        news = self._news_wanted
        channels = [self._channel, *([self._news_channel] if news else [])]
        try:
            await pubsub.subscribe(*channels)
            confirmed: set[str] = set()
            async with asyncio.timeout(self.health_check_interval):
                while len(confirmed) < len(channels):
                    message = await pubsub.get_message(timeout=self.health_check_interval)
                    if message is not None and message["type"] == "subscribe":
                        confirmed.add(message["channel"])
            if news:
                self._news_heard.set()
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        async with self._subscribed:
            self.subscriptions += 1
            self._subscribed.notify_all()
        return pubsub

    async def wait_subscribed(self, after: int = 0) -> int:
        """Wait until the wake-up channel has been subscribed more than ``after`` times.

        A test signal: after the subscriber connection is killed, ``await
        store.wait_subscribed(n)`` returns once it is back; it returns the new count.
        """
        async with self._subscribed:
            await self._subscribed.wait_for(lambda: self.subscriptions > after)
            return self.subscriptions

    async def _listen(self, pubsub: PubSub | None) -> None:
        """Deliver wake-ups until cancelled, reconnecting with backoff when dropped."""
        outage = Outage(log, "redis wake-ups (pub/sub)", _SUBSCRIBE_BACKOFF)
        try:
            while True:
                try:
                    if pubsub is None:
                        client = self._subscriber_client
                        assert client is not None
                        pubsub = await self._subscribe(client)
                        outage.succeeded()
                        log.info("redis wake-up subscription restored")
                        # Whatever was published while it was down went unheard.
                        self._notify([Notice(NoticeKind.RESYNC, "")])
                    self._pubsub = pubsub
                    if self._news_wanted and not self._news_heard.is_set():
                        await pubsub.subscribe(self._news_channel)  # asked for meanwhile
                    await self._pump(pubsub)
                except Exception as exc:  # lost, or broken: either way, start afresh
                    self._pubsub = None
                    self._news_heard.clear()
                    if pubsub is not None:
                        log.warning(
                            "redis wake-up subscription lost (%s: %s); reconnecting",
                            type(exc).__name__,
                            exc,
                        )
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()  # type: ignore[no-untyped-call]
                        pubsub = None
                        delay = outage.backoff.delay(1)
                    else:
                        delay = outage.failed(exc)
                    await asyncio.sleep(delay)
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _pump(self, pubsub: PubSub) -> None:
        """Read messages; a silence answers a PING, and a PING unanswered is a dead link."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self.health_check_interval)
            if message is None:
                if pinged:
                    raise TimeoutError(
                        f"no answer to a PING within {self.health_check_interval:g} s"
                    )
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "message":
                self._deliver(message["data"])
            elif message["type"] == "subscribe" and message["channel"] == self._news_channel:
                self._news_heard.set()

    async def follow_news(self) -> None:
        if not self._news_wanted:
            self._news_wanted = True
            pubsub = self._pubsub
            if pubsub is not None:
                # The listener's pump reads the confirmation; while the link is down,
                # the listener subscribes to both channels when it is back.
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.subscribe(self._news_channel)
        if self._news_heard.is_set():
            return
        # Until Redis confirms, news published now would go unheard: wait for it, within
        # bounds (a follower re-reads its job every few seconds whatever happens).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.health_check_interval):
                await self._news_heard.wait()

    def _deliver(self, payload: str) -> None:
        origin, _, body = payload.partition("\n")
        if origin == f"from {self._origin}":
            return  # already delivered when the script returned
        try:
            self._notify(_notices(body.split("\n")))
        except Exception:
            log.exception("a wake-up listener failed")


class RedisDoorbell(Doorbell):
    """A worker's doorbell: ``BLPOP`` on the ``ready:<queue>:<name>`` lists it may take
    work from, on a connection of its own, with its own ``bell:<worker>`` list first:
    :meth:`interrupt` pushes there, so that a wait ends even when the ``BLPOP`` has not
    reached Redis yet. A connection that drops answers "look again" at once; while it
    cannot be made again, each wait backs off first."""

    def __init__(self, store: RedisStore, waiter: str) -> None:
        self._store = store
        self._bell = f"{store.prefix}bell:{_key_part(waiter)}"
        self._client: aioredis.Redis | None = None
        self._interrupted = asyncio.Event()
        self._blocking = False  # a BLPOP may be on its way or blocked: ring the bell
        self._healthy = False  # the last BLPOP was answered
        self._outage = Outage(log, f"redis doorbell of worker {waiter}", _SUBSCRIBE_BACKOFF)

    async def wait(
        self, queues: Sequence[str], names: Sequence[str], timeout: float
    ) -> Ring | None:
        try:
            if self._interrupted.is_set() or timeout <= 0 or not queues or not names:
                return None
            keys = [
                self._store._ready_key(queue, name)
                for queue in dict.fromkeys(queues)
                for name in dict.fromkeys(names)
            ]
            try:
                taken = await self._blpop([self._bell, *keys], timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                await self._drop()
                if self._healthy:
                    self._healthy = False
                    log.warning(
                        "redis doorbell connection lost (%s: %s); reconnecting",
                        type(exc).__name__,
                        exc,
                    )
                else:
                    pause = min(self._outage.failed(exc), timeout)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._interrupted.wait(), pause)
                return Ring(None)
            self._healthy = True
            self._outage.succeeded()
        finally:
            self._interrupted.clear()
        if taken is None or taken[0] == self._bell:
            return None
        return Ring(taken[0])

    async def _blpop(self, keys: builtins.list[str], timeout: float) -> tuple[str, str] | None:
        client = self._client
        if client is None:
            client = self._client = self._store._connect(
                socket_timeout=None, health_check_interval=0, name=self._store.doorbell_name
            )
        self._blocking = True
        try:
            # A link that died without a word answers nothing: give up a while after
            # Redis would have answered the timeout.
            async with asyncio.timeout(timeout + self._store.health_check_interval):
                reply = await client.blpop(  # type: ignore[misc]
                    keys, timeout=max(timeout, _SHORTEST_BLOCK)
                )
        finally:
            self._blocking = False
        return None if reply is None else (str(reply[0]), str(reply[1]))

    async def interrupt(self) -> None:
        self._interrupted.set()
        if not self._blocking:
            return
        bell = self._bell

        async def ring_bell(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.rpush(bell, "1")
                pipe.pexpire(bell, _BELL_TTL_MS)
                await pipe.execute()

        try:
            await self._store._call("doorbell interrupt", ring_bell)
        except StoreUnavailable:
            await self._drop()  # ends the BLPOP with an error: the wait answers at once

    async def pass_on(self, ring: Ring) -> None:
        if ring.source is None:
            return
        try:
            await self._store._run("pass_on", ring.source)
        except StoreUnavailable as exc:
            # Another worker's poll will see the job.
            log.debug("a wake-up was not passed on: %s", exc)

    async def close(self) -> None:
        self._interrupted.set()
        await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


async def _due_page(
    client: aioredis.Redis, *, key: str, until: str, offset: int, count: int
) -> Any:
    return await client.zrangebyscore(key, "-inf", until, start=offset, num=count, withscores=True)


def _key_part(name: str) -> str:
    """As the scripts' ``enc``: percent-encode ``%`` and ``:`` in a key component."""
    return name.replace("%", "%25").replace(":", "%3A")


__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "SCHEMA_VERSION", "RedisStore"]


def _workflow(flat: Mapping[str, str]) -> WorkflowRecord:
    fixed = json.loads(flat["record"])
    return WorkflowRecord(
        id=fixed["id"],
        owner=fixed["owner"],
        steps=fixed["steps"],
        state=WorkflowState(flat["state"]),
        created_at=fixed["created_at"],
        updated_at=float(flat["updated_at"]),
    )


def _schedule(flat: Mapping[str, str]) -> ScheduleState:
    last = flat.get("last_fire_at")
    return ScheduleState(
        name=flat["name"],
        paused=flat.get("paused") == "1",
        since=float(flat["since"]),
        last_fire_at=None if last is None else float(last),
        last_job_id=flat.get("last_job_id"),
        updated_at=float(flat.get("updated_at", "0")),
    )
