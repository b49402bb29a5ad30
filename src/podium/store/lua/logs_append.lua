-- store/redis_logs.py: append lines to a worker's log stream, trim it, index it.
-- ARGV: prefix, endpoint, worker, now, keep, retention ms, n, then n x (time, text, jobs)
local P, ep, w, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local keep, retention, n = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local sk = P .. ':log:' .. ep .. ':' .. w
local top = redis.call('INCRBY', P .. ':logseq', n)
if n == 0 then return top end
local seq = top - n
for i = 0, n - 1 do
  seq = seq + 1
  local b = 8 + i * 3
  redis.call('XADD', sk, 'MAXLEN', keep, seq .. '-0', 't', ARGV[b], 'x', ARGV[b + 1], 'j', ARGV[b + 2])
end
if keep <= 0 then redis.call('DEL', sk) end
redis.call('ZADD', P .. ':logw:' .. ep, now, w)
redis.call('ZADD', P .. ':logw', now, ep .. '/' .. w)
-- a safety net: a log nobody expires (no reaper runs) still goes
redis.call('PEXPIRE', sk, retention)
return top
