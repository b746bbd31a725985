-- Apply a batch of register events atomically, each idempotent.
-- ARGV[1] key prefix, ARGV[2] JSON array of ops:
--   {k="snapshot", key=..., ts=updated_at in microseconds, f={field=value,...}}
--     last write wins by ts; an older or equal snapshot is ignored (stale).
--   {k="capital", hid=..., id=payment_id, amount=cents, year=YYYY (optional)}
--     a ledger entry, applied once per payment id; with a year, also counted in that year's
--     part of the ledger (capital_paid_cents:YYYY, for the interest on member capital).
-- Returns one status per op: applied | stale | duplicate.
local p = ARGV[1]
local ops = cjson.decode(ARGV[2])
local out = {}
for n, op in ipairs(ops) do
  if op.k == 'snapshot' then
    local key = p .. op.key
    local held = tonumber(redis.call('HGET', key, 'updated_us') or '-1')
    if op.ts > held then
      local args = {'updated_us', string.format('%d', op.ts)}
      for field, value in pairs(op.f) do
        args[#args + 1] = field
        args[#args + 1] = value
      end
      redis.call('HSET', key, unpack(args))
      out[n] = 'applied'
    else
      out[n] = 'stale'
    end
  elseif op.k == 'capital' then
    if redis.call('HSETNX', p .. 'hh:' .. op.hid .. ':capital', op.id, op.amount) == 1 then
      redis.call('HINCRBY', p .. 'hh:' .. op.hid .. ':ledger', 'capital_paid_cents', op.amount)
      if op.year then
        redis.call('HINCRBY', p .. 'hh:' .. op.hid .. ':ledger', 'capital_paid_cents:' .. op.year,
          op.amount)
      end
      out[n] = 'applied'
    else
      out[n] = 'duplicate'
    end
  else
    return redis.error_reply('unknown op ' .. tostring(op.k))
  end
end
return out
