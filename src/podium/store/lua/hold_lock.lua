-- Take the lock, or renew it when this owner holds it. The lease runs on the injected
-- clock (ARGV now) like everything else; the key TTL (real time) only cleans up.
local owner = redis.call('HGET', KEYS[1], 'owner')
local untl = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local now = tonumber(ARGV[2])
if owner == false or owner == ARGV[1] or untl <= now then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
