#!/usr/bin/env python3
"""Delivery throughput: `herald serve` to a fast loopback webhook sink (nginx answering 200), beside
the sink's own ceiling (wrk, same body size, same connections) and Apprise delivering the same
messages to the same sink with json:// targets (when apprise is importable).

EVENTS events are posted with wrk (keys never repeat), each fanned out to FANOUT signed webhook
channels; the clock runs from the first POST until the store holds no waiting or in-flight
delivery. A program, not a test: it prints figures and a RESULT line.

    python3 Benchmarks/delivery_throughput.py [--events 10000] [--fanout 10] [--concurrency 16]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

BODY = "x" * 200

def herald_config(tmp, sink_port, fanout, concurrency):
    channels = "\n".join(f"""  hook{i}:
    type: webhook
    url: http://127.0.0.1:{sink_port}/hook{i}
    secret: whsec_YmVuY2htYXJrLXNpZ25pbmcta2V5
    concurrency: {concurrency}""" for i in range(fanout))
    return f"""  tokens: [{{name: bench, token: bench-ingest-token-0123456789ab, scopes: [ingest]}}]
store: {{path: {tmp}/herald.sqlite}}
retry: {{initial: 100ms, max: 1s, max_attempts: 5, max_age: 1h}}
channels:
{channels}
routes:
  - channels: [{", ".join(f"hook{i}" for i in range(fanout))}]
"""

def run_herald(a, tmp, sink_port):
    herald, port, _ = start_herald(a.herald, tmp, herald_config(tmp, sink_port, a.fanout, a.concurrency))
    try:
        lua = events_lua(tmp, "bench-ingest-token-0123456789ab",
                         '{"incident":"bench-%d-%d","status":"triggered","severity":"major","title":"Benchmark incident","message":"' + BODY + '"}',
                         per_thread=a.events // 2)
        # wrk runs for a time, not a count: each thread stops after its share, and wrk itself is
        # ended once everything has been delivered.
        t0 = time.perf_counter()
        load = subprocess.Popen(["wrk", "-t2", "-c16", "-d600s", "-s", lua, f"http://127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = a.events * a.fanout
        try:
            while True:
                q = queue_depth(port)
                waiting = q.get("queued", 0) + q.get("in_flight", 0) + q.get("retrying", 0)
                if waiting == 0 and q.get("delivered", 0) + q.get("failed", 0) >= target: break
                if time.perf_counter() - t0 > 900: raise SystemExit(f"not drained after 900 s: {q}")
                # Each look is a /metrics scrape that counts the backlog's index entries: every
                # 20 ms it took about 7 % of herald's CPU (perf), which is the benchmark measuring
                # itself. 100 ms adds at most 0.1 s to a run of 20 s or more.
                time.sleep(0.1)
        finally:
            load.kill(); load.wait()
        t_all = time.perf_counter() - t0
        peak = rss_mb(herald.pid)[1]
        cpu = cpu_seconds(herald.pid)
        return dict(delivered=q.get("delivered", 0), failed=q.get("failed", 0), seconds=t_all, rss_peak_mb=peak,
                    cpu_us_per_delivery=cpu / max(1, q.get("delivered", 0)) * 1e6)
    finally:
        stop_herald(herald)

def run_apprise(a, sink_port):
    try:
        import apprise
    except ImportError:
        return None
    ap = apprise.Apprise()
    for i in range(a.fanout):
        ap.add(f"json://127.0.0.1:{sink_port}/hook{i}")
    t0 = time.perf_counter()
    ok = sum(1 for i in range(a.apprise_messages) if ap.notify(title=f"[MAJOR] Benchmark incident {i}", body=BODY))
    dt = time.perf_counter() - t0
    return dict(version=apprise.__version__, notifications=a.apprise_messages * a.fanout, ok_messages=ok,
                rate=a.apprise_messages * a.fanout / dt)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=16, help="attempts in flight per channel")
    ap.add_argument("--apprise-messages", type=int, default=300)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-bench-")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    try:
        connections = a.fanout * a.concurrency
        ceiling_lua = os.path.join(tmp, "ceiling.lua")
        open(ceiling_lua, "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = string.rep("x", 700)\n')
        ceiling = wrk(ceiling_lua, f"http://127.0.0.1:{sink_port}/hook0", connections, 5)[0]
        h = run_herald(a, tmp, sink_port)
        rate = h["delivered"] / h["seconds"]
        print(f"sink ceiling (wrk, {connections} connections, 700-byte POST): {ceiling:,.0f} requests/s")
        print(f"herald: {h['delivered']:,} delivered, {h['failed']} failed ({a.events:,} events x {a.fanout} channels, "
              f"concurrency {a.concurrency}) in {h['seconds']:.2f} s: "
              f"{rate:,.0f} deliveries/s, {rate / ceiling:.1%} of the ceiling; peak RSS {h['rss_peak_mb']:.0f} MB; "
              f"herald CPU {h['cpu_us_per_delivery']:.0f} µs per delivery (ingest included)")
        result = dict(ceiling=ceiling, herald=rate, herald_over_ceiling=rate / ceiling, delivered=h["delivered"],
                      failed=h["failed"], rss_peak_mb=h["rss_peak_mb"],
                      cpu_us_per_delivery=h["cpu_us_per_delivery"])
        app = run_apprise(a, sink_port)
        if app:
            print(f"apprise {app['version']}: {app['notifications']:,} notifications ({app['ok_messages']} messages fully "
                  f"delivered) at {app['rate']:,.0f}/s; herald/apprise = {rate / app['rate']:.1f}x")
            result.update(apprise=app["rate"], herald_over_apprise=rate / app["rate"])
        else:
            print("apprise: not importable in this Python (Benchmarks/run provides a venv with it)")
        emit(result)
    finally:
        stop_nginx(nginx)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
