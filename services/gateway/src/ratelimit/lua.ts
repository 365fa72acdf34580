/**
 * The Lua script behind RedisLimitStore.consume. Runs atomically on the server, so replicas never race;
 * time comes from `redis.call('TIME')`, so replicas with skewed clocks agree.
 *
 * KEYS: one per limit (all carry the same `{tenant_id}` hash tag: one slot in a Cluster).
 * ARGV: per limit, 6 values: algorithm ('tb' | 'sw'), rate per ms (tb) or window ms (sw), capacity,
 *       cost, min cost (partial grants for fast-mode leases), idle ttl ms (a token bucket's key lives
 *       at most that, and only until its bucket is full again plus a second).
 * Returns: per limit, 4 integers: granted, remaining, reset ms, retry-after ms (until min cost is available).
 *
 * Two passes: the first only reads, the second charges every limit, and runs only when all limits can
 * grant. Every key is one small hash, whatever the limit and the traffic:
 * - token bucket: t (tokens), ts (ms of the last charge);
 * - sliding window (the sliding-window counter, see limit-store.ts): w (index of the aligned window of
 *   `window ms` the counts belong to, time / window), c (admitted in window w), p (admitted in w - 1).
 *   A hash whose w is older than the current window's predecessor counts as empty; one whose w is NEWER
 *   than the current window (a clock that stepped back) keeps its counts, and the call is taken to fall
 *   at the start of window w (elapsed 0), so w is never replaced by an older index.
 * Commands per call: TIME, then per limit HMGET, and HSET + PEXPIRE for each limit charged.
 */
export const CONSUME_LIMITS_LUA = `
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = now_us / 1000
local n = #KEYS
local grants = {}
local levels = {}
local windows = {}
local currents = {}
local previouses = {}
local elapsed = {}
local all = true
for i = 1, n do
  local b = (i - 1) * 6
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local cost = tonumber(ARGV[b + 4])
  local min_cost = tonumber(ARGV[b + 5])
  local avail
  if algo == 'tb' then
    local h = redis.call('HMGET', KEYS[i], 't', 'ts')
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
    local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local stored = tonumber(h[1])
    local cur = tonumber(h[2]) or 0
    local prev = tonumber(h[3]) or 0
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
local out = {}
for i = 1, n do
  local b = (i - 1) * 6
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local min_cost = tonumber(ARGV[b + 5])
  local ttl = tonumber(ARGV[b + 6])
  local g = 0
  if all then g = grants[i] end
  local remaining, reset, retry
  if algo == 'tb' then
    local tokens = levels[i] - g
    if g > 0 then
      redis.call('HSET', KEYS[i], 't', tostring(tokens), 'ts', tostring(now_ms))
      -- Kept until full again (a missing key reads as full), not a whole refill after each charge.
      redis.call('PEXPIRE', KEYS[i], math.min(ttl, math.ceil((cap - tokens) / p) + 1000))
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
      redis.call('HSET', KEYS[i], 'w', string.format('%d', windows[i]), 'c', string.format('%d', cur),
        'p', string.format('%d', prev))
      redis.call('PEXPIRE', KEYS[i], ttl)
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
end
return out
`;
