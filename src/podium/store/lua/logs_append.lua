-- store/redis_logs.py: append lines to a worker's log stream, trim it, index it.
-- ARGV: prefix, endpoint, worker, now, keep, key ttl ms, n, then n x (time, text, jobs JSON)
local P, ep, w, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local keep, ttl, n = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local sk = P .. ':log:' .. ep .. ':' .. w
local wj = P .. ':logjw:' .. ep .. ':' .. w
local jobs_of_ep = P .. ':logjobs:' .. ep
local function jk(job) return P .. ':logjob:' .. ep .. ':' .. job end
local top = redis.call('INCRBY', P .. ':logseq', n)
if n == 0 then return top end
local seq = top - n
for i = 0, n - 1 do
  seq = seq + 1
  local b = 8 + i * 3
  redis.call('XADD', sk, 'MAXLEN', keep, seq .. '-0', 't', ARGV[b], 'x', ARGV[b + 1], 'j', ARGV[b + 2])
  for _, job in ipairs(cjson.decode(ARGV[b + 2])) do
    redis.call('ZADD', jk(job), seq, seq .. ':' .. w)
    redis.call('ZADD', wj, seq, seq .. ':' .. job)
    redis.call('SADD', jobs_of_ep, job)
    redis.call('PEXPIRE', jk(job), ttl)
  end
end
if keep <= 0 then redis.call('DEL', sk) end
-- the job index forgets the lines the stream trimmed (the oldest it still holds: lowest)
local first = redis.call('XRANGE', sk, '-', '+', 'COUNT', 1)
local lowest = top + 1
if first[1] then lowest = tonumber(string.match(first[1][1], '^(%d+)')) end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', wj, '-inf', '(' .. lowest)) do
  local cut = string.find(m, ':', 1, true)
  local job = string.sub(m, cut + 1)
  redis.call('ZREM', jk(job), string.sub(m, 1, cut - 1) .. ':' .. w)
  if redis.call('EXISTS', jk(job)) == 0 then redis.call('SREM', jobs_of_ep, job) end
end
redis.call('ZREMRANGEBYSCORE', wj, '-inf', '(' .. lowest)
redis.call('ZADD', P .. ':logw:' .. ep, top, w)  -- by its last seq: readers skip it
redis.call('ZADD', P .. ':logw', now, ep .. '/' .. w)
-- a safety net: keys nobody expires (no reaper runs) still go
for _, k in ipairs({sk, wj, jobs_of_ep}) do redis.call('PEXPIRE', k, ttl) end
return top
