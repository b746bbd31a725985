-- Record member payments (contract section 11), each once per payment_id, and put each new
-- one on the member payments' outbox. The year's index (payment_id -> head_person_id, for the
-- tax report) is what makes it once: a payment_id already there is left exactly as it is.
-- ARGV: prefix, year, now_epoch, expire_at_epoch, JSON array of [payment_id, json, head_id]
-- Returns one 1 (recorded now) or 0 (it already was) per payment.
local p, year = ARGV[1], ARGV[2]
local index = p .. 'member-payments:' .. year
local out = {}
for n, e in ipairs(cjson.decode(ARGV[5])) do
  local id = e[1]
  if redis.call('HSETNX', index, id, e[3]) == 0 then
    out[n] = 0
  else
    local record = p .. 'member-payment:' .. id
    redis.call('SET', record, e[2])
    redis.call('EXPIREAT', record, ARGV[4])
    redis.call('ZADD', p .. 'outbox:member-payments', ARGV[3], id)
    out[n] = 1
  end
end
if #out > 0 then
  redis.call('EXPIREAT', index, ARGV[4])
end
return out
