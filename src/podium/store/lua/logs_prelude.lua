-- Shared by store/redis/logs.py's scripts (prepended to each). ARGV[1] prefix,
-- ARGV[2] endpoint; a script's own arguments follow.
local P, ep = ARGV[1], ARGV[2]
local jobs_of_ep = P .. ':logjobs:' .. ep
local bytes_of_ep = P .. ':logb:' .. ep  -- hash: worker -> what its kept lines cost
local writers_of_ep = P .. ':logw:' .. ep
local function jk(job) return P .. ':logjob:' .. ep .. ':' .. job end
local function sk(w) return P .. ':log:' .. ep .. ':' .. w end
local function wj(w) return P .. ':logjw:' .. ep .. ':' .. w end

-- What a stored line costs (logs.lines.line_cost): its text and job ids in bytes + 64.
local function cost(fields)
  local text, jobs = '', ''
  for i = 1, #fields, 2 do
    if fields[i] == 'x' then text = fields[i + 1] elseif fields[i] == 'j' then jobs = fields[i + 1] end
  end
  return #text + #jobs + 64
end

local function seq_of(entry_id) return tonumber(string.match(entry_id, '^(%d+)')) end

-- The seq of worker `w`'s oldest kept line (nil: none).
local function first_seq(w)
  local f = redis.call('XRANGE', sk(w), '-', '+', 'COUNT', 1)
  if f[1] then return seq_of(f[1][1]) end
  return nil
end

-- Take the job index entries of worker `w`'s lines below seq `lowest` out.
local function unindex_below(w, lowest)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', wj(w), '-inf', '(' .. lowest)) do
    local cut = string.find(m, ':', 1, true)
    local job = string.sub(m, cut + 1)
    redis.call('ZREM', jk(job), string.sub(m, 1, cut - 1) .. ':' .. w)
    if redis.call('EXISTS', jk(job)) == 0 then redis.call('SREM', jobs_of_ep, job) end
  end
  redis.call('ZREMRANGEBYSCORE', wj(w), '-inf', '(' .. lowest)
end

-- Forget worker `w`'s whole log: its stream, its job index entries, its cost.
local function forget_worker(w)
  unindex_below(w, '+inf')
  redis.call('DEL', sk(w), wj(w))
  redis.call('ZREM', writers_of_ep, w)
  redis.call('ZREM', P .. ':logw', ep .. '/' .. w)
  redis.call('HDEL', bytes_of_ep, w)
end
