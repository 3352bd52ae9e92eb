#!/usr/bin/env bash
# GET /api/v1/customers/{id}/health-score latency at fixed request rates,
# over loopback, from `oha` (crates.io; installed with `cargo install` when
# missing), five processes of it sharing each rate (see below). oha spaces
# the requests evenly at the given total rate over 50 keep-alive
# connections (10 a process) and, with --latency-correction, counts a
# request from when it should have been sent, so a stalled server is not
# hidden (coordinated omission). A release `vigil serve` on PostgreSQL (database
# vigil_bench_reads, created and dropped), 100 accounts each scored from 12
# weeks of events; each request reads one of them at random, every account
# equally often (oha --rand-regex-url).
#
#   tests/bench/health_score.sh [SECONDS] [RATES...]     (default: 20 1000 2500 5000)
#
# Prints, per rate: the rate achieved, p50/p90/p99/p99.9 latency, the
# status codes, the CPU seconds the server and PostgreSQL used and those
# the hypervisor took from the VM (steal), and how many reads the server
# answered from its latest-score cache and how many from the store.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_=${1:-20}
shift || true
RATES=${*:-1000 2500 5000}
# oha queues the result of every request in memory until its run ends,
# and the queue doubles its buffer at 2^13, 2^14 … results, copying it
# while it holds the lock every request's report takes: 3–5 ms at 2^16
# results in one process, in which the requests due are sent late and,
# with --latency-correction, counted as slow (BENCHMARKS.md, "GET
# health-score"). So the load comes from several oha processes, each with
# its share of the rate and of the 50 connections, started 0.2 s apart (so
# that their doublings, smaller, fall at different times) and ending
# together; the percentiles are taken over all of their requests, from
# the per-request records each writes (--db-url) after its run.
# VIGIL_BENCH_OHA_PROCESSES=1 measures with one process, as until
# 2026-12-06.
PROCESSES=${VIGIL_BENCH_OHA_PROCESSES:-5}
STAGGER_MS=200
# Checked before anything is built or created, so a bad argument leaves
# nothing behind.
[[ $SECONDS_ =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a whole number of seconds, at least 1: $SECONDS_" >&2; exit 2; }
[[ $PROCESSES =~ ^[1-9][0-9]*$ ]] && (( PROCESSES <= 50 )) ||
  { echo "VIGIL_BENCH_OHA_PROCESSES must be a whole number from 1 to 50 (one connection each at least): $PROCESSES" >&2; exit 2; }
(( (PROCESSES - 1) * STAGGER_MS < SECONDS_ * 1000 )) ||
  { echo "$PROCESSES oha processes started ${STAGGER_MS} ms apart need a run longer than $(( (PROCESSES - 1) * STAGGER_MS )) ms: $SECONDS_ s" >&2; exit 2; }
for RATE in $RATES; do
  [[ $RATE =~ ^[1-9][0-9]*$ ]] || { echo "a rate must be a whole number of requests a second, at least 1: $RATE" >&2; exit 2; }
done
PORT=${VIGIL_BENCH_PORT:-18081}
PG=postgres://postgres@127.0.0.1:5432
DB=vigil_bench_reads
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target}"

OHA_VERSION=1.16.0
command -v oha >/dev/null || cargo install oha --version "$OHA_VERSION" --locked --quiet
cargo build --release -p vigil-host --quiet
VIGIL="$CARGO_TARGET_DIR/release/vigil"
WORK=$(mktemp -d)
LOAD=()
trap 'kill ${LOAD[@]:-} 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true' EXIT

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
# CPU seconds the hypervisor took from this VM so far (steal, all cores):
# a VM starved by its host answers late whatever the server does.
steal() { awk -v tick="$(getconf CLK_TCK)" '$1 == "cpu" {print $9 / tick}' /proc/stat; }
# Health-score reads the server answered from FROM (cache or store), by its
# metrics.
reads_from() {
  curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics" |
    awk -v series="vigil_health_score_reads_total{from=\"$1\"}" '$1 == series {n += $2} END {printf "%d\n", n}'
}
for RATE in $RATES; do
  VIGIL_BEFORE=$(cpu_of "$SERVER"); PG_BEFORE=$(pg_cpu); STEAL_BEFORE=$(steal)
  CACHE_BEFORE=$(reads_from cache); STORE_BEFORE=$(reads_from store)
  rm -f "$WORK"/oha-*.json "$WORK"/oha-*.db
  for P in $(seq 0 $((PROCESSES - 1))); do
    oha -z "$((SECONDS_ * 1000 - P * STAGGER_MS))ms" -c $((50 / PROCESSES + (P < 50 % PROCESSES))) -q "$(awk -v r="$RATE" -v n="$PROCESSES" 'BEGIN {print r / n}')" \
      --latency-correction --no-tui --output-format json -H "Authorization: Bearer $KEY" \
      --rand-regex-url "$URLS" --db-url "$WORK/oha-$P.db" >"$WORK/oha-$P.json" 2>>"$WORK/oha.log" &
    LOAD+=($!)
    sleep "$(awk -v ms="$STAGGER_MS" 'BEGIN {print ms / 1000}')"
  done
  for PID in "${LOAD[@]}"; do
    wait "$PID" || { echo "oha failed:" >&2; cat "$WORK/oha.log" >&2; exit 1; }
  done
  LOAD=()
  VIGIL_CPU=$(awk -v a="$(cpu_of "$SERVER")" -v b="$VIGIL_BEFORE" 'BEGIN {print a - b}')
  PG_CPU=$(awk -v a="$(pg_cpu)" -v b="$PG_BEFORE" 'BEGIN {print a - b}')
  STEAL=$(awk -v a="$(steal)" -v b="$STEAL_BEFORE" 'BEGIN {print a - b}')
  FROM_CACHE=$(( $(reads_from cache) - CACHE_BEFORE )); FROM_STORE=$(( $(reads_from store) - STORE_BEFORE ))
  python3 - "$RATE" "$WORK" "$PROCESSES" "$VIGIL_CPU" "$PG_CPU" "$SECONDS_" "$FROM_CACHE" "$FROM_STORE" "$STEAL" <<'PY'
import collections, glob, json, os, sqlite3, sys
rate, work, processes, vigil_cpu, pg_cpu, seconds, from_cache, from_store, steal = sys.argv[1:10]
runs = [json.load(open(path)) for path in sorted(glob.glob(f"{work}/oha-*.json"))]
# Each request's latency as oha counts it with --latency-correction: from
# when it should have been sent to its answer.
latencies = sorted(
    latency
    for path in sorted(glob.glob(f"{work}/oha-*.db"))
    for (latency,) in sqlite3.connect(path).execute(
        "SELECT \"end\" - COALESCE(start_latency_correction, start) FROM oha"))
if not latencies:
    sys.exit(f"no request at {rate} req/s was answered")
def ms(percentile):
    at = min(int(percentile / 100 * len(latencies)), len(latencies) - 1)
    return f"{latencies[at] * 1000:.2f} ms"
codes = collections.Counter()
errors = collections.Counter()
for run in runs:
    codes.update(run["statusCodeDistribution"])
    errors.update(run.get("errorDistribution", {}))
codes = ", ".join(f"{code}: {count}" for code, count in sorted(codes.items()))
# Requests still in flight when the duration ends are cut off by oha
# itself ("aborted due to deadline"); they are not server errors.
cut_off = errors.pop("aborted due to deadline", 0)
errors = ", ".join(f"{kind}: {count}" for kind, count in errors.items()) or "no errors"
achieved = sum(run["summary"]["requestsPerSec"] for run in runs)
print(f"  target {int(rate):,} req/s: achieved {achieved:,.0f} req/s ({processes} oha {'process' if processes == '1' else 'processes'}); "
      f"latency p50 {ms(50)}, p90 {ms(90)}, p99 {ms(99)}, p99.9 {ms(99.9)}; "
      f"{codes}; {errors} ({cut_off} cut off at the end); CPU of {seconds} s: vigil {float(vigil_cpu):.1f} s, PostgreSQL {float(pg_cpu):.1f} s, "
      f"taken by the hypervisor (steal) {float(steal):.1f} s of {os.cpu_count() * int(seconds)}; "
      f"answered from the cache {int(from_cache):,}, from the store {int(from_store):,}")
PY
done
