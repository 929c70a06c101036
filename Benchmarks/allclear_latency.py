#!/usr/bin/env python3
"""All-clear latency under backlog: with BACKLOG notices of other incidents queued against a slow
sink, send a trigger then a resolve for a new incident routed to 10 channels on a fast loopback
sink, and measure from the resolve's 202 to each all-clear's arrival. Prints p50/p99 over RUNS
resolves. A program, not a test: it prints figures.

    python3 Benchmarks/allclear_latency.py [--backlog 100000] [--runs 200] [--herald PATH]

With --draining the backlog is not stalled but drains at full speed: BACKLOG deliveries (fan-out
10) to 10 channels on nginx, concurrency 16 each, while the resolves (one watched channel on this
program's sink) go on; only resolves answered while the backlog is still draining are counted.
This is the moment that matters: a big incident, every channel flat out, then the fix lands.
--bulk-concurrency N (default 16) sets the bulk channels' concurrency: how much of the machine the
backlog may take, and so how much headroom the all-clear has.
"""
import argparse, http.client, http.server, json, os, re, shutil, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit, events_lua, free_port, queue_depth, start_herald, start_nginx, stop_herald, stop_nginx, wrk

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

def post_event(conn, body):
    """POSTs an event; answers milliseconds from the request sent to its 202."""
    conn.request("POST", "/v1/events", json.dumps(body), {"Content-Type": "application/json", "Authorization": "Bearer bench-token-0123456789abcdefgh"})
    t0 = time.perf_counter()
    r = conn.getresponse(); r.read()
    assert r.status == 202, r.status
    return (time.perf_counter() - t0) * 1000

def trigger_and_resolve(post, key, arrivals, lock, channels):
    """Triggers `key` on the fast lane, waits for its notice on every one of `channels` channels,
    resolves it; answers the resolve's ms to 202 and each all-clear's ms from that 202 to the sink."""
    post({"incident": key, "status": "triggered", "severity": "critical", "title": "Benchmark outage", "labels": {"lane": "fast"}})
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if sum(1 for k, inc, _ in arrivals if inc == key and k == "notice") >= channels: break
        time.sleep(0.001)
    answer = post({"incident": key, "status": "resolved", "title": "Benchmark outage", "labels": {"lane": "fast"}})
    t202 = time.perf_counter()
    deadline = time.time() + 30
    got = []
    while time.time() < deadline:
        with lock:
            got = [ts for k, inc, ts in arrivals if inc == key and k == "all_clear"]
        if len(got) >= channels: break
        time.sleep(0.0002)
    return answer, [(ts - t202) * 1000 for ts in got]

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
    ap.add_argument("--draining", action="store_true", help="the backlog drains at full speed to nginx")
    ap.add_argument("--bulk-concurrency", type=int, default=16,
                    help="with --draining: attempts at once per bulk channel (the headroom the all-clear gets)")
    a = ap.parse_args()
    if a.draining:
        return draining(a)
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
        post = lambda body: post_event(conn, body)
        latencies = []
        for i in range(a.runs):
            latencies.extend(trigger_and_resolve(post, f"ac-{i}", arrivals, lock, channels=10)[1])
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
        print(f"all-clears: {len(latencies)} over {a.runs} resolves x 10 channels")
        print(f"resolve 202 -> all-clear at the sink: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1]:.1f} ms")
        emit(dict(backlog=int(queued), allclears=len(latencies), p50_ms=p(0.5), p99_ms=p(0.99), max_ms=latencies[-1]))
    finally:
        stop_herald(herald)
        slow.shutdown(); fast.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

def draining(a):
    tmp = tempfile.mkdtemp(prefix="herald-allclear-busy-")
    nginx_port = free_port()
    nginx = start_nginx(tmp, nginx_port)
    watched, watched_port, arrivals, lock = start_sink(0)
    bulk = "\n".join(f"  bulk{i}: {{type: webhook, url: 'http://127.0.0.1:{nginx_port}/b{i}', concurrency: {a.bulk_concurrency}}}" for i in range(10))
    herald = None
    try:
        herald, port, _ = start_herald(a.herald, tmp, f"""  tokens: [{{name: b, token: bench-token-0123456789abcdefgh, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
{bulk}
  watched: {{type: webhook, url: 'http://127.0.0.1:{watched_port}/w', concurrency: 4}}
routes:
  - match: {{labels: {{lane: backlog}}}}
    channels: [{", ".join(f"bulk{i}" for i in range(10))}]
  - match: {{labels: {{lane: fast}}}}
    channels: [watched]
""")
        t = time.perf_counter()
        lua = events_lua(tmp, "bench-token-0123456789abcdefgh", '{"incident":"backlog-%d-%d","status":"triggered","severity":"minor","title":"Backlog","labels":{"lane":"backlog"}}')
        while True:
            wrk(lua, f"http://127.0.0.1:{port}", 32, 2)
            q = queue_depth(port)
            queued = q.get("queued", 0) + q.get("retrying", 0) + q.get("in_flight", 0)
            if queued >= a.backlog: break
        print(f"backlog: {int(queued):,} deliveries draining to nginx (built in {time.perf_counter() - t:.1f} s)")
        conn = http.client.HTTPConnection("127.0.0.1", port)
        post = lambda body: post_event(conn, body)
        latencies, answers = [], []
        start_delivered = queue_depth(port).get("delivered", 0)
        t_start = time.perf_counter()
        for i in range(a.runs):
            answer, got = trigger_and_resolve(post, f"busy-{i}", arrivals, lock, channels=1)
            q = queue_depth(port)
            if q.get("queued", 0) + q.get("retrying", 0) < 1000:
                print(f"the backlog drained after {i} resolves; counting those")
                break
            answers.append(answer)
            latencies.extend(got)
        elapsed = time.perf_counter() - t_start
        drained = queue_depth(port).get("delivered", 0) - start_delivered
        # Herald's own view: from the resolve's receipt to the sink's answer, mean over the run.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/metrics")
        metrics = c.getresponse().read().decode()
        m_sum = re.search(r'herald_allclear_delay_seconds_sum\{channel="watched"\} (\S+)', metrics)
        m_count = re.search(r'herald_allclear_delay_seconds_count\{channel="watched"\} (\S+)', metrics)
        herald_mean = float(m_sum.group(1)) / max(1, float(m_count.group(1))) * 1000 if m_sum and m_count else float("nan")
        latencies.sort(); answers.sort()
        p = lambda v, q: v[min(len(v) - 1, int(len(v) * q))]
        print(f"while draining at {drained / elapsed:,.0f} deliveries/s: {len(latencies)} all-clears; "
              f"resolve POST -> 202 p50 {p(answers, 0.5):.1f} ms, p99 {p(answers, 0.99):.1f} ms; "
              f"resolve 202 -> all-clear at the sink: p50 {p(latencies, 0.5):.1f} ms, p99 {p(latencies, 0.99):.1f} ms, max {latencies[-1]:.1f} ms; "
              f"Herald's own mean, resolve received -> sink answered: {herald_mean:.1f} ms")
        emit(dict(backlog=int(queued), allclears=len(latencies), drain_per_s=drained / elapsed, herald_mean_ms=herald_mean, answer_p50_ms=p(answers, 0.5),
                  answer_p99_ms=p(answers, 0.99), p50_ms=p(latencies, 0.5), p99_ms=p(latencies, 0.99), max_ms=latencies[-1]))
    finally:
        if herald: stop_herald(herald)
        stop_nginx(nginx)
        watched.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
