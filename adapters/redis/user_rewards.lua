#!lua
-- USER_REWARDS (DESIGN.md §4, the user-aggregation projection): one
-- delivery of one incentive.issued.v1 event, applied to its user's reward
-- aggregates at most once, with the projection's checkpoint written in the
-- same atomic step. user_rewards.go builds the keys and arguments and
-- documents the fields; every key carries the tenant's hash tag, so a call
-- touches one cluster slot.
--
-- The shebang (Redis 7) makes Redis refuse the whole script when it is out
-- of memory, instead of failing at its first write.
--
-- KEYS[1]   the user's aggregates, a hash
-- KEYS[2]   the ids of the user's incentives issued that UTC day, a set
-- KEYS[3]   the tenant's checkpoints, a hash
-- ARGV[1]   the incentive id
-- ARGV[2]   EXPIREAT of KEYS[2], Unix seconds: 8 days past its day
-- ARGV[3]   the least time KEYS[2] lives after this call, in seconds
-- ARGV[4]   the sum field,   s:<TYPE>:<CURRENCY>
-- ARGV[5]   the count field, n:<TYPE>:<CURRENCY>
-- ARGV[6]   the amount, an integer in 1/10,000 of the currency
-- ARGV[7]   the campaign's count field, c:<campaignId>
-- ARGV[8]   issuedAt, Unix ms
-- ARGV[9]   the checkpoint field, <topic>:<partition>
-- ARGV[10]  its value, <kafka offset>:<event-store position>
--
-- Returns 1 when it applied the incentive, 0 when the incentive was in
-- KEYS[2] already (a redelivery): then only the checkpoint is written.
-- Refuses with FENCED, writing nothing, while the checkpoint hash's field
-- fence (a replay's, user_rewards_replay.go) is later than Redis's clock,
-- in Unix ms: the replay is swapping the tenant's keys.
--
-- Integers travel as strings and are added by HINCRBY, in 64 bits: a Lua
-- number is a double, which would round a sum past 2^53. Only issuedAt is
-- compared as a number (Unix ms stay far below 2^53).
--
-- The sum is the first write: HINCRBY refuses to overflow and then nothing
-- has been written (Redis does not roll back a script that fails midway).
-- The counts cannot overflow before 2^63 rewards.

local user, seen, checkpoint = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]

local fence = redis.call('HGET', checkpoint, 'fence')
if fence then
  local now = redis.call('TIME')
  if tonumber(fence) > tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) then
    return redis.error_reply('FENCED ' .. checkpoint .. ' until ' .. fence)
  end
end

local applied = 0
if redis.call('SISMEMBER', seen, id) == 0 then
  local sum = redis.pcall('HINCRBY', user, ARGV[4], ARGV[6])
  if type(sum) == 'table' and sum.err then
    return redis.error_reply('UNPROJECTABLE ' .. user .. ' ' .. ARGV[4] .. ' + ' .. ARGV[6] .. ': ' .. sum.err)
  end
  redis.call('HINCRBY', user, ARGV[5], 1)
  redis.call('HINCRBY', user, ARGV[7], 1)
  local last = redis.call('HGET', user, 'last')
  if not last or tonumber(last) < tonumber(ARGV[8]) then
    redis.call('HSET', user, 'last', ARGV[8])
  end
  redis.call('SADD', seen, id)
  -- An incentive older than its horizon (a consumer group reading the
  -- topic from its start) is still remembered for a while, so a restart
  -- in the middle of that catch-up counts nothing twice. Redis's own clock:
  -- the same for every projector process.
  local expireAt = tonumber(ARGV[2])
  local floor = tonumber(redis.call('TIME')[1]) + tonumber(ARGV[3])
  if expireAt < floor then
    expireAt = floor
  end
  redis.call('EXPIREAT', seen, expireAt)
  applied = 1
end
redis.call('HSET', checkpoint, ARGV[9], ARGV[10])
return applied
