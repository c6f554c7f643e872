-- Shared by the wrk scripts of bench/run_customer_api.py.
-- Environment: BENCH_TOKEN (bearer token). done() prints one line
-- "BENCH_JSON {...}" with throughput and the latency distribution (microseconds).
local M = {}

M.token = os.getenv("BENCH_TOKEN") or ""
M.headers = { ["Authorization"] = "Bearer " .. M.token, ["Accept"] = "application/json" }

function M.read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  if #lines == 0 then error("no lines in " .. path) end
  return lines
end

-- Runs in the main Lua state once per wrk thread, before init(): number the threads.
local count = 0
function M.setup(thread)
  count = count + 1
  thread:set("tid", count)
end

-- A per-thread random seed (each thread has its own Lua state).
function M.seed(tid)
  math.randomseed(os.time() * 7919 + (tid or 0) * 104729 + math.floor(os.clock() * 1e6))
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

return M
