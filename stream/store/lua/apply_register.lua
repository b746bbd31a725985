-- Apply a batch of register events atomically, each idempotent.
-- No KEYS: an erasure finds most of its keys only from what it reads (the household's persons
-- and cards). Keys are composed from ARGV[1], the key prefix, and the names of
-- stream/store/keys.py (tests/stream/store/test_keys.py checks that they match).
-- ARGV[1] key prefix, ARGV[2] JSON array of ops:
--   {k="snapshot", key=record name without the prefix (Keys.unprefixed_*),
--    ts=updated_at in microseconds, f={field=value,...},
--    hid=household id the entity belongs to, hk=its pseudonymous household key,
--    idx="cards"|"persons" (card and person snapshots), ent=card number or person id}
--     last write wins by ts; an older or equal snapshot is ignored (stale), and so is one
--     not newer than an erasure of its household (erased:{hk} holds the erasure's time).
--     Card and person snapshots keep the household's index sets (hh:{H}:cards, :persons); a
--     household snapshot newer than its erasure takes the household off erased:recent.
--   {k="capital", hid=..., id=payment_id, amount=cents, year=YYYY (optional)}
--     a ledger entry, applied once per payment id; with a year, also counted in that year's
--     part of the ledger (capital_paid_cents:YYYY, for the interest on member capital).
--   {k="erase", id=request_id, hid=..., hk=..., ts=requested_at in microseconds,
--    months={"YYYY-MM",...} (every month that may hold state), now=epoch, ttl=seconds}
--     deletes every key of the household, its persons and its cards (contract section 9)
--     except the member-capital ledger (hh:{H}:ledger, hh:{H}:capital); records the erasure
--     for stale snapshots (erased:{hk}) and for ClickHouse (erased:recent, erasure:pending).
-- Returns one status per op: applied | stale | duplicate.
local p = ARGV[1]
local ops = cjson.decode(ARGV[2])
local out = {}

local function erased_before(hk, ts)
  if not hk or hk == '' then return false end
  local at = redis.call('GET', p .. 'erased:' .. hk)
  return at ~= false and ts <= tonumber(at)
end

local function erase(op)
  local marker = p .. 'erasure:request:' .. op.id
  if redis.call('EXISTS', marker) == 1 then
    return 'duplicate'
  end
  local hid = op.hid
  local hh = p .. 'hh:' .. hid
  local tomb = p .. 'erased:' .. op.hk
  local before = tonumber(redis.call('GET', tomb) or '-1')
  redis.call('SET', tomb, string.format('%d', math.max(before, op.ts)))
  -- persons: listed in the snapshot, or naming the household (index)
  local persons = {}
  local listed = redis.call('HGET', hh, 'person_ids')
  if listed then
    local ok, ids = pcall(cjson.decode, listed)
    if ok and type(ids) == 'table' then
      for _, pid in ipairs(ids) do persons[pid] = true end
    end
  end
  for _, pid in ipairs(redis.call('SMEMBERS', hh .. ':persons')) do persons[pid] = true end
  for pid, _ in pairs(persons) do
    local key = p .. 'person:' .. pid
    local owner = redis.call('HGET', key, 'household_id')
    if not owner or owner == hid then redis.call('DEL', key) end
  end
  -- cards, and the swipes held for them
  for _, card in ipairs(redis.call('SMEMBERS', hh .. ':cards')) do
    local key = p .. 'card:' .. card
    local owner = redis.call('HGET', key, 'household_id')
    if not owner or owner == hid then
      redis.call('DEL', key)
      local held = p .. 'held:' .. card
      local n = redis.call('HLEN', held)
      if n > 0 then
        redis.call('DEL', held)
        redis.call('DECRBY', p .. 'held:count', n)
      end
      redis.call('ZREM', p .. 'held:index', card)
    end
  end
  redis.call('DEL', hh, hh .. ':cards', hh .. ':persons')
  -- per-month state and payout records
  for _, m in ipairs(op.months) do
    local paid = p .. 'paid:' .. hid .. ':' .. m
    local seq = tonumber(redis.call('HGET', paid, 'seq') or '0')
    for s = 1, seq + 1 do
      local id = hid .. ':' .. m .. ':' .. s
      redis.call('DEL', p .. 'payout:' .. id, p .. 'sending:' .. id)
      redis.call('ZREM', p .. 'outbox', id)
    end
    redis.call('DEL', paid, p .. 'acc:' .. hid .. ':' .. m, p .. 'seen:' .. hid .. ':' .. m)
    redis.call('SREM', p .. 'month:' .. m .. ':households', hid)
  end
  redis.call('ZADD', p .. 'erased:recent', op.now, op.hk)
  redis.call('ZADD', p .. 'erasure:pending', op.now, op.hk)
  redis.call('SET', marker, op.now, 'EX', op.ttl)
  return 'applied'
end

for n, op in ipairs(ops) do
  if op.k == 'snapshot' then
    local key = p .. op.key
    local held = tonumber(redis.call('HGET', key, 'updated_us') or '-1')
    if op.ts > held and not erased_before(op.hk, op.ts) then
      local previous = nil
      if op.idx then previous = redis.call('HGET', key, 'household_id') end
      local args = {'updated_us', string.format('%d', op.ts)}
      for field, value in pairs(op.f) do
        args[#args + 1] = field
        args[#args + 1] = value
      end
      redis.call('HSET', key, unpack(args))
      if op.idx then
        if previous and previous ~= op.hid then
          redis.call('SREM', p .. 'hh:' .. previous .. ':' .. op.idx, op.ent)
        end
        redis.call('SADD', p .. 'hh:' .. op.hid .. ':' .. op.idx, op.ent)
      elseif op.hk and op.hk ~= '' and redis.call('EXISTS', p .. 'erased:' .. op.hk) == 1 then
        -- a household snapshot newer than its erasure: a new relationship, whose purchase
        -- lines the analytics sink must store again
        redis.call('ZREM', p .. 'erased:recent', op.hk)
      end
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
  elseif op.k == 'erase' then
    out[n] = erase(op)
  else
    return redis.error_reply('unknown op ' .. tostring(op.k))
  end
end
return out
