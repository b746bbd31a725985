-- Record the next payout of a household-month, once: the ledger moves only if its sequence
-- is still the one the payout was planned on (so two closes at once cannot both pay).
-- ARGV: prefix, household_id, month, expected_seq, payout_id, payout_json,
--       base_delta, fuel_delta, benefit_delta, to_capital, now_epoch, expire_at_epoch
-- Returns 1 when recorded, 0 when the ledger had moved (plan again).
local p, hid, month = ARGV[1], ARGV[2], ARGV[3]
local expected = tonumber(ARGV[4])
local paid = p .. 'paid:' .. hid .. ':' .. month
local seq = tonumber(redis.call('HGET', paid, 'seq') or '0')
if seq ~= expected then
  return 0
end
redis.call('HSET', paid, 'seq', expected + 1)
redis.call('HINCRBY', paid, 'base_bonus_cents', ARGV[7])
redis.call('HINCRBY', paid, 'fuel_bonus_cents', ARGV[8])
redis.call('HINCRBY', paid, 'payment_benefit_cents', ARGV[9])
redis.call('HINCRBY', p .. 'hh:' .. hid .. ':ledger', 'bonus_to_capital_cents', ARGV[10])
local record = p .. 'payout:' .. ARGV[5]
redis.call('SET', record, ARGV[6])
redis.call('EXPIREAT', record, ARGV[12])
redis.call('EXPIREAT', paid, ARGV[12])
redis.call('ZADD', p .. 'outbox', ARGV[11], ARGV[5])
return 1
