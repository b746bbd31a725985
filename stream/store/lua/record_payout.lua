-- Record the next payout of a household-month, once: the ledger moves only if its sequence
-- is still the one the payout was planned on (so two closes at once cannot both pay), and only
-- if its capital split is still the one the household's capital ledger gives now (so closes
-- of two months at once cannot both put the same capital still owed into capital).
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
-- Capital first (contract section 5): a positive difference goes to capital up to what is
-- still owed (required - capital payments - bonus already sent to capital), a negative one
-- to the account.
local ledger = p .. 'hh:' .. hid .. ':ledger'
local required = tonumber(redis.call('HGET', p .. 'hh:' .. hid, 'capital_required_cents') or '0')
local held = redis.call('HMGET', ledger, 'capital_paid_cents', 'bonus_to_capital_cents')
local owed = math.max(0, required - tonumber(held[1] or '0') - tonumber(held[2] or '0'))
local difference = tonumber(ARGV[7]) + tonumber(ARGV[8]) + tonumber(ARGV[9])
local to_capital = 0
if difference > 0 then
  to_capital = math.min(difference, owed)
end
if tonumber(ARGV[10]) ~= to_capital then
  return 0
end
redis.call('HSET', paid, 'seq', expected + 1)
redis.call('HINCRBY', paid, 'base_bonus_cents', ARGV[7])
redis.call('HINCRBY', paid, 'fuel_bonus_cents', ARGV[8])
redis.call('HINCRBY', paid, 'payment_benefit_cents', ARGV[9])
redis.call('HINCRBY', ledger, 'bonus_to_capital_cents', ARGV[10])
if to_capital > 0 then
  -- per year of the bonus month too: capital held at the end of a year (member payments)
  redis.call('HINCRBY', ledger, 'bonus_to_capital_cents:' .. string.sub(month, 1, 4), ARGV[10])
end
local record = p .. 'payout:' .. ARGV[5]
redis.call('SET', record, ARGV[6])
redis.call('EXPIREAT', record, ARGV[12])
redis.call('EXPIREAT', paid, ARGV[12])
redis.call('ZADD', p .. 'outbox', ARGV[11], ARGV[5])
return 1
