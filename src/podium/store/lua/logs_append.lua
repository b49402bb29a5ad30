-- store/redis/logs.py: append lines to a worker's log stream, trim it, index it, and
-- hold the endpoint to its budget (logs.lines.LogBudget).
-- ARGV (after the logs prelude's): worker, now, lines per worker, workers per endpoint,
-- bytes per endpoint, low water (a fraction), key ttl ms, n, then n x (time, text, jobs)
local w, now = ARGV[3], ARGV[4]
local keep, max_workers, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local low_water, ttl, n = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local top = redis.call('INCRBY', P .. ':logseq', n)
if n == 0 then return top end
local seq, added = top - n, 0
for i = 0, n - 1 do
  seq = seq + 1
  local b = 11 + i * 3
  redis.call('XADD', sk(w), seq .. '-0', 't', ARGV[b], 'x', ARGV[b + 1], 'j', ARGV[b + 2])
  added = added + #ARGV[b + 1] + #ARGV[b + 2] + 64
  for _, job in ipairs(cjson.decode(ARGV[b + 2])) do
    redis.call('ZADD', jk(job), seq, seq .. ':' .. w)
    redis.call('ZADD', wj(w), seq, seq .. ':' .. job)
    redis.call('SADD', jobs_of_ep, job)
    redis.call('PEXPIRE', jk(job), ttl)
  end
end
redis.call('HINCRBY', bytes_of_ep, w, added)
redis.call('ZADD', writers_of_ep, top, w)  -- by its last seq: readers skip it
redis.call('ZADD', P .. ':logw', now, ep .. '/' .. w)

-- 1. the worker's last `keep` lines
local over = redis.call('XLEN', sk(w)) - keep
if over > 0 then
  local freed = 0
  for _, e in ipairs(redis.call('XRANGE', sk(w), '-', '+', 'COUNT', over)) do
    redis.call('XDEL', sk(w), e[1])
    freed = freed + cost(e[2])
  end
  redis.call('HINCRBY', bytes_of_ep, w, -freed)
end
-- 2. the endpoint's workers: the least recently written logs go (never the writer's)
over = redis.call('ZCARD', writers_of_ep) - max_workers
if over > 0 then
  for _, other in ipairs(redis.call('ZRANGE', writers_of_ep, 0, over)) do
    if over > 0 and other ~= w then
      forget_worker(other)
      over = over - 1
    end
  end
end
-- 3. the endpoint's bytes: its oldest lines go, whoever wrote them, down to the low water
local total = 0
for _, v in ipairs(redis.call('HVALS', bytes_of_ep)) do total = total + tonumber(v) end
local touched = {w}
if total > max_bytes then
  local goal, freed, heads, cut_of = total - math.floor(max_bytes * low_water), 0, {}, {}
  for _, other in ipairs(redis.call('ZRANGE', writers_of_ep, 0, -1)) do
    local head = first_seq(other)
    if head then heads[#heads + 1] = {head, other} end
  end
  table.sort(heads, function(a, b) return a[1] < b[1] end)
  while freed < goal and #heads > 0 do
    local head = table.remove(heads, 1)
    local v, limit = head[2], (heads[1] and heads[1][1]) or math.huge
    for _, e in ipairs(redis.call('XRANGE', sk(v), '-', '+', 'COUNT', 100)) do
      if freed >= goal or seq_of(e[1]) > limit then break end
      redis.call('XDEL', sk(v), e[1])
      local c = cost(e[2])
      freed, cut_of[v] = freed + c, (cut_of[v] or 0) + c
    end
    local nxt = first_seq(v)
    if nxt then  -- back among the heads, in order
      local i = 1
      while heads[i] and heads[i][1] < nxt do i = i + 1 end
      table.insert(heads, i, {nxt, v})
    end
  end
  for v, c in pairs(cut_of) do
    redis.call('HINCRBY', bytes_of_ep, v, -c)
    if v ~= w and not first_seq(v) then forget_worker(v) elseif v ~= w then touched[#touched + 1] = v end
  end
end
-- the job index forgets the lines the streams no longer hold (the oldest: lowest)
for _, v in ipairs(touched) do unindex_below(v, first_seq(v) or (top + 1)) end
if not first_seq(w) then redis.call('DEL', sk(w)) end
-- a safety net: keys nobody expires (no reaper runs) still go
for _, k in ipairs({sk(w), wj(w), jobs_of_ep, bytes_of_ep}) do redis.call('PEXPIRE', k, ttl) end
return top
