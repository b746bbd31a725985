-- Take swipes of one card off the hold (they were dead-lettered, not credited).
-- KEYS[1] held:{CARD}   event_id -> swipe JSON (hash)
-- KEYS[2] held:count    swipes on hold (string counter)
-- KEYS[3] held:index    card -> epoch first held (zset)
-- ARGV[1] the card, ARGV[2..] the event ids to release
-- Returns how many were on hold and are released now.
local held, count, index, card = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('HDEL', held, ARGV[i])
end
if n > 0 then
  redis.call('DECRBY', count, n)
end
if redis.call('EXISTS', held) == 0 then
  redis.call('ZREM', index, card)
end
return n
