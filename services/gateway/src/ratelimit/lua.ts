/**
 * The Lua script behind RedisLimitStore.consume. Runs atomically on the server, so replicas never race;
 * time comes from `redis.call('TIME')`, so replicas with skewed clocks agree.
 *
 * KEYS: per limit its key, then per limit its overflow key (the key itself for a limit not per caller),
 *       then the tenant's key ledger; all carry the same `{tenant_id}` hash tag: one slot in a Cluster.
 * ARGV: per limit, 7 values: algorithm ('tb' | 'sw'), rate per ms (tb) or window ms (sw), capacity,
 *       cost, min cost (partial grants for fast-mode leases), idle ttl ms (a token bucket's key lives
 *       at most that, and only until its bucket is full again plus a second), and '1' when the key is a
 *       caller's (counted in the ledger); then the most caller keys the tenant may have.
 * Returns: per limit, 6 integers: granted, remaining, reset ms, retry-after ms (until min cost is available),
 *          1 when the caller was counted on the limit's overflow key (the tenant's ledger is full), else 0,
 *          and what REFUND_LIMITS_LUA needs to give a charge back: the index of the aligned window a
 *          sliding window counted in; for a token bucket, when (Redis time, µs) it would be full again
 *          as the call left it.
 *
 * Two passes: the first only reads, the second charges every limit, and runs only when all limits can
 * grant. Every key is one small hash, whatever the limit and the traffic:
 * - token bucket: t (tokens), ts (ms of the last charge);
 * - sliding window (the sliding-window counter, see limit-store.ts): w (index of the aligned window of
 *   `window ms` the counts belong to, time / window), c (admitted in window w), p (admitted in w - 1)
 *   and l (the window's length in ms). A hash of another length (the limit's window changed, so its w
 *   indexes windows of that length) counts as empty, as does one whose w is older than the current
 *   window's predecessor (a hash without l is read as of the current length); one whose w is NEWER
 *   than the current window (a clock that stepped back) keeps its counts, and the call is taken to fall
 *   at the start of window w (elapsed 0), so w is never replaced by an older index.
 * - a caller's key also holds e, the ledger epoch it is counted in.
 *
 * The ledger bounds the caller keys one tenant has in the shared Redis (its clients may present a fresh
 * identity per request, and a key may live two days): a hash counting the tenant's caller keys by the
 * LEDGER_EPOCH_MS epoch in which each expires (field <epoch>), with n (their total), lo (the oldest
 * epoch not yet dropped) and hi (the newest). A key moves to a later epoch when a charge extends it;
 * epochs that have ended are dropped (at most 64 per call, a lagging ledger only over-counts). A caller
 * with no key while n has reached the bound is counted on the limit's overflow key, shared by every
 * such caller of that limit. Keys evicted or expired early are over-counted until their epoch ends.
 * Commands per call: TIME, then per limit HMGET, and HSET + PEXPIRE for each limit charged; the ledger is
 * read only for a caller without a key, and written when a caller's key is created or moves epoch.
 */

/** The ledger counts caller keys by the 10-second epoch in which each expires (see above). */
export const LEDGER_EPOCH_MS = 10_000;

/** CONSUME_LIMITS_LUA with a ledger of epochs of `epochMs`. */
export const consumeLimitsLua = (epochMs: number): string => `
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = now_us / 1000
local n = (#KEYS - 1) / 2
local ledger = KEYS[2 * n + 1]
local max_keys = tonumber(ARGV[7 * n + 1])
local epoch_ms = ${epochMs}
local now_epoch = math.floor(now_ms / epoch_ms)
local keys = {}
local tracked = {}
local overflowed = {}
local epochs = {}
local grants = {}
local levels = {}
local windows = {}
local currents = {}
local previouses = {}
local elapsed = {}
local all = true
-- The ledger's count once its ended epochs are dropped, read on first need.
local counted = nil
local ledger_lo = nil
local ledger_hi = nil
local reserved = 0
local function read_ledger()
  if counted ~= nil then return end
  local l = redis.call('HMGET', ledger, 'n', 'lo', 'hi')
  counted = tonumber(l[1]) or 0
  ledger_lo = tonumber(l[2]) or now_epoch
  ledger_hi = tonumber(l[3]) or (now_epoch - 1)
  if ledger_hi < now_epoch then
    -- Every key it counted has expired (or there is none yet).
    if l[1] then redis.call('DEL', ledger) end
    counted = 0
    ledger_lo = now_epoch
    ledger_hi = now_epoch - 1
    return
  end
  local steps = 0
  local first = ledger_lo
  while ledger_lo < now_epoch and steps < 64 do
    local ended = tonumber(redis.call('HGET', ledger, ledger_lo))
    if ended then
      counted = counted - ended
      redis.call('HDEL', ledger, ledger_lo)
    end
    ledger_lo = ledger_lo + 1
    steps = steps + 1
  end
  if counted < 0 then counted = 0 end
  if ledger_lo ~= first then redis.call('HSET', ledger, 'n', counted, 'lo', ledger_lo) end
end
local function read_key(key, algo)
  if algo == 'tb' then return redis.call('HMGET', key, 't', 'ts', 'e') end
  return redis.call('HMGET', key, 'w', 'c', 'p', 'e', 'l')
end
for i = 1, n do
  local b = (i - 1) * 7
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local cost = tonumber(ARGV[b + 4])
  local min_cost = tonumber(ARGV[b + 5])
  keys[i] = KEYS[i]
  tracked[i] = ARGV[b + 7] == '1'
  local h = read_key(keys[i], algo)
  if tracked[i] and h[1] == false then
    read_ledger()
    if counted + reserved < max_keys then
      reserved = reserved + 1
    else
      keys[i] = KEYS[n + i]
      tracked[i] = false
      overflowed[i] = true
      h = read_key(keys[i], algo)
    end
  end
  if tracked[i] then
    epochs[i] = tonumber(h[algo == 'tb' and 3 or 4])
  end
  local avail
  if algo == 'tb' then
    local tokens = tonumber(h[1])
    local ts = tonumber(h[2])
    if tokens == nil or ts == nil then
      tokens = cap
      ts = now_ms
    end
    local since = now_ms - ts
    if since < 0 then since = 0 end
    tokens = math.min(cap, tokens + since * p)
    levels[i] = tokens
    avail = tokens
  else
    local w_us = p * 1000
    local w = math.floor(now_us / w_us)
    local stored = tonumber(h[1])
    local cur = tonumber(h[2]) or 0
    local prev = tonumber(h[3]) or 0
    local length = tonumber(h[5])
    -- Counts of windows of another length (the limit's window changed): w is no index of this length.
    if length ~= nil and length ~= p then stored = nil end
    if stored ~= nil and stored > w then
      -- Written by a master whose clock was ahead (before a failover, an NTP step back): its counts
      -- stand, now is taken as the start of its window, and it is never written over by an older one.
      w = stored
    elseif stored == w - 1 then
      prev = cur
      cur = 0
    elseif stored ~= w then
      prev = 0
      cur = 0
    end
    local e = math.max(0, now_us - w * w_us)
    local estimate = prev * (1 - e / w_us) + cur
    windows[i] = w
    currents[i] = cur
    previouses[i] = prev
    elapsed[i] = e
    levels[i] = estimate
    avail = cap - estimate
  end
  local g = 0
  if avail >= cost then g = cost elseif avail >= min_cost then g = math.floor(avail) end
  grants[i] = g
  if g <= 0 then all = false end
end
-- Counts a charged caller key in the epoch it now expires in (moving it there from an earlier one).
local function count_key(i, ttl_ms)
  local epoch = math.floor((now_ms + ttl_ms) / epoch_ms)
  local before = epochs[i]
  if before ~= nil and before >= epoch then return before end
  read_ledger()
  local new = true
  if before ~= nil then
    local left = redis.call('HINCRBY', ledger, before, -1)
    if left <= 0 then redis.call('HDEL', ledger, before) end
    -- Its epoch had been dropped (or the ledger lost): it is counted again below.
    new = left < 0
  end
  redis.call('HINCRBY', ledger, epoch, 1)
  if new then
    counted = counted + 1
    redis.call('HSET', ledger, 'n', counted)
  end
  if epoch > ledger_hi then
    ledger_hi = epoch
    redis.call('HSET', ledger, 'hi', epoch, 'lo', ledger_lo)
    redis.call('PEXPIRE', ledger, (epoch + 1) * epoch_ms - math.floor(now_ms))
  end
  return epoch
end
local out = {}
for i = 1, n do
  local b = (i - 1) * 7
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local min_cost = tonumber(ARGV[b + 5])
  local ttl = tonumber(ARGV[b + 6])
  local key = keys[i]
  local g = 0
  if all then g = grants[i] end
  local remaining, reset, retry
  local anchor = windows[i]
  if algo == 'tb' then
    local tokens = levels[i] - g
    -- When the bucket, as this call leaves it, is full again (microseconds; at most ~30 years on).
    anchor = now_us + math.floor(math.min((cap - tokens) / p * 1000, 1e15))
    if g > 0 then
      -- Kept until full again (a missing key reads as full), not a whole refill after each charge.
      local keep = math.min(ttl, math.ceil((cap - tokens) / p) + 1000)
      if tracked[i] then
        redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(now_ms), 'e', count_key(i, keep))
      else
        redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(now_ms))
      end
      redis.call('PEXPIRE', key, keep)
    end
    remaining = math.floor(tokens)
    reset = math.ceil((cap - tokens) / p)
    retry = 0
    if grants[i] <= 0 then retry = math.ceil((min_cost - tokens) / p) end
  else
    local w_us = p * 1000
    local cur = currents[i] + g
    local prev = previouses[i]
    local estimate = levels[i] + g
    if g > 0 then
      local w, c, pv = string.format('%d', windows[i]), string.format('%d', cur), string.format('%d', prev)
      local l = string.format('%d', p)
      if tracked[i] then
        redis.call('HSET', key, 'w', w, 'c', c, 'p', pv, 'l', l, 'e', count_key(i, ttl))
      else
        redis.call('HSET', key, 'w', w, 'c', c, 'p', pv, 'l', l)
      end
      redis.call('PEXPIRE', key, ttl)
    end
    remaining = math.max(0, math.floor(cap - estimate))
    local left = w_us - elapsed[i]
    reset = 0
    if cur > 0 then reset = math.ceil((left + w_us) / 1000) elseif prev > 0 then reset = math.ceil(left / 1000) end
    retry = 0
    if grants[i] <= 0 then
      local target = cap - min_cost
      if target < 0 then
        retry = p
      elseif cur > target then
        retry = math.max(1, math.ceil((left + (1 - target / cur) * w_us) / 1000))
      elseif prev > 0 then
        retry = math.max(1, math.ceil(((1 - (target - cur) / prev) * w_us - elapsed[i]) / 1000))
      else
        retry = 1
      end
    end
  end
  out[#out + 1] = g
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
  out[#out + 1] = overflowed[i] and 1 or 0
  out[#out + 1] = anchor
end
return out
`;

export const CONSUME_LIMITS_LUA = consumeLimitsLua(LEDGER_EPOCH_MS);

/**
 * Gives back units a CONSUME_LIMITS_LUA call charged, when its answer came after the replica had
 * decided without it (see RedisLimitStore). Needs no clock, so it may run any time after the charge.
 *
 * KEYS: per limit the key the charge went to (the overflow key when the caller was counted there).
 * ARGV: per limit, 5 values: algorithm ('tb' | 'sw'), rate per ms or window ms, capacity, units to give
 *       back, and the charge's last reply field: when the bucket would be full again as the charge left
 *       it (tb, µs), or the window index the charge counted in (sw).
 *
 * - token bucket: t += units, at most capacity (ts kept: the refill since is the same either way), and
 *   at most what the charge still costs: refill the bucket lost at its capacity meanwhile erased part
 *   of it. That is bounded by the room the bucket had at its last charge (ts) had it refilled from
 *   this one's level alone: (full-again time - ts) × rate (all of the units when none came since). A
 *   missing key reads as full: nothing to give back, and nothing is created.
 * - sliding window: units are taken off the count of the window charged: c while it is still the
 *   current one, p once the next has begun; a key of another window length or of a later window
 *   keeps its counts (the charge has left the estimate), as does a missing key.
 * Expiries are left as they are: a key with more room left is never needed for longer.
 */
export const REFUND_LIMITS_LUA = `
for i = 1, #KEYS do
  local b = (i - 1) * 5
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local units = tonumber(ARGV[b + 4])
  -- tb: when the bucket would be full again as the charge left it (us); sw: the window it counted in.
  local anchor = tonumber(ARGV[b + 5])
  local key = KEYS[i]
  if algo == 'tb' then
    local h = redis.call('HMGET', key, 't', 'ts')
    local t = tonumber(h[1])
    local ts = tonumber(h[2])
    if t ~= nil and ts ~= nil then
      local back = math.min(units, (anchor / 1000 - ts) * p)
      if back > 0 then redis.call('HSET', key, 't', tostring(math.min(cap, t + back))) end
    end
  else
    local h = redis.call('HMGET', key, 'w', 'c', 'p', 'l')
    local w = tonumber(h[1])
    local l = tonumber(h[4])
    if w ~= nil and (l == nil or l == p) then
      if w == anchor then
        redis.call('HSET', key, 'c', string.format('%d', math.max(0, (tonumber(h[2]) or 0) - units)))
      elseif w == anchor + 1 then
        redis.call('HSET', key, 'p', string.format('%d', math.max(0, (tonumber(h[3]) or 0) - units)))
      end
    end
  end
end
return 0
`;
