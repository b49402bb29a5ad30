-- id, retention_ms
local id = ARGV[A]
local j = load(id)
if not j then return reply() end
local r = tonumber(ARGV[A + 1])
j.retention_ms = string.format('%d', r)
redis.call('HSET', jkey(id), 'retention_ms', j.retention_ms)
if j.finished_at then
  j.purge_at = fmt(tonumber(j.finished_at) + r / 1000)
  redis.call('HSET', jkey(id), 'purge_at', j.purge_at)
  schedule_purge(id, j)
end
return reply()
