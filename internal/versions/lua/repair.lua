-- Ends the repair of a stream that lost keys, after its records were
-- merged again from the topic.
--
-- KEYS: meta, ids, offsets, slot hash of the stream's slot.
-- ARGV: stream name, "1" when the topic holds records of the stream, "0"
--       when it holds none.
--
-- With no record in the topic, what is left of the stream in the index
-- describes nothing: it is removed, and the stream is new again.
redis.call('HDEL', KEYS[1], 'rr')
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HDEL', KEYS[4], 's' .. ARGV[1])
  redis.call('HDEL', KEYS[1], 'v', 'p', 'o')
end
if redis.call('HEXISTS', KEYS[1], 'v') == 0 and redis.call('HEXISTS', KEYS[1], 'rt') == 0 then
  redis.call('DEL', KEYS[1])
end
return 'OK'
