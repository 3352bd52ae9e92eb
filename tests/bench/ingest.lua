-- wrk script: POST the same batch of events again and again. The events
-- carry no id or idempotency key, so each request stores new events.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VIGIL_KEY")
local f = assert(io.open(os.getenv("VIGIL_BODY"), "r"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  io.write(string.format("requests %d errors_status %d errors_other %d duration_us %d p50_ms %.2f p99_ms %.2f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
