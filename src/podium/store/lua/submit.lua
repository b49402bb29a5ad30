-- then per job: id, ep, low, queued_at, ttl_deadline, n, n field/value strings.
-- Several jobs per call: the submissions that reached the store in one event-loop turn
-- (RedisStore.submit). One reply per job, in order: 'ok' or 'exists'.
local out, i = {}, A
while i <= #ARGV do
  local id, ep, low, at, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local n = tonumber(ARGV[i + 5])
  if redis.call('EXISTS', jkey(id)) == 1 then
    out[#out + 1] = 'exists'
  else
    local seq = redis.call('INCR', key('seq'))
    local qm = string.format('%016d:%s', seq, id)
    redis.call('HSET', jkey(id), 'seq', seq, 'qm', qm, 'status', 'IN_QUEUE', 'retries', '0',
               'stop', '0', 'stream_len', '0', 'stream_read', '0', 'stream_bytes', '0',
               unpack(ARGV, i + 6, i + 5 + n))
    redis.call('ZADD', qkey(ep, low), at, qm)
    redis.call('ZADD', key('ix', 'ttl'), ttl, id)
    hist(id, ep, at, nil, 'IN_QUEUE')
    note('q:' .. ep)
    out[#out + 1] = 'ok'
  end
  i = i + 6 + n
end
return reply(unpack(out))
