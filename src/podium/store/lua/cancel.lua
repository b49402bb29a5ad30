-- id
local id = ARGV[A]
local j = load(id)
if not j then return reply('notfound') end
if j.status == 'IN_QUEUE' or j.status == 'IN_PROGRESS' then
  finalize(id, j, 'CANCELLED', nil, nil, j.status == 'IN_PROGRESS')
end
return reply('ok', redis.call('HGETALL', jkey(id)))
