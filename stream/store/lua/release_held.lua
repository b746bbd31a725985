-- Take swipes of one card off the hold (they were dead-lettered, not credited).
-- ARGV: prefix, card, event_id...
local p, card = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  n = n + redis.call('HDEL', p .. 'held:' .. card, ARGV[i])
end
if n > 0 then
  redis.call('DECRBY', p .. 'held:count', n)
end
if redis.call('EXISTS', p .. 'held:' .. card) == 0 then
  redis.call('ZREM', p .. 'held:index', card)
end
return n
