#!/usr/bin/env python3
"""The public status page under its own storm. With 60 posts on the page (30 incidents, each
triggered and resolved), wrk with 64 connections reads `/status`, `/status.json` and
`/status/feed.atom` (and `/healthz` for comparison) for SECONDS each; then, while 64 connections
keep reloading `/status`, incidents routed to the page and to a watched webhook are triggered and
resolved one after another, and the time from each resolve's 202 to its all-clear at the webhook
is measured — beside the same with nobody reading the page. The crowd reads first on the API's
own listener (`server.listen`), then on `server.public_listen` (the pages on a listener and event
loop of their own); the resolves always go to `server.listen`. For each phase it also prints the
p50 of each step, from the times Herald stored (the event's receipt, the attempt's start): sent →
received, received → attempt started, attempt started → at the receiver. Prints figures and a
RESULT line; asserts nothing.

    python3 Benchmarks/status_storm.py [--herald .build/release/herald] [--seconds 10] [--runs 30]
"""
import argparse, http.client, json, os, re, shutil, sqlite3, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit, free_port, percentile, queue_depth, start_herald, stop_herald
from allclear_latency import start_sink

TOKEN = "bench-token-0123456789abcdefgh"

def post(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/events", body=json.dumps(body), headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 202: raise SystemExit(f"POST answered {r.status}")

def read_rate(url, seconds, connections=64):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(non2xx.group(1)) if non2xx else 0

def wait_for(arrivals, lock, kind, key, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            for k, incident, t in arrivals:
                if k == kind and incident == key: return t
        time.sleep(0.0005)
    raise SystemExit(f"no {kind} for {key}")

# Wall-clock time of a perf_counter reading: Herald stores wall-clock times.
WALL = time.time() - time.perf_counter()

def allclear_latencies(port, arrivals, lock, prefix, runs, sent=None):
    """Resolve → all-clear at the watched sink, ms, sorted. `sent` gets, per incident, the wall
    times the resolve was sent and its all-clear arrived."""
    waits = []
    for i in range(runs):
        key = f"{prefix}-{i}"
        post(port, {"incident": key, "status": "triggered", "severity": "major", "title": f"Outage {key}"})
        wait_for(arrivals, lock, "notice", key)
        t0 = time.perf_counter()
        post(port, {"incident": key, "status": "resolved", "title": f"Outage {key}"})
        arrived = wait_for(arrivals, lock, "all_clear", key)
        waits.append((arrived - t0) * 1000)
        if sent is not None: sent[key] = (t0 + WALL, arrived + WALL)
    return sorted(waits)

def steps(db_path, sent):
    """Where each all-clear's time went, p50 ms, from the times Herald stored: the resolve sent →
    received (HTTP) → the all-clear's attempt started (plan, commit, wake-up, claim) → at the
    receiver (render, send)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute("""SELECT e.incident, e.received_at, a.started_at FROM events e
        JOIN deliveries d ON d.event_id = e.id AND d.channel = 'watch' AND d.kind = 'all_clear'
        JOIN attempts a ON a.delivery_id = d.id AND a.number = 1 WHERE e.status = 'resolved'""").fetchall()
    db.close()
    parts = {"sent_to_received": [], "received_to_attempt": [], "attempt_to_receiver": []}
    for incident, received, started in rows:
        if incident not in sent: continue
        t0, arrived = sent[incident]
        parts["sent_to_received"].append((received - t0) * 1000)
        parts["received_to_attempt"].append((started - received) * 1000)
        parts["attempt_to_receiver"].append((arrived - started) * 1000)
    return {k: percentile(sorted(v), 0.5) for k, v in parts.items() if v}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-storm-")
    sink, sink_port, arrivals, lock = start_sink(0)
    herald = None
    try:
        public_port = free_port()
        herald, port, _ = start_herald(a.herald, tmp, f"""  public_listen: 127.0.0.1:{public_port}
  tokens: [{{name: b, token: {TOKEN}, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  public: {{type: statuspage}}
  watch: {{type: webhook, url: 'http://127.0.0.1:{sink_port}/watch'}}
routes:
  - channels: [public, watch]
""")
        for i in range(30):
            post(port, {"incident": f"seed-{i}", "status": "triggered", "severity": "major", "title": f"Seed outage {i}",
                        "message": "Investigating elevated error rates.", "components": ["api", "web"]})
            post(port, {"incident": f"seed-{i}", "status": "resolved", "title": f"Seed outage {i}"})
        while sum(queue_depth(port).get(s, 0) for s in ("queued", "retrying", "in_flight")) > 0: time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        result = {}
        for name, path in [("healthz", "/healthz"), ("status", "/status"), ("status_json", "/status.json"), ("feed", "/status/feed.atom")]:
            rps, bad = read_rate(base + path, a.seconds)
            print(f"GET {path:<18} {rps:>10,.0f} req/s (64 connections; {bad} not 2xx/3xx)")
            result[f"{name}_rps"] = rps
        rps, bad = read_rate(f"http://127.0.0.1:{public_port}/status", a.seconds)
        print(f"GET {'/status (public)':<18} {rps:>10,.0f} req/s (64 connections on server.public_listen; {bad} not 2xx/3xx)")
        result["status_public_rps"] = rps
        sent = {}
        quiet = allclear_latencies(port, arrivals, lock, "quiet", a.runs, sent)
        rows = [("nobody reading", "quiet", quiet)]
        # The crowd on the API's own listener (the pages served beside the API), then on
        # server.public_listen (the pages on a listener and event loop of their own).
        for label, key, crowd_port in [("64 connections reloading /status on server.listen", "storm", port),
                                       ("64 connections reloading /status on server.public_listen", "storm_public", public_port)]:
            reader = threading.Thread(target=lambda: read_rate(f"http://127.0.0.1:{crowd_port}/status", a.seconds + 60))
            reader.start()
            time.sleep(1)
            rows.append((label, key, allclear_latencies(port, arrivals, lock, key, a.runs, sent)))
            subprocess.run(["pkill", "-INT", "-f", f"wrk.*{crowd_port}/status"])
            reader.join()
        for label, key, w in rows:
            print(f"resolve 202 -> all-clear, {label}: p50 {percentile(w, 0.5):.1f} ms, p99 {percentile(w, 0.99):.1f} ms, max {w[-1]:.1f} ms")
            step = steps(f"{tmp}/h.sqlite", {k: v for k, v in sent.items() if k.rsplit("-", 1)[0] == key})
            print("    p50 of each step: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} ms" for k, v in step.items()))
            result.update({f"{key}_{k}_p50_ms": v for k, v in step.items()})
            result.update({f"{key}_p50_ms": percentile(w, 0.5), f"{key}_p99_ms": percentile(w, 0.99)})
            if key != "quiet":
                result[f"{key}_p99_delta_ms"] = percentile(w, 0.99) - percentile(quiet, 0.99)
        emit(result)
    finally:
        if herald: stop_herald(herald)
        sink.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
