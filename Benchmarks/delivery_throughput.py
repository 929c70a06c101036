#!/usr/bin/env python3
"""Delivery throughput of `herald serve` to a fast loopback webhook sink (nginx answering 200).

Starts nginx and herald (release build by default) on free loopback ports, posts EVENTS events
over HTTP (each fanned out to FANOUT webhook channels), and waits until every delivery is recorded
as delivered. Prints: durable ingest rate and 202 latency, end-to-end deliveries/s, the sink's own
ceiling measured with wrk (same body size), and herald's peak RSS. A program, not a test: it
asserts nothing and prints figures.

    python3 Benchmarks/delivery_throughput.py [--events 10000] [--fanout 10] [--herald PATH]
"""
import argparse, http.client, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start_nginx(tmp, port):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_buffer_size 64k;
  server {{ listen 127.0.0.1:{port} reuseport; keepalive_requests 1000000;
    location / {{ return 200 '{{"ok":true}}'; }} }} }}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start")

def start_herald(herald, tmp, sink_port, fanout, concurrency):
    cfg = os.path.join(tmp, "herald.yaml")
    channels = "\n".join(f"""  hook{i}:
    type: webhook
    url: http://127.0.0.1:{sink_port}/hook{i}
    secret: whsec_YmVuY2htYXJrLXNpZ25pbmcta2V5
    concurrency: {concurrency}""" for i in range(fanout))
    with open(cfg, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1:0
  tokens: [{{name: bench, token: bench-ingest-token, scopes: [ingest]}}]
store: {{path: {tmp}/herald.sqlite}}
retry: {{initial: 100ms, max: 1s, max_attempts: 5, max_age: 1h}}
channels:
{channels}
routes:
  - channels: [{", ".join(f"hook{i}" for i in range(fanout))}]
""")
    err = open(os.path.join(tmp, "herald.log"), "w+")
    p = subprocess.Popen([herald, "serve", "--config", cfg, "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=err)
    # --log-level warning hides the "listening" line; find the port from /proc instead.
    for _ in range(300):
        port = listening_port(p.pid)
        if port: return p, port
        time.sleep(0.05)
    raise SystemExit("herald did not start: " + open(err.name).read())

def listening_port(pid):
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}
    except OSError:
        return None
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:
            return int(parts[1].split(":")[1], 16)
    return None

def post_events(port, n, threads):
    latencies, lock, counter = [], threading.Lock(), iter(range(n))
    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None: break
            body = json.dumps({"incident": f"bench-{i}", "status": "triggered", "severity": "major",
                               "title": f"Benchmark incident {i}", "message": "x" * 200})
            t = time.perf_counter()
            conn.request("POST", "/v1/events", body, {"Content-Type": "application/json", "Authorization": "Bearer bench-ingest-token"})
            r = conn.getresponse(); r.read()
            mine.append(time.perf_counter() - t)
            if r.status != 202: raise SystemExit(f"ingest answered {r.status}")
        with lock: latencies.extend(mine)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    return latencies

def delivered(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics"); body = conn.getresponse().read().decode()
    m = re.search(r'herald_queue_depth\{state="delivered"\} ([0-9.e+]+)', body)
    f = re.search(r'herald_queue_depth\{state="failed"\} ([0-9.e+]+)', body)
    return int(float(m.group(1))) if m else 0, int(float(f.group(1))) if f else 0

def wrk_ceiling(port, connections, body_bytes, tmp):
    if not shutil.which("wrk"): return None
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = string.rep("x", %d)\n' % body_bytes)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", "-d5s", "-s", lua, f"http://127.0.0.1:{port}/hook0"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(m.group(1)) if m else None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8, help="attempts in flight per channel")
    ap.add_argument("--ingest-threads", type=int, default=8)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-bench-")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    herald = None
    try:
        herald, port = start_herald(a.herald, tmp, sink_port, a.fanout, a.concurrency)
        total = a.events * a.fanout
        t0 = time.perf_counter()
        lat = post_events(port, a.events, a.ingest_threads)
        t_ingest = time.perf_counter() - t0
        while True:
            done, failed = delivered(port)
            if done + failed >= total: break
            if time.perf_counter() - t0 > 600: break
            time.sleep(0.2)
        t_all = time.perf_counter() - t0
        rss = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{herald.pid}/status").read()).group(1)) // 1024
        lat.sort()
        print(f"events: {a.events}, fan-out {a.fanout}, channel concurrency {a.concurrency}, ingest threads {a.ingest_threads}")
        print(f"durable ingest: {a.events / t_ingest:,.0f} events/s; 202 latency p50 {lat[len(lat)//2]*1000:.1f} ms, p99 {lat[int(len(lat)*0.99)]*1000:.1f} ms")
        print(f"delivered: {done:,} of {total:,} ({failed} failed) in {t_all:.2f} s from the first POST: {done / t_all:,.0f} deliveries/s end to end")
        ceiling = wrk_ceiling(sink_port, a.fanout * a.concurrency, 700, tmp)
        if ceiling:
            print(f"sink ceiling (wrk, {a.fanout * a.concurrency} connections, 700-byte POST): {ceiling:,.0f} requests/s; herald/ceiling = {done / t_all / ceiling:.0%}")
        print(f"herald peak RSS: {rss} MB")
    finally:
        if herald: herald.send_signal(signal.SIGTERM); herald.wait(timeout=30)
        nginx.send_signal(signal.SIGQUIT); nginx.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
