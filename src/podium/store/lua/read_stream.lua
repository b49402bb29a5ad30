-- id
local id = ARGV[A]
local j = load(id)
if not j then return reply('notfound') end
local before = redis.call('HGETALL', jkey(id))
local start = tonumber(j.stream_read)
local chunks = redis.call('LRANGE', key('stream', id), start, -1)
if #chunks > 0 then redis.call('HSET', jkey(id), 'stream_read', start + #chunks) end
return reply('ok', before, chunks)
