-- store/redis_logs.py: forget logs. ARGV: prefix, mode, then
--   'worker', endpoint, worker, before: that worker's log, if it last wrote before
--     `before` (checked here: it may have written since it was listed); 1 if forgotten
--   'endpoint', endpoint: every log of the endpoint and its job index
local P, mode, ep = ARGV[1], ARGV[2], ARGV[3]
local jobs_of_ep = P .. ':logjobs:' .. ep
local function jk(job) return P .. ':logjob:' .. ep .. ':' .. job end
local function drop(w)
  redis.call('DEL', P .. ':log:' .. ep .. ':' .. w, P .. ':logjw:' .. ep .. ':' .. w)
  redis.call('ZREM', P .. ':logw:' .. ep, w)
  redis.call('ZREM', P .. ':logw', ep .. '/' .. w)
end
if mode == 'worker' then
  local w, before = ARGV[4], tonumber(ARGV[5])
  local last = redis.call('ZSCORE', P .. ':logw', ep .. '/' .. w)
  if last and tonumber(last) >= before then return 0 end
  local wj = P .. ':logjw:' .. ep .. ':' .. w
  for _, m in ipairs(redis.call('ZRANGE', wj, 0, -1)) do
    local cut = string.find(m, ':', 1, true)
    local job = string.sub(m, cut + 1)
    redis.call('ZREM', jk(job), string.sub(m, 1, cut - 1) .. ':' .. w)
    if redis.call('EXISTS', jk(job)) == 0 then redis.call('SREM', jobs_of_ep, job) end
  end
  drop(w)
  return 1
end
local workers = redis.call('ZRANGE', P .. ':logw:' .. ep, 0, -1)
for _, w in ipairs(workers) do drop(w) end
for _, job in ipairs(redis.call('SMEMBERS', jobs_of_ep)) do redis.call('DEL', jk(job)) end
redis.call('DEL', jobs_of_ep, P .. ':logw:' .. ep)
return #workers
