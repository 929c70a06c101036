#!/usr/bin/env python3
"""Resident memory of `herald serve` while events at the documented size limits flow through it:
a 1,024-character title, a 65,000-character message and 100 labels of 100 characters (~77 KB of
JSON each), posted by 4 clients and delivered to one webhook (nginx answering 200). RSS is read
after every 1,000 events and once everything is delivered. Any holder of an ingest token can send
such events, so memory must be bounded in bytes, not in entries. Prints figures and a RESULT line;
asserts nothing.

    python3 Benchmarks/memory_large_events.py [--herald .build/release/herald] [--events 10000]
"""
import argparse, http.client, json, os, shutil, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

TOKEN = "bench-token-0123456789abcdefgh"

def body(i):
    return json.dumps({
        "incident": f"large-{i}", "status": "triggered", "severity": "minor",
        "title": ("T%d " % i).ljust(1024, "t"),
        "message": ("M%d " % i).ljust(65_000, "m"),
        "labels": {f"label_{k:03d}": ("v%d-%d " % (i, k)).ljust(100, "v") for k in range(100)},
    }).encode()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--events", type=int, default=10_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-memlarge-")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    herald = None
    try:
        herald, port, _ = start_herald(a.herald, tmp, f"""  max_body_bytes: 1048576
  tokens: [{{name: b, token: {TOKEN}, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  hook: {{type: webhook, url: 'http://127.0.0.1:{sink_port}/in'}}
routes:
  - channels: [hook]
""")
        time.sleep(1)
        idle = rss_mb(herald.pid)[0]
        print(f"idle RSS: {idle:.1f} MB; one event is {len(body(0)) / 1000:.0f} KB of JSON")
        result = dict(rss_idle_mb=idle)
        lock = threading.Lock()
        sent = [0]
        failures = []
        samples = {}
        def client(worker, n_clients):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(worker, a.events, n_clients):
                c.request("POST", "/v1/events", body=body(i),
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                r = c.getresponse(); r.read()
                if r.status != 202:
                    failures.append(r.status)
                with lock:
                    sent[0] += 1
                    if sent[0] % 1000 == 0:
                        samples[sent[0]] = rss_mb(herald.pid)[0]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(w, 4)) for w in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        posted = time.perf_counter() - t0
        for n in sorted(samples):
            print(f"{n:>6,} events posted: RSS {samples[n]:.1f} MB")
        deadline = time.time() + 600
        while time.time() < deadline:
            q = queue_depth(port)
            if q.get("queued", 0) + q.get("in_flight", 0) + q.get("retrying", 0) == 0:
                break
            time.sleep(0.5)
        drained = time.perf_counter() - t0
        rss, hwm = rss_mb(herald.pid)
        print(f"posted {a.events:,} in {posted:.1f} s ({len(failures)} not 202), all delivered after {drained:.1f} s: "
              f"RSS {rss:.1f} MB, peak {hwm:.1f} MB")
        result.update(rss_after_mb=rss, rss_peak_mb=hwm, events=a.events, not_202=len(failures),
                      rss_by_thousand={str(k): v for k, v in sorted(samples.items())})
        emit(result)
    finally:
        if herald: stop_herald(herald)
        stop_nginx(nginx)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
