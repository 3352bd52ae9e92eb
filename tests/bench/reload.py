#!/usr/bin/env python3
"""Hot-reload latency: file changed -> new version serving.

Starts a release `vigil serve` watching a plugins directory (the standard
plugins, exported), then N times writes a new build of health-score into
the directory (the same plugin with a custom section appended, so a new
digest; written beside it and renamed into place, as a deploy tool does),
waits for the host's log line saying it deployed that digest, then asks
`GET /api/v1/plugins/health-score` over one keep-alive connection until the
host reports serving it (the first answer does, unless the log line came
early). Prints p50, p95 and max of (serving seen - file renamed).

    tests/bench/reload.py [ROUNDS] [--database-url URL] [--poll-ms MS]

With `--poll-ms`, the client polls the GET every MS milliseconds from the
rename instead of waiting for the log line, as the script did before
2026-12-06 (every 0.5 ms): on two cores such a poller takes CPU from the
compilation it is waiting for (BENCHMARKS.md, "Hot reload").

Stdlib only. Builds the release binary first. The latency includes the
watcher's settling (5 ms once the file is renamed into place), compiling
the component, its canary run, the registry write and the swap, then the
log line's way through a pipe and one GET.
"""

import argparse
import hashlib
import http.client
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n == 0:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def variant(component, tag):
    """The component with a custom section appended: same plugin, new digest."""
    name = b"vigil-bench-variant"
    payload = leb128(len(name)) + name + tag.encode()
    return component + b"\x00" + leb128(len(payload)) + payload


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--poll-ms", type=float, default=None,
                        help="poll the GET every MS ms instead of waiting for the log line")
    args = parser.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vigil/target"))
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil-host"], cwd=ROOT, env=env, check=True)
    vigil = os.path.join(target, "release", "vigil")

    work = tempfile.mkdtemp(prefix="vigil-reload-")
    plugins = os.path.join(work, "plugins")
    server = None
    try:
        subprocess.run([vigil, "plugin", "export-standard", plugins], check=True, stdout=subprocess.DEVNULL)
        url = args.database_url or f"sqlite://{work}/vigil.db"
        key = subprocess.run(
            [vigil, "keys", "create", "--role", "viewer", "--database-url", url],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        port = free_port()
        # The lifecycle's info lines (one per deploy, naming the digest);
        # warnings and errors as usual.
        server_env = dict(os.environ, VIGIL_LOG="warn,vigil_host::lifecycle=info")
        server = subprocess.Popen(
            [vigil, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", work,
             "--database-url", url, "--plugins", plugins],
            stderr=subprocess.PIPE, text=True, env=server_env,
        )
        deployed = queue.Queue()

        def read_log():
            for line in server.stderr:
                if "plugin deployed" in line:
                    deployed.put(line)

        threading.Thread(target=read_log, daemon=True).start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(300):
            try:
                conn.request("GET", "/readyz")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                conn.close()
                time.sleep(0.1)
        else:
            sys.exit("vigil serve did not become ready")
        headers = {"Authorization": f"Bearer {key}"}

        def serving():
            conn.request("GET", "/api/v1/plugins/health-score", headers=headers)
            body = json.loads(conn.getresponse().read())
            return (body.get("serving") or {}).get("digest")

        with open(os.path.join(plugins, "health-score.wasm"), "rb") as f:
            original = f.read()
        latencies = []
        for round_ in range(args.rounds):
            data = variant(original, f"round-{round_}-{time.time_ns()}")
            digest = hashlib.sha256(data).hexdigest()
            staged = os.path.join(plugins, ".health-score.wasm.tmp")
            with open(staged, "wb") as f:
                f.write(data)
            start = time.perf_counter()
            os.rename(staged, os.path.join(plugins, "health-score.wasm"))
            deadline = start + 10
            if args.poll_ms is None:
                while True:
                    try:
                        line = deployed.get(timeout=max(0.0, deadline - time.perf_counter()))
                    except queue.Empty:
                        sys.exit(f"round {round_}: no deploy of the new version logged after 10 s")
                    if digest in line:
                        break
                interval = 0.001
            else:
                interval = args.poll_ms / 1000
            while serving() != digest:
                if time.perf_counter() > deadline:
                    sys.exit(f"round {round_}: the new version was not serving after 10 s")
                time.sleep(interval)
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(0.2)
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
        seen = "the deploy logged, then GET" if args.poll_ms is None else f"GET every {args.poll_ms:g} ms"
        print(f"hot reload, {args.rounds} rounds ({'PostgreSQL' if args.database_url else 'SQLite'}, {os.cpu_count()} cores; {seen}):")
        print(f"  file renamed -> new version serving: p50 {statistics.median(latencies):.1f} ms, "
              f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms (min {latencies[0]:.1f} ms)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
