-- ep, worker, lease_until, has_state, state, has_info, info, job ids...
local ep, worker, lease = ARGV[A], ARGV[A + 1], ARGV[A + 2]
for i = A + 7, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', jkey(id), 'worker', 'ep', 'status', 'seq')
  if f[1] == worker and f[2] == ep and f[3] == 'IN_PROGRESS' then
    redis.call('HSET', jkey(id), 'lease_until', lease)
    redis.call('ZADD', key('ix', 'lease'), lease, id)
  elseif f[1] == worker and f[2] == ep and (f[3] == 'CANCELLED' or f[3] == 'TIMED_OUT') then
    -- still running a stopped job: send the stop again (the first may have been lost)
    post_stop(id, ep, worker, f[4], redis.call('PTTL', jkey(id)))
  end
end
local state, info = nil, nil
if ARGV[A + 3] == '1' then state = ARGV[A + 4] end
if ARGV[A + 5] == '1' then info = ARGV[A + 6] end
touch(ep, worker, state, info)
return reply()
