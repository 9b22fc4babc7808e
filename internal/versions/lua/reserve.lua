-- Reserves the versions after a stream's current one for an append.
--
-- KEYS: meta, ids, offsets, epoch and slot hash of the stream's slot.
-- ARGV: expected version, event count, token, now (ms), lease (ms),
--       partition for a new stream, stream name, then per event: id,
--       content hash.
--
-- Replies, first element the outcome:
--   OK version partition last_offset   reserved versions version+1..
--   DUP last_version partition         every event id landed already
--   IDCLASH event_id version reason    an id landed with other content
--                                      ("content") or in another append
--   CONFLICT version                   the expectation does not hold
--   BUSY deadline                      another append holds a live lease
--   EXPIRED token version count partition last_offset
--                                      a lease ran out; resolve it first
--   NOINDEX                            the epoch is missing: amnesia
--   LOSTSTREAM partition               the stream's keys disagree, or a
--                                      repair of the stream is running;
--                                      partition is -1 when unknown
if redis.call('EXISTS', KEYS[4]) == 0 then
  return {'NOINDEX'}
end

local expected = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
local m = redis.call('HMGET', KEYS[1], 'v', 'p', 'o', 'rt', 'rv', 'rn', 'rp', 'rd', 'rr')
local version = tonumber(m[1]) or 0
local last_offset = m[3] or '-1'

-- A stream that lost some of its keys: a stream with a version has ids
-- and offsets, and a stream without one has neither and is not in its
-- slot's ledger. Answering from what is left could give out a version
-- twice, so the stream is refused until a repair read it again.
if m[9] then
  return {'LOSTSTREAM', m[2] or '-1'}
end
if m[1] then
  if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
    return {'LOSTSTREAM', m[2]}
  end
else
  local known = redis.call('HGET', KEYS[5], 's' .. ARGV[7])
  if known or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
    return {'LOSTSTREAM', known or '-1'}
  end
end

-- A retried append: its event ids are recorded already, at consecutive
-- versions. An id recorded with other content, or only some of the ids
-- recorded, is a clash, never a silent partial append.
local dup_first, seen, clash_id, clash_version = nil, 0, nil, nil
for i = 1, count do
  local id = ARGV[6 + 2 * i]
  local stored = redis.call('HGET', KEYS[2], id)
  if stored then
    local sep = string.find(stored, ':', 1, true)
    local v = tonumber(string.sub(stored, 1, sep - 1))
    if string.sub(stored, sep + 1) ~= ARGV[7 + 2 * i] then
      return {'IDCLASH', id, tostring(v), 'content'}
    end
    if dup_first == nil then
      dup_first, clash_id, clash_version = v - i + 1, id, v
    elseif v ~= dup_first + i - 1 then
      return {'IDCLASH', id, tostring(v), 'append'}
    end
    seen = seen + 1
  end
end
if seen == count then
  return {'DUP', tostring(dup_first + count - 1), m[2] or ARGV[6]}
end
if seen > 0 then
  return {'IDCLASH', clash_id, tostring(clash_version), 'append'}
end

if m[4] then
  if tonumber(m[8]) > now then
    return {'BUSY', m[8]}
  end
  return {'EXPIRED', m[4], m[5], m[6], m[7], last_offset}
end

if (expected >= 0 and expected ~= version) or (expected == -2 and version == 0) then
  return {'CONFLICT', tostring(version)}
end

local partition = m[2] or ARGV[6]
redis.call('HSET', KEYS[1], 'rt', ARGV[3], 'rv', tostring(version + 1),
  'rn', ARGV[2], 'rp', partition, 'rd', tostring(now + tonumber(ARGV[5])))
return {'OK', tostring(version), partition, last_offset}
