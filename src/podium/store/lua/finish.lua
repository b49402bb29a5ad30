-- id, worker, status, has_output, output, has_error, error, use_stream
local id, worker, status = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local j, err_reply = held(id, worker)
if not j then return err_reply end
if j.status ~= 'IN_PROGRESS' then return reply('noop', redis.call('HGETALL', jkey(id))) end
local output = false
if ARGV[A + 3] == '1' then output = ARGV[A + 4] end
if ARGV[A + 7] == '1' then
  local chunks = redis.call('LRANGE', key('stream', id), 0, -1)
  if #chunks > 0 then output = '[' .. table.concat(chunks, ',') .. ']' end
end
local err = nil
if ARGV[A + 5] == '1' then err = ARGV[A + 6] end
finalize(id, j, status, err, output, false)
return reply('ok', redis.call('HGETALL', jkey(id)))
