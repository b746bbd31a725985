-- Record the next payout of a household-month, once: the ledger moves only if its sequence
-- is still the one the payout was planned on (so two closes at once cannot both pay), and only
-- if its capital split is still the one the household's capital ledger gives now (so closes
-- of two months at once cannot both put the same capital still owed into capital).
-- KEYS[1] paid:{H}:{M}      the household-month payout ledger (hash)
-- KEYS[2] hh:{H}:ledger     the household's capital ledger (hash)
-- KEYS[3] hh:{H}            the household snapshot (hash; capital_required_cents is read)
-- KEYS[4] payout:{id}       the payout record (string, written)
-- KEYS[5] outbox            payout ids not yet confirmed sent (zset, written)
-- ARGV[1] expected_seq, ARGV[2] payout_id, ARGV[3] payout JSON,
-- ARGV[4] base_delta, ARGV[5] fuel_delta, ARGV[6] benefit_delta, ARGV[7] to_capital,
-- ARGV[8] now epoch, ARGV[9] expire_at epoch (of KEYS[1] and KEYS[4]), ARGV[10] month YYYY-MM
-- Returns 1 when recorded, 0 when the ledger had moved (plan again).
local paid, ledger, household, record, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local expected = tonumber(ARGV[1])
local seq = tonumber(redis.call('HGET', paid, 'seq') or '0')
if seq ~= expected then
  return 0
end
-- Capital first (contract section 5): a positive difference goes to capital up to what is
-- still owed (required - capital payments - bonus already sent to capital), a negative one
-- to the account.
local required = tonumber(redis.call('HGET', household, 'capital_required_cents') or '0')
local held = redis.call('HMGET', ledger, 'capital_paid_cents', 'bonus_to_capital_cents')
local owed = math.max(0, required - tonumber(held[1] or '0') - tonumber(held[2] or '0'))
local difference = tonumber(ARGV[4]) + tonumber(ARGV[5]) + tonumber(ARGV[6])
local to_capital = 0
if difference > 0 then
  to_capital = math.min(difference, owed)
end
if tonumber(ARGV[7]) ~= to_capital then
  return 0
end
redis.call('HSET', paid, 'seq', expected + 1)
redis.call('HINCRBY', paid, 'base_bonus_cents', ARGV[4])
redis.call('HINCRBY', paid, 'fuel_bonus_cents', ARGV[5])
redis.call('HINCRBY', paid, 'payment_benefit_cents', ARGV[6])
redis.call('HINCRBY', ledger, 'bonus_to_capital_cents', ARGV[7])
if to_capital > 0 then
  -- per year of the bonus month too: capital held at the end of a year (member payments)
  redis.call('HINCRBY', ledger, 'bonus_to_capital_cents:' .. string.sub(ARGV[10], 1, 4), ARGV[7])
end
redis.call('SET', record, ARGV[3])
redis.call('EXPIREAT', record, ARGV[9])
redis.call('EXPIREAT', paid, ARGV[9])
redis.call('ZADD', outbox, ARGV[8], ARGV[2])
return 1
