-- store/redis/logs.py: forget logs. ARGV (after the logs prelude's): mode, then
--   'worker', worker, before: that worker's log, if it last wrote before `before`
--     (checked here: it may have written since it was listed); 1 if forgotten
--   'endpoint': every log of the endpoint and its job index
local mode = ARGV[3]
if mode == 'worker' then
  local w, before = ARGV[4], tonumber(ARGV[5])
  local last = redis.call('ZSCORE', P .. ':logw', ep .. '/' .. w)
  if last and tonumber(last) >= before then return 0 end
  forget_worker(w)
  return 1
end
local workers = redis.call('ZRANGE', writers_of_ep, 0, -1)
for _, w in ipairs(workers) do forget_worker(w) end
for _, job in ipairs(redis.call('SMEMBERS', jobs_of_ep)) do redis.call('DEL', jk(job)) end
redis.call('DEL', jobs_of_ep, writers_of_ep, bytes_of_ep)
return #workers
