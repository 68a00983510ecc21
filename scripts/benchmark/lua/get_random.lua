-- GET a random one of N secrets: <KV_PREFIX><i>, i uniform in [0, KV_N), with X-Vault-Token.
local prefix = os.getenv("KV_PREFIX")
local n = tonumber(os.getenv("KV_N"))
local hdrs = { ["X-Vault-Token"] = os.getenv("VAULT_TOKEN") }

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + (tid or 0))
end

function request()
  return wrk.format("GET", prefix .. math.random(0, n - 1), hdrs)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
