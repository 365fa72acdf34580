/**
 * The Lua script behind RedisLimitStore.consume. Runs atomically on the server, so replicas never race;
 * time comes from `redis.call('TIME')`, so replicas with skewed clocks agree.
 *
 * KEYS: one per limit (all carry the same `{tenant_id}` hash tag: one slot in a Cluster).
 * ARGV: per limit, 6 values: algorithm ('tb' | 'sw'), rate per ms (tb) or window ms (sw), capacity,
 *       cost, min cost (partial grants for fast-mode leases), idle ttl ms; then one value: a token
 *       unique to this call (caller id + sequence), so every window-log member is unique.
 * Returns: per limit, 4 integers: granted, remaining, reset ms, retry-after ms (until min cost is available).
 *
 * Two passes: the first only reads (and trims expired window entries, which changes no decision), the
 * second charges every limit, and runs only when all limits can grant.
 *
 * Window-log members are `<µs as an integer>:<call token>:<unit>`: never built from a Lua number's
 * default format (%.14g, i.e. 100 µs steps) or from the current count, either of which lets two
 * admissions share a member and the second overwrite the first (the window then under-counts).
 */
export const CONSUME_LIMITS_LUA = `
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = now_us / 1000
local n = #KEYS
local call_token = ARGV[n * 6 + 1]
local now_text = string.format('%d', now_us)
local grants = {}
local levels = {}
local counts = {}
local all = true
for i = 1, n do
  local b = (i - 1) * 6
  local algo = ARGV[b + 1]
  local p = tonumber(ARGV[b + 2])
  local cap = tonumber(ARGV[b + 3])
  local cost = tonumber(ARGV[b + 4])
  local min_cost = tonumber(ARGV[b + 5])
  local g = 0
  if algo == 'tb' then
    local h = redis.call('HMGET', KEYS[i], 't', 'ts')
    local tokens = tonumber(h[1])
    local ts = tonumber(h[2])
    if tokens == nil or ts == nil then
      tokens = cap
      ts = now_ms
    end
    local elapsed = now_ms - ts
    if elapsed < 0 then elapsed = 0 end
    tokens = math.min(cap, tokens + elapsed * p)
    if tokens >= cost then g = cost elseif tokens >= min_cost then g = math.floor(tokens) end
    levels[i] = tokens
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now_us - p * 1000)
    local count = redis.call('ZCARD', KEYS[i])
    local avail = cap - count
    if avail >= cost then g = cost elseif avail >= min_cost then g = avail end
    counts[i] = count
  end
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
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    remaining = math.floor(tokens)
    reset = math.ceil((cap - tokens) / p)
    retry = 0
    if grants[i] <= 0 then retry = math.ceil((min_cost - tokens) / p) end
  else
    local count = counts[i]
    if g > 0 then
      for j = 0, g - 1 do
        redis.call('ZADD', KEYS[i], now_us, now_text .. ':' .. call_token .. ':' .. j)
      end
      redis.call('PEXPIRE', KEYS[i], ttl)
      count = count + g
    end
    remaining = cap - count
    reset = 0
    retry = 0
    if count > 0 then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      reset = math.ceil((tonumber(oldest[2]) + p * 1000 - now_us) / 1000)
    end
    if grants[i] <= 0 then
      local index = count + min_cost - cap - 1
      if index >= count then
        retry = p
      else
        local entry = redis.call('ZRANGE', KEYS[i], index, index, 'WITHSCORES')
        retry = math.ceil((tonumber(entry[2]) + p * 1000 - now_us) / 1000)
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
