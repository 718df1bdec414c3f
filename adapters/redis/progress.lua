#!lua
-- HOT_PROGRESS (DESIGN.md §6): one write, settle or drop of one hot quest's
-- progress hash, agg:{<campaignId>}:<userId>, each a compare-and-set on the
-- hash's own fields. progress.go builds the arguments and documents the
-- fields; a call touches KEYS[1] only, so it lives in one cluster slot.
--
-- The shebang (Redis 7) makes Redis refuse the whole script when it is out
-- of memory, instead of failing at its first write.
--
-- Versions and decision ids are compared as strings, as Go formats them
-- (strconv.FormatInt, uuid.UUID.String): a Lua number is a double, which
-- would round a version past 2^53.
--
-- KEYS[1]    the progress hash
-- ARGV[1]    the operation: 'save', 'settle' or 'drop'
--
-- save:   ARGV[2]  Seen: the version the key must be at ('0': absent)
--         ARGV[3]  PEXPIREAT instant in Unix ms, '0' to PERSIST
--         ARGV[4..12]  values of v, c, w, d, p, bv, bc, bw, bd; an empty
--                  value deletes the field, except c, which is always
--                  set, and bc, which is set whenever bv is
-- settle: ARGV[2]  the pending decision id: p and the base fields are
--                  deleted if p is still it
-- drop:   ARGV[2]  the version: the key is deleted if v is still it
--
-- Returns 1 when it wrote, 0 when the key was not at the expected state
-- (for save, a conflict; for settle and drop, nothing to do).
--
-- Every check comes before the first write, so a refused save leaves the
-- hash exactly as it was.

local key, op = KEYS[1], ARGV[1]

if op == 'save' then
  if (redis.call('HGET', key, 'v') or '0') ~= ARGV[2] then
    return 0
  end
  local fields = {'v', 'c', 'w', 'd', 'p', 'bv', 'bc', 'bw', 'bd'}
  local hasBase = ARGV[9] ~= ''
  local set, del = {}, {}
  for i, f in ipairs(fields) do
    local value = ARGV[i + 3]
    if value ~= '' or f == 'c' or (f == 'bc' and hasBase) then
      set[#set + 1] = f
      set[#set + 1] = value
    else
      del[#del + 1] = f
    end
  end
  redis.call('HSET', key, unpack(set))
  if #del > 0 then
    redis.call('HDEL', key, unpack(del))
  end
  -- An instant already past deletes the key: its campaign has ended.
  if ARGV[3] ~= '0' then
    redis.call('PEXPIREAT', key, ARGV[3])
  else
    redis.call('PERSIST', key)
  end
  return 1
elseif op == 'settle' then
  if redis.call('HGET', key, 'p') ~= ARGV[2] then
    return 0
  end
  redis.call('HDEL', key, 'p', 'bv', 'bc', 'bw', 'bd')
  return 1
elseif op == 'drop' then
  if redis.call('HGET', key, 'v') ~= ARGV[2] then
    return 0
  end
  redis.call('DEL', key)
  return 1
end
return redis.error_reply('ERR HOT_PROGRESS: unknown operation ' .. tostring(op))
