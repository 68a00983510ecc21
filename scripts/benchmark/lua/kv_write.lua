-- KV v2 write to a new path per request: POST <KV_WRITE_PREFIX><thread>-<counter> {"data":{"v":...}}.
-- KV_WRITE_PREFIX holds a per-run part, so every run writes fresh secrets.
local prefix = os.getenv("KV_WRITE_PREFIX")
local hdrs = { ["X-Vault-Token"] = os.getenv("VAULT_TOKEN"), ["Content-Type"] = "application/json" }
local threads = 0
local counter = 0

-- setup() runs in the main Lua state; thread:set() gives each thread its own "tid".
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  counter = counter + 1
  local body = string.format('{"data":{"v":"bench-value-%d-%d-0123456789abcdef"}}', tid, counter)
  return wrk.format("POST", prefix .. tid .. "-" .. counter, hdrs, body)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
