-- ep, limit -> removed, scanned
local ep, limit = ARGV[A], tonumber(ARGV[A + 1])
local removed, scanned = 0, 0
for _, q in ipairs({key('q', ep), key('ql', ep)}) do
  if scanned < limit then
    for _, m in ipairs(redis.call('ZRANGE', q, 0, limit - scanned - 1)) do
      scanned = scanned + 1
      local id = id_of(m)
      local j = load(id)
      if j and j.status == 'IN_QUEUE' then
        remove(id, j)
        removed = removed + 1
      else
        redis.call('ZREM', q, m)
      end
    end
  end
end
return reply(removed, scanned)
