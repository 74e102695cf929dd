"""What the Redis store promises beyond the contract: many instances over one server
claim each job once, wake each other through pub/sub, and survive a dropped subscriber."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest
import redis.asyncio as aioredis

from jobwire.errors import ConfigError, StaleClaim, StoreUnavailable
from jobwire.ids import new_job_id
from jobwire.model import State
from jobwire.store import store_from_url
from jobwire.store.base import ListQuery, Notice, NoticeKind
from jobwire.store.redis import RedisStore, scripts
from tests.redis import server
from tests.support.stores import Heard, new

Opener = Callable[..., Awaitable[RedisStore]]


# -- configuration -----------------------------------------------------------------------


def test_a_redis_url_gives_a_redis_store_with_the_prefix_it_names() -> None:
    store = store_from_url("redis://127.0.0.1:6379/3?prefix=myapp:&socket_timeout=5")
    assert isinstance(store, RedisStore)
    assert store.prefix == "myapp:"
    assert store.url == "redis://127.0.0.1:6379/3?socket_timeout=5"


def test_a_redis_url_without_a_prefix_uses_jobwire() -> None:
    store = store_from_url("redis://localhost")
    assert isinstance(store, RedisStore) and store.prefix == "jobwire:"


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        store_from_url("redis://localhost/0?prefix=")


def test_the_password_in_a_url_is_not_shown() -> None:
    store = store_from_url("redis://user:s3cret@localhost:6379/0")
    assert "s3cret" not in repr(store)


def test_every_script_is_loaded_with_the_shared_library() -> None:
    loaded = scripts()
    transitions = {"enqueue", "claim", "succeed", "fail", "release", "cancelled", "cancel", "reap"}
    assert transitions <= set(loaded)
    assert all("local function require_claim" in body for body in loaded.values())


async def test_an_unreachable_server_raises_store_unavailable() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable, match="cannot open redis"):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.get(new_job_id())


async def test_ping_refuses_data_of_another_schema_version(open_store: Opener, prefix: str) -> None:
    store = await open_store()
    async with aioredis.Redis.from_url(server.URL) as raw:
        await raw.hset(prefix + "meta", "schema_version", "0")  # type: ignore[misc]
    with pytest.raises(StoreUnavailable, match="schema version is 0"):
        await store.ping()
    with pytest.raises(StoreUnavailable, match="schema version 0"):
        await (await open_store()).open()  # another instance refuses to open on it


async def test_queue_and_job_names_with_colons_do_not_share_keys(open_store: Opener) -> None:
    store = await open_store()
    first = new(queue="a:b", job="c")
    second = new(queue="a", job="b:c")
    await store.enqueue([first, second])
    [claim] = await store.claim("w", ["a"], ["b:c"], 10, 60.0)
    assert claim.job.id == second.id
    [claim] = await store.claim("w", ["a:b"], ["c"], 10, 60.0)
    assert claim.job.id == first.id


async def test_times_survive_the_round_trip_through_lua_exactly(open_store: Opener) -> None:
    store = await open_store()
    at = 1795612520.6364863  # 17 significant digits: Lua's own formatting keeps 14
    [enqueued] = await store.enqueue([new(scheduled_at=at, max_attempts=2)])
    assert enqueued.job.scheduled_at == at
    assert await store.next_due(["default"], ["crunch"]) == at
    [claim] = await store.claim("w", ["default"], ["crunch"], 1, 0.0)
    retry_at = at + 1e-6
    job = await store.fail(claim.job.id, claim.token, {"type": "E"}, retry_at)
    assert job.scheduled_at == retry_at
    [event] = (await store.events(job.id))[-1:]
    assert event.data["next_run_at"] == retry_at


# -- many instances, one server --------------------------------------------------------------


async def test_concurrent_claimers_on_two_instances_claim_every_job_exactly_once(
    open_store: Opener,
) -> None:
    first, second = await open_store(), await open_store()
    total = 2000
    jobs = [new(priority=i % 3) for i in range(total)]
    for start in range(0, total, 500):
        await first.enqueue(jobs[start : start + 500])
    claimed: list[str] = []

    async def claimer(store: RedisStore, worker: str) -> None:
        while True:
            claims = await store.claim(worker, ["default"], ["crunch"], 7, 3600.0)
            if not claims:
                return
            claimed.extend(c.job.id for c in claims)
            await asyncio.sleep(0)  # let the other claimers in between round trips

    await asyncio.gather(*(claimer(store, f"w{i}") for i, store in enumerate([first, second] * 4)))
    assert len(claimed) == total
    assert len(set(claimed)) == total
    assert await first.next_due(["default"], ["crunch"]) is None
    running = await second.list(ListQuery(states=(State.RUNNING,), limit=total + 1))
    assert len(running.items) == total
    assert all(job.attempts == 1 for job in running.items)


async def test_a_write_through_one_instance_is_fenced_by_a_claim_through_another(
    open_store: Opener,
) -> None:
    first, second = await open_store(), await open_store()
    await first.enqueue([new(max_attempts=2)])
    [zombie] = await first.claim("w1", ["default"], ["crunch"], 1, -5.0)
    await second.reap(now=time.time() - 2.0)  # long after the lease: due again now
    [current] = await second.claim("w2", ["default"], ["crunch"], 1, 3600.0)
    with pytest.raises(StaleClaim):
        await first.finish(zombie.job.id, zombie.token, "zombie")
    done = await second.finish(current.job.id, current.token, "current")
    assert await first.get(done.id) == done and done.result == "current"


# -- wake-ups ----------------------------------------------------------------------------


async def test_a_write_through_one_instance_wakes_a_listener_of_another(
    open_store: Opener,
) -> None:
    writer, follower = await open_store(), await open_store()
    heard = Heard()
    follower.add_listener(heard)
    await follower.follow_news()
    job = new(queue="cpu")
    await writer.enqueue([job])
    await heard.wait_for(Notice(NoticeKind.JOB, job.id))
    assert Notice(NoticeKind.JOBS, "cpu") in heard.notices


async def test_an_instance_that_follows_no_job_hears_no_job_news_until_it_asks(
    open_store: Opener,
) -> None:
    # A worker process follows no job: the news of every job of every other process
    # (three messages per job) would only cost it CPU beside the job it runs.
    writer, worker_side = await open_store(), await open_store()
    heard = Heard()
    worker_side.add_listener(heard)
    first = new()
    await writer.enqueue([first])
    [claim] = await writer.claim("w", ["default"], ["crunch"], 1, 3600.0)
    await writer.cancel(claim.job.id)  # a control notice: heard by every process
    await heard.wait_for(Notice(NoticeKind.CANCEL, first.id))
    await writer.finish(claim.job.id, claim.token, 1)
    second = new()
    await worker_side.follow_news()
    await writer.enqueue([second])
    await heard.wait_for(Notice(NoticeKind.JOB, second.id))
    assert Notice(NoticeKind.JOB, first.id) not in heard.notices


async def test_a_cancel_through_one_instance_reaches_the_worker_of_another(
    open_store: Opener,
) -> None:
    worker_side, client_side = await open_store(), await open_store()
    await worker_side.enqueue([new()])
    [claim] = await worker_side.claim("w", ["default"], ["crunch"], 1, 3600.0)
    heard = Heard()
    worker_side.add_listener(heard)
    await client_side.cancel(claim.job.id)
    await heard.wait_for(Notice(NoticeKind.CANCEL, claim.job.id))


async def test_an_instance_hears_its_own_writes_once(open_store: Opener) -> None:
    store, other = await open_store(), await open_store()
    heard = Heard()
    store.add_listener(heard)
    await store.follow_news()
    job = new()
    await store.enqueue([job])
    assert heard.notices.count(Notice(NoticeKind.JOB, job.id)) == 1
    # Pub/sub keeps the order of one connection: once a later write of the other
    # instance has arrived, the published copy of our own has arrived too (and was
    # not delivered a second time).
    marker = new()
    await other.enqueue([marker])
    await heard.wait_for(Notice(NoticeKind.JOB, marker.id))
    assert heard.notices.count(Notice(NoticeKind.JOB, job.id)) == 1


async def test_a_listener_that_raises_does_not_stop_the_wake_ups(open_store: Opener) -> None:
    writer, follower = await open_store(), await open_store()

    def broken(batch: Sequence[Notice]) -> None:
        raise RuntimeError("listener bug")

    heard = Heard()
    follower.add_listener(heard)
    follower.add_listener(broken)
    await follower.follow_news()
    first, second = new(), new()
    await writer.enqueue([first])
    await heard.wait_for(Notice(NoticeKind.JOB, first.id))
    await writer.enqueue([second])
    await heard.wait_for(Notice(NoticeKind.JOB, second.id))


async def test_a_burst_of_more_commands_than_connections_waits_for_a_free_one(
    open_store: Opener,
) -> None:
    store = await open_store(max_connections=2)
    jobs = [new() for _ in range(50)]
    # Fifty enqueues at once over two connections: each waits its turn, none fails.
    done = await asyncio.gather(*(store.enqueue([job]) for job in jobs))
    assert [stored.job.id for [stored] in done] == [job.id for job in jobs]


async def test_the_subscriber_reconnects_after_its_connection_is_killed(
    open_store: Opener,
) -> None:
    writer, follower = await open_store(), await open_store()
    heard = Heard()
    follower.add_listener(heard)
    await follower.follow_news()  # restored with the connection, as the control channel
    before = follower.subscriptions
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        [connection] = [
            c
            for c in await admin.client_list(_type="pubsub")
            if c["name"] == follower.subscriber_name
        ]
        # CLIENT KILL TYPE pubsub, narrowed to this store's connection so that
        # subscribers of other tests sharing the server are left alone.
        killed = await admin.execute_command(
            "CLIENT", "KILL", "TYPE", "pubsub", "ID", connection["id"]
        )
        assert killed == 1
    assert await asyncio.wait_for(follower.wait_subscribed(before), 10) == before + 1
    job = new()
    await writer.enqueue([job])
    await heard.wait_for(Notice(NoticeKind.JOB, job.id))


async def test_closing_stops_the_subscriber(open_store: Opener, prefix: str) -> None:
    store = await open_store()
    name = store.subscriber_name
    await store.close()
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        names = {c["name"] for c in await admin.client_list(_type="pubsub")}
    assert name not in names


async def test_a_silent_subscriber_is_checked_with_a_ping_and_stays_subscribed(
    open_store: Opener,
) -> None:
    writer = await open_store()
    follower = await open_store(health_check_interval=0.05)
    heard = Heard()
    follower.add_listener(heard)
    await follower.follow_news()

    async def last_command() -> str:
        async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
            for client in await admin.client_list(_type="pubsub"):
                if client["name"] == follower.subscriber_name:
                    return str(client["cmd"])
        return ""

    async with asyncio.timeout(10):
        # Redis has no event for "a client sent PING": look until it has.
        while await last_command() != "ping":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    job = new()
    await writer.enqueue([job])
    await heard.wait_for(Notice(NoticeKind.JOB, job.id))
    assert follower.subscriptions == 1  # the answered PINGs kept the connection


async def test_data_of_version_1_is_migrated_with_counts_of_the_jobs_it_holds(
    open_store: Opener, prefix: str
) -> None:
    store = await open_store()
    await store.enqueue([new(), new(), new(queue="cpu")])
    await store.close()
    async with aioredis.Redis.from_url(server.URL) as raw:  # as version 1 left it
        await raw.delete(prefix + "stats")
        await raw.hset(prefix + "meta", "schema_version", "1")  # type: ignore[misc]

    reopened = await open_store()
    await reopened.ping()
    counts = await reopened.counts()
    assert (counts["default"][State.QUEUED], counts["cpu"][State.QUEUED]) == (2, 1)


async def test_data_written_before_job_names_reads_as_none_without_migrating(
    open_store: Opener, prefix: str
) -> None:
    store = await open_store()
    entry = (
        '{"host":"h","pid":1,"queues":["default"],"concurrency":1,"version":"0.1",'
        '"started_at":"1.0","last_heartbeat":"2.0","running":"[]"}'
    )
    async with aioredis.Redis.from_url(server.URL) as raw:  # a worker of an older jobwire
        await raw.hset(prefix + "workers", "old", entry)  # type: ignore[misc]
    [old] = await store.list_workers()
    assert (old.id, old.names, old.queues) == ("old", (), ("default",))
    assert await store.job_names() == {}
    await store.record_job_names(["crunch"], 5.0)
    assert await store.job_names() == {"crunch": 5.0}
