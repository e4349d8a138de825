-- GET one portal page ($PAGE) with the browser's cookies ($COOKIE), paced by $DELAY_MS per
-- connection (0: as fast as the server answers). Reports the server's answer times.
local page = os.getenv("PAGE") or "/"
local cookie = os.getenv("COOKIE") or ""
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
wrk.method = "GET"
if #cookie > 0 then wrk.headers["Cookie"] = cookie end
wrk.headers["Accept-Encoding"] = "gzip"
request = function()
  return wrk.format(nil, page)
end
delay = function()
  return delay_ms
end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p99_ms=%.2f requests=%d rps=%.0f non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
