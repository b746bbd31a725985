-- Record member payments (contract section 11), each once per payment_id, and put each new
-- one on the member payments' outbox. The year's index (payment_id -> head_person_id, for the
-- tax report) is what makes it once: a payment_id already there is left exactly as it is.
-- KEYS[1] member-payments:{YYYY}   the year's index (hash)
-- KEYS[2] outbox:member-payments   ids not yet confirmed sent (zset)
-- ARGV[1] now epoch, ARGV[2] expire_at epoch (of the index and the records),
-- ARGV[3] JSON array of [payment_id, payment JSON, head_person_id, record key
--         (member-payment:{payment_id}, full, from stream/store/keys.py)]
-- Returns one 1 (recorded now) or 0 (it already was) per payment.
local index, outbox = KEYS[1], KEYS[2]
local out = {}
for n, e in ipairs(cjson.decode(ARGV[3])) do
  local id = e[1]
  if redis.call('HSETNX', index, id, e[3]) == 0 then
    out[n] = 0
  else
    local record = e[4]
    redis.call('SET', record, e[2])
    redis.call('EXPIREAT', record, ARGV[2])
    redis.call('ZADD', outbox, ARGV[1], id)
    out[n] = 1
  end
end
if #out > 0 then
  redis.call('EXPIREAT', index, ARGV[2])
end
return out
