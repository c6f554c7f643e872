-- GET <BENCH_PATH><random id from BENCH_IDS_FILE>
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local ids, path

setup = common.setup
done = common.done

function init(args)
  common.seed(tid)
  ids = common.read_lines(os.getenv("BENCH_IDS_FILE"))
  path = os.getenv("BENCH_PATH")
end

function request()
  return wrk.format("GET", path .. ids[math.random(#ids)], common.headers)
end
