-- POST <BENCH_PATH> with a unique Customer_Create body per request: the template
-- BENCH_TEMPLATE with @@NAME@@ made unique and @@ORG_ID@@ taken in turn from
-- BENCH_ORG_IDS (the BENCH_THREADS threads take disjoint slices; BENCH_ORG_OFFSET
-- shifts the start so that successive runs use organizations not engaged yet).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local path, template, orgs, counter, stride, start, nonce
local headers = {}

setup = common.setup
done = common.done

function init(args)
  path = os.getenv("BENCH_PATH")
  local file = assert(io.open(os.getenv("BENCH_TEMPLATE"), "r"))
  template = file:read("*a")
  file:close()
  orgs = common.read_lines(os.getenv("BENCH_ORG_IDS"))
  stride = tonumber(os.getenv("BENCH_THREADS"))
  start = tonumber(os.getenv("BENCH_ORG_OFFSET"))
  nonce = os.getenv("BENCH_NONCE")
  counter = 0
  for k, v in pairs(common.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
end

function request()
  local n = start + counter * stride + (tid - 1)
  counter = counter + 1
  local org = orgs[(n % #orgs) + 1]
  local name = "Bench Customer " .. nonce .. "-" .. tid .. "-" .. counter
  local body = template:gsub("@@NAME@@", name):gsub("@@ORG_ID@@", org)
  return wrk.format("POST", path, headers, body)
end
