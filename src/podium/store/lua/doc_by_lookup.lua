-- kind, lookup value -> doc
local kind = ARGV[A]
local id = redis.call('HGET', key(kind, 'lookup'), ARGV[A + 1])
if not id then return reply() end
return reply(redis.call('HGET', key(kind), id))
