#!/usr/bin/env python3
"""Start-up time (process start to /readyz answering 200) and resident memory of `herald serve`
idle and with 10k, 100k and 1M deliveries queued (the queue lives in SQLite: memory should stay
flat as the backlog grows). The backlog is posted with wrk to a channel whose sink never answers
quickly, so it only grows. Prints figures; asserts nothing.

    python3 Benchmarks/memory_startup.py [--herald .build/release/herald] [--max 1000000]
"""
import argparse, http.client, os, re, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def rss_mb(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024

def queued(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/metrics")
    m = c.getresponse().read().decode()
    return int(sum(float(l.split()[-1]) for l in m.splitlines()
                   if l.startswith('herald_queue_depth{state="queued"}') or l.startswith('herald_queue_depth{state="in_flight"}')))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--max", type=int, default=1_000_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-mem-")
    port, dead = free_port(), free_port()
    cfg = os.path.join(tmp, "h.yaml")
    # The sink: a listening socket that never accepts, so attempts hang until their timeout.
    blackhole = socket.socket(); blackhole.bind(("127.0.0.1", dead)); blackhole.listen(1)
    open(cfg, "w").write(f"""server:
  listen: 127.0.0.1:{port}
  tokens: [{{name: b, token: bench-token, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  stuck: {{type: webhook, url: 'http://127.0.0.1:{dead}/x', concurrency: 1, timeout: 600s}}
routes:
  - channels: [stuck]
""")
    t0 = time.perf_counter()
    herald = subprocess.Popen([a.herald, "serve", "--config", cfg, "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1); c.request("GET", "/readyz")
                if c.getresponse().status == 200: break
            except OSError:
                pass
            time.sleep(0.002)
        startup_ms = (time.perf_counter() - t0) * 1000
        print(f"start-up to /readyz 200: {startup_ms:.0f} ms")
        time.sleep(1)
        idle = rss_mb(herald.pid)[0]
        print(f"idle RSS: {idle:.1f} MB")
        result = dict(startup_ms=startup_ms, rss_idle_mb=idle)
        lua = os.path.join(tmp, "post.lua")
        open(lua, "w").write('''
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"incident":"m-%d-%d","status":"triggered","severity":"minor","title":"Backlog"}', math.random(1, 1000000000), counter)
  return wrk.format("POST", "/v1/events", {["Content-Type"]="application/json", ["Authorization"]="Bearer bench-token"}, body)
end
''')
        for target in [10_000, 100_000, 1_000_000]:
            if target > a.max: break
            while queued(port) < target:
                subprocess.run(["wrk", "-t2", "-c32", "-d5s", "-s", lua, f"http://127.0.0.1:{port}"], capture_output=True)
            rss, hwm = rss_mb(herald.pid)
            print(f"{queued(port):>9,} queued: RSS {rss:.1f} MB (peak so far {hwm:.1f} MB), store {os.path.getsize(os.path.join(tmp, 'h.sqlite')) / 1e6:.0f} MB")
            result[f"rss_{target // 1000}k_mb"] = rss
            result["rss_peak_mb"] = hwm
        emit(result)
    finally:
        herald.send_signal(signal.SIGTERM)
        try: herald.wait(timeout=30)
        except subprocess.TimeoutExpired: herald.kill()
        blackhole.close()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
