-- The Redis store's scripts, one per job operation, loaded once by jobwire.store.redis.
--
-- Each "-- name: NAME" section is one script; the "lib" section is prepended to every
-- other one. The rules are jobwire.model's: each transition below mirrors the model
-- function it names, checks the same preconditions (state, claim token = fencing) and
-- makes the same field changes and events. Every check runs before the first write,
-- because Redis does not undo the writes of a script that stops with an error.
--
-- Python does the encoding, Lua the deciding: times arrive as exact decimal strings
-- (Python's repr of a float) and JSON values as text, and are stored and spliced into
-- events verbatim. Lua never formats a float (it would keep only 14 digits) and never
-- re-encodes a JSON value; it only does integer arithmetic (attempts, seq, cursor) and
-- encodes plain strings with cjson.
--
-- KEYS are not declared: every key is derived from the prefix in ARGV[1] (claims find
-- their jobs inside the script), so these scripts need a standalone Redis (or one
-- behind Sentinel), not Redis Cluster.

-- name: lib
-- Every script gets the key prefix as ARGV[1]; every script that writes also gets the
-- id of the calling store instance (ORIGIN, for its wake-ups) and the store's clock
-- (NOW) as ARGV[2] and ARGV[3].
local P, ORIGIN, NOW = ARGV[1], ARGV[2], ARGV[3]

local function enc(s)
  return (string.gsub(s, '[%%:]', { ['%'] = '%25', [':'] = '%3A' }))
end

local function job_key(id) return P .. 'job:' .. enc(id) end
local function events_key(id) return P .. 'events:' .. enc(id) end
local function levels_key(queue, name) return P .. 'levels:' .. enc(queue) .. ':' .. enc(name) end
local function due_key(queue, name, priority)
  return P .. 'due:' .. enc(queue) .. ':' .. enc(name) .. ':' .. priority
end
local function owner_ids_key(owner) return P .. 'ids:' .. enc(owner) end
local function owner_feed_key(owner) return P .. 'feed:' .. enc(owner) end
local function idem_key(owner, key) return P .. 'idem:' .. enc(owner) .. ':' .. enc(key) end
local function ready_key(queue, name) return P .. 'ready:' .. enc(queue) .. ':' .. enc(name) end
local IDS = P .. 'ids'
local FEED = P .. 'feed'
local CURSOR = P .. 'cursor'
local LEASES = P .. 'leases'
local FINISHED = P .. 'finished'
local WAKE = P .. 'wake'
-- Job news (job, jobs) for followers; the rest (cancel, webhooks) on WAKE: a process that
-- follows no job, as a worker, subscribes only to WAKE (jobwire.store.redis).
local NEWS = P .. 'wake:news'
local function delivery_key(id) return P .. 'delivery:' .. enc(id) end
local function deliveries_key(job_id) return P .. 'deliveries:' .. enc(job_id) end
local OUTBOX = P .. 'outbox'
local OUTBOX_LEASED = P .. 'outbox-leased'

local STATS = P .. 'stats'
local WORKERS = P .. 'workers'

local TERMINAL = { succeeded = true, failed = true, cancelled = true }

-- jobwire.store.stats: counters per (queue, job name, key), the field a JSON array.
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
  3600 }
local EVENT_COUNTER = { started = 'started', succeeded = 'succeeded', failed = 'failed',
  retrying = 'retried', cancelled = 'cancelled' }
local function stat(job, key, delta)
  redis.call('HINCRBYFLOAT', STATS, cjson.encode({ job.queue, job.job, key }), delta)
end
local function observe(job, histogram, seconds)
  if seconds < 0 then seconds = 0 end
  local i = #BUCKETS
  for b = 1, #BUCKETS do
    if seconds <= BUCKETS[b] then i = b - 1; break end
  end
  stat(job, histogram .. ':' .. i, 1)
  stat(job, histogram .. ':sum', seconds)
end

-- A refusal: raised before any write, turned into a jobwire exception in Python.
local function refuse(kind, a, b, c)
  error({ err = 'JOBWIRE ' .. cjson.encode({ kind, a or '', b or '', c or '' }) })
end

-- A hash as one JSON object of strings: one reply element per record instead of two
-- per field (its values are all strings, so cjson changes none of them).
local function record(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return cjson.encode(t)
end

-- The fields a transition reads, or nil when the job does not exist.
local function load(id)
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'state', 'claim_token', 'attempts', 'max_attempts',
    'cancel_requested', 'last_seq', 'queue', 'job', 'priority', 'worker_id', 'owner',
    'lease_expires_at', 'webhook_url', 'webhook_events', 'webhook_off')
  if not v[1] then return nil end
  return {
    id = id, key = key, state = v[1], claim_token = v[2], attempts = tonumber(v[3]),
    max_attempts = tonumber(v[4]), cancel_requested = v[5] == '1', last_seq = tonumber(v[6]),
    queue = v[7], job = v[8], priority = v[9], worker_id = v[10], owner = v[11],
    lease_expires_at = v[12], webhook_url = v[13], webhook_events = v[14],
    webhook_off = v[15] == '1', new = {},
  }
end

local function load_or_refuse(id)
  local job = load(id)
  if not job then refuse('notfound', id) end
  return job
end

-- model._require_claim
local function require_claim(job, token, action)
  if job.state ~= 'running' or job.claim_token ~= token then
    if job.claim_token ~= token then refuse('stale', job.id) end
    refuse('invalid', job.id, job.state, action)
  end
end

-- The wake-ups of base.notices_for and base.delivery_notices: published once at the
-- end of the script, and handed back to the caller for its own listeners.
local notices, webhook_notices = {}, {}

-- The doorbell (jobwire.store.redis): per queue and job name, a list of wake-ups that
-- idle workers BLPOP, so that each one wakes one worker, where the `jobs` notice wakes
-- them all. One per job that became due, at most READY_CAP waiting: with no worker
-- idle they would only pile up. A job due later rings once, if none is waiting, so that
-- one idle worker learns when it falls due. Pushed by reply(), after the changes.
local READY_CAP = 64
local rings, rung = {}, {}
local function ring(queue, name, due)
  local key = ready_key(queue, name)
  if not rings[key] then
    rings[key] = 0
    rung[#rung + 1] = key
  end
  if due then rings[key] = rings[key] + 1 end
end
local function ring_doorbells()
  for _, key in ipairs(rung) do
    local n = math.min(rings[key], READY_CAP)
    if n == 0 and redis.call('LLEN', key) == 0 then n = 1 end
    if n > 0 then
      local tokens = {}
      for i = 1, n do tokens[i] = '1' end
      redis.call('RPUSH', key, unpack(tokens))
      redis.call('LTRIM', key, -READY_CAP, -1)
    end
  end
end
local function notice(job)
  notices[#notices + 1] = 'job ' .. job.id
  if job.state == 'queued' then
    notices[#notices + 1] = 'jobs ' .. job.queue
  elseif job.state == 'running' and job.cancel_requested then
    notices[#notices + 1] = 'cancel ' .. job.id
  end
end
local function reply(result)
  ring_doorbells()
  for _, line in ipairs(webhook_notices) do notices[#notices + 1] = line end
  local news, control = {}, {}
  for _, line in ipairs(notices) do
    if string.sub(line, 1, 4) == 'job ' or string.sub(line, 1, 5) == 'jobs ' then
      news[#news + 1] = line
    else
      control[#control + 1] = line
    end
  end
  if #news > 0 then
    redis.call('PUBLISH', NEWS, 'from ' .. ORIGIN .. '\n' .. table.concat(news, '\n'))
  end
  if #control > 0 then
    redis.call('PUBLISH', WAKE, 'from ' .. ORIGIN .. '\n' .. table.concat(control, '\n'))
  end
  return { result, notices }
end

-- base.webhook_deliveries: one delivery per new event of a type the job's webhook asks
-- for (its URL and types were read from the options at enqueue), unless a 410 turned
-- the URL off. Written in the same script as the event: both or neither. The delivery
-- keeps a snapshot of the job after the change, from which Python renders the body
-- (base.webhook_body) exactly as the other stores write it.
local function outbox(job)
  local new = job.new
  job.new = {}
  if #new == 0 or not job.webhook_url or job.webhook_off then return end
  local snapshot = nil
  for _, event in ipairs(new) do
    if string.find(job.webhook_events, ' ' .. event.type .. ' ', 1, true) then
      if not snapshot then
        local v = redis.call('HMGET', job.key, 'job', 'state', 'attempts', 'max_attempts',
          'result', 'error', 'progress')
        snapshot = '{"job":' .. cjson.encode(v[1]) .. ',"state":"' .. v[2] .. '","attempts":' ..
          v[3] .. ',"max_attempts":' .. v[4] .. ',"result":' .. (v[5] or 'null') ..
          ',"error":' .. (v[6] or 'null') .. ',"progress":' .. (v[7] or 'null')
      end
      local id = 'msg_' .. job.id .. '_' .. event.seq  -- base.message_id
      redis.call('HSET', delivery_key(id), 'id', id, 'job_id', job.id, 'seq', event.seq,
        'event', event.type, 'url', job.webhook_url, 'status', 'pending', 'attempts', '0',
        'created_at', NOW, 'next_attempt_at', NOW,
        'snapshot', snapshot .. ',"data":' .. event.data .. ',"at":' .. event.at .. '}')
      redis.call('ZADD', deliveries_key(job.id), event.seq, id)
      redis.call('ZADD', OUTBOX, NOW, id)
    end
  end
  if snapshot then webhook_notices[#webhook_notices + 1] = 'webhooks ' .. job.id end
end

-- What every transition ends with: its wake-ups and its webhook deliveries.
local function changed(job)
  notice(job)
  outbox(job)
end

-- model._change: number an event after the job's last_seq, give it the next store-wide
-- cursor, and append it to the job's log and to the feeds (everyone's and the owner's).
local function append(job, now, etype, data)
  job.last_seq = job.last_seq + 1
  local cursor = redis.call('INCR', CURSOR)
  redis.call('RPUSH', events_key(job.id), '{"c":' .. cursor .. ',"s":' .. job.last_seq ..
    ',"t":"' .. etype .. '","a":' .. now .. ',"d":' .. data .. '}')
  local ref = job.last_seq .. ' ' .. job.id
  redis.call('ZADD', FEED, cursor, ref)
  redis.call('ZADD', owner_feed_key(job.owner), cursor, ref)
  redis.call('HSET', job.key, 'last_seq', job.last_seq)
  job.new[#job.new + 1] = { seq = job.last_seq, type = etype, data = data, at = now }
  if etype == 'queued' and job.last_seq == 1 then stat(job, 'total:enqueued', 1) end
  local counter = EVENT_COUNTER[etype]
  if counter then stat(job, 'total:' .. counter, 1) end
  if etype == 'started' then
    observe(job, 'wait', tonumber(now) - tonumber(redis.call('HGET', job.key, 'scheduled_at')))
  elseif job.state == 'running' and etype ~= 'progress' and etype ~= 'output' then
    local started = redis.call('HGET', job.key, 'started_at')
    if started then observe(job, 'run', tonumber(now) - tonumber(started)) end
  end
end

-- Index upkeep on entering and leaving states.
local function enter_queue(job, scheduled_at)
  redis.call('ZADD', due_key(job.queue, job.job, job.priority), scheduled_at, job.id)
  redis.call('ZADD', levels_key(job.queue, job.job), -tonumber(job.priority), job.priority)
  ring(job.queue, job.job, tonumber(scheduled_at) <= tonumber(NOW))
end
local function leave_queue(job)
  local due = due_key(job.queue, job.job, job.priority)
  redis.call('ZREM', due, job.id)
  if redis.call('EXISTS', due) == 0 then
    redis.call('ZREM', levels_key(job.queue, job.job), job.priority)
  end
end
-- model._RELEASED: no lease, no claim token, no worker.
local function release_claim(job)
  redis.call('HDEL', job.key, 'lease_expires_at', 'claim_token', 'worker_id')
  redis.call('ZREM', LEASES, job.id)
  job.claim_token = false
  job.worker_id = false
end
local function set_state(job, state)
  if job.state then stat(job, 'state:' .. job.state, -1) end
  stat(job, 'state:' .. state, 1)
  job.state = state
  redis.call('HSET', job.key, 'state', state)
end
local function finish_at(job, now)
  redis.call('HSET', job.key, 'finished_at', now)
  redis.call('ZADD', FINISHED, now, job.id)
end

-- model.enqueue; the caller has refused an id that is already stored (last_seq != 0).
local function enqueue(spec, now)
  local job = {
    id = spec.id, key = job_key(spec.id), queue = spec.queue, job = spec.job,
    priority = spec.priority, owner = spec.owner, last_seq = 0, cancel_requested = false,
    webhook_url = spec.webhook_url ~= cjson.null and spec.webhook_url,
    webhook_events = spec.webhook_events, webhook_off = false, new = {},
  }
  local fields = {
    'id', spec.id, 'job', spec.job, 'queue', spec.queue, 'owner', spec.owner,
    'priority', spec.priority, 'args', spec.args, 'attempts', '0',
    'max_attempts', spec.max_attempts, 'created_at', now, 'scheduled_at', spec.scheduled_at,
    'cancel_requested', '0', 'options', spec.options,
  }
  if spec.timeout ~= cjson.null then
    fields[#fields + 1] = 'timeout'
    fields[#fields + 1] = spec.timeout
  end
  if spec.key ~= cjson.null then
    fields[#fields + 1] = 'idempotency_key'
    fields[#fields + 1] = spec.key
  end
  if job.webhook_url then
    fields[#fields + 1] = 'webhook_url'
    fields[#fields + 1] = job.webhook_url
    fields[#fields + 1] = 'webhook_events'
    fields[#fields + 1] = job.webhook_events
  end
  redis.call('HSET', job.key, unpack(fields))
  set_state(job, 'queued')
  append(job, now, 'queued',
    '{"queue":' .. cjson.encode(spec.queue) .. ',"scheduled_at":' .. spec.scheduled_at .. '}')
  enter_queue(job, spec.scheduled_at)
  redis.call('ZADD', IDS, 0, job.id)
  redis.call('ZADD', owner_ids_key(job.owner), 0, job.id)
  changed(job)
end

-- model.claim; the caller passes only jobs it found queued.
local function claim(job, worker, token, now, lease_until)
  local attempt = job.attempts + 1
  leave_queue(job)
  append(job, now, 'started',
    '{"attempt":' .. attempt .. ',"worker":' .. cjson.encode(worker) .. '}')
  set_state(job, 'running')
  job.attempts = attempt
  job.claim_token = token
  job.worker_id = worker
  redis.call('HSET', job.key, 'attempts', attempt, 'started_at', now,
    'lease_expires_at', lease_until, 'claim_token', token, 'worker_id', worker)
  redis.call('ZADD', LEASES, lease_until, job.id)
  changed(job)
end

-- model.report
local function report(job, token, drafts, now)
  require_claim(job, token, 'report progress')
  for _, draft in ipairs(drafts) do
    if draft.type ~= 'progress' and draft.type ~= 'output' then
      refuse('invalid', job.id, job.state, 'report a ' .. draft.type .. ' event')
    end
  end
  local progress = nil
  for _, draft in ipairs(drafts) do
    append(job, now, draft.type, draft.data)
    if draft.type == 'progress' then progress = draft.progress end
  end
  if progress then redis.call('HSET', job.key, 'progress', progress) end
  changed(job)
end

-- model.succeed
local function succeed(job, token, result, now)
  require_claim(job, token, 'move to succeeded')
  -- model.succeed: a result over model.INLINE_RESULT_BYTES is kept once, on the job, and
  -- the event refers to it (model.RESULT_REF); a small one rides in the event too
  if #result <= 4096 then
    append(job, now, 'succeeded', '{"result":' .. result .. ',"attempt":' .. job.attempts .. '}')
  else
    append(job, now, 'succeeded', '{"attempt":' .. job.attempts .. ',"result_ref":true}')
  end
  set_state(job, 'succeeded')
  if result == 'null' then
    redis.call('HDEL', job.key, 'result', 'error')
  else
    redis.call('HSET', job.key, 'result', result)
    redis.call('HDEL', job.key, 'error')
  end
  finish_at(job, now)
  release_claim(job)
  changed(job)
end

-- model._failed_attempt: retried at retry_at while attempts remain (or uncharged, whatever
-- remains: the attempt handed back as model.release does), else failed.
local function failed_attempt(job, err, now, retry_at, charge)
  release_claim(job)
  redis.call('HSET', job.key, 'error', err)
  if retry_at and (not charge or job.attempts < job.max_attempts) then
    if job.cancel_requested then
      append(job, now, 'cancelled',
        '{"reason":"cancel requested; not retried","attempt":' .. job.attempts .. '}')
      set_state(job, 'cancelled')
      finish_at(job, now)
    else
      local uncharged = ''
      if not charge then uncharged = ',"charged":false' end
      append(job, now, 'retrying', '{"attempt":' .. job.attempts .. ',"error":' .. err ..
        ',"next_run_at":' .. retry_at .. uncharged .. '}')
      set_state(job, 'queued')
      redis.call('HSET', job.key, 'scheduled_at', retry_at)
      if not charge then
        job.attempts = math.max(0, job.attempts - 1)
        redis.call('HSET', job.key, 'attempts', job.attempts)
      end
      enter_queue(job, retry_at)
    end
  else
    append(job, now, 'failed', '{"error":' .. err .. ',"attempt":' .. job.attempts .. '}')
    set_state(job, 'failed')
    finish_at(job, now)
  end
  changed(job)
end

-- model.fail
local function fail(job, token, err, now, retry_at, charge)
  require_claim(job, token, 'record a failure')
  failed_attempt(job, err, now, retry_at, charge)
end

-- model.cancelled
local function cancelled(job, token, now, reason)
  require_claim(job, token, 'move to cancelled')
  append(job, now, 'cancelled',
    '{"reason":' .. cjson.encode(reason) .. ',"attempt":' .. job.attempts .. '}')
  set_state(job, 'cancelled')
  finish_at(job, now)
  release_claim(job)
  changed(job)
end

-- model.release
local function release(job, token, now, due_at)
  require_claim(job, token, 'release it')
  if job.cancel_requested then
    return cancelled(job, token, now, 'cancel requested; released at shutdown')
  end
  append(job, now, 'queued', '{"released":true,"worker":' .. cjson.encode(job.worker_id) .. '}')
  set_state(job, 'queued')
  job.attempts = math.max(0, job.attempts - 1)
  local due = now
  if due_at and tonumber(due_at) > tonumber(now) then due = due_at end
  redis.call('HSET', job.key, 'attempts', job.attempts, 'scheduled_at', due)
  release_claim(job)
  enter_queue(job, due)
  changed(job)
end

-- model.expire. Its refusals (not running, a live lease) answer false here instead of
-- raising: the reaper found the job in the lease index, so a refusal means a stale
-- index entry, which is dropped rather than stopping the other expiries half-written.
local function expire(job, now)
  if job.state ~= 'running' then return false end
  if job.lease_expires_at and tonumber(job.lease_expires_at) > tonumber(now) then
    return false
  end
  stat(job, 'total:expired', 1)
  if job.cancel_requested then
    append(job, now, 'cancelled', '{"reason":"lease expired after cancel request"}')
    set_state(job, 'cancelled')
    finish_at(job, now)
    release_claim(job)
    changed(job)
    return true
  end
  -- Not the job's fault: the attempt is handed back uncharged and counted as a crash,
  -- until the crash budget (the job's max_crashes option, else model.DEFAULT_MAX_CRASHES).
  local crashes = (tonumber(redis.call('HGET', job.key, 'crashes')) or 0) + 1
  local budget = 3
  local options = cjson.decode(redis.call('HGET', job.key, 'options') or '{}')
  if type(options) == 'table' and type(options.max_crashes) == 'number'
    and options.max_crashes >= 1 and options.max_crashes == math.floor(options.max_crashes) then
    budget = options.max_crashes
  end
  local lost_message = 'worker ' .. tostring(job.worker_id) .. ' stopped heartbeating during attempt '
    .. job.attempts .. ' (lost lease ' .. crashes .. ' of at most ' .. budget .. ')'
  local lost = cjson.encode({ type = 'LeaseExpired', message = lost_message })
  redis.call('HSET', job.key, 'crashes', crashes)
  if crashes >= budget then
    local err = cjson.encode({
      type = 'CrashBudgetExhausted',
      message = 'the job lost its worker ' .. crashes .. ' times (killed, or cut off from the '
        .. 'store, while running it) and its crash budget is max_crashes=' .. budget
        .. ': it is taken for a job that kills its worker and not run again; last lost: '
        .. lost_message,
    })
    release_claim(job)
    redis.call('HSET', job.key, 'error', err)
    append(job, now, 'failed', '{"error":' .. err .. ',"attempt":' .. job.attempts ..
      ',"lost":true,"crashes":' .. crashes .. '}')
    set_state(job, 'failed')
    finish_at(job, now)
    changed(job)
    return true
  end
  -- model.crash_spread
  local window = math.min(2 ^ (crashes - 1), 30)
  local k = (crashes - 1) % 3 + 1
  local share = tonumber(string.sub(job.id, -4 * k, #job.id - 4 * (k - 1)), 16)
  if not share or #string.sub(job.id, -4 * k, #job.id - 4 * (k - 1)) ~= 4 then share = 0 end
  local due = tonumber(now) + window * (share / 65536)
  local due_text = string.format('%.17g', due)
  append(job, now, 'queued', '{"lost":true,"worker":' .. cjson.encode(job.worker_id) ..
    ',"attempt":' .. job.attempts .. ',"crashes":' .. crashes .. ',"max_crashes":' .. budget ..
    ',"error":' .. lost .. ',"next_run_at":' .. due_text .. '}')
  set_state(job, 'queued')
  job.attempts = math.max(0, job.attempts - 1)
  redis.call('HSET', job.key, 'attempts', job.attempts, 'scheduled_at', due_text, 'error', lost)
  release_claim(job)
  enter_queue(job, due_text)
  changed(job)
  return true
end

-- model.request_cancel
local function request_cancel(job, now)
  if TERMINAL[job.state] then refuse('terminal', job.id, job.state, 'cancel it') end
  job.cancel_requested = true
  redis.call('HSET', job.key, 'cancel_requested', '1')
  if job.state == 'queued' then
    leave_queue(job)
    append(job, now, 'cancelled', '{"reason":"cancelled while queued"}')
    set_state(job, 'cancelled')
    finish_at(job, now)
    release_claim(job)
  end
  changed(job)
end

-- model.expire_unstarted: a queued job past its options' expires_at ends cancelled.
local function expire_unstarted(job, now)
  if job.state ~= 'queued' then
    local why = 'invalid'
    if TERMINAL[job.state] then why = 'terminal' end
    refuse(why, job.id, job.state, 'cancel it as expired')
  end
  local options = cjson.decode(redis.call('HGET', job.key, 'options') or '{}')
  local deadline = type(options) == 'table' and options.expires_at
  if type(deadline) ~= 'number' or deadline > tonumber(now) then
    refuse('invalid', job.id, 'queued and not expired', 'cancel it as expired')
  end
  leave_queue(job)
  append(job, now, 'cancelled', '{"reason":"expired"}')
  set_state(job, 'cancelled')
  finish_at(job, now)
  release_claim(job)
  changed(job)
end

-- Byte order, as Redis, SQLite and Python order ids (Lua's < follows the locale).
local function bytes_less(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end


-- A terminal job goes, with its events, feed entries, webhook deliveries and key.
local function delete_finished(id)
  local key = job_key(id)
  local v = redis.call('HMGET', key, 'owner', 'last_seq', 'idempotency_key', 'queue', 'job',
    'state')
  if v[1] then
    stat({ queue = v[4], job = v[5] }, 'state:' .. v[6], -1)
    local feeds = { FEED, owner_feed_key(v[1]) }
    local last = tonumber(v[2]) or 0
    for first = 1, last, 500 do
      local refs = {}
      for seq = first, math.min(last, first + 499) do refs[#refs + 1] = seq .. ' ' .. id end
      for _, feed in ipairs(feeds) do redis.call('ZREM', feed, unpack(refs)) end
    end
    for _, delivery in ipairs(redis.call('ZRANGE', deliveries_key(id), 0, -1)) do
      redis.call('ZREM', OUTBOX, delivery)
      redis.call('ZREM', OUTBOX_LEASED, delivery)
      redis.call('UNLINK', delivery_key(delivery))
    end
    if v[3] then
      local ik = idem_key(v[1], v[3])
      if redis.call('HGET', ik, 'job') == id then redis.call('DEL', ik) end
    end
    redis.call('ZREM', IDS, id)
    redis.call('ZREM', owner_ids_key(v[1]), id)
    redis.call('UNLINK', key, events_key(id), deliveries_key(id))
  end
  redis.call('ZREM', FINISHED, id)
end

-- name: enqueue
-- ARGV: prefix, origin, now, then one JSON spec per job (strings; null where absent).
-- Returns {created (1 or 0), job fields} per job. All or none: every refusal (a key
-- reused with another fingerprint, an id already stored) comes before the first write.
local specs, reuse, keys, ids = {}, {}, {}, {}
for i = 4, #ARGV do
  local spec = cjson.decode(ARGV[i])
  specs[#specs + 1] = spec
  local existing = false
  if spec.key ~= cjson.null then
    local key = idem_key(spec.owner, spec.key)
    local seen = keys[key]
    if not seen then
      local stored = redis.call('HMGET', key, 'fingerprint', 'job')
      if stored[2] and redis.call('EXISTS', job_key(stored[2])) == 1 then
        seen = { stored[1], stored[2] }
      end
    end
    if seen then
      if seen[1] ~= spec.fp then refuse('conflict', spec.key) end
      existing = seen[2]
    else
      keys[key] = { spec.fp, spec.id }
    end
  end
  if not existing then
    if ids[spec.id] then refuse('invalid', spec.id, 'queued', 'enqueue it twice') end
    local taken = redis.call('HGET', job_key(spec.id), 'state')
    if taken then refuse('invalid', spec.id, taken, 'enqueue it twice') end
    ids[spec.id] = true
  end
  reuse[#specs] = existing
end
for i, spec in ipairs(specs) do
  if not reuse[i] then
    enqueue(spec, NOW)
    if spec.key ~= cjson.null then
      redis.call('HSET', idem_key(spec.owner, spec.key), 'fingerprint', spec.fp,
        'job', spec.id, 'created_at', NOW)
    end
  end
end
local out = {}
for i, spec in ipairs(specs) do
  local id = reuse[i] or spec.id
  out[i] = { reuse[i] and 0 or 1, record(job_key(id)) }
end
return reply(out)

-- name: claim
-- ARGV: prefix, origin, now, lease_until, worker, limit, #queues, queues…, #names,
-- names…, then `limit` fresh tokens. Takes up to `limit` due jobs: the highest priority
-- first, then the earliest scheduled, then the lowest id; returns their fields.
local lease_until, worker = ARGV[4], ARGV[5]
local limit = tonumber(ARGV[6])
local nq = tonumber(ARGV[7])
local queues = { unpack(ARGV, 8, 7 + nq) }
local nn = tonumber(ARGV[8 + nq])
local names = { unpack(ARGV, 9 + nq, 8 + nq + nn) }
local token_at = 9 + nq + nn
-- The priority levels present in each (queue, name), merged: level → due-set keys.
local levels, order, examined = {}, {}, {}
for _, queue in ipairs(queues) do
  for _, name in ipairs(names) do
    local present = redis.call('ZRANGE', levels_key(queue, name), 0, -1)
    examined[#examined + 1] = { queue = queue, name = name, levels = present }
    for _, priority in ipairs(present) do
      if not levels[priority] then
        levels[priority] = {}
        order[#order + 1] = priority
      end
      local sets = levels[priority]
      sets[#sets + 1] = due_key(queue, name, priority)
    end
  end
end
table.sort(order, function(a, b) return tonumber(a) > tonumber(b) end)
local claimed = {}
for _, priority in ipairs(order) do
  local need = limit - #claimed
  if need <= 0 then break end
  -- Within one level: the earliest due of every matching set, merged.
  local candidates = {}
  for _, key in ipairs(levels[priority]) do
    local due = redis.call('ZRANGEBYSCORE', key, '-inf', NOW, 'WITHSCORES', 'LIMIT', 0, need)
    for i = 1, #due, 2 do
      candidates[#candidates + 1] = { id = due[i], at = tonumber(due[i + 1]), key = key }
    end
  end
  table.sort(candidates, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return bytes_less(a.id, b.id)
  end)
  for i = 1, math.min(need, #candidates) do
    local job = load(candidates[i].id)
    if job and job.state == 'queued' then
      claim(job, worker, ARGV[token_at + #claimed], NOW, lease_until)
      claimed[#claimed + 1] = job.id
    else
      -- model.claim refuses a job that is not queued: a stale index entry, dropped.
      redis.call('ZREM', candidates[i].key, candidates[i].id)
    end
  end
end
-- The doorbells of what this claim looked at: no more wake-ups waiting than jobs still
-- due (the claim took some; a cancel or another claim took others), and, when this
-- worker took all it asked for and jobs are left, one wake-up for another idle worker.
local full = #claimed == limit
for _, seen in ipairs(examined) do
  local key = ready_key(seen.queue, seen.name)
  local waiting = redis.call('LLEN', key)
  if waiting > 0 or full then
    local due = 0
    for _, priority in ipairs(seen.levels) do
      due = due + redis.call('ZCOUNT', due_key(seen.queue, seen.name, priority), '-inf', NOW)
    end
    if due == 0 then
      redis.call('DEL', key)
    elseif waiting > due then
      redis.call('LTRIM', key, 0, due - 1)
    elseif waiting == 0 and due > 0 then
      redis.call('RPUSH', key, '1')
    end
  end
end
local out = {}
for i, id in ipairs(claimed) do out[i] = record(job_key(id)) end
return reply(out)

-- name: heartbeat
-- ARGV: prefix, origin, now, lease_until, then job id and token pairs.
-- model.heartbeat: only the holder extends its lease. Not news: no wake-up.
-- Returns {{lost ids}, {ids whose cancellation was requested}}.
local lease_until = ARGV[4]
local lost, cancel = {}, {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job = load(id)
  if not job or job.state ~= 'running' or job.claim_token ~= token then
    lost[#lost + 1] = id
  else
    redis.call('HSET', job.key, 'lease_expires_at', lease_until)
    redis.call('ZADD', LEASES, lease_until, id)
    if job.cancel_requested then cancel[#cancel + 1] = id end
  end
end
return reply({ lost, cancel })

-- name: report
-- ARGV: prefix, origin, now, id, token, then type, data JSON, progress JSON per event.
local id, token = ARGV[4], ARGV[5]
local drafts = {}
for i = 6, #ARGV, 3 do
  drafts[#drafts + 1] = { type = ARGV[i], data = ARGV[i + 1], progress = ARGV[i + 2] }
end
report(load_or_refuse(id), token, drafts, NOW)
return reply(record(job_key(id)))

-- name: succeed
-- ARGV: prefix, origin, now, id, token, result JSON.
local id = ARGV[4]
succeed(load_or_refuse(id), ARGV[5], ARGV[6], NOW)
return reply(record(job_key(id)))

-- name: fail
-- ARGV: prefix, origin, now, id, token, error JSON, retry_at ('' for none), charge ('0': not
-- charged; '1' or absent: charged).
local id, retry_at = ARGV[4], ARGV[7]
if retry_at == '' then retry_at = nil end
fail(load_or_refuse(id), ARGV[5], ARGV[6], NOW, retry_at, ARGV[8] ~= '0')
return reply(record(job_key(id)))

-- name: release
-- ARGV: prefix, origin, now, id, token, due_at ('' or absent: now).
local id, due_at = ARGV[4], ARGV[6]
if due_at == '' then due_at = nil end
release(load_or_refuse(id), ARGV[5], NOW, due_at)
return reply(record(job_key(id)))

-- name: cancelled
-- ARGV: prefix, origin, now, id, token, reason (absent: 'cancelled while running').
local id = ARGV[4]
cancelled(load_or_refuse(id), ARGV[5], NOW, ARGV[6] or 'cancelled while running')
return reply(record(job_key(id)))

-- name: cancel
-- ARGV: prefix, origin, now, id, owner JSON (null: anyone).
local id = ARGV[4]
local owner = cjson.decode(ARGV[5])
local job = load_or_refuse(id)
if owner ~= cjson.null and job.owner ~= owner then refuse('notfound', id) end
request_cancel(job, NOW)
return reply(record(job_key(id)))

-- name: cancel_expired
-- ARGV: prefix, origin, now, id.
local id = ARGV[4]
expire_unstarted(load_or_refuse(id), NOW)
return reply(record(job_key(id)))

-- name: reap
-- ARGV: prefix, origin, now, at, batch. Expires up to `batch` leases run out by `at`.
local at, batch = ARGV[4], tonumber(ARGV[5])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', at, 'LIMIT', 0, batch)) do
  local job = load(id)
  if job and expire(job, at) then
    out[#out + 1] = record(job.key)
  else
    redis.call('ZREM', LEASES, id)
  end
end
return reply(out)

-- name: prune
-- ARGV: prefix, origin, now, finished_before, batch. Deletes up to `batch` terminal
-- jobs finished before the cutoff, with their events, feed entries, webhook
-- deliveries and idempotency key. Returns how many.
local cutoff, batch = ARGV[4], tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', '(' .. cutoff, 'LIMIT', 0, batch)
for _, id in ipairs(ids) do delete_finished(id) end
return reply(#ids)

-- name: purge_ids
-- ARGV: prefix, origin, now, then job ids. Deletes those of them that are terminal, as
-- prune does (Python chose them by the filter). Returns how many.
local n = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  if TERMINAL[redis.call('HGET', job_key(id), 'state') or ''] then
    delete_finished(id)
    n = n + 1
  end
end
return reply(n)

-- name: claim_deliveries
-- ARGV: prefix, origin, now, lease_until, limit, then `limit` fresh tokens. Leases up
-- to `limit` pending deliveries that are due and not leased, the earliest due first
-- (ties by id). A lease that ran out puts its delivery back among the pending ones
-- first (its token stays until another sender claims it, as in the other stores).
local lease_until, limit = ARGV[4], tonumber(ARGV[5])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', OUTBOX_LEASED, '-inf', NOW)) do
  redis.call('ZADD', OUTBOX, redis.call('HGET', delivery_key(id), 'next_attempt_at'), id)
  redis.call('ZREM', OUTBOX_LEASED, id)
end
local out = {}
for i, id in ipairs(redis.call('ZRANGEBYSCORE', OUTBOX, '-inf', NOW, 'LIMIT', 0, limit)) do
  local key = delivery_key(id)
  redis.call('HSET', key, 'claim_token', ARGV[5 + i], 'lease_expires_at', lease_until)
  redis.call('ZREM', OUTBOX, id)
  redis.call('ZADD', OUTBOX_LEASED, lease_until, id)
  out[i] = record(key)
end
return reply(out)

-- name: record_delivery
-- ARGV: prefix, origin, now, id, token, status (base.status_after_attempt),
-- next_attempt_at ('' unless pending), status code ('' for none), error JSON.
-- Fenced like a job write: only the sender holding the current token of a pending
-- delivery records its attempt.
local id, token, status, next_at, code = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local err = cjson.decode(ARGV[9])
local key = delivery_key(id)
local v = redis.call('HMGET', key, 'claim_token', 'status', 'job_id', 'url')
if not v[2] or v[1] ~= token or v[2] ~= 'pending' then refuse('stale', id) end
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'status', status, 'last_attempt_at', NOW)
-- jobwire.store.stats.webhook_key
stat({ queue = '', job = '' }, status == 'delivered' and 'webhook:delivered' or 'webhook:failures', 1)
redis.call('HDEL', key, 'claim_token', 'lease_expires_at')
redis.call('ZREM', OUTBOX_LEASED, id)
if status == 'pending' then
  redis.call('HSET', key, 'next_attempt_at', next_at)
  redis.call('ZADD', OUTBOX, next_at, id)
else
  redis.call('HDEL', key, 'next_attempt_at')
  redis.call('ZREM', OUTBOX, id)
end
if code == '' then redis.call('HDEL', key, 'last_status_code')
else redis.call('HSET', key, 'last_status_code', code) end
if err == cjson.null then redis.call('HDEL', key, 'last_error')
else redis.call('HSET', key, 'last_error', err) end
if status == 'disabled' then
  -- A 410 turns the URL off for the job: its other pending deliveries end too, and
  -- no more are made (the job's webhook_off flag).
  local job_id, url = v[3], v[4]
  local reason = 'disabled: delivery ' .. id .. ' to this URL was answered 410 Gone'
  for _, other in ipairs(redis.call('ZRANGE', deliveries_key(job_id), 0, -1)) do
    local okey = delivery_key(other)
    local o = redis.call('HMGET', okey, 'status', 'url')
    if other ~= id and o[1] == 'pending' and o[2] == url then
      redis.call('HSET', okey, 'status', 'disabled', 'last_error', reason)
      redis.call('HDEL', okey, 'next_attempt_at', 'claim_token', 'lease_expires_at')
      redis.call('ZREM', OUTBOX, other)
      redis.call('ZREM', OUTBOX_LEASED, other)
    end
  end
  if redis.call('HGET', job_key(job_id), 'webhook_url') == url then
    redis.call('HSET', job_key(job_id), 'webhook_off', '1')
  end
end
return reply(record(key))

-- name: deliveries_for
-- ARGV: prefix, job id. The job's deliveries in event order.
local out = {}
for i, id in ipairs(redis.call('ZRANGE', deliveries_key(ARGV[2]), 0, -1)) do
  out[i] = record(delivery_key(id))
end
return out

-- name: next_delivery_at
-- ARGV: prefix. The earliest time a pending delivery can be claimed: when it is due,
-- or when its lease runs out (a leased delivery was due before it was claimed).
local best = nil
for _, index in ipairs({ OUTBOX, OUTBOX_LEASED }) do
  local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  if first[2] and (not best or tonumber(first[2]) < tonumber(best)) then best = first[2] end
end
return best

-- name: list_page
-- ARGV: prefix, filters JSON {owner, before, job, queue, states}, want, budget.
-- Walks ids newest first (strictly before `before`), keeping the jobs that pass the
-- filters, until it has `want` or has looked at `budget` ids. Returns {jobs, last id
-- looked at, 1 when the index is exhausted}; the caller goes on from the last id.
local f = cjson.decode(ARGV[2])
local want, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local index = IDS
if f.owner ~= cjson.null then index = owner_ids_key(f.owner) end
local max = '+'
if f.before ~= cjson.null then max = '(' .. f.before end
local states = {}
for _, s in ipairs(f.states) do states[s] = true end
local any_state = #f.states == 0
local found, scanned, last = {}, 0, ''
while #found < want and scanned < budget do
  local chunk = math.min(100, budget - scanned)
  local ids = redis.call('ZREVRANGEBYLEX', index, max, '-', 'LIMIT', 0, chunk)
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    last = id
    local v = redis.call('HMGET', job_key(id), 'state', 'job', 'queue')
    if v[1] and (any_state or states[v[1]])
      and (f.job == cjson.null or v[2] == f.job)
      and (f.queue == cjson.null or v[3] == f.queue) then
      found[#found + 1] = record(job_key(id))
      if #found >= want then break end
    end
  end
  if #ids < chunk then return { found, last, 1 } end
  max = '(' .. last
end
return { found, last, 0 }

-- name: feed
-- ARGV: prefix, after, owner JSON (null: everyone), limit. Returns id, event pairs.
local after, limit = ARGV[2], tonumber(ARGV[4])
local owner = cjson.decode(ARGV[3])
local index = FEED
if owner ~= cjson.null then index = owner_feed_key(owner) end
local out = {}
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. after, '+inf', 'LIMIT', 0, limit)) do
  local space = string.find(ref, ' ', 1, true)
  local id = string.sub(ref, space + 1)
  local entry = redis.call('LINDEX', events_key(id), tonumber(string.sub(ref, 1, space - 1)) - 1)
  if entry then
    out[#out + 1] = id
    out[#out + 1] = entry
  end
end
return out

-- name: pass_on
-- ARGV: prefix, doorbell key. A wake-up a worker took but cannot use (it is stopping)
-- goes back for another idle worker.
local key = ARGV[2]
if string.sub(key, 1, #P + 6) ~= P .. 'ready:' then return 0 end
redis.call('RPUSH', key, '1')
redis.call('LTRIM', key, -READY_CAP, -1)
return 1

-- name: next_due
-- ARGV: prefix, #queues, queues…, names…. The earliest scheduled_at among queued jobs.
local nq = tonumber(ARGV[2])
local best = nil
for q = 3, 2 + nq do
  for n = 3 + nq, #ARGV do
    local queue, name = ARGV[q], ARGV[n]
    for _, priority in ipairs(redis.call('ZRANGE', levels_key(queue, name), 0, -1)) do
      local first = redis.call('ZRANGE', due_key(queue, name, priority), 0, 0, 'WITHSCORES')
      if first[2] and (not best or tonumber(first[2]) < tonumber(best)) then best = first[2] end
    end
  end
end
return best

-- name: worker_heartbeat
-- ARGV: prefix, worker id, time, running (JSON). Answers 0 when the worker is unknown.
local id = ARGV[2]
local found = redis.call('HGET', WORKERS, id)
if not found then return 0 end
local info = cjson.decode(found)
info.last_heartbeat = ARGV[3]
info.running = ARGV[4]
redis.call('HSET', WORKERS, id, cjson.encode(info))
return 1

-- name: record_job_names
-- ARGV: prefix, time, the names. A name's last-seen time only moves forward.
local names = P .. 'job_names'
for i = 3, #ARGV do
  local seen = redis.call('HGET', names, ARGV[i])
  if not seen or tonumber(seen) < tonumber(ARGV[2]) then
    redis.call('HSET', names, ARGV[i], ARGV[2])
  end
end
return #ARGV - 2

-- name: track_schedules
-- ARGV: prefix, time, the names. Stores each schedule not stored yet (not paused, since =
-- time); leaves the others as they are.
for i = 3, #ARGV do
  local key = P .. 'schedule:' .. enc(ARGV[i])
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'name', ARGV[i], 'paused', '0', 'since', ARGV[2],
      'updated_at', ARGV[2])
  end
end
return #ARGV - 2

-- name: record_schedule_fire
-- ARGV: prefix, name, tick, job id, time. The tick moves since and last_fire_at forward
-- only; the job follows last_fire_at. Times are stored verbatim, compared as numbers.
local key = P .. 'schedule:' .. enc(ARGV[2])
local tick = tonumber(ARGV[3])
local since = redis.call('HGET', key, 'since')
if not since or tonumber(since) < tick then
  redis.call('HSET', key, 'since', ARGV[3])
end
local last = redis.call('HGET', key, 'last_fire_at')
if not last or tonumber(last) <= tick then
  redis.call('HSET', key, 'last_fire_at', ARGV[3], 'last_job_id', ARGV[4])
end
redis.call('HSETNX', key, 'paused', '0')
redis.call('HSET', key, 'name', ARGV[2], 'updated_at', ARGV[5])
return 1

-- name: set_schedule_paused
-- ARGV: prefix, name, '1' to pause or '0' to resume, time. Resuming a paused schedule
-- moves since to the time: ticks passed while it was paused never fire.
local key = P .. 'schedule:' .. enc(ARGV[2])
local was = redis.call('HGET', key, 'paused')
local since = redis.call('HGET', key, 'since')
if not since or (was == '1' and ARGV[3] == '0' and tonumber(since) < tonumber(ARGV[4])) then
  redis.call('HSET', key, 'since', ARGV[4])
end
redis.call('HSET', key, 'name', ARGV[2], 'paused', ARGV[3], 'updated_at', ARGV[4])
return redis.call('HGETALL', key)

-- name: end_workflow
-- ARGV: prefix, workflow id, the new state, time. running → that state, once: answers
-- the workflow's hash, or false when it was not running (or does not exist).
local key = P .. 'workflow:' .. enc(ARGV[2])
if redis.call('HGET', key, 'state') ~= 'running' then
  return false
end
redis.call('HSET', key, 'state', ARGV[3], 'updated_at', ARGV[4])
redis.call('ZREM', P .. 'workflows:open', ARGV[2])
return redis.call('HGETALL', key)

-- name: prune_workers
-- ARGV: prefix, cutoff. Forgets workers whose last heartbeat is before the cutoff.
local cutoff, gone = tonumber(ARGV[2]), 0
local flat = redis.call('HGETALL', WORKERS)
for i = 1, #flat, 2 do
  if tonumber(cjson.decode(flat[i + 1]).last_heartbeat) < cutoff then
    redis.call('HDEL', WORKERS, flat[i])
    gone = gone + 1
  end
end
return gone

-- name: acquire_permit
-- ARGV: prefix, holder, expires_at, now (or the server's time, if later), then per limit: key, rate ('' for none), period,
-- concurrency ('' for none). jobwire.throttle.refusal over a sorted set of starts (score:
-- time) and one of holders (score: expiry) per key; all limits or none. Answers nil
-- when granted, else the time worth asking again (text: Lua would round a number).
local holder, expires_at, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
-- Dated when granted (the server's clock, if later): a wait in the round trip or behind
-- other scripts moves it on, as the SQL stores date theirs when they hold the lock.
local clock = redis.call('TIME')
local dated = math.max(now, tonumber(clock[1]) + tonumber(clock[2]) / 1000000)
expires_at, now = expires_at + (dated - now), dated
local limits, retry_at = {}, nil
for i = 5, #ARGV, 4 do
  local limit = {
    starts = P .. 'rate_starts:' .. enc(ARGV[i]), permits = P .. 'permits:' .. enc(ARGV[i]),
    rate = tonumber(ARGV[i + 1]), period = tonumber(ARGV[i + 2]),
    concurrency = tonumber(ARGV[i + 3]),
  }
  limits[#limits + 1] = limit
  local at = nil
  if limit.rate then
    redis.call('ZREMRANGEBYSCORE', limit.starts, '-inf', now - limit.period)
    local count = redis.call('ZCARD', limit.starts)
    if count >= limit.rate then
      local oldest = redis.call('ZRANGE', limit.starts, count - limit.rate, count - limit.rate, 'WITHSCORES')
      at = tonumber(oldest[2]) + limit.period
    end
  end
  if limit.concurrency then
    redis.call('ZREMRANGEBYSCORE', limit.permits, '-inf', now)
    local others, first = 0, nil
    local flat = redis.call('ZRANGE', limit.permits, 0, -1, 'WITHSCORES')
    for j = 1, #flat, 2 do
      if flat[j] ~= holder then
        others = others + 1
        local until_ = tonumber(flat[j + 1])
        if not first or until_ < first then first = until_ end
      end
    end
    if others >= limit.concurrency then
      local recheck = math.min(now + 0.25, first)  -- throttle.CONCURRENCY_RECHECK_SECONDS
      if not at or recheck > at then at = recheck end
    end
  end
  if at and (not retry_at or at > retry_at) then retry_at = at end
end
if retry_at then return string.format('%.17g', retry_at) end
for _, limit in ipairs(limits) do
  if limit.rate then
    redis.call('ZADD', limit.starts, now, holder)
    redis.call('PEXPIRE', limit.starts, math.ceil(limit.period * 1000) + 1000)
  end
  if limit.concurrency then
    redis.call('ZADD', limit.permits, expires_at, holder)
  end
end
return nil

-- name: renew_permits
-- ARGV: prefix, expires_at, then key, holder pairs. Only permits still held move.
for i = 3, #ARGV, 2 do
  redis.call('ZADD', P .. 'permits:' .. enc(ARGV[i]), 'XX', ARGV[2], ARGV[i + 1])
end
return 1

-- name: release_permit
-- ARGV: prefix, holder, then keys.
for i = 3, #ARGV do
  redis.call('ZREM', P .. 'permits:' .. enc(ARGV[i]), ARGV[2])
end
return 1

-- name: migrate_2
-- ARGV: prefix. Version 1 → 2: the per-state counters of the jobs already stored, once
-- (the data of a version 1 store was written before the counters existed).
if redis.call('HGET', P .. 'meta', 'schema_version') ~= '1' then return 0 end
for _, id in ipairs(redis.call('ZRANGE', IDS, 0, -1)) do
  local v = redis.call('HMGET', job_key(id), 'queue', 'job', 'state')
  if v[1] then stat({ queue = v[1], job = v[2] }, 'state:' .. v[3], 1) end
end
redis.call('HSET', P .. 'meta', 'schema_version', '2')
return 1
