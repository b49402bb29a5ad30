-- kind, id -> 1 if the doc existed (its lookup and order entries go with it)
local kind, id = ARGV[A], ARGV[A + 1]
local look = redis.call('HGET', key(kind, 'lookup_of'), id)
if look then redis.call('HDEL', key(kind, 'lookup'), look) end
redis.call('HDEL', key(kind, 'lookup_of'), id)
redis.call('ZREM', key(kind, 'order'), id)
return reply(redis.call('HDEL', key(kind), id))
