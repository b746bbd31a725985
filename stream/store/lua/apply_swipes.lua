-- Apply a batch of swipes atomically: each counts once per household-month.
-- No KEYS: which keys an entry touches depends on the card's household, read here. They are
-- composed from ARGV[1], the key prefix, and the names of stream/store/keys.py: card:{CARD},
-- held:{CARD}, held:index, held:count, hh:{H}, seen:{H}:{M}, acc:{H}:{M}, month:{M}:households
-- (tests/stream/store/test_keys.py checks that they match).
-- ARGV[1] key prefix, ARGV[2] JSON array of entries:
--   {e=event_id, c=card, m="YYYY-MM", d="YYYY-MM-DD" (local date), i={field=incr,...},
--    r=raw swipe JSON (optional: kept while the card is unknown), x=seen-set expiry epoch,
--    a=accumulator expiry epoch, h=1 when the entry comes from the hold},
-- ARGV[3] now (epoch seconds: when a swipe was put on hold).
-- Returns a JSON array with one [outcome, household_id, co_op, business] per entry; outcome is
-- applied | duplicate | held | blocked | expired | unknown. ``unknown``: the card is not
-- registered and the entry has no r; nothing was written for it (the caller sends it again
-- with r, so the raw swipe crosses the wire only for the rare unknown card).
local p = ARGV[1]
local entries = cjson.decode(ARGV[2])
local now = ARGV[3]
local out = {}
for n, s in ipairs(entries) do
  local card = redis.call('HMGET', p .. 'card:' .. s.c, 'household_id', 'status', 'valid_until')
  local hid, status, valid_until = card[1], card[2], card[3]
  local result
  if not hid and not s.r then
    result = {'unknown', '', '', ''}
  elseif not hid then
    if redis.call('HSETNX', p .. 'held:' .. s.c, s.e, s.r) == 1 then
      redis.call('ZADD', p .. 'held:index', 'NX', now, s.c)
      redis.call('INCR', p .. 'held:count')
    end
    result = {'held', '', '', ''}
  elseif status == 'blocked' then
    result = {'blocked', hid, '', ''}
  elseif status == 'expired' or (valid_until and valid_until ~= '' and s.d > valid_until) then
    result = {'expired', hid, '', ''}
  else
    local hh = redis.call('HMGET', p .. 'hh:' .. hid, 'co_op', 'business')
    local co_op, business = hh[1] or '', hh[2] or ''
    local seen = p .. 'seen:' .. hid .. ':' .. s.m
    if redis.call('SADD', seen, s.e) == 0 then
      result = {'duplicate', hid, co_op, business}
    else
      if redis.call('TTL', seen) < 0 then redis.call('EXPIREAT', seen, s.x) end
      local acc = p .. 'acc:' .. hid .. ':' .. s.m
      for field, incr in pairs(s.i) do
        redis.call('HINCRBY', acc, field, incr)
      end
      if redis.call('TTL', acc) < 0 then redis.call('EXPIREAT', acc, s.a) end
      redis.call('SADD', p .. 'month:' .. s.m .. ':households', hid)
      result = {'applied', hid, co_op, business}
    end
  end
  if s.h == 1 and result[1] ~= 'held' and result[1] ~= 'unknown' then
    -- Credited (or rejected) from the hold: it leaves the hold in the same step.
    if redis.call('HDEL', p .. 'held:' .. s.c, s.e) == 1 then
      redis.call('DECR', p .. 'held:count')
    end
    if redis.call('EXISTS', p .. 'held:' .. s.c) == 0 then
      redis.call('ZREM', p .. 'held:index', s.c)
    end
  end
  out[n] = result
end
return cjson.encode(out)
