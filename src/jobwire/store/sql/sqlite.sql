-- name: schema
CREATE TABLE IF NOT EXISTS jobwire_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    job              TEXT NOT NULL,
    queue            TEXT NOT NULL,
    state            TEXT NOT NULL,
    owner            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    args             TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    timeout          REAL,
    created_at       REAL NOT NULL,
    scheduled_at     REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    progress         TEXT,
    result           TEXT,
    error            TEXT,
    lease_expires_at REAL,
    claim_token      TEXT,
    worker_id        TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_seq         INTEGER NOT NULL,
    idempotency_key  TEXT,
    options          TEXT NOT NULL DEFAULT '{}',
    crashes          INTEGER NOT NULL DEFAULT 0
);
-- Claims read only queued rows, in priority then due-time order.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (queue, priority DESC, scheduled_at, id)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, id);
-- The rowid "cursor" is store-wide and only grows: streams over many jobs resume by it.
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    type   TEXT NOT NULL,
    data   TEXT NOT NULL,
    at     REAL NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE TABLE IF NOT EXISTS idempotency (
    owner       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT,
    job_id      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (owner, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_job ON idempotency (job_id);
-- The webhook outbox: one row per (job, event, URL), inserted in the transaction that
-- appends the event. "id" is the webhook-id, the same on every attempt.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    next_attempt_at  REAL,
    last_attempt_at  REAL,
    last_status_code INTEGER,
    last_error       TEXT,
    claim_token      TEXT,
    lease_expires_at REAL,
    UNIQUE (job_id, seq, url)
);
-- Senders read only pending rows, in due order.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- Counters per queue and job name (jobwire.store.stats), added to once per group commit.
CREATE TABLE IF NOT EXISTS job_stats (
    queue TEXT NOT NULL,
    job   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (queue, job, key)
) WITHOUT ROWID;
-- The worker registry: one row per running worker process, its heartbeat kept fresh.
CREATE TABLE IF NOT EXISTS workers (
    id             TEXT PRIMARY KEY,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    queues         TEXT NOT NULL,
    concurrency    INTEGER NOT NULL,
    version        TEXT NOT NULL,
    started_at     REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    running        TEXT NOT NULL,
    names          TEXT NOT NULL DEFAULT '[]'
);
-- Every job name a server or worker has registered, and when one last started with it.
CREATE TABLE IF NOT EXISTS job_names (
    name      TEXT PRIMARY KEY,
    last_seen REAL NOT NULL
) WITHOUT ROWID;
-- Each schedule declared in code, as schedulers and pause/resume left it (version 6).
CREATE TABLE IF NOT EXISTS schedules (
    name         TEXT PRIMARY KEY,
    paused       INTEGER NOT NULL DEFAULT 0,
    since        REAL NOT NULL,
    last_fire_at REAL,
    last_job_id  TEXT,
    updated_at   REAL NOT NULL
) WITHOUT ROWID;
-- Each workflow, its steps stored whole when it was submitted (version 7).
CREATE TABLE IF NOT EXISTS workflows (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL,
    steps      TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflows_open ON workflows (created_at, id) WHERE state = 'running';

-- Rate limits (version 7): the starts each key granted within its window, and the
-- holders running under each key's concurrency limit until their permit expires.
CREATE TABLE IF NOT EXISTS rate_starts (
    key    TEXT NOT NULL,
    at     REAL NOT NULL,
    holder TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_starts_by_key ON rate_starts (key, at);
CREATE TABLE IF NOT EXISTS permits (
    key        TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, holder)
) WITHOUT ROWID;

-- name: get_meta
SELECT value FROM jobwire_meta WHERE key = ?;

-- name: set_meta
INSERT INTO jobwire_meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: get_job
SELECT * FROM jobs WHERE id = ?;

-- name: get_jobs
SELECT * FROM jobs WHERE id IN (?);

-- name: insert_job
INSERT INTO jobs (
    id, job, queue, state, owner, priority, args, attempts, max_attempts, timeout,
    created_at, scheduled_at, started_at, finished_at, progress, result, error,
    lease_expires_at, claim_token, worker_id, cancel_requested, last_seq,
    idempotency_key, options
) VALUES (
    :id, :job, :queue, :state, :owner, :priority, :args, :attempts, :max_attempts, :timeout,
    :created_at, :scheduled_at, :started_at, :finished_at, :progress, :result, :error,
    :lease_expires_at, :claim_token, :worker_id, :cancel_requested, :last_seq,
    :idempotency_key, :options
);

-- name: update_job
UPDATE jobs SET
    state = :state, attempts = :attempts, scheduled_at = :scheduled_at,
    started_at = :started_at, finished_at = :finished_at, progress = :progress,
    result = :result, error = :error, lease_expires_at = :lease_expires_at,
    claim_token = :claim_token, worker_id = :worker_id,
    cancel_requested = :cancel_requested, last_seq = :last_seq, crashes = :crashes
WHERE id = :id;

-- name: insert_event
INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?);

-- name: due_jobs
-- One queue at a time, so the rows come in index order and no sort is needed.
SELECT * FROM jobs
WHERE state = 'queued'
  AND queue = :queue
  AND job IN (SELECT value FROM json_each(:names))
  AND scheduled_at <= :now
ORDER BY priority DESC, scheduled_at, id
LIMIT :limit;

-- name: next_due
SELECT min(scheduled_at) FROM jobs
WHERE state = 'queued'
  AND queue IN (SELECT value FROM json_each(:queues))
  AND job IN (SELECT value FROM json_each(:names));

-- name: expired_leases
SELECT * FROM jobs WHERE state = 'running' AND lease_expires_at <= ? LIMIT 500;

-- name: events_after
SELECT cursor, job_id, seq, type, data, at FROM events
WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?;

-- name: feed
SELECT e.cursor, e.job_id, e.seq, e.type, e.data, e.at FROM events AS e
WHERE e.cursor > :after
  AND (:owner IS NULL OR e.job_id IN (SELECT id FROM jobs WHERE owner = :owner))
ORDER BY e.cursor LIMIT :limit;

-- name: last_cursor
-- From the AUTOINCREMENT counter, so it never goes back when old events are pruned.
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0);

-- name: list_jobs
SELECT * FROM jobs
WHERE (:owner IS NULL OR owner = :owner)
  AND (:job IS NULL OR job = :job)
  AND (:queue IS NULL OR queue = :queue)
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  -- A bound the id index can seek to ('~' sorts after every id): "IS NULL OR" would
  -- make a page far from the newest walk the index from the top.
  AND id < coalesce(:before, '~')
ORDER BY id DESC
LIMIT :limit;

-- name: get_idempotency
SELECT fingerprint, job_id FROM idempotency WHERE owner = ? AND key = ?;

-- name: insert_idempotency
INSERT INTO idempotency (owner, key, fingerprint, job_id, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (owner, key) DO UPDATE SET
    fingerprint = excluded.fingerprint, job_id = excluded.job_id,
    created_at = excluded.created_at;

-- name: add_stat
INSERT INTO job_stats (queue, job, key, value) VALUES (?, ?, ?, ?)
ON CONFLICT (queue, job, key) DO UPDATE SET value = value + excluded.value;

-- name: stats
SELECT queue, job, key, value FROM job_stats;

-- name: clear_state_stats
-- Migration to version 3: the per-state counts of the jobs already stored.
DELETE FROM job_stats WHERE key LIKE 'state:%';

-- name: count_state_stats
INSERT INTO job_stats (queue, job, key, value)
SELECT queue, job, 'state:' || state, count(*) FROM jobs GROUP BY queue, job, state;

-- name: worker_columns
SELECT name FROM pragma_table_info('workers');

-- name: migrate_4
-- Version 3 → 4: the job names each worker runs (job_names is made by "schema").
ALTER TABLE workers ADD COLUMN names TEXT NOT NULL DEFAULT '[]';

-- name: register_worker
INSERT OR REPLACE INTO workers (
    id, host, pid, queues, concurrency, version, started_at, last_heartbeat, running, names
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: worker_heartbeat
UPDATE workers SET last_heartbeat = ?, running = ? WHERE id = ?;

-- name: deregister_worker
DELETE FROM workers WHERE id = ?;

-- name: list_workers
SELECT id, host, pid, queues, concurrency, version, started_at, last_heartbeat, running, names
FROM workers ORDER BY id;

-- name: record_job_name
INSERT INTO job_names (name, last_seen) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen);

-- name: job_names
SELECT name, last_seen FROM job_names ORDER BY name;

-- name: track_schedule
INSERT INTO schedules (name, since, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING;

-- name: schedule_states
SELECT name, paused, since, last_fire_at, last_job_id, updated_at FROM schedules
WHERE name IN (SELECT value FROM json_each(?));

-- name: record_schedule_fire
-- :fire_at moves since and last_fire_at forward only; the job follows last_fire_at.
INSERT INTO schedules (name, since, last_fire_at, last_job_id, updated_at)
VALUES (:name, :fire_at, :fire_at, :job_id, :now)
ON CONFLICT (name) DO UPDATE SET
    since = max(since, excluded.since),
    last_job_id = CASE WHEN last_fire_at IS NULL OR excluded.last_fire_at >= last_fire_at
                       THEN excluded.last_job_id ELSE last_job_id END,
    last_fire_at = max(coalesce(last_fire_at, excluded.last_fire_at), excluded.last_fire_at),
    updated_at = excluded.updated_at;

-- name: set_schedule_paused
-- Resuming a paused schedule moves since to now: ticks passed while paused never fire.
INSERT INTO schedules (name, paused, since, updated_at) VALUES (:name, :paused, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    since = CASE WHEN paused = 1 AND excluded.paused = 0 THEN max(since, excluded.since)
                 ELSE since END,
    paused = excluded.paused,
    updated_at = excluded.updated_at;

-- name: prune_workers
DELETE FROM workers WHERE last_heartbeat < ?;

-- name: delete_events
DELETE FROM events WHERE job_id = ?;

-- name: delete_idempotency
DELETE FROM idempotency WHERE job_id = ?;

-- name: delete_job
DELETE FROM jobs WHERE id = ?;

-- name: insert_delivery
INSERT INTO webhook_deliveries (
    id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at
) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?);

-- name: disabled_delivery_urls
SELECT DISTINCT url FROM webhook_deliveries WHERE job_id = ? AND status = 'disabled';

-- name: get_delivery
SELECT id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at,
       last_attempt_at, last_status_code, last_error, claim_token, lease_expires_at
FROM webhook_deliveries WHERE id = ?;

-- name: due_deliveries
SELECT id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at,
       last_attempt_at, last_status_code, last_error, claim_token, lease_expires_at
FROM webhook_deliveries
WHERE status = 'pending'
  AND next_attempt_at <= :now
  AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
ORDER BY next_attempt_at, id
LIMIT :limit;

-- name: lease_delivery
UPDATE webhook_deliveries SET claim_token = ?, lease_expires_at = ? WHERE id = ?;

-- name: record_delivery
UPDATE webhook_deliveries SET
    status = :status, attempts = attempts + 1, next_attempt_at = :next_attempt_at,
    last_attempt_at = :now, last_status_code = :status_code, last_error = :error,
    claim_token = NULL, lease_expires_at = NULL
WHERE id = :id;

-- name: disable_deliveries
-- A 410 turns off the URL for the job: its other pending deliveries end too.
UPDATE webhook_deliveries SET
    status = 'disabled', next_attempt_at = NULL, claim_token = NULL,
    lease_expires_at = NULL, last_error = :error
WHERE job_id = :job_id AND url = :url AND status = 'pending' AND id != :id;

-- name: deliveries_for
SELECT id, job_id, seq, event, url, body, status, attempts, created_at, next_attempt_at,
       last_attempt_at, last_status_code, last_error, claim_token, lease_expires_at
FROM webhook_deliveries WHERE job_id = ? ORDER BY seq, url;

-- name: next_delivery_at
SELECT min(max(next_attempt_at, coalesce(lease_expires_at, 0))) FROM webhook_deliveries
WHERE status = 'pending';

-- name: delete_deliveries
DELETE FROM webhook_deliveries WHERE job_id = ?;

-- name: timings
-- The newest finished jobs first, read along the finished_at index.
SELECT queue, state, scheduled_at, started_at, finished_at FROM jobs
WHERE finished_at >= :since
  AND (:owner IS NULL OR owner = :owner)
ORDER BY finished_at DESC
LIMIT :limit;

-- name: oldest_queued
SELECT queue, min(scheduled_at) FROM jobs
WHERE state = 'queued' AND scheduled_at <= :now
  AND (:owner IS NULL OR owner = :owner)
GROUP BY queue;

-- name: count_finished
SELECT count(*) FROM jobs
WHERE finished_at IS NOT NULL
  AND state IN (SELECT value FROM json_each(:states))
  AND (:owner IS NULL OR owner = :owner)
  AND (:job IS NULL OR job = :job)
  AND (:queue IS NULL OR queue = :queue)
  AND (:after IS NULL OR finished_at >= :after)
  AND (:before IS NULL OR finished_at < :before);

-- name: purgeable
SELECT id, queue, job, state FROM jobs
WHERE finished_at IS NOT NULL
  AND state IN (SELECT value FROM json_each(:states))
  AND (:owner IS NULL OR owner = :owner)
  AND (:job IS NULL OR job = :job)
  AND (:queue IS NULL OR queue = :queue)
  AND (:after IS NULL OR finished_at >= :after)
  AND (:before IS NULL OR finished_at < :before)
LIMIT 1000;

-- name: insert_workflow
INSERT INTO workflows (id, owner, state, steps, created_at, updated_at)
VALUES (:id, :owner, :state, :steps, :created_at, :updated_at);

-- name: get_workflow
SELECT id, owner, state, steps, created_at, updated_at FROM workflows WHERE id = ?;

-- name: open_workflows
SELECT id, owner, state, steps, created_at, updated_at FROM workflows
WHERE state = 'running' ORDER BY created_at, id LIMIT ?;

-- name: end_workflow
UPDATE workflows SET state = :state, updated_at = :now
WHERE id = :id AND state = 'running'
RETURNING id, owner, state, steps, created_at, updated_at;

-- name: prune_starts
DELETE FROM rate_starts WHERE key = ? AND at <= ?;

-- name: window_starts
SELECT at FROM rate_starts WHERE key = ? ORDER BY at;

-- name: prune_permits
DELETE FROM permits WHERE key = ? AND expires_at <= ?;

-- name: other_permits
SELECT expires_at FROM permits WHERE key = ? AND holder <> ?;

-- name: add_start
INSERT INTO rate_starts (key, at, holder) VALUES (?, ?, ?);

-- name: hold_permit
INSERT INTO permits (key, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key, holder) DO UPDATE SET expires_at = excluded.expires_at;

-- name: renew_permit
UPDATE permits SET expires_at = ? WHERE key = ? AND holder = ?;

-- name: release_permit
DELETE FROM permits WHERE key = ? AND holder = ?;
