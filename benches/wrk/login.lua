-- POST /v1/accounts/login with the right password from each account's trusted device, walking the
-- NIKs in $NIKS round robin (each account's device is bench-<NIK>): every answer is a new session (200) after one Argon2id verification.
local list = {}
for line in io.lines(os.getenv("NIKS")) do
  if #line > 0 then list[#list + 1] = line end
end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local nik = list[((i - 1) % #list) + 1]
  return wrk.format(nil, "/v1/accounts/login", nil,
    '{"identifier":"' .. nik .. '","password":"Kopi-Tubruk#2026","device":{"id":"bench-' .. nik .. '"}}')
end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p99_ms=%.2f requests=%d rps=%.1f non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
