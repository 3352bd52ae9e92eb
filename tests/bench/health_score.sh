#!/usr/bin/env bash
# GET /api/v1/customers/{id}/health-score latency at fixed request rates,
# over loopback, from `hey` (Debian package `hey`; -q is a rate per worker,
# so rate = workers x per-worker rate). A release `vigil serve` on
# PostgreSQL (database vigil_bench_reads, created and dropped), 100 accounts
# each scored from 12 weeks of events; requests go to one account.
#
#   tests/bench/health_score.sh [SECONDS] [RATES...]     (default: 20 1000 2500 5000)
#
# Prints, per rate: the rate achieved, p50/p90/p99 latency and any non-200.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_=${1:-20}
shift || true
RATES=${*:-1000 2500 5000}
PORT=${VIGIL_BENCH_PORT:-18081}
PG=postgres://postgres@127.0.0.1:5432
DB=vigil_bench_reads
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target}"

cargo build --release -p vigil-host --quiet
VIGIL="$CARGO_TARGET_DIR/release/vigil"
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true' EXIT

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export VIGIL_DATABASE_URL="$PG/$DB"
KEY=$("$VIGIL" keys create --role operator --label bench)
"$VIGIL" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

python3 - "$PORT" "$KEY" <<'PY'
import json, sys, urllib.request
port, key = sys.argv[1], sys.argv[2]
def call(method, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return answer.status
for n in range(100):
    call("PUT", f"/api/v1/customers/acct-{n}", {"name": f"Account {n}", "tier": "mid-market",
         "industry": "technology", "licensed_seats": 100})
    events = [{"account_id": f"acct-{n}", "kind": "usage.weekly",
               "occurred_at": f"2026-{3 + week // 4:02d}-{1 + (week % 4) * 7:02d}T10:00:00Z",
               "payload": {"active_users": 40 + (n + week) % 50, "logins": 100 + week * 5}} for week in range(12)]
    call("POST", "/api/v1/events?wait=evaluated", events)
PY

URL="http://127.0.0.1:$PORT/api/v1/customers/acct-7/health-score"
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$URL")" = 200
echo "GET health-score, ${SECONDS_} s per rate, $(nproc) cores, PostgreSQL"
for RATE in $RATES; do
  WORKERS=50
  PER_WORKER=$(( RATE / WORKERS ))
  OUT=$(hey -z "${SECONDS_}s" -c "$WORKERS" -q "$PER_WORKER" -H "Authorization: Bearer $KEY" "$URL")
  ACHIEVED=$(awk '/Requests\/sec/ {print $2}' <<<"$OUT")
  P50=$(awk '/ 50% in/ {print $3}' <<<"$OUT")
  P90=$(awk '/ 90% in/ {print $3}' <<<"$OUT")
  P99=$(awk '/ 99% in/ {print $3}' <<<"$OUT")
  CODES=$(awk '/Status code distribution/ {on=1; next} on && /\[/ {printf "%s ", $0} /^$/ {on=0}' <<<"$OUT")
  python3 - "$RATE" "$ACHIEVED" "$P50" "$P90" "$P99" "$CODES" <<'PY'
import sys
rate, achieved, p50, p90, p99, codes = sys.argv[1:7]
ms = lambda s: f"{float(s) * 1000:.2f} ms"
print(f"  target {int(rate):,} req/s: achieved {float(achieved):,.0f} req/s; latency p50 {ms(p50)}, p90 {ms(p90)}, p99 {ms(p99)}; {codes.strip()}")
PY
done
