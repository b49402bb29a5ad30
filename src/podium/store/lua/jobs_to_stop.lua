-- ep, worker
local ep, worker = ARGV[A], ARGV[A + 1]
local sk = key('stop', ep, worker)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', sk, 0, -1)) do
  local f = redis.call('HMGET', jkey(id), 'ep', 'worker', 'stop')
  if f[1] == ep and f[2] == worker and f[3] == '1' then
    redis.call('HSET', jkey(id), 'stop', '0')
    redis.call('ZREM', sk, id)
    out[#out + 1] = id
  elseif not (f[3] == '1' and f[1] and f[2] and key('stop', f[1], f[2]) == sk) then
    redis.call('ZREM', sk, id)  -- stale (gone, retried, delivered); else another pair's
  end
end
return reply(out)
