-- store/redis_logs.py: one worker's lines that carry a job, found inside Redis so that
-- only the matches travel. ARGV: stream key, top seq, needle (the job id as JSON text, as
-- it appears in the `j` field), how many, since seq ('' for none).
-- No since: the newest matches at or below top, newest first. With since: the oldest
-- matches above it, oldest first. Reads CHUNK entries at a time; a worker's stream holds
-- at most its bound (PODIUM_LOG_LINES_PER_WORKER), so a call is bounded by that.
local key, top, needle, want, since = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local CHUNK = 500
local out = {}
local function jobs_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'j' then return fields[i + 1] end
  end
  return ''
end
local lower, upper = '-', top .. '-0'
if since ~= '' then lower = '(' .. since .. '-0' end
while #out < want do
  local batch
  if since == '' then
    batch = redis.call('XREVRANGE', key, upper, lower, 'COUNT', CHUNK)
  else
    batch = redis.call('XRANGE', key, lower, upper, 'COUNT', CHUNK)
  end
  for _, e in ipairs(batch) do
    if string.find(jobs_of(e[2]), needle, 1, true) then
      table.insert(out, e)
      if #out >= want then break end
    end
  end
  if #batch < CHUNK then break end
  if since == '' then upper = '(' .. batch[#batch][1] else lower = '(' .. batch[#batch][1] end
end
return out
