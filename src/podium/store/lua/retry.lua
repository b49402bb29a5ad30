-- id
local id = ARGV[A]
local j = load(id)
if not j then return reply('notfound') end
if j.status ~= 'FAILED' and j.status ~= 'TIMED_OUT' then return reply('conflict', j.status) end
local k = jkey(id)
redis.call('ZREM', key('ix', 'purge'), id)
redis.call('ZREM', key('fin', j.status, j.ep), id)
if tonumber(j.retries) > 0 then redis.call('ZADD', key('retried', j.ep), '+inf', id) end
if j.worker then redis.call('ZREM', key('stop', j.ep, j.worker), id) end
redis.call('PERSIST', k)
redis.call('DEL', key('stream', id))
local ttl = fmt(NOWN + tonumber(j.ttl_ms) / 1000)
redis.call('HDEL', k, 'output', 'error', 'started_at', 'finished_at', 'worker',
           'lease_until', 'exec_deadline', 'purge_at')
redis.call('HSET', k, 'status', 'IN_QUEUE', 'stop', '0', 'queued_at', NOW, 'created_at', NOW,
           'ttl_deadline', ttl, 'stream_len', '0', 'stream_read', '0', 'stream_bytes', '0')
redis.call('ZADD', qkey(j.ep, j.low), NOW, j.qm)
redis.call('ZADD', key('ix', 'ttl'), ttl, id)
hist(id, j.ep, NOW, j.status, 'IN_QUEUE')
note('q:' .. j.ep)
note('j:' .. id)
return reply('ok', redis.call('HGETALL', k))
