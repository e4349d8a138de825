-- POST /v1/verifications/{id}/check with the right code, walking through the "id code" pairs in
-- $PAIRS once; a thread that runs out starts again (those checks are replays and answer 409).
local pairs_file = os.getenv("PAIRS")
local list = {}
for line in io.lines(pairs_file) do
  local id, code = line:match("^(%S+) (%d+)$")
  if id then list[#list + 1] = { id, code } end
end
local threads = {}
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("offset", counter)
  thread:set("stride", tonumber(os.getenv("THREADS") or "1"))
end
local i = nil
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if i == nil then i = offset end
  local pair = list[((i - 1) % #list) + 1]
  i = i + stride
  return wrk.format(nil, "/v1/verifications/" .. pair[1] .. "/check", nil, '{"code":"' .. pair[2] .. '"}')
end
done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p99_ms=%.2f requests=%d rps=%.0f non2xx=%d pairs=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests,
    summary.requests / (summary.duration / 1e6), summary.errors.status, #list))
end
