-- GET <BENCH_PATH>?limit=50, the first page when BENCH_MAX_OFFSET is 0, else
-- GET <BENCH_PATH>?limit=50&offset=<uniform random in [0, BENCH_MAX_OFFSET]>
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local page, max_offset

setup = common.setup
done = common.done

function init(args)
  common.seed(tid)
  page = os.getenv("BENCH_PATH") .. "?limit=50"
  max_offset = tonumber(os.getenv("BENCH_MAX_OFFSET"))
end

function request()
  if max_offset == 0 then
    return wrk.format("GET", page, common.headers)
  end
  return wrk.format("GET", page .. "&offset=" .. math.random(0, max_offset), common.headers)
end
