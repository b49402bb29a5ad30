-- kind, id, lookup value, doc
local kind, id, look, doc = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3]
local owner = redis.call('HGET', key(kind, 'lookup'), look)
if owner and owner ~= id then return reply('conflict') end
local old = redis.call('HGET', key(kind, 'lookup_of'), id)
if old and old ~= look then redis.call('HDEL', key(kind, 'lookup'), old) end
redis.call('HSET', key(kind), id, doc)
redis.call('HSET', key(kind, 'lookup'), look, id)
redis.call('HSET', key(kind, 'lookup_of'), id, look)
if not redis.call('ZSCORE', key(kind, 'order'), id) then
  redis.call('ZADD', key(kind, 'order'), redis.call('INCR', key('seq')), id)
end
return reply('ok')
