#!/usr/bin/env python3
"""Durable ingest: events/s accepted over HTTP (each `202` sent after its commit), fan-out 3 to
webhook channels on a fast loopback sink (nginx), loaded by wrk with a Lua script whose incident
keys never repeat. Deliveries run at the same time on the same two cores, as in production.
Prints events/s and the 202's p50/p99 (wrk's latency), and a RESULT line.

    python3 Benchmarks/ingest.py [--seconds 10] [--connections 64] [--fanout 3] [--silences 0] [--concurrency 16]

--silences N puts N silences in force all along (quiet hours that match no event): each commit
reads them and every notice is checked against each, the cost a busy operator's silences add.
--concurrency N (default 16) is each channel's: how much of the machine the deliveries may take
while the events come.
"""
import argparse, os, shutil, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--fanout", type=int, default=3)
    ap.add_argument("--silences", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=16, help="each channel's concurrency (how much of the machine delivery may take)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-ingest-")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    herald = None
    try:
        channels = "\n".join(f"  hook{i}: {{type: webhook, url: 'http://127.0.0.1:{sink_port}/hook{i}', concurrency: {a.concurrency}}}"
                             for i in range(a.fanout))
        herald, port, _ = start_herald(a.herald, tmp, f"""  tokens: [{{name: bench, token: bench-ingest-token-0123456789ab, scopes: [ingest]}}]
store: {{path: {tmp}/herald.sqlite}}
channels:
{channels}
routes:
  - channels: [{", ".join(f"hook{i}" for i in range(a.fanout))}]
""" + ("quiet_hours:\n" + "".join(f"  - {{name: q{i}, times: ['00:00-24:00'], matchers: ['team=nobody-{i}', 'severity=~\"minor|info\"']}}\n"
                                    for i in range(a.silences)) if a.silences else ""))
        lua = events_lua(tmp, "bench-ingest-token-0123456789ab",
                         '{"incident":"ingest-%d-%d","status":"triggered","severity":"major","title":"Ingest benchmark","message":"' + "x" * 200 + '"}')
        rps, n, p50, p99, bad = wrk(lua, f"http://127.0.0.1:{port}", a.connections, a.seconds)
        q = queue_depth(port)
        print(f"durable ingest, fan-out {a.fanout}, {a.silences} silences, {a.connections} connections, {a.seconds} s: {rps:,.0f} events/s "
              f"({n:,} requests, {bad} not 202); 202 latency p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
              f"{q.get('delivered', 0):,} deliveries already delivered meanwhile")
        emit(dict(events_per_s=rps, p50_ms=p50, p99_ms=p99, non202=bad, fanout=a.fanout, silences=a.silences,
                  delivered=q.get("delivered", 0), concurrency=a.concurrency))
    finally:
        if herald: stop_herald(herald)
        stop_nginx(nginx)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
