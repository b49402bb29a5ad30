-- kind -> docs in first-put order
local kind = ARGV[A]
local ids = redis.call('ZRANGE', key(kind, 'order'), 0, -1)
if #ids == 0 then return reply({}) end
return reply(redis.call('HMGET', key(kind), unpack(ids)))
