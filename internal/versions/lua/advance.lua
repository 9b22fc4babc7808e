-- Records how far a rebuild read the topic, if the rebuild still owns the
-- watermarks: a rebuild started later took them over.
--
-- KEYS: watermarks.
-- ARGV: rebuild id, then per partition: partition, next offset.
--
-- Replies 1 when recorded, 0 when another rebuild owns the watermarks.
if redis.call('HGET', KEYS[1], 'rebuild') ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
