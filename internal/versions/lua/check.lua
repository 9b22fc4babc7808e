-- Tells whether a stream lost keys, as reserve.lua would find, without
-- changing anything.
--
-- KEYS: meta, ids, offsets, slot hash of the stream's slot.
-- ARGV: stream name.
--
-- Replies {lost, partition}: lost is 1 when the stream's keys disagree or
-- its repair is running; partition is -1 when unknown.
local m = redis.call('HMGET', KEYS[1], 'v', 'p', 'rr')
if m[3] then
  return {1, m[2] or '-1'}
end
if m[1] then
  if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
    return {1, m[2]}
  end
  return {0, m[2]}
end
local known = redis.call('HGET', KEYS[4], 's' .. ARGV[1])
if known or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  return {1, known or '-1'}
end
return {0, '-1'}
