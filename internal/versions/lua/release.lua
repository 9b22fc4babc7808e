-- Releases a reservation whose record is known not to be in the topic.
--
-- KEYS: meta.
-- ARGV: token.
--
-- Replies 1 when released, 0 when the reservation was not there anymore.
if redis.call('HGET', KEYS[1], 'rt') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'rt', 'rv', 'rn', 'rp', 'rd')
if redis.call('HEXISTS', KEYS[1], 'v') == 0 and redis.call('HEXISTS', KEYS[1], 'rr') == 0 then
  redis.call('DEL', KEYS[1])
end
return 1
