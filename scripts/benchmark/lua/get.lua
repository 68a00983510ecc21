-- GET the URL given on the wrk command line with X-Vault-Token from $VAULT_TOKEN
-- (KV v2 read of one secret, database/creds/<role>, and the bare-HTTP server).
wrk.method = "GET"
wrk.headers["X-Vault-Token"] = os.getenv("VAULT_TOKEN") or ""
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
