-- ep, status ('' any), upper score ('+inf' or a number), upper id ('': the score is
-- exclusive), lower score ('-inf' or a number, inclusive), limit, error bytes, most
-- entries to examine -> {rows}, last examined score, last examined id (capped: ~= '')
local ep, status, hi, hi_id, lo = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3], ARGV[A + 4]
local limit, error_bytes = tonumber(ARGV[A + 5]), tonumber(ARGV[A + 6])
local most = tonumber(ARGV[A + 7])
local FIELDS = {'id', 'status', 'created_at', 'started_at', 'finished_at', 'worker', 'retries',
                'error'}
-- a < b as Redis orders members (bytes), whatever the locale Lua compares strings in
local function below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local set = key('h', ep)
if status ~= '' then set = key('h', ep, status) end
local max, hi_n = hi, tonumber(hi)
if hi_id == '' and hi ~= '+inf' then max = '(' .. hi end
local out, offset, examined, last_score, last_id = {}, 0, 0, '', ''
while #out <= limit and examined < most do
  local batch = redis.call('ZREVRANGEBYSCORE', set, max, lo, 'WITHSCORES', 'LIMIT', offset,
                           limit + 1)
  if #batch == 0 then break end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    examined = examined + 1
    last_score, last_id = score, id
    if hi_id == '' or tonumber(score) ~= hi_n or below(id, hi_id) then
      local f = redis.call('HMGET', jkey(id), unpack(FIELDS))
      if not f[2] then f = redis.call('HMGET', key('hjob', id), unpack(FIELDS)) end
      if not f[2] then  -- its keys expired with no reaper to remove it: a stale entry
        redis.call('ZREM', key('h', ep), id)
        if status ~= '' then redis.call('ZREM', set, id) end
        offset = offset - 1
      elseif status == '' or f[2] == status then
        f[8] = cut(f[8], error_bytes)
        out[#out + 1] = f
        if #out > limit then break end
      end
    end
    if examined >= most then break end
  end
end
if #out > limit or examined < most then last_score, last_id = '', '' end
return reply(out, last_score, last_id)
