-- ep -> in_queue, in_progress, completed, failed, cancelled, timed_out, retried,
--       in_queue_low, oldest queued_at ('' when none)
local ep = ARGV[A]
-- entries whose keys' TTL ran out with no reaper to delete them
local stale = '(' .. fmt(NOWN - GRACE_MS / 1000)
local out = {redis.call('ZCARD', key('q', ep)) + redis.call('ZCARD', key('ql', ep)),
             redis.call('ZCARD', key('run', ep))}
for _, s in ipairs({'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'}) do
  redis.call('ZREMRANGEBYSCORE', key('fin', s, ep), '-inf', stale)
  out[#out + 1] = redis.call('ZCARD', key('fin', s, ep))
end
redis.call('ZREMRANGEBYSCORE', key('retried', ep), '-inf', stale)
out[#out + 1] = redis.call('ZCARD', key('retried', ep))
out[#out + 1] = redis.call('ZCARD', key('ql', ep))
local first = redis.call('ZRANGE', key('q', ep), 0, 0, 'WITHSCORES')
out[#out + 1] = first[2] or ''
return reply(out)
