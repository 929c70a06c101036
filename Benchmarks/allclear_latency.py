#!/usr/bin/env python3
"""All-clear latency under backlog: with BACKLOG notices of other incidents queued against a slow
sink, send a trigger then a resolve for a new incident routed to 10 channels on a fast loopback
sink, and measure from the resolve's 202 to each all-clear's arrival. Prints p50/p99 over RUNS
resolves. A program, not a test: it prints figures.

    python3 Benchmarks/allclear_latency.py [--backlog 100000] [--runs 200] [--herald PATH]
"""
import argparse, http.client, http.server, json, os, shutil, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit, events_lua, free_port, queue_depth, start_herald, stop_herald, wrk

class Sink(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

def make_handler(arrivals, lock, delay):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle plus the client's delayed
        # ACK add 40 ms to every answer, which would be the sink's delay, not Herald's.
        disable_nagle_algorithm = True
        def log_message(self, *a): pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.perf_counter()
            if delay: time.sleep(delay)
            try:
                j = json.loads(body)
                with lock: arrivals.append((j["kind"], j["incident"]["key"], now))
            except Exception:
                pass
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    return H

def start_sink(delay):
    arrivals, lock = [], threading.Lock()
    port = free_port()
    srv = Sink(("127.0.0.1", port), make_handler(arrivals, lock, delay))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port, arrivals, lock

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--backlog", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-allclear-")
    slow, slow_port, _, _ = start_sink(0.5)
    fast, fast_port, arrivals, lock = start_sink(0)
    fast_channels = "\n".join(f"  fast{i}: {{type: webhook, url: 'http://127.0.0.1:{fast_port}/f{i}', concurrency: 4}}" for i in range(10))
    herald, port, _ = start_herald(a.herald, tmp, f"""  tokens: [{{name: b, token: bench-token-0123456789abcdefgh, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  slow: {{type: webhook, url: 'http://127.0.0.1:{slow_port}/slow', concurrency: 2}}
{fast_channels}
routes:
  - match: {{labels: {{lane: backlog}}}}
    channels: [slow]
  - match: {{labels: {{lane: fast}}}}
    channels: [{", ".join(f"fast{i}" for i in range(10))}]
""")
    try:
        # The backlog: one notice each for BACKLOG other incidents, all to the slow sink. wrk runs
        # for a time, not a count: run it until the store holds the backlog.
        t = time.perf_counter()
        lua = events_lua(tmp, "bench-token-0123456789abcdefgh", '{"incident":"backlog-%d-%d","status":"triggered","severity":"minor","title":"Backlog","labels":{"lane":"backlog"}}')
        while True:
            wrk(lua, f"http://127.0.0.1:{port}", 32, 3)
            q = queue_depth(port)
            queued = q.get("queued", 0) + q.get("in_flight", 0)
            if queued >= a.backlog: break
        print(f"backlog: {int(queued):,} notices waiting on the slow sink (built in {time.perf_counter() - t:.1f} s)")
        conn = http.client.HTTPConnection("127.0.0.1", port)
        def post(body):
            conn.request("POST", "/v1/events", json.dumps(body), {"Content-Type": "application/json", "Authorization": "Bearer bench-token-0123456789abcdefgh"})
            r = conn.getresponse(); r.read()
            assert r.status == 202, r.status
        latencies = []
        for i in range(a.runs):
            key = f"ac-{i}"
            post({"incident": key, "status": "triggered", "severity": "critical", "title": "Benchmark outage", "labels": {"lane": "fast"}})
            deadline = time.time() + 30
            while time.time() < deadline:
                with lock:
                    if sum(1 for k, inc, _ in arrivals if inc == key and k == "notice") >= 10: break
                time.sleep(0.001)
            post({"incident": key, "status": "resolved", "title": "Benchmark outage", "labels": {"lane": "fast"}})
            t202 = time.perf_counter()
            deadline = time.time() + 30
            while time.time() < deadline:
                with lock:
                    got = [ts for k, inc, ts in arrivals if inc == key and k == "all_clear"]
                if len(got) >= 10: break
                time.sleep(0.0005)
            latencies.extend((ts - t202) * 1000 for ts in got)
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
        print(f"all-clears: {len(latencies)} over {a.runs} resolves x 10 channels")
        print(f"resolve 202 -> all-clear at the sink: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1]:.1f} ms")
        emit(dict(backlog=int(queued), allclears=len(latencies), p50_ms=p(0.5), p99_ms=p(0.99), max_ms=latencies[-1]))
    finally:
        stop_herald(herald)
        slow.shutdown(); fast.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
