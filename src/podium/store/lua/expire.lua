-- limit, quarantine message (before, after the cause), history ms, error bytes ->
--   'more'|'done', finished jobs, requeued jobs, purged, quarantined ids
local limit, q_before, q_after = tonumber(ARGV[A]), ARGV[A + 1], ARGV[A + 2]
local history_ms, error_bytes = tonumber(ARGV[A + 3]), tonumber(ARGV[A + 4])
local finished, requeued, quarantined, purged = {}, {}, {}, 0
local function due(ix)
  return redis.call('ZRANGEBYSCORE', key('ix', ix), '-inf', NOW, 'LIMIT', 0, limit)
end
local function jobs(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local flat = redis.call('HGETALL', jkey(id))
    if #flat > 0 then out[#out + 1] = flat end
  end
  return out
end
local function done(state)
  return reply(state, jobs(finished), jobs(requeued), purged, quarantined)
end

-- A record a step cannot process ends FAILED with the cause, so that one bad record
-- never stops expiry for everyone; if even that fails, it leaves every index.
local function quarantine(id, e)
  local cause = type(e) == 'table' and tostring(e.err or 'error') or tostring(e)
  quarantined[#quarantined + 1] = id
  local ok = pcall(function()
    for _, ix in ipairs({'ttl', 'exec', 'lease'}) do redis.call('ZREM', key('ix', ix), id) end
    local j = load(id)
    if not j then return end
    if j.ep then
      redis.call('ZREM', key('run', j.ep), id)
      if j.qm then
        redis.call('ZREM', key('q', j.ep), j.qm)
        redis.call('ZREM', key('ql', j.ep), j.qm)
      end
    end
    -- fields a reader needs get a value, so the failed record reads back
    local defaults = {retention_ms = '60000', exec_ms = '0', ttl_ms = '0', low = '0',
                      retries = '0', stream_read = '0', created_at = NOW, id = id}
    for f, v in pairs(defaults) do redis.call('HSETNX', jkey(id), f, v) end
    local at = fmt(NOWN + (tonumber(j.retention_ms) or 60000) / 1000)
    if j.ep then hist(id, j.ep, redis.call('HGET', jkey(id), 'created_at'), j.status, 'FAILED') end
    redis.call('HSET', jkey(id), 'status', 'FAILED', 'error',
               q_before .. string.sub(cause, 1, 300) .. q_after,
               'finished_at', NOW, 'purge_at', at, 'stop', '1')
    redis.call('HDEL', jkey(id), 'lease_until', 'exec_deadline', 'ttl_deadline')
    redis.call('ZADD', key('ix', 'purge'), at, id)
    if j.ep then redis.call('ZADD', key('fin', 'FAILED', j.ep), at, id) end
    if j.ep and j.worker and j.seq then post_stop(id, j.ep, j.worker, j.seq, 0) end
    note('j:' .. id)
  end)
  if not ok then
    for _, ix in ipairs({'ttl', 'exec', 'lease', 'purge'}) do
      redis.call('ZREM', key('ix', ix), id)
    end
  end
end
local function each(ids, step)
  for _, id in ipairs(ids) do
    local ok, e = pcall(step, id)
    if not ok then quarantine(id, e) end
  end
end

-- 1. ttl ran out (queued or running)
local ids = due('ttl')
each(ids, function(id)
  local j = load(id)
  if j and (j.status == 'IN_QUEUE' or j.status == 'IN_PROGRESS') then
    finalize(id, j, 'TIMED_OUT', "The job's ttl ran out before it finished.", nil,
             j.status == 'IN_PROGRESS')
    finished[#finished + 1] = id
  else
    redis.call('ZREM', key('ix', 'ttl'), id)
  end
end)
if #ids == limit then return done('more') end
-- 2. executionTimeout ran out
ids = due('exec')
each(ids, function(id)
  local j = load(id)
  if j and j.status == 'IN_PROGRESS' then
    finalize(id, j, 'TIMED_OUT',
             'The job ran longer than its executionTimeout of ' .. j.exec_ms .. ' ms.', nil, true)
    finished[#finished + 1] = id
  else
    redis.call('ZREM', key('ix', 'exec'), id)
  end
end)
if #ids == limit then return done('more') end
-- 3. lease lost: back to the queue, or FAILED past the retry limit
ids = due('lease')
each(ids, function(id)
  local j = load(id)
  if j and j.status == 'IN_PROGRESS' then
    if tonumber(j.retries) < tonumber(j.retry_limit) then
      local k = jkey(id)
      unindex(id, j)
      redis.call('HINCRBY', k, 'retries', 1)
      redis.call('HSET', k, 'status', 'IN_QUEUE', 'stream_len', '0', 'stream_read', '0',
                 'stream_bytes', '0')
      redis.call('HDEL', k, 'worker', 'started_at', 'lease_until', 'exec_deadline', 'output')
      redis.call('DEL', key('stream', id))
      redis.call('ZADD', qkey(j.ep, j.low), j.queued_at, j.qm)
      redis.call('ZADD', key('ix', 'ttl'), j.ttl_deadline, id)
      redis.call('ZADD', key('retried', j.ep), '+inf', id)
      hist(id, j.ep, j.created_at, 'IN_PROGRESS', 'IN_QUEUE')
      note('q:' .. j.ep)
      note('j:' .. id)
      requeued[#requeued + 1] = id
    else
      finalize(id, j, 'FAILED', 'The worker was lost (worker ' .. j.worker ..
               ' stopped sending heartbeats) and the job was already retried ' ..
               j.retries .. ' times.', false, false)
      finished[#finished + 1] = id
    end
  else
    redis.call('ZREM', key('ix', 'lease'), id)
  end
end)
if #ids == limit then return done('more') end
-- 4. retention ran out: delete input, output and stream; keep the job's record in the
--    history for history_ms
ids = due('purge')
each(ids, function(id)
  local j = load(id)
  if j then
    local keep = history_ms > 0 and j.ep and j.created_at
    if keep then
      local hk = key('hjob', id)
      redis.call('DEL', hk)
      redis.call('HSET', hk, 'id', id, 'ep', j.ep, 'status', j.status,
                 'created_at', j.created_at, 'retries', j.retries or '0')
      for _, f in ipairs({'started_at', 'finished_at', 'worker'}) do
        if j[f] then redis.call('HSET', hk, f, j[f]) end
      end
      if j.error then redis.call('HSET', hk, 'error', cut(j.error, error_bytes)) end
      redis.call('PEXPIRE', hk, history_ms + GRACE_MS)
      redis.call('ZADD', key('ix', 'forget'), fmt(NOWN + history_ms / 1000), id)
    end
    remove(id, j, keep)
    purged = purged + 1
  else
    redis.call('ZREM', key('ix', 'purge'), id)
  end
end)
if #ids == limit then return done('more') end
-- 5. the history period ran out: forget the record
ids = redis.call('ZRANGEBYSCORE', key('ix', 'forget'), '-inf', NOW, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', key('hjob', id), 'ep', 'status')
  if f[1] then
    redis.call('ZREM', key('h', f[1]), id)
    redis.call('ZREM', key('h', f[1], f[2]), id)
  end
  redis.call('DEL', key('hjob', id))
  redis.call('ZREM', key('ix', 'forget'), id)
end
if #ids == limit then return done('more') end
return done('done')
