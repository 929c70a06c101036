#!/usr/bin/env python3
"""Start-up time (process start to /readyz answering 200) and resident memory of `herald serve`
idle and with 10k, 100k and 1M deliveries queued (the queue lives in SQLite: memory should stay
flat as the backlog grows). The backlog is posted with wrk to a channel whose sink never answers
quickly, so it only grows. Prints figures and a RESULT line; asserts nothing.

    python3 Benchmarks/memory_startup.py [--herald .build/release/herald] [--max 1000000]
"""
import argparse, os, shutil, socket, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--max", type=int, default=1_000_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-mem-")
    # The sink: a listening socket that never accepts, so attempts hang until their timeout.
    dead = free_port()
    blackhole = socket.socket(); blackhole.bind(("127.0.0.1", dead)); blackhole.listen(1)
    herald = None
    try:
        herald, port, startup = start_herald(a.herald, tmp, f"""  tokens: [{{name: b, token: bench-token-0123456789abcdefgh, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  stuck: {{type: webhook, url: 'http://127.0.0.1:{dead}/x', concurrency: 1, timeout: 600s}}
routes:
  - channels: [stuck]
""")
        print(f"start-up to /readyz 200: {startup * 1000:.0f} ms")
        time.sleep(1)
        idle = rss_mb(herald.pid)[0]
        print(f"idle RSS: {idle:.1f} MB")
        result = dict(startup_ms=startup * 1000, rss_idle_mb=idle)
        lua = events_lua(tmp, "bench-token-0123456789abcdefgh", '{"incident":"m-%d-%d","status":"triggered","severity":"minor","title":"Backlog"}')
        def queued():
            q = queue_depth(port)
            return q.get("queued", 0) + q.get("in_flight", 0)
        for target in [10_000, 100_000, 1_000_000]:
            if target > a.max: break
            while queued() < target:
                wrk(lua, f"http://127.0.0.1:{port}", 32, 5)
            rss, hwm = rss_mb(herald.pid)
            print(f"{queued():>9,} queued: RSS {rss:.1f} MB (peak so far {hwm:.1f} MB), store {os.path.getsize(os.path.join(tmp, 'h.sqlite')) / 1e6:.0f} MB")
            result[f"rss_{target // 1000}k_mb"] = rss
            result["rss_peak_mb"] = hwm
        emit(result)
    finally:
        if herald: stop_herald(herald)
        blackhole.close()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
