-- Shared by every script of store/redis/ (prepended to each).
-- ARGV[1] prefix, [2] origin (this store), [3] now, [4] TTL grace ms; a script's own
-- arguments start at ARGV[A]. Every script returns {notes, ...}: notes are the keys it
-- published, which the caller also notifies locally.
local P, ORIGIN, NOW = ARGV[1], ARGV[2], ARGV[3]
local NOWN, GRACE_MS, A = tonumber(NOW), tonumber(ARGV[4]), 5
local notes, noted = {}, {}

local function key(...) return P .. ':' .. table.concat({...}, ':') end
local function jkey(id) return key('job', id) end
local function fmt(x) return string.format('%.17g', x) end
local function qkey(ep, low) if low == '1' then return key('ql', ep) end return key('q', ep) end
local function id_of(member) return string.sub(member, string.find(member, ':', 1, true) + 1) end
local function reply(...) return {notes, ...} end

-- Move a job between the history's status sets (podium.history); `new` also (re)places
-- it in the endpoint's set at `created`.
local function hist(id, ep, created, old, new)
  if old then redis.call('ZREM', key('h', ep, old), id) end
  if new then
    redis.call('ZADD', key('h', ep), created, id)
    redis.call('ZADD', key('h', ep, new), created, id)
  end
end

-- history.cut_error, byte for byte: at most n bytes, never splitting a UTF-8 character.
local function cut(s, n)
  if not s or #s <= n then return s end
  local i = n - 3
  while i > 0 do
    local b = string.byte(s, i + 1)
    if b < 128 or b >= 192 then break end
    i = i - 1
  end
  return string.sub(s, 1, i) .. '\226\128\166'  -- an ellipsis
end

local function note(k)
  if not noted[k] then
    noted[k] = true
    notes[#notes + 1] = k
    redis.call('PUBLISH', P .. ':n:' .. k, ORIGIN)
  end
end

local function load(id)
  local flat = redis.call('HGETALL', jkey(id))
  if #flat == 0 then return nil end
  local j = {}
  for i = 1, #flat, 2 do j[flat[i]] = flat[i + 1] end
  return j
end

-- Record that `worker` was seen now; a new id past WORKER_RECORDS (jobs.py) pushes out
-- the endpoint's record seen least recently (never the one just seen).
local function touch(ep, worker, state, info)
  if redis.call('ZADD', key('wseen', ep), NOW, worker) == 1 then
    local over = redis.call('ZCARD', key('wseen', ep)) - WORKER_RECORDS
    if over > 0 then
      for _, w in ipairs(redis.call('ZRANGE', key('wseen', ep), 0, over)) do
        if over > 0 and w ~= worker then
          redis.call('ZREM', key('wseen', ep), w)
          redis.call('HDEL', key('wstate', ep), w)
          redis.call('HDEL', key('winfo', ep), w)
          over = over - 1
        end
      end
    end
  end
  if state then redis.call('HSET', key('wstate', ep), worker, state)
  else redis.call('HSETNX', key('wstate', ep), worker, 'idle') end
  if info then redis.call('HSET', key('winfo', ep), worker, info)
  else redis.call('HSETNX', key('winfo', ep), worker, '{}') end
end

-- Leave the queue / running set and the active deadline indexes.
local function unindex(id, j)
  if j.status == 'IN_QUEUE' then redis.call('ZREM', qkey(j.ep, j.low), j.qm)
  elseif j.status == 'IN_PROGRESS' then redis.call('ZREM', key('run', j.ep), id) end
  redis.call('ZREM', key('ix', 'ttl'), id)
  redis.call('ZREM', key('ix', 'exec'), id)
  redis.call('ZREM', key('ix', 'lease'), id)
end

-- Put a job on its worker's stop list; the list lives at least as long as the job.
local function post_stop(id, ep, worker, seq, ttl)
  local sk = key('stop', ep, worker)
  redis.call('HSET', jkey(id), 'stop', '1')
  redis.call('ZADD', sk, seq, id)
  note('s:' .. ep .. ':' .. worker)  -- wakes the worker's stop channel, on any gateway
  if ttl > 0 and redis.call('PTTL', sk) < ttl then redis.call('PEXPIRE', sk, ttl) end
end

-- A final job: index its purge time, set key TTLs, post a pending stop.
local function schedule_purge(id, j)
  local at = j.purge_at
  redis.call('ZADD', key('ix', 'purge'), at, id)
  redis.call('ZADD', key('fin', j.status, j.ep), at, id)
  if tonumber(j.retries) > 0 then redis.call('ZADD', key('retried', j.ep), at, id) end
  local ttl = math.max(0, math.floor((tonumber(at) - NOWN) * 1000)) + GRACE_MS
  redis.call('PEXPIRE', jkey(id), ttl)
  redis.call('PEXPIRE', key('stream', id), ttl)
  if j.stop == '1' then post_stop(id, j.ep, j.worker, j.seq, ttl) end
end

-- SQLiteStore._finalize. output: nil keeps it, false clears it, a string sets it.
local function finalize(id, j, status, err, output, stop)
  unindex(id, j)
  hist(id, j.ep, j.created_at, j.status, status)
  local k = jkey(id)
  j.status = status
  j.purge_at = fmt(NOWN + tonumber(j.retention_ms) / 1000)
  j.stop = stop and '1' or '0'
  redis.call('HSET', k, 'status', status, 'finished_at', NOW, 'purge_at', j.purge_at,
             'stop', j.stop)
  redis.call('HDEL', k, 'lease_until', 'exec_deadline', 'ttl_deadline')
  if err then redis.call('HSET', k, 'error', err) else redis.call('HDEL', k, 'error') end
  if output then redis.call('HSET', k, 'output', output)
  elseif output == false then redis.call('HDEL', k, 'output') end
  schedule_purge(id, j)
  note('j:' .. id)
end

-- Delete a job and every index entry that names it (but the history's, when kept).
local function remove(id, j, keep_history)
  unindex(id, j)
  if not keep_history then
    redis.call('ZREM', key('h', j.ep), id)
    redis.call('ZREM', key('h', j.ep, j.status), id)
  end
  redis.call('ZREM', key('ix', 'purge'), id)
  redis.call('ZREM', key('fin', j.status, j.ep), id)
  redis.call('ZREM', key('retried', j.ep), id)
  if j.worker then redis.call('ZREM', key('stop', j.ep, j.worker), id) end
  redis.call('DEL', jkey(id), key('stream', id))
  note('j:' .. id)
end

-- The worker-held guard of SQLiteStore._held: nil plus an error reply when it fails.
local function held(id, worker)
  local j = load(id)
  if not j then return nil, reply('notfound') end
  if j.worker ~= worker then return nil, reply('conflict') end
  return j
end
