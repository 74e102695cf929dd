-- Statements of the PostgreSQL store. "{schema}" is replaced, once, by the quoted name of
-- the schema the store was given, so every table is named in full: the same statements
-- run on the store's own connections and on an application's connection (transactional
-- enqueue), whatever that connection's search_path.
--
-- Times are epoch seconds (double precision), read from the database's clock so that
-- every machine sharing the database agrees on what is due and which leases ran out.
-- JSON columns are "json", written from text and read as text: exactly what was stored.

-- name: lock_schema
-- Opening is serialised per schema, so several processes may open at once.
SELECT pg_advisory_xact_lock(hashtext($1));

-- name: schema_exists
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1);

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: meta_exists
SELECT to_regclass($1) IS NOT NULL;

-- name: get_meta
SELECT value FROM {schema}.jobwire_meta WHERE key = $1;

-- name: set_meta
INSERT INTO {schema}.jobwire_meta (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: migrate_1
CREATE TABLE IF NOT EXISTS {schema}.jobwire_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.jobwire_jobs (
    id               text COLLATE "C" PRIMARY KEY,
    job              text NOT NULL,
    queue            text NOT NULL,
    state            text NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    owner            text NOT NULL,
    priority         integer NOT NULL,
    args             json NOT NULL,
    attempts         integer NOT NULL,
    max_attempts     integer NOT NULL,
    timeout          double precision,
    created_at       double precision NOT NULL,
    scheduled_at     double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    progress         json,
    result           json,
    error            json,
    lease_expires_at double precision,
    claim_token      text,
    worker_id        text,
    cancel_requested boolean NOT NULL DEFAULT false,
    last_seq         integer NOT NULL,
    idempotency_key  text,
    options          json NOT NULL DEFAULT '{}'
);
-- Claims read only queued rows, in priority then due-time order.
CREATE INDEX IF NOT EXISTS jobwire_jobs_due
    ON {schema}.jobwire_jobs (queue, priority DESC, scheduled_at, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobwire_jobs_lease
    ON {schema}.jobwire_jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobwire_jobs_finished
    ON {schema}.jobwire_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobwire_jobs_owner ON {schema}.jobwire_jobs (owner, id);
-- "cursor" is store-wide: (the writing transaction's id − cursor_epoch) · 2^20 + n, so
-- that feed() can tell which cursors may still appear (see postgres.py).
CREATE TABLE IF NOT EXISTS {schema}.jobwire_events (
    cursor bigint PRIMARY KEY,
    job_id text COLLATE "C" NOT NULL,
    seq    integer NOT NULL,
    type   text NOT NULL,
    data   json NOT NULL,
    at     double precision NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE TABLE IF NOT EXISTS {schema}.jobwire_idempotency (
    owner       text NOT NULL,
    key         text NOT NULL,
    fingerprint text,
    job_id      text COLLATE "C" NOT NULL,
    created_at  double precision NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS jobwire_idempotency_job ON {schema}.jobwire_idempotency (job_id);
-- The webhook outbox: one row per (job, event, URL), inserted in the transaction that
-- appends the event. "id" is the webhook-id, the same on every attempt.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_deliveries (
    id               text COLLATE "C" PRIMARY KEY,
    job_id           text COLLATE "C" NOT NULL,
    seq              integer NOT NULL,
    event            text NOT NULL,
    url              text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL
        CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       double precision NOT NULL,
    next_attempt_at  double precision,
    last_attempt_at  double precision,
    last_status_code integer,
    last_error       text,
    claim_token      text,
    lease_expires_at double precision,
    UNIQUE (job_id, seq, url)
);
CREATE INDEX IF NOT EXISTS jobwire_deliveries_due
    ON {schema}.jobwire_deliveries (next_attempt_at) WHERE status = 'pending';
-- The horizon of feed(): the lowest span a running writer may still fill. Writers announce
-- themselves with a shared advisory lock (space, lowest span they may use) before they get
-- a transaction id; with none running, the next transaction id. These functions are
-- VOLATILE so that each statement in them reads in a snapshot of its own, taken in order:
-- the events are read after the locks, never before.
CREATE OR REPLACE FUNCTION {schema}.jobwire_horizon(epoch bigint, space integer)
RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
    SELECT least(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint - epoch,
        (SELECT min(objid::text::bigint) FROM pg_locks
         WHERE locktype = 'advisory' AND classid = space::oid AND objsubid = 2 AND granted)
    )
$fn$;
CREATE OR REPLACE FUNCTION {schema}.jobwire_feed(
    after bigint, only_owner text, most integer, epoch bigint, space integer
) RETURNS TABLE (cursor bigint, job_id text, seq integer, type text, data text, at float8)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    horizon bigint := {schema}.jobwire_horizon(epoch, space);
BEGIN
    RETURN QUERY
    SELECT e.cursor, e.job_id::text, e.seq, e.type, e.data::text, e.at
    FROM {schema}.jobwire_events AS e
    WHERE e.cursor > after
      AND e.cursor < horizon << 20
      AND (only_owner IS NULL OR e.job_id IN (
          SELECT j.id FROM {schema}.jobwire_jobs AS j WHERE j.owner = only_owner))
    ORDER BY e.cursor
    LIMIT most;
END
$fn$;
CREATE OR REPLACE FUNCTION {schema}.jobwire_last_cursor(epoch bigint, space integer)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    horizon bigint := {schema}.jobwire_horizon(epoch, space);
BEGIN
    RETURN (SELECT coalesce(max(e.cursor), 0) FROM {schema}.jobwire_events AS e
            WHERE e.cursor < horizon << 20);
END
$fn$;
-- No transaction that can still write has an id below the oldest one running now.
INSERT INTO {schema}.jobwire_meta (key, value)
VALUES ('cursor_epoch', pg_snapshot_xmin(pg_current_snapshot())::text)
ON CONFLICT (key) DO NOTHING;

-- name: migrate_2
-- Counters per queue and job name (jobwire.store.stats), each spread over a few shards
-- so that concurrent transactions rarely wait on one another's row; reads sum them.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_stats (
    queue text NOT NULL,
    job   text NOT NULL,
    key   text NOT NULL,
    shard smallint NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (queue, job, key, shard)
);
-- The per-state counts of the jobs stored before the counters existed.
INSERT INTO {schema}.jobwire_stats (queue, job, key, shard, value)
SELECT queue, job, 'state:' || state, 0, count(*) FROM {schema}.jobwire_jobs
GROUP BY queue, job, state
ON CONFLICT DO NOTHING;
-- Increments written inside an application's transaction (transactional enqueue): only
-- inserted, so a long application transaction holds no counter row that others need;
-- read together with jobwire_stats and folded into it by the reaper (fold_stats).
CREATE TABLE IF NOT EXISTS {schema}.jobwire_stats_pending (
    queue text NOT NULL,
    job   text NOT NULL,
    key   text NOT NULL,
    value double precision NOT NULL
);
-- The worker registry: one row per running worker process, its heartbeat kept fresh.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_workers (
    id             text PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    queues         text[] NOT NULL,
    concurrency    integer NOT NULL,
    version        text NOT NULL,
    started_at     double precision NOT NULL,
    last_heartbeat double precision NOT NULL,
    running        text[] NOT NULL
);

-- name: migrate_3
-- The two writes between a submit and its job's start as one statement each, so that each
-- is one round trip in an implicit transaction (autocommit): jobwire_insert_jobs (an
-- enqueue) and jobwire_claim (a claim). Each announces itself to feed() readers, when
-- asked, before its first write, as begin_appending does (see postgres.py, feed()).
CREATE OR REPLACE FUNCTION {schema}.jobwire_announce(epoch bigint, space integer)
RETURNS void LANGUAGE sql VOLATILE AS $fn$
    SELECT pg_advisory_xact_lock_shared(
        space, (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - epoch)::int4
    )
$fn$;
-- New jobs: $1-$24 their columns, $25 the cursor epoch, $26-$30 their events, $31-$38
-- their webhook deliveries, $39 the channel and $40 the NOTIFY payloads, $41 the span
-- (NULL: this transaction's id), $42 the feed's lock space (NULL: the transaction has
-- announced itself already), $43-$46 the counter increments (queue, job, key, value),
-- $47 the counters' shard (NULL: an application's transaction, whose increments go to
-- jobwire_stats_pending). An event's cursor: in its span, after the cursors already used
-- in the span. The database's clock, read once after the announcement, is returned and
-- stands in for every NULL time: a job's created_at and scheduled_at (due now), an
-- event's time; and an event whose data is NULL is its job's `queued` event with that
-- job due now, whose data model.enqueue makes {"queue", "scheduled_at"}.
CREATE OR REPLACE FUNCTION {schema}.jobwire_insert_jobs(
    text[], text[], text[], text[], text[], int[], text[], int[], int[], float8[],
    float8[], float8[], float8[], float8[], text[], text[], text[], float8[], text[],
    text[], bool[], int[], text[], text[],
    bigint,
    text[], int[], text[], text[], float8[],
    text[], text[], int[], text[], text[], text[], float8[], float8[],
    text, text[],
    bigint,
    integer,
    text[], text[], text[], float8[],
    integer
) RETURNS float8 LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    now float8;
    notices bigint;
BEGIN
    IF $42 IS NOT NULL THEN
        PERFORM {schema}.jobwire_announce($25, $42);
    END IF;
    now := extract(epoch FROM clock_timestamp())::float8;
    IF $47 IS NULL THEN
        INSERT INTO {schema}.jobwire_stats_pending (queue, job, key, value)
        SELECT * FROM unnest($43, $44, $45, $46);
    ELSE
        -- In key order, so that transactions adding to the same shard cannot deadlock.
        INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
        SELECT a.queue, a.job, a.key, $47, a.value
        FROM unnest($43, $44, $45, $46) AS a(queue, job, key, value)
        ORDER BY a.queue, a.job, a.key
        ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value;
    END IF;
    WITH inserted AS (
        INSERT INTO {schema}.jobwire_jobs (
            id, job, queue, state, owner, priority, args, attempts, max_attempts, timeout,
            created_at, scheduled_at, started_at, finished_at, progress, result, error,
            lease_expires_at, claim_token, worker_id, cancel_requested, last_seq,
            idempotency_key, options
        )
        SELECT n.id, n.job, n.queue, n.state, n.owner, n.priority, n.args::json, n.attempts,
               n.max_attempts, n.timeout, coalesce(n.created_at, now),
               coalesce(n.scheduled_at, now), n.started_at,
               n.finished_at, n.progress::json, n.result::json, n.error::json,
               n.lease_expires_at, n.claim_token, n.worker_id, n.cancel_requested, n.last_seq,
               n.idempotency_key, n.options::json
        FROM unnest(
            $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
            $8::int[], $9::int[], $10::float8[], $11::float8[], $12::float8[], $13::float8[],
            $14::float8[], $15::text[], $16::text[], $17::text[], $18::float8[], $19::text[],
            $20::text[], $21::bool[], $22::int[], $23::text[], $24::text[]
        ) AS n(
            id, job, queue, state, owner, priority, args, attempts, max_attempts, timeout,
            created_at, scheduled_at, started_at, finished_at, progress, result, error,
            lease_expires_at, claim_token, worker_id, cancel_requested, last_seq,
            idempotency_key, options
        )
        RETURNING 1
    ), span AS (
        SELECT (coalesce($41::bigint, pg_current_xact_id()::text::bigint) - $25) << 20 AS low
    ), numbering AS (
        SELECT span.low, greatest(span.low, (
            SELECT max(e.cursor) FROM {schema}.jobwire_events AS e
            WHERE e.cursor > span.low AND e.cursor < span.low + 1048576
        )) AS high
        FROM span
    ), appended AS (
        INSERT INTO {schema}.jobwire_events (cursor, job_id, seq, type, data, at)
        SELECT CASE WHEN numbering.high + e.n < numbering.low + 1048576
                    THEN numbering.high + e.n END,
               e.job_id, e.seq, e.type,
               coalesce(e.data, format('{"queue":%s,"scheduled_at":%s}', to_json(q.queue), now))::json,
               coalesce(e.at, now)
        FROM numbering,
             unnest($26::text[], $27::int[], $28::text[], $29::text[], $30::float8[])
                 WITH ORDINALITY AS e(job_id, seq, type, data, at, n)
             LEFT JOIN unnest($1::text[], $3::text[]) AS q(id, queue)
                 ON e.data IS NULL AND q.id = e.job_id
        RETURNING 1
    ), outbox AS (
        INSERT INTO {schema}.jobwire_deliveries (
            id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at
        )
        SELECT d.id, d.job_id, d.seq, d.event, d.url, d.body, 'pending', 0, d.created_at,
               d.next_attempt_at
        FROM unnest($31::text[], $32::text[], $33::int[], $34::text[], $35::text[], $36::text[],
                    $37::float8[], $38::float8[])
            AS d(id, job_id, seq, event, url, body, created_at, next_attempt_at)
        RETURNING 1
    ), notified AS (
        -- Delivered to every LISTEN connection when, and only if, the transaction commits.
        SELECT pg_notify($39, payload) FROM unnest($40::text[]) AS payload
    )
    SELECT (SELECT count(*) FROM inserted) + (SELECT count(*) FROM notified) INTO notices;
    RETURN now;
END
$fn$;
-- A claim decided here, as jobwire.model.claim decides it, for the due jobs of the
-- queues and job names given, up to `most`, in priority then due-time order, skipping rows
-- another claimer holds: state running, one more attempt, started now, leased until now +
-- `lease`, the next of `tokens` as its claim token, the worker's id, and its `started`
-- event; the counters as jobwire.store.stats counts a claim (`buckets`: its wait
-- histogram's bounds), in shard `shard`; one wake-up line per job (and "cancel" for a job
-- whose cancellation was requested) to the store's channel, from `origin`. The commit
-- does not wait for the WAL flush (see postgres.py, _write). Returns the claimed jobs as
-- stored, in claim order; or one row of NULLs, claiming nothing, when a due job's webhook
-- may want its `started` event: its delivery is built in Python (PostgresStore.claim).
CREATE OR REPLACE FUNCTION {schema}.jobwire_claim(
    epoch bigint, space integer, queues text[], names text[], most integer, worker text,
    lease float8, tokens text[], buckets float8[], shard integer, channel text, origin text
) RETURNS SETOF {schema}.jobwire_jobs LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    now float8 := extract(epoch FROM statement_timestamp())::float8;
    due text[];
    hooked boolean;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM {schema}.jobwire_announce(epoch, space);
    most := least(most, cardinality(tokens));
    IF cardinality(queues) = 1 THEN
        -- One queue (the usual case): the due index gives the order, no sort.
        SELECT array_agg(d.id ORDER BY d.priority DESC, d.scheduled_at, d.id), bool_or(d.hooked)
        INTO due, hooked
        FROM (
            SELECT j.id, j.priority, j.scheduled_at,
                   json_typeof(j.options -> 'webhook' -> 'events') IS DISTINCT FROM 'null'
                       AND j.options -> 'webhook' -> 'events' IS NOT NULL AS hooked
            FROM {schema}.jobwire_jobs AS j
            WHERE j.state = 'queued' AND j.queue = queues[1] AND j.job = ANY(names)
              AND j.scheduled_at <= now
            ORDER BY j.priority DESC, j.scheduled_at, j.id
            LIMIT most
            FOR UPDATE OF j SKIP LOCKED
        ) AS d;
    ELSE
        SELECT array_agg(d.id ORDER BY d.priority DESC, d.scheduled_at, d.id), bool_or(d.hooked)
        INTO due, hooked
        FROM (
            SELECT j.id, j.priority, j.scheduled_at,
                   json_typeof(j.options -> 'webhook' -> 'events') IS DISTINCT FROM 'null'
                       AND j.options -> 'webhook' -> 'events' IS NOT NULL AS hooked
            FROM {schema}.jobwire_jobs AS j
            WHERE j.state = 'queued' AND j.queue = ANY(queues) AND j.job = ANY(names)
              AND j.scheduled_at <= now
            ORDER BY j.priority DESC, j.scheduled_at, j.id
            LIMIT most
            FOR UPDATE OF j SKIP LOCKED
        ) AS d;
    END IF;
    IF due IS NULL THEN
        RETURN;
    END IF;
    IF hooked THEN
        RETURN NEXT NULL::{schema}.jobwire_jobs;
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        SELECT c.id, c.n, tokens[c.n] AS token FROM unnest(due) WITH ORDINALITY AS c(id, n)
    ), updated AS (
        UPDATE {schema}.jobwire_jobs AS j SET
            state = 'running', attempts = j.attempts + 1, started_at = now,
            lease_expires_at = now + lease, claim_token = c.token, worker_id = worker,
            last_seq = j.last_seq + 1
        FROM claimed AS c
        WHERE j.id = c.id
        RETURNING j AS job, c.n
    ), span AS (
        SELECT (pg_current_xact_id()::text::bigint - epoch) << 20 AS low
    ), appended AS (
        INSERT INTO {schema}.jobwire_events (cursor, job_id, seq, type, data, at)
        SELECT span.low + u.n, (u.job).id, (u.job).last_seq, 'started',
               format('{"attempt":%s,"worker":%s}', (u.job).attempts, to_json(worker))::json,
               now
        FROM updated AS u, span
        RETURNING 1
    ), increments AS (
        SELECT (u.job).queue, (u.job).job, i.key, i.value
        FROM updated AS u,
             LATERAL (SELECT greatest(now - (u.job).scheduled_at, 0.0) AS waited) AS w,
             LATERAL (VALUES
                 ('state:queued', -1.0::float8),
                 ('state:running', 1.0),
                 ('total:started', 1.0),
                 ('wait:' || (SELECT count(*) FROM unnest(buckets) AS b WHERE b < w.waited), 1.0),
                 ('wait:sum', w.waited)
             ) AS i(key, value)
    ), counted AS (
        -- In key order, so that transactions adding to the same shard cannot deadlock.
        INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
        SELECT i.queue, i.job, i.key, shard, sum(i.value) FROM increments AS i
        GROUP BY i.queue, i.job, i.key
        HAVING sum(i.value) <> 0
        ORDER BY i.queue, i.job, i.key
        ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value
        RETURNING 1
    ), lines AS (
        SELECT u.n, l.k, l.line
        FROM updated AS u,
             LATERAL (VALUES
                 (1, 'job ' || (u.job).id),
                 (2, CASE WHEN (u.job).cancel_requested THEN 'cancel ' || (u.job).id END)
             ) AS l(k, line)
        WHERE l.line IS NOT NULL
    ), sized AS (
        -- NOTIFY payloads stay under 8000 bytes: a new one every 7000 bytes of lines.
        SELECT lines.*, sum(octet_length(lines.line) + 1) OVER (ORDER BY lines.n, lines.k) AS upto
        FROM lines
    ), notified AS (
        SELECT pg_notify(channel, origin || E'\n' || string_agg(line, E'\n' ORDER BY n, k))
        FROM sized
        GROUP BY upto / 7000
    )
    SELECT (u.job).*
    FROM updated AS u
    WHERE (SELECT count(*) FROM appended) >= 0
      AND (SELECT count(*) FROM counted) >= 0
      AND (SELECT count(*) FROM notified) >= 0
    ORDER BY u.n;
END
$fn$;

-- name: migrate_4
-- The job names each worker runs, and every job name a server or worker has registered
-- with when one last started with it (what `jobwire submit` checks a name against).
ALTER TABLE {schema}.jobwire_workers ADD COLUMN IF NOT EXISTS names text[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS {schema}.jobwire_job_names (
    name      text PRIMARY KEY,
    last_seen double precision NOT NULL
);

-- name: migrate_5
-- Leases a job lost while it ran (its worker killed or cut off): counted apart from its
-- attempts, against its crash budget (jobwire.model.expire).
ALTER TABLE {schema}.jobwire_jobs ADD COLUMN IF NOT EXISTS crashes integer NOT NULL DEFAULT 0;

-- name: migrate_6
-- Each schedule declared in code, as schedulers and pause/resume left it.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_schedules (
    name         text PRIMARY KEY,
    paused       boolean NOT NULL DEFAULT false,
    since        double precision NOT NULL,
    last_fire_at double precision,
    last_job_id  text,
    updated_at   double precision NOT NULL
);

-- name: migrate_7
-- Each workflow, its steps stored whole when it was submitted.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_workflows (
    id         text PRIMARY KEY,
    owner      text NOT NULL,
    state      text NOT NULL,
    steps      text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS jobwire_workflows_open ON {schema}.jobwire_workflows (created_at, id)
    WHERE state = 'running';

-- Rate limits: the starts each key granted within its window, and the holders running
-- under each key's concurrency limit until their permit expires.
CREATE TABLE IF NOT EXISTS {schema}.jobwire_rate_starts (
    key    text NOT NULL,
    at     double precision NOT NULL,
    holder text NOT NULL
);
CREATE INDEX IF NOT EXISTS jobwire_rate_starts_by_key ON {schema}.jobwire_rate_starts (key, at);
CREATE TABLE IF NOT EXISTS {schema}.jobwire_permits (
    key        text NOT NULL,
    holder     text NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (key, holder)
);

-- name: set_crashes
-- Only the reaper changes the count (model.expire), in the transaction of its update.
UPDATE {schema}.jobwire_jobs SET crashes = $2 WHERE id = $1;

-- name: cursor_epoch
SELECT value::bigint FROM {schema}.jobwire_meta WHERE key = 'cursor_epoch';

-- name: cursor_room
-- Whether new cursors will be above every stored one. Not so only when the database was
-- restored into a cluster whose transaction ids restarted lower (a logical dump).
SELECT coalesce(max(cursor), 0) < (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $1) << 20,
       coalesce(max(cursor), 0) >> 20,
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint
FROM {schema}.jobwire_events;

-- name: clock
SELECT extract(epoch FROM clock_timestamp())::float8;

-- name: get_job
SELECT * FROM {schema}.jobwire_jobs WHERE id = $1;

-- name: lock_job
-- The row, locked until the transaction ends, with the time the lock was granted and
-- the URLs a 410 turned off for the job (so its new events make no delivery to them).
SELECT j.*, extract(epoch FROM clock_timestamp())::float8 AS now,
       ARRAY(SELECT DISTINCT d.url FROM {schema}.jobwire_deliveries AS d
             WHERE d.job_id = j.id AND d.status = 'disabled') AS disabled_urls
FROM {schema}.jobwire_jobs AS j WHERE j.id = $1
FOR UPDATE OF j;

-- name: lock_jobs
-- In id order, so two heartbeats over the same jobs never wait on each other in a circle.
SELECT j.*, extract(epoch FROM clock_timestamp())::float8 AS now
FROM {schema}.jobwire_jobs AS j WHERE j.id = ANY($1::text[])
ORDER BY j.id
FOR UPDATE OF j;

-- name: lock_changing
-- The rows of a batch of transitions, as lock_job reads one; in id order, as heartbeats
-- lock theirs, so that neither waits on the other in a circle.
SELECT j.*, extract(epoch FROM clock_timestamp())::float8 AS now,
       ARRAY(SELECT DISTINCT d.url FROM {schema}.jobwire_deliveries AS d
             WHERE d.job_id = j.id AND d.status = 'disabled') AS disabled_urls
FROM {schema}.jobwire_jobs AS j WHERE j.id = ANY($1::text[])
ORDER BY j.id
FOR UPDATE OF j;

-- name: due_jobs
-- Rows another claimer holds are skipped, not waited for: concurrent claims take
-- different jobs. The model decides each claim; update_jobs writes them.
WITH clock AS (SELECT extract(epoch FROM statement_timestamp())::float8 AS now)
SELECT j.*, clock.now,
       ARRAY(SELECT DISTINCT d.url FROM {schema}.jobwire_deliveries AS d
             WHERE d.job_id = j.id AND d.status = 'disabled') AS disabled_urls
FROM {schema}.jobwire_jobs AS j, clock
WHERE j.state = 'queued'
  AND j.queue = ANY($1::text[])
  AND j.job = ANY($2::text[])
  AND j.scheduled_at <= clock.now
ORDER BY j.priority DESC, j.scheduled_at, j.id
LIMIT $3
FOR UPDATE OF j SKIP LOCKED;

-- name: due_jobs_in_queue
-- As due_jobs, for one queue (the usual case): the due index then gives the order, so
-- the scan stops after $3 rows instead of sorting every queued job of the queue.
WITH clock AS (SELECT extract(epoch FROM statement_timestamp())::float8 AS now)
SELECT j.*, clock.now,
       ARRAY(SELECT DISTINCT d.url FROM {schema}.jobwire_deliveries AS d
             WHERE d.job_id = j.id AND d.status = 'disabled') AS disabled_urls
FROM {schema}.jobwire_jobs AS j, clock
WHERE j.state = 'queued'
  AND j.queue = $1
  AND j.job = ANY($2::text[])
  AND j.scheduled_at <= clock.now
ORDER BY j.priority DESC, j.scheduled_at, j.id
LIMIT $3
FOR UPDATE OF j SKIP LOCKED;

-- name: expired_leases
WITH clock AS (
    SELECT coalesce($1::float8, extract(epoch FROM statement_timestamp())::float8) AS now
)
SELECT j.*, clock.now,
       ARRAY(SELECT DISTINCT d.url FROM {schema}.jobwire_deliveries AS d
             WHERE d.job_id = j.id AND d.status = 'disabled') AS disabled_urls
FROM {schema}.jobwire_jobs AS j, clock
WHERE j.state = 'running' AND j.lease_expires_at <= clock.now
ORDER BY j.lease_expires_at, j.id
LIMIT 500
FOR UPDATE OF j SKIP LOCKED;

-- name: extend_leases
UPDATE {schema}.jobwire_jobs AS j SET lease_expires_at = l.lease_expires_at
FROM unnest($1::text[], $2::text[], $3::float8[]) AS l(id, claim_token, lease_expires_at)
WHERE j.id = l.id AND j.claim_token = l.claim_token;

-- name: insert_jobs
-- New jobs, their events, their webhook deliveries, their counters and the wake-ups: one
-- call of jobwire_insert_jobs (migrate_3), one round trip. Returns the clock it read.
SELECT {schema}.jobwire_insert_jobs(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
    $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36,
    $37, $38, $39, $40, $41, $42, $43, $44, $45, $46, $47
);

-- name: claim
SELECT * FROM {schema}.jobwire_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);

-- name: update_jobs
-- Changed jobs, fenced: a row is written only while its claim token is still the one it
-- was read with. The rows were read FOR UPDATE, so the fence is a last line of defence.
-- Their counters go in the same statement.
WITH changes AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::int[], $5::float8[], $6::float8[],
        $7::float8[], $8::text[], $9::text[], $10::text[], $11::float8[], $12::text[],
        $13::text[], $14::bool[], $15::int[]
    ) AS c(
        id, fence, state, attempts, scheduled_at, started_at, finished_at, progress, result,
        error, lease_expires_at, claim_token, worker_id, cancel_requested, last_seq
    )
), updated AS (
    UPDATE {schema}.jobwire_jobs AS j SET
        state = c.state, attempts = c.attempts, scheduled_at = c.scheduled_at,
        started_at = c.started_at, finished_at = c.finished_at,
        progress = c.progress::json, result = c.result::json, error = c.error::json,
        lease_expires_at = c.lease_expires_at, claim_token = c.claim_token,
        worker_id = c.worker_id, cancel_requested = c.cancel_requested,
        last_seq = c.last_seq
    FROM changes AS c
    WHERE j.id = c.id AND j.claim_token IS NOT DISTINCT FROM c.fence
    RETURNING 1
), span AS (
    SELECT (pg_current_xact_id()::text::bigint - $16) << 20 AS low
), numbering AS (
    SELECT span.low, greatest(span.low, (
        SELECT max(e.cursor) FROM {schema}.jobwire_events AS e
        WHERE e.cursor > span.low AND e.cursor < span.low + 1048576
    )) AS high
    FROM span
), appended AS (
    INSERT INTO {schema}.jobwire_events (cursor, job_id, seq, type, data, at)
    SELECT CASE WHEN numbering.high + e.n < numbering.low + 1048576
                THEN numbering.high + e.n END,
           e.job_id, e.seq, e.type, e.data::json, e.at
    FROM numbering,
         unnest($17::text[], $18::int[], $19::text[], $20::text[], $21::float8[])
             WITH ORDINALITY AS e(job_id, seq, type, data, at, n)
    RETURNING 1
), outbox AS (
    INSERT INTO {schema}.jobwire_deliveries (
        id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at
    )
    SELECT d.id, d.job_id, d.seq, d.event, d.url, d.body, 'pending', 0, d.created_at,
           d.next_attempt_at
    FROM unnest($22::text[], $23::text[], $24::int[], $25::text[], $26::text[], $27::text[],
                $28::float8[], $29::float8[])
        AS d(id, job_id, seq, event, url, body, created_at, next_attempt_at)
    RETURNING 1
), notified AS (
    SELECT pg_notify($30, payload) FROM unnest($31::text[]) AS payload
), counted AS (
    -- The counters ($32-$35: queue, job, key, increment), in shard $36, in key order so
    -- that transactions adding to the same shard cannot deadlock.
    INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
    SELECT a.queue, a.job, a.key, $36, a.value
    FROM unnest($32::text[], $33::text[], $34::text[], $35::float8[]) AS a(queue, job, key, value)
    ORDER BY a.queue, a.job, a.key
    ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated) AS written,
       (SELECT count(*) FROM appended) AS appended,
       (SELECT count(*) FROM outbox) AS outbox,
       (SELECT count(*) FROM notified) AS notified;

-- name: take_keys
-- Idempotency keys this transaction is first to use. A key another transaction has just
-- taken makes this wait for it to end, then counts as taken by it.
INSERT INTO {schema}.jobwire_idempotency (owner, key, fingerprint, job_id, created_at)
SELECT k.owner, k.key, k.fingerprint, k.job_id, $5
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(owner, key, fingerprint, job_id)
ON CONFLICT (owner, key) DO NOTHING
RETURNING owner, key;

-- name: held_keys
-- Keys used before, with the job each returned (NULL columns if it no longer exists).
SELECT k.owner AS key_owner, k.key AS key_name, k.fingerprint AS key_fingerprint, j.*
FROM {schema}.jobwire_idempotency AS k
LEFT JOIN {schema}.jobwire_jobs AS j ON j.id = k.job_id
WHERE (k.owner, k.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
FOR UPDATE OF k;

-- name: retake_key
UPDATE {schema}.jobwire_idempotency SET fingerprint = $3, job_id = $4, created_at = $5
WHERE owner = $1 AND key = $2;

-- name: next_due
SELECT min(scheduled_at) FROM {schema}.jobwire_jobs
WHERE state = 'queued' AND queue = ANY($1::text[]) AND job = ANY($2::text[]);

-- name: events_after
SELECT cursor, job_id, seq, type, data, at FROM {schema}.jobwire_events
WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: begin_appending
-- Opens a transaction that will append events (one round trip: simple protocol). The
-- shared lock says "a writer whose cursors are all in spans >= this one is running"
-- until it ends; it is taken before the transaction has an id of its own, whose span
-- will be at least the next id to be assigned now.
BEGIN;
SELECT pg_advisory_xact_lock_shared(
    {lock_space},
    (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - {epoch})::int4
);

-- name: announce_appending
-- The same lock, taken on an application's connection (transactional enqueue).
SELECT pg_advisory_xact_lock_shared(
    $1::int4, (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $2)::int4
);

-- name: fresh_span
-- A transaction id nobody else will use as a span: for a write on an application's
-- connection, whose own id may be older than its lock.
SELECT pg_current_xact_id()::text::bigint;

-- name: feed
SELECT cursor, job_id, seq, type, data, at
FROM {schema}.jobwire_feed($1, $2, $3, $4, $5);

-- name: last_cursor
SELECT {schema}.jobwire_last_cursor($1, $2);

-- name: list_jobs
SELECT * FROM {schema}.jobwire_jobs
WHERE ($1::text IS NULL OR owner = $1)
  AND ($2::text IS NULL OR job = $2)
  AND ($3::text IS NULL OR queue = $3)
  AND ($4::text[] IS NULL OR state = ANY($4::text[]))
  -- A bound the primary key can seek to ('~' sorts after every id in the "C" collation):
  -- "IS NULL OR" would make a page far from the newest walk the index from the top.
  AND id < coalesce($5::text, '~')
ORDER BY id DESC
LIMIT $6;

-- name: purge
-- One batch of terminal jobs that match the filter (states, owner, job, queue, finished
-- from $5 and before $6; at most $7), with their events, deliveries and keys; their
-- state counters go down in stats shard $8.
WITH doomed AS (
    SELECT id FROM {schema}.jobwire_jobs
    WHERE finished_at IS NOT NULL
      AND state = ANY($1::text[])
      AND ($2::text IS NULL OR owner = $2)
      AND ($3::text IS NULL OR job = $3)
      AND ($4::text IS NULL OR queue = $4)
      AND ($5::float8 IS NULL OR finished_at >= $5)
      AND ($6::float8 IS NULL OR finished_at < $6)
    LIMIT $7
    FOR UPDATE SKIP LOCKED
), events_gone AS (
    DELETE FROM {schema}.jobwire_events WHERE job_id IN (SELECT id FROM doomed)
), deliveries_gone AS (
    DELETE FROM {schema}.jobwire_deliveries WHERE job_id IN (SELECT id FROM doomed)
), keys_gone AS (
    DELETE FROM {schema}.jobwire_idempotency WHERE job_id IN (SELECT id FROM doomed)
), jobs_gone AS (
    DELETE FROM {schema}.jobwire_jobs WHERE id IN (SELECT id FROM doomed)
    RETURNING queue, job, state
), counted AS (
    INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
    SELECT queue, job, 'state:' || state, $8, -count(*) FROM jobs_gone
    GROUP BY queue, job, state
    ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value
)
SELECT count(*) FROM jobs_gone;

-- name: count_finished
SELECT count(*) FROM {schema}.jobwire_jobs
WHERE finished_at IS NOT NULL
  AND state = ANY($1::text[])
  AND ($2::text IS NULL OR owner = $2)
  AND ($3::text IS NULL OR job = $3)
  AND ($4::text IS NULL OR queue = $4)
  AND ($5::float8 IS NULL OR finished_at >= $5)
  AND ($6::float8 IS NULL OR finished_at < $6);

-- name: timings
-- The newest finished jobs first, read along the finished_at index.
SELECT queue, state, scheduled_at, started_at, finished_at FROM {schema}.jobwire_jobs
WHERE finished_at >= $1 AND ($2::text IS NULL OR owner = $2)
ORDER BY finished_at DESC
LIMIT $3;

-- name: oldest_queued
SELECT queue, min(scheduled_at) AS at FROM {schema}.jobwire_jobs
WHERE state = 'queued' AND scheduled_at <= $1 AND ($2::text IS NULL OR owner = $2)
GROUP BY queue;

-- name: idempotent_job
SELECT job_id FROM {schema}.jobwire_idempotency WHERE owner = $1 AND key = $2;

-- name: add_stats
-- In key order, so that transactions adding to the same shard cannot deadlock.
INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
SELECT queue, job, key, $5, value
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS a(queue, job, key, value)
ORDER BY queue, job, key
ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value;

-- name: add_pending_stats
INSERT INTO {schema}.jobwire_stats_pending (queue, job, key, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]);

-- name: fold_stats
-- Committed pending increments move into shard 0 of the counters; rows of transactions
-- still open are not visible here and stay for the next fold.
WITH moved AS (
    DELETE FROM {schema}.jobwire_stats_pending RETURNING queue, job, key, value
)
INSERT INTO {schema}.jobwire_stats AS s (queue, job, key, shard, value)
SELECT queue, job, key, 0, sum(value) FROM moved
GROUP BY queue, job, key
ORDER BY queue, job, key
ON CONFLICT (queue, job, key, shard) DO UPDATE SET value = s.value + excluded.value;

-- name: stats
SELECT queue, job, key, sum(value) AS value FROM (
    SELECT queue, job, key, value FROM {schema}.jobwire_stats
    UNION ALL
    SELECT queue, job, key, value FROM {schema}.jobwire_stats_pending
) AS counters
GROUP BY queue, job, key;

-- name: register_worker
INSERT INTO {schema}.jobwire_workers AS w (
    id, host, pid, queues, concurrency, version, started_at, last_heartbeat, running, names
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, version = excluded.version,
    started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat,
    running = excluded.running, names = excluded.names;

-- name: worker_heartbeat
UPDATE {schema}.jobwire_workers SET last_heartbeat = $2, running = $3 WHERE id = $1;

-- name: deregister_worker
DELETE FROM {schema}.jobwire_workers WHERE id = $1;

-- name: list_workers
SELECT * FROM {schema}.jobwire_workers ORDER BY id COLLATE "C";

-- name: prune_workers
DELETE FROM {schema}.jobwire_workers WHERE last_heartbeat < $1;

-- name: record_job_names
-- In name order, so that instances starting at once take the row locks in one order.
INSERT INTO {schema}.jobwire_job_names AS n (name, last_seen)
SELECT name, $2 FROM unnest($1::text[]) AS name ORDER BY name COLLATE "C"
ON CONFLICT (name) DO UPDATE SET last_seen = greatest(n.last_seen, excluded.last_seen);

-- name: job_names
SELECT name, last_seen FROM {schema}.jobwire_job_names ORDER BY name COLLATE "C";

-- name: schedule_states
SELECT * FROM {schema}.jobwire_schedules WHERE name = ANY($1::text[]);

-- name: track_schedules
-- In name order, so that instances starting at once take the row locks in one order.
INSERT INTO {schema}.jobwire_schedules (name, since, updated_at)
SELECT name, $2, $2 FROM unnest($1::text[]) AS name ORDER BY name COLLATE "C"
ON CONFLICT (name) DO NOTHING;

-- name: record_schedule_fire
-- $2 (the tick) moves since and last_fire_at forward only; the job follows last_fire_at.
INSERT INTO {schema}.jobwire_schedules AS s (name, since, last_fire_at, last_job_id, updated_at)
VALUES ($1, $2, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET
    since = greatest(s.since, excluded.since),
    last_job_id = CASE WHEN s.last_fire_at IS NULL OR excluded.last_fire_at >= s.last_fire_at
                       THEN excluded.last_job_id ELSE s.last_job_id END,
    last_fire_at = greatest(s.last_fire_at, excluded.last_fire_at),
    updated_at = excluded.updated_at;

-- name: set_schedule_paused
-- Resuming a paused schedule moves since to now: ticks passed while paused never fire.
INSERT INTO {schema}.jobwire_schedules AS s (name, paused, since, updated_at)
VALUES ($1, $2, $3, $3)
ON CONFLICT (name) DO UPDATE SET
    since = CASE WHEN s.paused AND NOT excluded.paused THEN greatest(s.since, excluded.since)
                 ELSE s.since END,
    paused = excluded.paused,
    updated_at = excluded.updated_at
RETURNING *;

-- name: due_deliveries
WITH clock AS (SELECT extract(epoch FROM statement_timestamp())::float8 AS now)
SELECT d.*, clock.now
FROM {schema}.jobwire_deliveries AS d, clock
WHERE d.status = 'pending'
  AND d.next_attempt_at <= clock.now
  AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= clock.now)
ORDER BY d.next_attempt_at, d.id
LIMIT $1
FOR UPDATE OF d SKIP LOCKED;

-- name: lease_deliveries
UPDATE {schema}.jobwire_deliveries AS d
SET claim_token = l.claim_token, lease_expires_at = l.lease_expires_at
FROM unnest($1::text[], $2::text[], $3::float8[]) AS l(id, claim_token, lease_expires_at)
WHERE d.id = l.id;

-- name: lock_delivery
SELECT d.*, extract(epoch FROM clock_timestamp())::float8 AS now
FROM {schema}.jobwire_deliveries AS d WHERE d.id = $1
FOR UPDATE;

-- name: record_delivery
UPDATE {schema}.jobwire_deliveries SET
    status = $2, attempts = attempts + 1, next_attempt_at = $3, last_attempt_at = $4,
    last_status_code = $5, last_error = $6, claim_token = NULL, lease_expires_at = NULL
WHERE id = $1 AND claim_token = $7
RETURNING *;

-- name: disable_deliveries
-- A 410 turns off the URL for the job: its other pending deliveries end too.
UPDATE {schema}.jobwire_deliveries SET
    status = 'disabled', next_attempt_at = NULL, claim_token = NULL,
    lease_expires_at = NULL, last_error = $4
WHERE job_id = $1 AND url = $2 AND status = 'pending' AND id <> $3;

-- name: deliveries_for
SELECT * FROM {schema}.jobwire_deliveries WHERE job_id = $1 ORDER BY seq, url COLLATE "C";

-- name: next_delivery_at
SELECT min(greatest(next_attempt_at, coalesce(lease_expires_at, 0)))
FROM {schema}.jobwire_deliveries
WHERE status = 'pending';

-- name: insert_workflow
INSERT INTO {schema}.jobwire_workflows (id, owner, state, steps, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: get_workflow
SELECT * FROM {schema}.jobwire_workflows WHERE id = $1;

-- name: open_workflows
SELECT * FROM {schema}.jobwire_workflows WHERE state = 'running'
ORDER BY created_at, id LIMIT $1;

-- name: end_workflow
UPDATE {schema}.jobwire_workflows SET state = $2, updated_at = $3
WHERE id = $1 AND state = 'running'
RETURNING *;

-- name: lock_permit
-- Acquirers of one key take turns (keys locked in sorted order: no deadlock).
SELECT pg_advisory_xact_lock(hashtext($1));

-- name: prune_starts
DELETE FROM {schema}.jobwire_rate_starts WHERE key = $1 AND at <= $2;

-- name: window_starts
SELECT at FROM {schema}.jobwire_rate_starts WHERE key = $1 ORDER BY at;

-- name: prune_permits
DELETE FROM {schema}.jobwire_permits WHERE key = $1 AND expires_at <= $2;

-- name: other_permits
SELECT expires_at FROM {schema}.jobwire_permits WHERE key = $1 AND holder <> $2;

-- name: add_start
INSERT INTO {schema}.jobwire_rate_starts (key, at, holder) VALUES ($1, $2, $3);

-- name: hold_permit
INSERT INTO {schema}.jobwire_permits (key, holder, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (key, holder) DO UPDATE SET expires_at = excluded.expires_at;

-- name: renew_permit
UPDATE {schema}.jobwire_permits SET expires_at = $1 WHERE key = $2 AND holder = $3;

-- name: release_permit
DELETE FROM {schema}.jobwire_permits WHERE key = $1 AND holder = $2;
