-- store/redis_logs.py: forget workers' logs. ARGV: prefix, mode, then
--   mode 'before': the time; forget up to 500 writers that last wrote before it
--   mode 'endpoint': the endpoint id; forget all its writers
local P, mode = ARGV[1], ARGV[2]
local members
if mode == 'before' then
  members = redis.call('ZRANGEBYSCORE', P .. ':logw', '-inf', '(' .. ARGV[3], 'LIMIT', 0, 500)
else
  members = {}
  for _, w in ipairs(redis.call('ZRANGE', P .. ':logw:' .. ARGV[3], 0, -1)) do
    table.insert(members, ARGV[3] .. '/' .. w)
  end
end
for _, m in ipairs(members) do
  local cut = string.find(m, '/', 1, true)
  local ep, w = string.sub(m, 1, cut - 1), string.sub(m, cut + 1)
  redis.call('DEL', P .. ':log:' .. ep .. ':' .. w)
  redis.call('ZREM', P .. ':logw:' .. ep, w)
  redis.call('ZREM', P .. ':logw', m)
end
return #members
