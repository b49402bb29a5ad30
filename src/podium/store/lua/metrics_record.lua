-- store/redis/metrics.py: add deltas to an endpoint's metric buckets (podium.series).
-- ARGV: n buckets, then for each: key, ttl ms, adds, peaks, then adds x (field, n)
-- and peaks x (field, n). A count is added (HINCRBY); a sample keeps the larger.
local n, i = tonumber(ARGV[1]), 2
for _ = 1, n do
  local key, ttl = ARGV[i], ARGV[i + 1]
  local adds, peaks = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i = i + 4
  for _ = 1, adds do
    redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  for _ = 1, peaks do
    local have = tonumber(redis.call('HGET', key, ARGV[i]) or '-1')
    if tonumber(ARGV[i + 1]) > have then redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
    i = i + 2
  end
  redis.call('PEXPIRE', key, ttl)
end
return n
