-- ep, alive_since -> {worker, last_seen, state, info, {held job ids}}...
local ep, since = ARGV[A], ARGV[A + 1]
local held = {}
for _, id in ipairs(redis.call('ZRANGE', key('run', ep), 0, -1)) do
  local w = redis.call('HGET', jkey(id), 'worker')
  if w then
    held[w] = held[w] or {}
    held[w][#held[w] + 1] = id
  end
end
local seen = redis.call('ZRANGEBYSCORE', key('wseen', ep), since, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #seen, 2 do
  local w = seen[i]
  out[#out + 1] = {w, seen[i + 1],
                   redis.call('HGET', key('wstate', ep), w) or 'idle',
                   redis.call('HGET', key('winfo', ep), w) or '{}',
                   held[w] or {}}
end
return reply(out)
