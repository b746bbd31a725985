-- Read many hashes in one call and answer with one JSON string: for bulk readers (member
-- payments, simulate, partner settlement) a single reply is far cheaper to parse than
-- thousands of RESP replies.
-- No KEYS (the reads are many and of any kind). ARGV[1] JSON array of reads, each one of
--   ["hgetall", key]            -> flat array field, value, ... ({} when the key is absent)
--   ["hmget", key, f1, f2, ...] -> array of values (false where absent)
--   ["hget", key, field]        -> value or false
-- keys are full (prefixed), from stream/store/keys.py. Returns the JSON array of the answers,
-- in order.
local reads = cjson.decode(ARGV[1])
local out = {}
for n, r in ipairs(reads) do
  local op, key = r[1], r[2]
  if op == 'hgetall' then
    out[n] = redis.call('HGETALL', key)
  elseif op == 'hmget' then
    out[n] = redis.call('HMGET', key, unpack(r, 3))
  elseif op == 'hget' then
    out[n] = redis.call('HGET', key, r[3])
  else
    return redis.error_reply('unknown read ' .. tostring(op))
  end
end
return cjson.encode(out)
