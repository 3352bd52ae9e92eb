#!/usr/bin/env bash
# GET /api/v1/customers/{id}/health-score latency at fixed request rates,
# over loopback, from `oha` (crates.io; installed with `cargo install` when
# missing). oha spaces the requests evenly at the given total rate over 50
# keep-alive connections and, with --latency-correction, counts a request
# from when it should have been sent, so a stalled server is not hidden
# (coordinated omission). A release `vigil serve` on PostgreSQL (database
# vigil_bench_reads, created and dropped), 100 accounts each scored from 12
# weeks of events; each request reads one of them at random, every account
# equally often (oha --rand-regex-url).
#
#   tests/bench/health_score.sh [SECONDS] [RATES...]     (default: 20 1000 2500 5000)
#
# Prints, per rate: the rate achieved, p50/p90/p99/p99.9 latency, the
# status codes, the CPU seconds the server and PostgreSQL used, and how
# many reads the server answered from its latest-score cache and how many
# from the store.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_=${1:-20}
shift || true
RATES=${*:-1000 2500 5000}
PORT=${VIGIL_BENCH_PORT:-18081}
PG=postgres://postgres@127.0.0.1:5432
DB=vigil_bench_reads
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target}"

OHA_VERSION=1.16.0
command -v oha >/dev/null || cargo install oha --version "$OHA_VERSION" --locked --quiet
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
    call("PUT", f"/api/v1/customers/acct-{n:02d}", {"name": f"Account {n}", "tier": "mid-market",
         "industry": "technology", "licensed_seats": 100})
    events = [{"account_id": f"acct-{n:02d}", "kind": "usage.weekly",
               "occurred_at": f"2026-{3 + week // 4:02d}-{1 + (week % 4) * 7:02d}T10:00:00Z",
               "payload": {"active_users": 40 + (n + week) % 50, "logins": 100 + week * 5}} for week in range(12)]
    call("POST", "/api/v1/events?wait=evaluated", events)
PY

URL="http://127.0.0.1:$PORT/api/v1/customers/acct-07/health-score"
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$URL")" = 200
# acct-00 … acct-99, each as likely as the others. oha's generator picks
# evenly among a class's characters and among an alternation's branches,
# not among the strings a pattern can make, so the earlier pattern
# `acct-(0|[1-9][0-9]?)` sent half of the requests to acct-0 (a dot in
# the pattern is a plain dot for oha).
URLS="http://127.0.0.1:$PORT/api/v1/customers/acct-[0-9]{2}/health-score"
echo "GET health-score, ${SECONDS_} s per rate, $(nproc) cores, PostgreSQL"
# CPU seconds (user + system) of a process and its threads, and of every
# PostgreSQL process.
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
pg_cpu() { for pid in $(pgrep -x postgres); do awk '{print ($14 + $15) / 100}' "/proc/$pid/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
# Health-score reads the server answered from FROM (cache or store), by its
# metrics.
reads_from() {
  curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics" |
    awk -v series="vigil_health_score_reads_total{from=\"$1\"}" '$1 == series {n += $2} END {printf "%d\n", n}'
}
for RATE in $RATES; do
  VIGIL_BEFORE=$(cpu_of "$SERVER"); PG_BEFORE=$(pg_cpu)
  CACHE_BEFORE=$(reads_from cache); STORE_BEFORE=$(reads_from store)
  oha -z "${SECONDS_}s" -c 50 -q "$RATE" --latency-correction --no-tui --output-format json \
    -H "Authorization: Bearer $KEY" --rand-regex-url "$URLS" >"$WORK/oha.json"
  VIGIL_CPU=$(awk -v a="$(cpu_of "$SERVER")" -v b="$VIGIL_BEFORE" 'BEGIN {print a - b}')
  PG_CPU=$(awk -v a="$(pg_cpu)" -v b="$PG_BEFORE" 'BEGIN {print a - b}')
  FROM_CACHE=$(( $(reads_from cache) - CACHE_BEFORE )); FROM_STORE=$(( $(reads_from store) - STORE_BEFORE ))
  python3 - "$RATE" "$WORK/oha.json" "$VIGIL_CPU" "$PG_CPU" "$SECONDS_" "$FROM_CACHE" "$FROM_STORE" <<'PY'
import json, sys
rate, path, vigil_cpu, pg_cpu, seconds, from_cache, from_store = sys.argv[1:8]
run = json.load(open(path))
p = run["latencyPercentiles"]
ms = lambda key: f"{p[key] * 1000:.2f} ms"
codes = ", ".join(f"{code}: {count}" for code, count in sorted(run["statusCodeDistribution"].items()))
# Requests still in flight when the duration ends are cut off by oha
# itself ("aborted due to deadline"); they are not server errors.
errors = run.get("errorDistribution", {})
cut_off = errors.pop("aborted due to deadline", 0)
errors = ", ".join(f"{kind}: {count}" for kind, count in errors.items()) or "no errors"
print(f"  target {int(rate):,} req/s: achieved {run['summary']['requestsPerSec']:,.0f} req/s; "
      f"latency p50 {ms('p50')}, p90 {ms('p90')}, p99 {ms('p99')}, p99.9 {ms('p99.9')}; "
      f"{codes}; {errors} ({cut_off} cut off at the end); CPU of {seconds} s: vigil {float(vigil_cpu):.1f} s, PostgreSQL {float(pg_cpu):.1f} s; "
      f"answered from the cache {int(from_cache):,}, from the store {int(from_store):,}")
PY
done
