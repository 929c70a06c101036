"""What every benchmark program shares: free loopback ports, an nginx sink, starting `herald serve`
on a generated config, reading its metrics and memory, loading it with wrk, and reporting.

Each program prints human-readable lines and, last, one `RESULT {json}` line that
`Benchmarks/run` collects across repetitions.
"""
import http.client, json, os, re, shutil, signal, socket, subprocess, sys, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"{what} did not start listening on {port}")

def start_nginx(tmp, port):
    """nginx from Debian's nginx-light answering every request with 200 and a small JSON body."""
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
    wait_port(port, "nginx")
    return p

def stop_nginx(p):
    p.send_signal(signal.SIGQUIT)
    try: p.wait(timeout=10)
    except subprocess.TimeoutExpired: p.kill()

def start_herald(herald, tmp, config_body, log_level="error"):
    """Writes `server.listen` on a free port plus `config_body` (YAML), starts `herald serve`, waits
    for /readyz. Answers (process, port, seconds from exec to ready)."""
    port = free_port()
    cfg = os.path.join(tmp, "herald.yaml")
    with open(cfg, "w") as f:
        f.write(f"server:\n  listen: 127.0.0.1:{port}\n" + config_body)
    log = open(os.path.join(tmp, "herald.log"), "w")
    t0 = time.perf_counter()
    p = subprocess.Popen([herald, "serve", "--config", cfg, "--log-level", log_level], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        if p.poll() is not None:
            raise SystemExit("herald exited: " + open(log.name).read())
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1); c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return p, port, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit("herald did not become ready: " + open(log.name).read())

def stop_herald(p):
    p.send_signal(signal.SIGTERM)
    try: p.wait(timeout=30)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

def queue_depth(port):
    """{state: count} from herald's /metrics: the waiting states (queued, retrying, in_flight) from
    herald_queue_depth (the whole store), and delivered / failed from this node's
    herald_deliveries_total counters (summed over channels; since this process started)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    q = {m.group(1): int(float(m.group(2)))
         for m in re.finditer(r'herald_queue_depth\{state="(\w+)"\} ([0-9.e+]+)', body)}
    for outcome in ("delivered", "failed"):
        q[outcome] = int(sum(float(v) for v in re.findall(
            r'^herald_deliveries_total\{[^}]*outcome="' + outcome + r'"[^}]*\} (\S+)$', body, re.M)))
    return q

def rss_mb(pid):
    """(current RSS, peak RSS) in MB."""
    status = open(f"/proc/{pid}/status").read()
    return (int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024,
            int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)

def cpu_seconds(pid):
    """User + system CPU time the process has used so far (robust to a busy machine, unlike rates)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def events_lua(tmp, token, body_format, per_thread=None):
    """A wrk script posting events whose incident keys never repeat (thread id + counter), not even
    across several wrk runs of the same script (the thread id starts from the clock: a repeated
    trigger of an open incident pages nobody, so a repeated key would build no backlog). With
    `per_thread`, each wrk thread stops after that many answers. `body_format` is a Lua format
    string with two %d (thread, counter)."""
    path = os.path.join(tmp, "events.lua")
    stop = f"if responses >= {per_thread} then wrk.thread:stop() end" if per_thread else ""
    with open(path, "w") as f:
        f.write(f'''
local threads, n = {{}}, os.time() % 1000000 * 100
function setup(thread) n = n + 1; thread:set("tid", n); table.insert(threads, thread) end
counter, responses, non202 = 0, 0, 0
request = function()
  counter = counter + 1
  local body = string.format('{body_format}', tid, counter)
  return wrk.format("POST", "/v1/events", {{["Content-Type"]="application/json", ["Authorization"]="Bearer {token}"}}, body)
end
response = function(status, headers, body)
  responses = responses + 1
  if status ~= 202 then non202 = non202 + 1 end
  {stop}
end
done = function(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non202") end
  io.write(string.format("NON202 %d\\n", bad))
  for _, p in ipairs({{50, 99}}) do io.write(string.format("P%d %f\\n", p, latency:percentile(p) / 1000.0)) end
end
''')
    return path

def wrk(script, url, connections, seconds, threads=2):
    """Runs wrk; answers (requests/s, requests, p50 ms, p99 ms, non-202 answers)."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    n = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"P50 ([0-9.]+)", out); p99 = re.search(r"P99 ([0-9.]+)", out)
    bad = re.search(r"NON202 (\d+)", out)
    return rps, n, float(p50.group(1)) if p50 else None, float(p99.group(1)) if p99 else None, int(bad.group(1)) if bad else 0

def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]

def emit(result):
    """The machine-readable line Benchmarks/run collects."""
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
