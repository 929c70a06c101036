#!/usr/bin/env python3
"""Cluster: Herald on a shared PostgreSQL store with one, two and three nodes.

A throwaway PostgreSQL (scripts/pg-start, stopped at the end). For each node count, a fresh
database (`herald migrate`), N `herald serve` nodes with the same config, and the same nginx sink
(benchlib.start_nginx): EVENTS events are posted with wrk, one wrk per node (each posts
EVENTS / N events to its own node, incident keys never repeat), each fanned out to FANOUT signed
webhook channels (concurrency CONCURRENCY each, per node). The clock runs from the first POST until
the store holds every delivery and none waiting or in flight (polled every 100 ms on one psql session
with two index-only counts, so the poll does not load the database being measured; /metrics is read
once at the end: delivered and failed are each node's herald_deliveries_total counters, summed).

Per node count, the database's cost per delivery: transactions committed (pg_stat_database
xact_commit of the benchmark database: every statement outside a transaction counts as one,
read-only ones included), WAL syncs and WAL bytes (pg_stat_wal, pg_current_wal_lsn), and the CPU
time of every PostgreSQL process (utime+stime from /proc, exited backends included via the
postmaster's cutime/cstime) — beside Herald's own CPU per delivery. 1 s / (DB CPU per delivery)
is where one core of database saturates. With pg_stat_statements (preloaded by a restart after
pg-start), the five statements with the most execution time, their calls per delivery and rows per call.

Then the all-clear across nodes (three nodes): for each of RUNS incidents routed to 10 channels on
a small Python sink (TCP_NODELAY), trigger via node 1, wait for the 10 notices, resolve via node 2,
and time the resolve's 202 → each all-clear's arrival. A program, not a test: it prints figures and
a RESULT line.

    python3 Benchmarks/cluster.py [--herald .build/release/herald] [--events 5000] [--fanout 10]
                                  [--concurrency 16] [--nodes 1,2,3] [--allclear-runs 100]
"""
import argparse, http.client, http.server, json, math, os, re, shutil, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BODY = "x" * 200
SECRET = "whsec_YmVuY2htYXJrLXNpZ25pbmcta2V5"
TOKEN = "bench-token-0123456789abcdefgh"
CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- PostgreSQL

def psql(url, sql):
    r = subprocess.run(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"psql failed ({sql[:60]}): {r.stderr.strip()}")
    return r.stdout.strip()

def with_db(url, db):
    return re.sub(r"/[^/?]*(\?.*)?$", lambda m: f"/{db}{m.group(1) or ''}", url, count=1)

def pg_cpu_seconds(data_dir):
    """CPU seconds of the postmaster (with its reaped children: exited backends) and every live child."""
    pm = int(open(os.path.join(data_dir, "postmaster.pid")).readline())
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(f[1])
        if int(pid) == pm:
            total += sum(int(x) for x in f[11:15])     # utime stime cutime cstime
        elif ppid == pm:
            total += int(f[11]) + int(f[12])           # utime stime
    return total / CLK

def enable_pg_stat_statements(pgdir):
    """shared_preload_libraries needs a restart; answers whether it worked (the figures are optional)."""
    data = os.path.join(pgdir, "data")
    pg_ctl = shutil.which("pg_ctl") or next((os.path.join(d, "pg_ctl") for d in sorted(
        __import__("glob").glob("/usr/lib/postgresql/*/bin"), reverse=True) if os.access(os.path.join(d, "pg_ctl"), os.X_OK)), None)
    if not pg_ctl:
        return False
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write("\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n")
    cmd = [pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "-l", os.path.join(pgdir, "postgres.log"), "restart"]
    if os.geteuid() == 0:
        import pwd
        cmd = ["runuser", "-u", pwd.getpwuid(os.stat(data).st_uid).pw_name, "--"] + cmd
    return subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL).returncode == 0

def top_statements(url, delivered, n=5):
    """The statements of this database by total execution time: calls and rows per delivery."""
    try:
        out = psql(url, f"""SELECT calls, rows, round(total_exec_time::numeric, 1),
                regexp_replace(left(regexp_replace(query, '\\s+', ' ', 'g'), 70), '\\|', '/', 'g')
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC LIMIT {n}""")
    except SystemExit:
        return []
    rows = []
    for line in out.splitlines():
        calls, nrows, ms, q = line.split("|", 3)
        rows.append(dict(calls_per_delivery=int(calls) / max(1, delivered), rows_per_call=int(nrows) / max(1, int(calls)),
                         exec_ms=float(ms), query=q))
    return rows

class Watch:
    """One psql session polling what is still waiting (two index-only counts): cheap enough to poll
    every 100 ms without much loading the database it measures, unlike /metrics (a count over the table)."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", url, "-qAtX"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def query(self, sql):
        self.p.stdin.write(sql.strip().rstrip(";") + ";\n"); self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def waiting(self):
        return int(self.query("""SELECT (SELECT count(*) FROM deliveries WHERE state IN ('queued', 'retrying'))
                                      + (SELECT count(*) FROM deliveries WHERE state = 'in_flight')"""))

    def total(self):
        return int(self.query("SELECT count(*) FROM deliveries"))

    def close(self):
        self.p.stdin.close(); self.p.wait()

def db_counters(server, db):
    row = psql(server, f"""SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'),
        pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8, (SELECT wal_sync FROM pg_stat_wal)""").split("|")
    return dict(commits=int(row[0]), wal_bytes=int(row[1]), wal_syncs=int(row[2]))


# ---------------------------------------------------------------- herald config and nodes

def config(url, nginx_port, ac_port, fanout, concurrency):
    bulk = "\n".join(f"""  hook{i}: {{type: webhook, url: 'http://127.0.0.1:{nginx_port}/hook{i}', secret: {SECRET}, concurrency: {concurrency}}}"""
                     for i in range(fanout))
    ac = "\n".join(f"  ac{i}: {{type: webhook, url: 'http://127.0.0.1:{ac_port}/ac{i}', concurrency: 4}}" for i in range(10))
    return f"""  tokens: [{{name: bench, token: {TOKEN}, scopes: [ingest]}}]
store: {{url: '{url}'}}
retry: {{initial: 100ms, max: 1s, max_attempts: 5, max_age: 1h}}
channels:
{bulk}
{ac}
routes:
  - match: {{labels: {{lane: bulk}}}}
    channels: [{", ".join(f"hook{i}" for i in range(fanout))}]
  - match: {{labels: {{lane: ac}}}}
    channels: [{", ".join(f"ac{i}" for i in range(10))}]
"""

def start_nodes(a, tmp, n, body):
    nodes = []
    for k in range(n):
        d = os.path.join(tmp, f"node{k + 1}")
        os.makedirs(d, exist_ok=True)
        p, port, _ = start_herald(a.herald, d, body)
        nodes.append((p, port, d))
    return nodes


# ---------------------------------------------------------------- throughput

def run_throughput(a, tmp, server, data_dir, nginx_port, ac_port, n):
    db = f"bench_n{n}"
    psql(server, f"DROP DATABASE IF EXISTS {db}")
    psql(server, f"CREATE DATABASE {db}")
    url = with_db(server, db)
    subprocess.run([a.herald, "migrate", "--store", url], check=True, capture_output=True)
    if a.statements:
        psql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    nodes = start_nodes(a, tmp, n, config(url, nginx_port, ac_port, a.fanout, a.concurrency))
    try:
        per_node = math.ceil(a.events / n)
        conns = max(2, math.ceil(16 / n))           # 16 connections in all, whatever the node count
        loads = []
        scripts = []
        for k, (_, port, d) in enumerate(nodes):
            scripts.append(events_lua(d, TOKEN, '{"incident":"bench-n' + str(k + 1) + '-%d-%d","status":"triggered","severity":"major",'
                                      '"title":"Benchmark incident","labels":{"lane":"bulk"},"message":"' + BODY + '"}',
                                      per_thread=per_node))
        target = per_node * n * a.fanout
        if a.statements:
            psql(url, "SELECT pg_stat_statements_reset()")
        before = db_counters(server, db)
        cpu0 = pg_cpu_seconds(data_dir)
        hcpu0 = sum(cpu_seconds(p.pid) for p, _, _ in nodes)
        t0 = time.perf_counter()
        for (_, port, _), lua in zip(nodes, scripts):
            loads.append(subprocess.Popen(["wrk", "-t1", f"-c{conns}", "-d600s", "-s", lua, f"http://127.0.0.1:{port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        watch = Watch(url)
        try:
            while not (watch.waiting() == 0 and watch.total() >= target):
                if time.perf_counter() - t0 > 900:
                    raise SystemExit(f"{n} nodes: not drained after 900 s: {queue_depth(nodes[0][1])}")
                time.sleep(0.1)
            seconds = time.perf_counter() - t0
        finally:
            for l in loads:
                l.kill(); l.wait()
            watch.close()
        cpu = pg_cpu_seconds(data_dir) - cpu0
        hcpu = sum(cpu_seconds(p.pid) for p, _, _ in nodes) - hcpu0
        after = db_counters(server, db)
        per_node_delivered = []
        failed = 0
        for _, port, _ in nodes:
            per_node = queue_depth(port)      # delivered and failed are this node's counters
            per_node_delivered.append(per_node.get("delivered", 0))
            failed += per_node.get("failed", 0)
        delivered = sum(per_node_delivered)
        d = max(1, delivered)
        statements = top_statements(url, d) if a.statements else []
        return dict(statements=statements, nodes=n, delivered=delivered, failed=failed, seconds=seconds, rate=delivered / seconds,
                    commits_per_delivery=(after["commits"] - before["commits"]) / d,
                    wal_syncs_per_delivery=(after["wal_syncs"] - before["wal_syncs"]) / d,
                    wal_bytes_per_delivery=(after["wal_bytes"] - before["wal_bytes"]) / d,
                    db_cpu_us_per_delivery=cpu * 1e6 / d, herald_cpu_us_per_delivery=hcpu * 1e6 / d,
                    db_cpu_share=cpu / seconds, herald_cpu_share=hcpu / seconds, share=per_node_delivered, url=url)
    finally:
        for p, _, _ in nodes:
            stop_herald(p)
        # Its figures are read: drop it now, or the server's autovacuum of its 50,000 deliveries
        # runs during the next phase and is counted there (database CPU, the all-clear's tail).
        psql(server, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# ---------------------------------------------------------------- all-clear across nodes

class Sink(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

def start_ac_sink():
    arrivals, cond = [], threading.Condition()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True     # else Nagle + delayed ACK add 40 ms per answer
        def log_message(self, *x): pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.perf_counter()
            try:
                j = json.loads(body)
                with cond:
                    arrivals.append((j["kind"], j["incident"]["key"], self.path, j.get("delivery_id"), j.get("thread"), now))
                    cond.notify_all()
            except Exception:
                pass
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")

    port = free_port()
    srv = Sink(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port, arrivals, cond

def run_allclear(a, tmp, server, nginx_port, ac_port, arrivals, cond):
    db = "bench_allclear"
    psql(server, f"DROP DATABASE IF EXISTS {db}")
    psql(server, f"CREATE DATABASE {db}")
    url = with_db(server, db)
    subprocess.run([a.herald, "migrate", "--store", url], check=True, capture_output=True)
    nodes = start_nodes(a, os.path.join(tmp, "ac"), 3, config(url, nginx_port, ac_port, a.fanout, a.concurrency))
    try:
        c1 = http.client.HTTPConnection("127.0.0.1", nodes[0][1]); c2 = http.client.HTTPConnection("127.0.0.1", nodes[1][1])
        def post(c, body):
            c.request("POST", "/v1/events", json.dumps(body), {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
            r = c.getresponse(); r.read()
            assert r.status == 202, r.status
        def wait(key, kind, n, timeout):
            end = time.time() + timeout
            with cond:
                while True:
                    got = [x for x in arrivals if x[1] == key and x[0] == kind]
                    if len(got) >= n or time.time() >= end:
                        return got
                    cond.wait(max(0.001, end - time.time()))
        lat, missing, bad_thread = [], 0, 0
        for i in range(a.allclear_runs):
            key = f"ac-{i}"
            post(c1, {"incident": key, "status": "triggered", "severity": "critical", "title": "Benchmark outage", "labels": {"lane": "ac"}})
            notices = {x[2]: x[3] for x in wait(key, "notice", 10, 30)}
            post(c2, {"incident": key, "status": "resolved", "title": "Benchmark outage", "labels": {"lane": "ac"}})
            t202 = time.perf_counter()
            got = wait(key, "all_clear", 10, 30)
            missing += 10 - len(got)
            bad_thread += sum(1 for x in got if x[4] != notices.get(x[2]))
            lat.extend((x[5] - t202) * 1000 for x in got)
        lat.sort()
        return lat, missing, bad_thread
    finally:
        for p, _, _ in nodes:
            stop_herald(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=16, help="attempts in flight per channel, per node")
    ap.add_argument("--nodes", default="1,2,3")
    ap.add_argument("--allclear-runs", type=int, default=100)
    a = ap.parse_args()
    a.herald = os.path.abspath(a.herald)
    for _ in range(120):                     # the binary may be being rebuilt
        if os.access(a.herald, os.X_OK): break
        time.sleep(2)
    tmp = tempfile.mkdtemp(prefix="herald-cluster-")
    pgdir = tempfile.mkdtemp(prefix="herald-pg.")   # its own: pg-start gives it to the postgres user
    nginx = None
    started_pg = False
    try:
        r = subprocess.run([os.path.join(REPO, "scripts/pg-start"), pgdir], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"scripts/pg-start failed: {r.stderr[-2000:]}")
        started_pg = True
        server = r.stdout.strip().splitlines()[-1]
        a.statements = enable_pg_stat_statements(pgdir)
        version = psql(server, "SHOW server_version")
        sink_port = free_port()
        nginx = start_nginx(tmp, sink_port)
        ac_srv, ac_port, arrivals, cond = start_ac_sink()
        print(f"PostgreSQL {version} (scripts/pg-start: fsync on, synchronous_commit on), nginx sink, herald {a.herald}")
        result = {}
        runs = []
        for n in [int(x) for x in a.nodes.split(",")]:
            r = run_throughput(a, tmp, server, os.path.join(pgdir, "data"), sink_port, ac_port, n)
            runs.append(r)
            result[f"nodes_{n}"] = r["rate"]
            print(f"{n} node{'s' if n > 1 else ''}: {r['delivered']:,} delivered, {r['failed']} failed ({a.events:,} events x {a.fanout} "
                  f"channels, one wrk per node, concurrency {a.concurrency} per channel per node) in {r['seconds']:.2f} s: "
                  f"{r['rate']:,.0f} deliveries/s; per node {' / '.join(f'{x:,}' for x in r['share'])}")
            print(f"   database per delivery: {r['commits_per_delivery']:.2f} commits, {r['wal_syncs_per_delivery']:.3f} WAL syncs, "
                  f"{r['wal_bytes_per_delivery']:,.0f} WAL bytes, {r['db_cpu_us_per_delivery']:.0f} µs CPU "
                  f"(one database core saturates at ~{1e6 / max(1, r['db_cpu_us_per_delivery']):,.0f} deliveries/s); "
                  f"herald {r['herald_cpu_us_per_delivery']:.0f} µs CPU per delivery; "
                  f"busy cores: database {r['db_cpu_share']:.2f}, herald {r['herald_cpu_share']:.2f} of 2")
            for st in r["statements"]:
                print(f"     {st['calls_per_delivery']:6.2f} calls/delivery, {st['rows_per_call']:7.2f} rows/call, "
                      f"{st['exec_ms']:8.0f} ms: {st['query']}")
        lat, missing, bad_thread = run_allclear(a, tmp, server, sink_port, ac_port, arrivals, cond)
        p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] if lat else float("nan")
        print(f"all-clear across nodes (trigger via node 1, resolve via node 2, 3 nodes): {len(lat)} all-clears over "
              f"{a.allclear_runs} resolves x 10 channels ({missing} missing, {bad_thread} not threaded onto their notice): "
              f"resolve 202 -> all-clear at the sink p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1] if lat else float('nan'):.1f} ms")
        last = runs[-1]
        result.update(allclear_p50_ms=p(0.5), allclear_p99_ms=p(0.99),
                      commits_per_delivery=last["commits_per_delivery"], db_cpu_us_per_delivery=last["db_cpu_us_per_delivery"],
                      wal_syncs_per_delivery=last["wal_syncs_per_delivery"], herald_cpu_us_per_delivery=last["herald_cpu_us_per_delivery"],
                      per_nodes={str(r["nodes"]): {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()
                                                   if k not in ("url", "nodes", "statements")} for r in runs},
                      allclear_missing=missing, allclear_unthreaded=bad_thread)
        ac_srv.shutdown()
        emit(result)
    finally:
        if nginx:
            stop_nginx(nginx)
        if started_pg:
            subprocess.run([os.path.join(REPO, "scripts/pg-stop"), pgdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
