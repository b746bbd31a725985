-- Set a household's pseudonymous key (pseudonym key rotation), only where the household is held.
-- KEYS[1..n] hh:{H}   household snapshots (hash)
-- ARGV[1..n]          the new household_key of each, as decimal text
-- Returns how many snapshots were updated (an erased or unknown household is not recreated).
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'household_key', ARGV[i])
    n = n + 1
  end
end
return n
