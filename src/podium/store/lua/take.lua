-- ep, worker, n, lease_until
local ep, worker, n, lease = ARGV[A], ARGV[A + 1], tonumber(ARGV[A + 2]), ARGV[A + 3]
local taken = {}
for _, q in ipairs({key('q', ep), key('ql', ep)}) do
  while #taken < n do
    local popped = redis.call('ZPOPMIN', q, n - #taken)
    if #popped == 0 then break end
    for i = 1, #popped, 2 do
      local id = id_of(popped[i])
      local j = load(id)
      if j and j.status == 'IN_QUEUE' then
        local exec = fmt(NOWN + tonumber(j.exec_ms) / 1000)
        redis.call('HSET', jkey(id), 'status', 'IN_PROGRESS', 'worker', worker,
                   'started_at', NOW, 'lease_until', lease, 'exec_deadline', exec)
        redis.call('ZADD', key('run', ep), j.seq, id)
        hist(id, ep, j.created_at, 'IN_QUEUE', 'IN_PROGRESS')
        redis.call('ZADD', key('ix', 'lease'), lease, id)
        redis.call('ZADD', key('ix', 'exec'), exec, id)
        note('j:' .. id)
        taken[#taken + 1] = redis.call('HGETALL', jkey(id))
      end
    end
  end
end
touch(ep, worker, nil, nil)
return reply(taken)
