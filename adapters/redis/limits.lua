#!lua
-- CHECK_AND_INCR (DESIGN.md §6): one reward decision against the limit
-- counters of one tenant, all or nothing, idempotent per decision id.
-- limits.go builds the keys and arguments and documents them; every key
-- carries the tenant's hash tag, so the script touches one cluster slot.
--
-- The shebang (Redis 7) makes Redis refuse the whole script when it is out
-- of memory, instead of failing at its first write.
--
-- KEYS[1]       the decision's memory, limit:{<tenantId>}:dec:<decisionId>
-- KEYS[i+1]     counter i (1..n), only those whose cap is set, narrowest first
-- ARGV[1]       seconds to remember the decision
-- ARGV[3i-1]    counter i's label (echoed into the answer for operators)
-- ARGV[3i]      counter i's cap
-- ARGV[3i+1]    counter i's TTL in seconds, 0 for none (totals)
--
-- Returns {replayed, outcome}. replayed is 1 when the decision was applied
-- before: outcome is then the answer it got then, word for word, and nothing
-- is counted again. outcome is "1" (granted) or "0" (refused), followed by
-- "|<label>,<cap>,<seen>" for each counter, seen being its value before this
-- decision.
--
-- Every read and check comes before the first write, so a counter that is
-- not an integer leaves nothing half done: Redis does not roll back a script
-- that fails midway. (Only this script writes these keys; a key of another
-- type would read as absent and be replaced.)
--
-- The memory and the counters are read with one MGET: each redis.call costs
-- about as much as the command itself, and Redis, single-threaded, is what
-- bounds the engine's decisions per second.

local values = redis.call('MGET', unpack(KEYS))
if values[1] then
  return {1, values[1]}
end

local n = #KEYS - 1
local seen = {}
local granted = true
for i = 1, n do
  local v = values[i + 1] or '0'
  local count = tonumber(v)
  if count == nil then
    return redis.error_reply('ERR limit counter ' .. KEYS[i + 1] .. ' is not an integer')
  end
  seen[i] = v
  if count >= tonumber(ARGV[3 * i]) then
    granted = false
  end
end

local parts = {granted and '1' or '0'}
for i = 1, n do
  parts[i + 1] = ARGV[3 * i - 1] .. ',' .. ARGV[3 * i] .. ',' .. seen[i]
  if granted then
    -- A counter is born with its first reward, and its TTL is set then (SET
    -- with EX, one call instead of INCR and EXPIRE): it runs from the first
    -- reward of its day or window and is never extended.
    if values[i + 1] then
      redis.call('INCR', KEYS[i + 1])
    elseif ARGV[3 * i + 1] == '0' then
      redis.call('SET', KEYS[i + 1], 1)
    else
      redis.call('SET', KEYS[i + 1], 1, 'EX', ARGV[3 * i + 1])
    end
  end
end

local outcome = table.concat(parts, '|')
redis.call('SET', KEYS[1], outcome, 'EX', ARGV[1])
return {0, outcome}
