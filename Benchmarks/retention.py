#!/usr/bin/env python3
"""Retention: the latency of durable ingest while the background pruner deletes a million old
rows, beside the same ingest with the pruner idle, on the SQLite store (its single writer is what
ingest and the pruner share).

A store is made by `herald serve` (schema, auto_vacuum = INCREMENTAL) and then filled directly with
old history, 400 days in the past: INCIDENTS resolved incidents, each with a trigger and a resolve
event and, on each of FANOUT channels, a delivered notice and a delivered all-clear with one attempt
each (1,000,000 deliveries and 1,000,000 attempts at the defaults). Herald then starts on it with
the default `retention:` settings (a pass 30 s after start, batches of 500, 20 ms apart), and:

1. idle: wrk posts events for SECONDS (fan-out 3 to nginx, as ingest.py) before the first pass;
2. pruning: once herald_pruned_rows_total moves, the same wrk load for SECONDS while it prunes;
3. the pass is timed to its end (every old delivery gone), with the file's size before and after
   the freed pages went back.

Prints the 202 latencies (wrk's p50/p99) of both phases, their ratio, rows pruned per second and
the file sizes, and a RESULT line. Asserts nothing.

    python3 Benchmarks/retention.py [--herald .build/release/herald] [--incidents 100000] [--fanout 5] [--seconds 10]
"""
import argparse, json, os, random, re, shutil, sqlite3, sys, tempfile, time, http.client
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

TOKEN = "bench-retention-token-0123456789"

def metric_sum(port, name, label=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if label and label not in line: continue
            total += float(line.rsplit(" ", 1)[1])
    return total

def fill(path, incidents, fanout):
    """Old, finished history written straight into the store, as Herald would have left it."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    old = time.time() - 400 * 86400
    body = json.dumps({"id": "", "incident": "", "status": "triggered", "severity": "critical",
                       "title": "Old incident", "message": "resolvers time out " * 8, "components": ["web"],
                       "labels": {"team": "net"}, "occurred_at": "2025-10-25T10:00:00Z"}).encode()
    t = time.perf_counter()
    batch = 2000
    for start in range(0, incidents, batch):
        inc_rows, ev_rows, dl_rows, at_rows = [], [], [], []
        for i in range(start, min(incidents, start + batch)):
            key = f"old-{i}"
            t0 = old + i * 0.01
            t1 = t0 + 60
            inc_rows.append((key, "resolved", 1, "Old incident", "critical", t0, t1, t1, '["web"]', '{"team":"net"}', 1, t0))
            trig, res = f"evt_old_{i}_t", f"evt_old_{i}_r"
            ev_rows += [(trig, key, 1, "triggered", body, t0), (res, key, 1, "resolved", body, t1)]
            for c in range(fanout):
                for kind, ev, at, prio in (("notice", trig, t0, 0), ("all_clear", res, t1, 10)):
                    did = f"dlv_old_{i}_{c}_{kind}"
                    dl_rows.append((did, ev, key, 1, f"hook{c}", kind, "delivered", prio, 1, 0, at, 0, at, at, at + 0.05,
                                    200, f"ref-{i}-{c}", at + 0.05))
                    at_rows.append((did, 1, 0, at, 50.0, "delivered", 200))
        db.executemany("""INSERT INTO incidents (key, status, cycle, title, severity, opened_at, resolved_at, updated_at,
                          components, labels, triggers, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""", inc_rows)
        db.executemany("INSERT INTO events (id, incident, cycle, status, body, received_at) VALUES (?,?,?,?,?,?)", ev_rows)
        db.executemany("""INSERT INTO deliveries (id, event_id, incident, cycle, channel, kind, state, priority, attempts,
                          budget_attempts, budget_since, replays, created_at, due_at, updated_at, last_status, receipt,
                          delivered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?,?)""",
                       [r[:13] + r[14:] for r in dl_rows])
        db.executemany("""INSERT INTO attempts (delivery_id, number, replay, started_at, duration_ms, outcome, status)
                          VALUES (?,?,?,?,?,?,?)""", at_rows)
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    db.close()
    return n, time.perf_counter() - t

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--fanout", type=int, default=5, help="channels per old incident (2 deliveries each)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="herald-retention-")
    store = os.path.join(tmp, "herald.sqlite")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    herald = None
    try:
        channels = "\n".join(f"  hook{i}: {{type: webhook, url: 'http://127.0.0.1:{sink_port}/hook{i}', concurrency: 16}}" for i in range(3))
        cfg = f"""  tokens: [{{name: bench, token: {TOKEN}, scopes: [ingest]}}]
store: {{path: {store}}}
channels:
{channels}
routes:
  - channels: [hook0, hook1, hook2]
"""
        # Herald makes the file (schema, incremental auto-vacuum), then the history is written in.
        herald, port, _ = start_herald(a.herald, tmp, cfg); stop_herald(herald); herald = None
        n, fill_s = fill(store, a.incidents, a.fanout)
        size0 = os.path.getsize(store)
        print(f"old history: {n:,} delivered deliveries with {n:,} attempts, {2 * a.incidents:,} events, "
              f"{a.incidents:,} incidents, 400 days old ({size0 / 1e6:,.0f} MB, written in {fill_s:.0f} s)")
        lua = events_lua(tmp, TOKEN, '{"incident":"ret-%d-%d","status":"triggered","severity":"major","title":"Retention benchmark","message":"' + "x" * 200 + '"}')

        # At info level herald logs the end of a pass, after the freed pages went back to the file system.
        herald, port, _ = start_herald(a.herald, tmp, cfg, log_level="info")
        started = time.time()
        rps_idle, n_idle, p50_idle, p99_idle, bad_idle = wrk(lua, f"http://127.0.0.1:{port}", a.connections, a.seconds)
        if metric_sum(port, "herald_pruned_rows_total") > 0:
            raise SystemExit("the pruner started during the idle phase; lower --seconds")
        print(f"idle:    {rps_idle:,.0f} events/s, 202 p50 {p50_idle:.2f} ms, p99 {p99_idle:.2f} ms ({bad_idle} not 202)")

        while metric_sum(port, "herald_pruned_rows_total", 'table="deliveries"') == 0:
            if time.time() - started > 120: raise SystemExit("no pruning within 120 s of start")
            time.sleep(0.05)
        t_prune = time.perf_counter()
        before = metric_sum(port, "herald_pruned_rows_total", 'table="deliveries"')
        rps_p, n_p, p50_p, p99_p, bad_p = wrk(lua, f"http://127.0.0.1:{port}", a.connections, a.seconds)
        during = metric_sum(port, "herald_pruned_rows_total", 'table="deliveries"') - before
        print(f"pruning: {rps_p:,.0f} events/s, 202 p50 {p50_p:.2f} ms, p99 {p99_p:.2f} ms ({bad_p} not 202); "
              f"{during:,.0f} deliveries pruned during the load")
        if during + before >= n:
            print("note: the pass ended before the load did; the pruning phase was partly idle")

        while metric_sum(port, "herald_pruned_rows_total", 'table="deliveries"') < n:
            if time.perf_counter() - t_prune > 1800: raise SystemExit("pruning did not finish within 30 min")
            time.sleep(0.2)
        prune_s = time.perf_counter() - t_prune
        # The pass hands the freed pages back after its last batch (the file shrinks when the WAL
        # holding that is checkpointed) and then logs its end: wait for that line.
        log = os.path.join(tmp, "herald.log")
        while "pruned history past its retention" not in open(log).read():
            if time.perf_counter() - t_prune > 2400: raise SystemExit("the pass did not end within 40 min")
            time.sleep(1)
        reclaimed_s = time.perf_counter() - t_prune
        pruned = {t: metric_sum(port, "herald_pruned_rows_total", f'table="{t}"') for t in ("deliveries", "attempts", "events", "incidents")}
        total = sum(pruned.values())
        size1 = os.path.getsize(store)
        print(f"pass: {total:,.0f} rows ({', '.join(f'{v:,.0f} {k}' for k, v in pruned.items())}) in {prune_s:.0f} s "
              f"(from the first batch; {total / prune_s:,.0f} rows/s, with ingest running for the first {a.seconds} s); "
              f"file {size0 / 1e6:,.0f} MB -> {size1 / 1e6:,.0f} MB once the pass ended ({reclaimed_s:.0f} s after its first batch)")
        ratio = p99_p / p99_idle if p99_idle else None
        print(f"ingest p99 while pruning / idle: {ratio:.2f}x")
        emit(dict(idle_events_per_s=rps_idle, idle_p50_ms=p50_idle, idle_p99_ms=p99_idle,
                  pruning_events_per_s=rps_p, pruning_p50_ms=p50_p, pruning_p99_ms=p99_p, p99_ratio=ratio,
                  pruned_during_load=during, pruned_rows=total, prune_seconds=prune_s, pruned_rows_per_s=total / prune_s,
                  file_mb_before=size0 / 1e6, file_mb_after=size1 / 1e6, pass_seconds=reclaimed_s, non202=bad_idle + bad_p))
    finally:
        if herald: stop_herald(herald)
        stop_nginx(nginx)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
