#!/usr/bin/env bash
# Durable ingest into PostgreSQL over loopback HTTP: `vigil serve` (release
# build) takes batches of events from wrk; each request is answered after
# its events and their audit entries are committed. Prints events/s, how
# many events the evaluator worked while ingest ran, then how fast it works
# off what is left once ingest stops.
#
#   tests/bench/ingest.sh [BATCH] [CONNECTIONS] [SECONDS]
#
# Needs wrk (Debian: apt-get install wrk), psql and PostgreSQL at
# 127.0.0.1:5432 (trust auth); creates and drops the database vigil_bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCH=${1:-100}
CONNECTIONS=${2:-32}
SECONDS_=${3:-20}
PORT=${VIGIL_BENCH_PORT:-18080}
PG=postgres://postgres@127.0.0.1:5432
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target}"

cargo build --release -p vigil-host --quiet
VIGIL="$CARGO_TARGET_DIR/release/vigil"
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS vigil_bench" -c "CREATE DATABASE vigil_bench"
export VIGIL_DATABASE_URL="$PG/vigil_bench"
export VIGIL_KEY=$("$VIGIL" keys create --role operator --label bench)
"$VIGIL" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK" ${VIGIL_BENCH_PLUGINS:+--plugins "$VIGIL_BENCH_PLUGINS"} 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

# 100 accounts; each batch spreads its events over them.
for n in $(seq 0 99); do
  curl -sf -X PUT "http://127.0.0.1:$PORT/api/v1/customers/acct-$n" \
    -H "Authorization: Bearer $VIGIL_KEY" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Account $n\",\"tier\":\"mid-market\",\"industry\":\"technology\",\"licensed_seats\":100}" >/dev/null
done
python3 - "$BATCH" > "$WORK/body.json" <<'PY'
import json, sys
batch = int(sys.argv[1])
print(json.dumps([{"account_id": f"acct-{i % 100}", "kind": "usage.daily",
                   "occurred_at": "2026-06-01T10:00:00Z",
                   "payload": {"active_users": 40 + i % 50, "logins": 3 + i % 7}} for i in range(batch)]))
PY
export VIGIL_BODY="$WORK/body.json"

# CPU seconds (user + system) used so far by the server, by PostgreSQL's
# processes and by everything: where the two cores went during the run.
cpu() {
  python3 - "$SERVER" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def secs(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return 0.0
pg = sum(secs(p) for p in os.listdir("/proc") if p.isdigit()
         and open(f"/proc/{p}/comm").read().strip() == "postgres")
cpu = list(map(int, open("/proc/stat").readline().split()[1:9]))
total = sum(cpu[0:3]) / tick
steal = cpu[7] / tick
print(f"{secs(sys.argv[1]):.2f} {pg:.2f} {total:.2f} {steal:.2f}")
PY
}
read -r VIGIL_CPU0 PG_CPU0 ALL_CPU0 STEAL0 < <(cpu)
RESULT=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" -s tests/bench/ingest.lua "http://127.0.0.1:$PORT/api/v1/events" | grep '^requests')
read -r _ REQUESTS _ STATUS_ERRORS _ OTHER_ERRORS _ DURATION_US _ P50 _ P99 <<<"$RESULT"
read -r VIGIL_CPU1 PG_CPU1 ALL_CPU1 STEAL1 < <(cpu)
# One statement, one snapshot: requests still in flight keep committing.
IFS='|' read -r STORED AUDITED BACKLOG < <(psql "$VIGIL_DATABASE_URL" -tAc \
  "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM audit_log WHERE action = 'event.ingest'),
          (SELECT count(*) FROM events e JOIN partitions p ON p.part = e.part WHERE e.seq > p.evaluated_seq)")
python3 - <<PY
requests, batch, us = $REQUESTS, $BATCH, $DURATION_US
# Only a 2xx answer acknowledges its events; a refused request's do not
# count.
acked = (requests - $STATUS_ERRORS) * batch
print(f"batch {batch} events/request, {$CONNECTIONS} connections, {us/1e6:.1f} s, {$(nproc)} cores")
print(f"requests answered 202: {requests - $STATUS_ERRORS} (non-2xx: $STATUS_ERRORS, socket errors: $OTHER_ERRORS)")
print(f"events acknowledged: {acked}; stored: $STORED; ingest audit entries: $AUDITED")
print(f"durable ingest: {acked / (us / 1e6):,.0f} events/s; request latency p50 $P50 ms, p99 $P99 ms")
print(f"not yet evaluated at the end: $BACKLOG events")
# The evaluator runs beside ingest on the same cores and writes to the same
# database (the run starts with no events), so the CPU seconds printed
# next are spent on this much evaluation as well as on ingest.
print(f"evaluated while ingest ran: {$STORED - $BACKLOG} events ({($STORED - $BACKLOG) / (us / 1e6):,.0f} events/s)")
vigil, pg, busy = $VIGIL_CPU1 - $VIGIL_CPU0, $PG_CPU1 - $PG_CPU0, $ALL_CPU1 - $ALL_CPU0
print(f"CPU seconds over the run: vigil {vigil:.1f}, PostgreSQL {pg:.1f}, everything {busy:.1f} (wrk and the rest {busy - vigil - pg:.1f}) of {$(nproc) * us / 1e6:.1f}; taken by the hypervisor (steal) {$STEAL1 - $STEAL0:.1f}")
PY
# The evaluator alone: how long the backlog takes to work off once ingest
# stops (up to 10 minutes).
backlog() {
  psql "$VIGIL_DATABASE_URL" -tAc "SELECT count(*) FROM events e JOIN partitions p ON p.part = e.part WHERE e.seq > p.evaluated_seq"
}
DRAIN_START=$(date +%s.%N); LEFT=$(backlog)
FROM=$LEFT
while [ "$LEFT" -gt 0 ] && python3 -c "import sys; sys.exit(not ($(date +%s.%N) - $DRAIN_START < 600))"; do
  sleep 1; LEFT=$(backlog)
done
python3 -c "
took = $(date +%s.%N) - $DRAIN_START
print(f'evaluated after ingest stopped: {$FROM - $LEFT} events in {took:.1f} s ({($FROM - $LEFT) / took:,.0f} events/s); {$LEFT} left')"
kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true
"$VIGIL" audit verify
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS vigil_bench" 2>/dev/null || true
