-- id, worker, has_output, output
local id, worker = ARGV[A], ARGV[A + 1]
local j, err_reply = held(id, worker)
if not j then return err_reply end
if j.status == 'IN_PROGRESS' then
  if ARGV[A + 2] == '1' then redis.call('HSET', jkey(id), 'output', ARGV[A + 3])
  else redis.call('HDEL', jkey(id), 'output') end
  touch(j.ep, worker, nil, nil)
end
note('j:' .. id)
return reply('ok', redis.call('HGETALL', jkey(id)))
