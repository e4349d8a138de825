-- POST a staff console participant search (/staff/participants) for a random NIK of $NIKS (one per
-- line), with the staff session ($COOKIE) and its form token ($CSRF), paced by $DELAY_MS per
-- connection (0: as fast as the server answers). Every search is also appended to the audit log.
local cookie = os.getenv("COOKIE") or ""
local csrf = os.getenv("CSRF") or ""
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local niks = {}
for line in io.lines(os.getenv("NIKS")) do niks[#niks + 1] = line end
wrk.method = "POST"
wrk.headers["Cookie"] = cookie
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept-Encoding"] = "gzip"
request = function()
  local nik = niks[math.random(#niks)]
  local body = "csrf=" .. csrf .. "&kind=nik&value=" .. nik .. "&reason=bench%20search%20165"
  return wrk.format(nil, "/staff/participants", nil, body)
end
delay = function()
  return delay_ms
end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p99_ms=%.2f requests=%d rps=%.0f non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
