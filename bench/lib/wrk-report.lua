-- wrk script: optional fixed per-connection pacing (WRK_DELAY_MS) and a JSON summary on stdout.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

-- Optional: cycle the request over WRK_PATH_VARIANTS distinct URLs (query v=0..N-1), so a cache
-- scenario serves many keys and concurrent requests rarely share one (no coalescing behind one read).
local variants = tonumber(os.getenv("WRK_PATH_VARIANTS") or "0")
if variants > 0 then
  local counter = 0
  function request()
    counter = counter + 1
    local separator = string.find(wrk.path, "?", 1, true) and "&" or "?"
    return wrk.format(nil, wrk.path .. separator .. "v=" .. (counter % variants))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
