#!lua
-- CMS_ADD (DESIGN.md §6, issue #5): the count-min sketch of a tenant's items
-- (campaign ids) in one window. It adds each item, returns its estimate in
-- the same call, and lists items whose estimate reaches a threshold in the
-- tenant's hot set. sketch.go builds the keys and arguments and documents
-- them; every key carries the tenant's hash tag, so the script touches one
-- cluster slot. It is self-contained, hashing included, so any Redis client
-- can run it; domain/sketch is the same sketch in Go, cell for cell.
--
-- The shebang (Redis 7) makes Redis refuse the whole script when it is out
-- of memory, instead of failing at its first write. It also lets the script
-- read TIME: Redis 7 replicates a script's effects, not the script.
--
-- KEYS[1]   the window's sketch, cms:{<tenantId>}:<windowTs>: a hash whose
--           field "<row>:<col>" (both 0-based) is a counter, and whose field
--           "shape" is "<depth>x<width>"
-- KEYS[2]   the tenant's hot set, hot:set:{<tenantId>}
-- KEYS[3]   the previous window's sketch, cms:{<tenantId>}:<windowTs - 1>,
--           read only, to cool the hot set (below)
-- ARGV[1]   width w, columns per row
-- ARGV[2]   depth d, rows; row r hashes with Murmur3 seeded with r (0..d-1)
-- ARGV[3]   what each occurrence of an item adds: 1 to count; 0 to estimate
--           only, which writes nothing
-- ARGV[4]   the hot threshold: an item whose estimate reaches it joins the
--           hot set
-- ARGV[5]   the Unix time the sketch expires at (its window's end plus the
--           retention); a time already past deletes it at once
-- ARGV[6]   the hot set's TTL in seconds, renewed by every call that finds an
--           item at or over the threshold
-- ARGV[7]   the Unix time the window ends at
-- ARGV[8..] the items, in order; an item given k times is added k times
--
-- Returns a flat array of two integers per item, in order: its estimate just
-- after its own occurrence was added (the occurrences before it in this call
-- included, those after it not), and 1 if it is in the hot set at that point
-- (after the cooling below, if this call cooled), else 0.
--
-- The hot set holds the items hot in this window or the previous one. An
-- item joins it when an adding call finds its estimate at or over the
-- threshold, in any window. Cooling: the first adding call of a window (its
-- sketch has no "shape" yet), if the window has not ended by Redis's clock,
-- removes every member whose estimate in the previous window's sketch is
-- below this call's threshold: all of them when that sketch is missing
-- (no traffic in it, or expired) or has another shape. A member hot in
-- window w thus stays through w + 1 and leaves at the start of w + 2 unless
-- it was hot in w + 1 too. A call into a window that has ended (a late
-- event's) never cools: the set describes the newest windows, and that
-- window's missing sketch says nothing about them. The set's TTL stays as a
-- safety net for a tenant that goes quiet, whose set no call cools.
--
-- An item's column in row r is Murmur3_x86_32(item bytes, seed r) mod w.
-- The estimate is the smallest of the item's d counters: never below its
-- true count in the window.
--
-- Cost: Redis is single-threaded, so the script's time is every client's.
-- Each redis.call costs about what the command costs: the script reads every
-- cell the call touches with one HMGET, counts in Lua, and writes them back
-- with one HSET, two calls per batch instead of d HINCRBYs per item; the
-- cells a call touches are at most d × w (1,360) however long the batch.
-- Hashing in Lua is the largest part, some 7 µs per distinct item for five
-- seeds on the benchmark machine, so a distinct item is hashed once per call
-- however often it occurs: in campaign traffic a few hot campaigns make up
-- most of a batch. Cooling hashes each member of the hot set once more, once
-- per tenant and window, and reads their cells of the previous window with
-- one HMGET.

-- murmur3 begin
-- MurmurHash3_x86_32 in Lua 5.1. Numbers are doubles, exact up to 2^53, so
-- every 32-bit value is kept as an unsigned integer (0 to 2^32-1) and
-- computed with plain arithmetic wherever it can be; each step can then be
-- checked against the C reference by hand, with no reliance on how the bit
-- library wraps out-of-range arguments (it measured no slower). Only XOR
-- needs Redis's bit library (LuaBitOp): its result is signed, and % 2^32
-- makes it unsigned again (Lua's % takes the sign of the divisor).
--
-- A product of two 32-bit values would need 64 bits, so a * c mod 2^32 is
-- built from the 16-bit halves of a: alo * c + ((ahi * clo) mod 2^16) * 2^16,
-- where alo * c < 2^48 and the sum < 2^49, all exact. A left rotation by r is
-- (a mod 2^(32-r)) * 2^r + floor(a / 2^(32-r)); a right shift by r is
-- (a - a mod 2^r) / 2^r.
local bxor = bit.bxor
local byte = string.byte
local M32 = 4294967296

-- murmur3(s, seeds) returns the hash of the bytes of s for each seed of the
-- list, as unsigned integers. A data block's mixing does not depend on the
-- seed, so it is done once for all of them: the sketch hashes every item
-- with d seeds.
local function murmur3(s, seeds)
  local n = #s
  local nblocks = n - n % 4
  local ks, m = {}, 0
  for i = 1, nblocks, 4 do
    local b1, b2, b3, b4 = byte(s, i, i + 3)
    -- k = block * 0xcc9e2d51; k = rotl(k, 15); k = k * 0x1b873593
    local k = ((b1 + b2 * 256) * 0xcc9e2d51 + ((b3 + b4 * 256) * 0x2d51) % 65536 * 65536) % M32
    local lo = k % 131072
    k = lo * 32768 + (k - lo) / 131072
    lo = k % 65536
    m = m + 1
    ks[m] = (lo * 0x1b873593 + ((k - lo) / 65536 * 0x3593) % 65536 * 65536) % M32
  end
  local tail
  if nblocks < n then
    local b1, b2, b3 = byte(s, nblocks + 1, n)
    local k = ((b1 + (b2 or 0) * 256) * 0xcc9e2d51 + ((b3 or 0) * 0x2d51) % 65536 * 65536) % M32
    local lo = k % 131072
    k = lo * 32768 + (k - lo) / 131072
    lo = k % 65536
    tail = (lo * 0x1b873593 + ((k - lo) / 65536 * 0x3593) % 65536 * 65536) % M32
  end
  local out = {}
  for j = 1, #seeds do
    local h = seeds[j]
    for i = 1, m do
      -- h = h ^ k; h = rotl(h, 13); h = h * 5 + 0xe6546b64
      h = bxor(h, ks[i]) % M32
      local lo = h % 524288
      h = ((lo * 8192 + (h - lo) / 524288) * 5 + 0xe6546b64) % M32
    end
    if tail then
      h = bxor(h, tail) % M32
    end
    -- h = h ^ len, then fmix32
    h = bxor(h, n) % M32
    h = bxor(h, (h - h % 65536) / 65536) % M32
    local lo = h % 65536
    h = (lo * 0x85ebca6b + ((h - lo) / 65536 * 0xca6b) % 65536 * 65536) % M32
    h = bxor(h, (h - h % 8192) / 8192) % M32
    lo = h % 65536
    h = (lo * 0xc2b2ae35 + ((h - lo) / 65536 * 0xae35) % 65536 * 65536) % M32
    out[j] = bxor(h, (h - h % 65536) / 65536) % M32
  end
  return out
end
-- murmur3 end

-- Commands take their arguments on Lua's C stack, which holds about 8,000
-- values: long argument lists go in chunks.
local CHUNK = 1000

local function each_chunk(list, first, fn)
  for i = first, #list, CHUNK do
    fn(i, math.min(i + CHUNK - 1, #list))
  end
end

local width = tonumber(ARGV[1])
local depth = tonumber(ARGV[2])
local by = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local FIRST = 8 -- ARGV index of the first item
local shape = depth .. 'x' .. width

local seeds, prefix = {}, {}
for r = 1, depth do
  seeds[r] = r - 1
  prefix[r] = (r - 1) .. ':'
end

-- The cells of each distinct item, and every cell the call touches. A
-- cell's field name is made once per call: turning a number into a string
-- costs more than hashing a block.
local cells_of = {}
local distinct = {}
local value = {}
local fields = {'shape'}
local name_of = {}
for i = FIRST, #ARGV do
  local item = ARGV[i]
  if not cells_of[item] then
    local hashes = murmur3(item, seeds)
    local cells = {}
    for r = 1, depth do
      local col = hashes[r] % width
      local cell = (r - 1) * width + col
      local f = name_of[cell]
      if not f then
        f = prefix[r] .. col
        name_of[cell] = f
        value[f] = 0
        fields[#fields + 1] = f
      end
      cells[r] = f
    end
    cells_of[item] = cells
    distinct[#distinct + 1] = item
  end
end

local got = {}
each_chunk(fields, 1, function(i, j)
  local part = redis.call('HMGET', KEYS[1], unpack(fields, i, j))
  for k = 1, #part do
    got[i + k - 1] = part[k]
  end
end)
-- A sketch of another shape places items in other cells: mixing the two
-- would under-estimate, so a call with the wrong shape changes nothing.
if got[1] and got[1] ~= shape then
  return redis.error_reply('ERR count-min sketch ' .. KEYS[1] .. ' has shape ' .. got[1] ..
    ' (depth x width), the call ' .. shape)
end
for k = 2, #fields do
  if got[k] then
    value[fields[k]] = tonumber(got[k])
  end
end

-- Cooling (see the header): only on the first adding call of a window
-- that has not ended, before membership is read.
if by > 0 and not got[1] and tonumber(redis.call('TIME')[1]) < tonumber(ARGV[7]) then
  local members = redis.call('SMEMBERS', KEYS[2])
  local cold = members
  if #members > 0 and redis.call('HGET', KEYS[3], 'shape') == shape then
    -- The same shape places an item in the same cells in both windows.
    local prev_fields, prev_index, member_cells = {}, {}, {}
    for m = 1, #members do
      local cells = cells_of[members[m]]
      if not cells then
        local hashes = murmur3(members[m], seeds)
        cells = {}
        for r = 1, depth do
          cells[r] = prefix[r] .. (hashes[r] % width)
        end
      end
      member_cells[m] = cells
      for r = 1, depth do
        local f = cells[r]
        if not prev_index[f] then
          prev_fields[#prev_fields + 1] = f
          prev_index[f] = #prev_fields
        end
      end
    end
    local prev = {}
    each_chunk(prev_fields, 1, function(i, j)
      local part = redis.call('HMGET', KEYS[3], unpack(prev_fields, i, j))
      for k = 1, #part do
        prev[i + k - 1] = tonumber(part[k]) or 0
      end
    end)
    cold = {}
    for m = 1, #members do
      local est
      for r = 1, depth do
        local v = prev[prev_index[member_cells[m][r]]]
        if not est or v < est then
          est = v
        end
      end
      if est < threshold then
        cold[#cold + 1] = members[m]
      end
    end
  end
  each_chunk(cold, 1, function(i, j)
    redis.call('SREM', KEYS[2], unpack(cold, i, j))
  end)
end

local listed = {}
each_chunk(distinct, 1, function(i, j)
  local part = redis.call('SMISMEMBER', KEYS[2], unpack(distinct, i, j))
  for k = 1, #part do
    listed[distinct[i + k - 1]] = part[k] == 1
  end
end)

local reply = {}
local newly_hot = {}
local any_hot = false
for i = FIRST, #ARGV do
  local item = ARGV[i]
  local cells = cells_of[item]
  local est
  for r = 1, depth do
    local v = value[cells[r]] + by
    value[cells[r]] = v
    if not est or v < est then
      est = v
    end
  end
  if by > 0 and est >= threshold then
    any_hot = true
    if not listed[item] then
      listed[item] = true
      newly_hot[#newly_hot + 1] = item
    end
  end
  reply[#reply + 1] = est
  reply[#reply + 1] = listed[item] and 1 or 0
end

if by > 0 then
  -- Counters go as Lua numbers, which Redis writes with 17 significant
  -- digits: every count below 2^53 is stored as its exact integer, no
  -- exponent (string.format would cost a Lua call per counter).
  local pairs_ = {'shape', shape}
  for k = 2, #fields do
    local f = fields[k]
    pairs_[2 * k - 1] = f
    pairs_[2 * k] = value[f]
  end
  each_chunk(pairs_, 1, function(i, j)
    redis.call('HSET', KEYS[1], unpack(pairs_, i, j))
  end)
  redis.call('EXPIREAT', KEYS[1], ARGV[5])
  each_chunk(newly_hot, 1, function(i, j)
    redis.call('SADD', KEYS[2], unpack(newly_hot, i, j))
  end)
  if any_hot then
    redis.call('EXPIRE', KEYS[2], ARGV[6])
  end
end

return reply
