-- Record one member payment (contract section 11), once per payment_id, and put it on the
-- member payments' outbox. The year's index (payment_id -> head_person_id, for the tax
-- report) is what makes it once: a payment_id already there is left exactly as it is.
-- ARGV: prefix, year, payment_id, payment_json, head_person_id, now_epoch, expire_at_epoch
-- Returns 1 when recorded now, 0 when it already was.
local p, year, id = ARGV[1], ARGV[2], ARGV[3]
local index = p .. 'member-payments:' .. year
if redis.call('HSETNX', index, id, ARGV[5]) == 0 then
  return 0
end
local record = p .. 'member-payment:' .. id
redis.call('SET', record, ARGV[4])
redis.call('EXPIREAT', record, ARGV[7])
redis.call('EXPIREAT', index, ARGV[7])
redis.call('ZADD', p .. 'outbox:member-payments', ARGV[6], id)
return 1
