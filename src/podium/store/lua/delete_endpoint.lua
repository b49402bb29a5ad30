-- ep -> 1 when the endpoint existed (its queued jobs go through purge_queue)
local ep = ARGV[A]
local existed = redis.call('HDEL', key('endpoints'), ep)
local look = redis.call('HGET', key('endpoints', 'lookup_of'), ep)
if look then redis.call('HDEL', key('endpoints', 'lookup'), look) end
redis.call('HDEL', key('endpoints', 'lookup_of'), ep)
redis.call('ZREM', key('endpoints', 'order'), ep)
redis.call('DEL', key('wseen', ep), key('wstate', ep), key('winfo', ep))
note('q:' .. ep)
return reply(existed)
