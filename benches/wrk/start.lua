-- POST /v1/verifications with a fresh random mobile number on an allocated prefix each time, so the
-- per-destination limits do not refuse the load (the prefix ceiling still counts every request).
local prefixes = { "0811", "0812", "0813", "0821", "0822", "0852", "0857", "0858", "0878", "0896", "0881", "0838" }
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local to = prefixes[math.random(#prefixes)] .. string.format("%08d", math.random(0, 99999999))
  local body = '{"purpose":"registration","channel":"sms","to":"' .. to .. '"}'
  return wrk.format(nil, "/v1/verifications", nil, body)
end
local statuses = {}
response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p99_ms=%.2f requests=%d rps=%.0f errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
