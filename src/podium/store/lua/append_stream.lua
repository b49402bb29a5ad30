-- id, worker, limit_bytes, size_bytes, limit error, chunks...
local id, worker, limit, size = ARGV[A], ARGV[A + 1], tonumber(ARGV[A + 2]), tonumber(ARGV[A + 3])
local j, err_reply = held(id, worker)
if not j then return err_reply end
if j.status ~= 'IN_PROGRESS' or #ARGV < A + 5 then
  return reply('ok', redis.call('HGETALL', jkey(id)))
end
local total = tonumber(j.stream_bytes or '0')
if total + size > limit then
  finalize(id, j, 'FAILED', ARGV[A + 4], nil, true)
  return reply('over', redis.call('HGETALL', jkey(id)))
end
local before = redis.call('HGETALL', jkey(id))
local len = 0
for i = A + 5, #ARGV do len = redis.call('RPUSH', key('stream', id), ARGV[i]) end
redis.call('HSET', jkey(id), 'stream_len', len, 'stream_bytes', total + size)
note('j:' .. id)
return reply('ok', before)
