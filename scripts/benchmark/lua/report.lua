-- Shared wrk summary: prints one "WRK_JSON {...}" line (latencies in microseconds) for the harness.
-- The other scripts load it with dofile(); errors.status counts responses with a status >= 400.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
