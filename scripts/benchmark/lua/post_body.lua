-- POST the fixed JSON body $BODY to the URL on the command line (Tessera's native
-- /api/v2/get-secret-value; the token travels in the body).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
