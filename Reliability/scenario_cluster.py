#!/usr/bin/env python3
"""Cluster: several `herald serve` nodes sharing one PostgreSQL store.

A throwaway PostgreSQL (scripts/pg-start; or HERALD_TEST_POSTGRES_URL, in which a fresh database is
created and dropped), migrated once with `herald migrate`. Every node has the same config: FANOUT
signed webhook channels (concurrency CONCURRENCY, timeout 2 s) to one recording sink, three more for
the all-clear phase, `store.lease_margin: 1s` (a dead node's claims are taken over ~3 s after they
were made, at the next 5 s lease sweep). Events are posted round-robin across the live nodes by
INGEST_THREADS keep-alive threads, one Idempotency-Key per event; an answer other than 202 (a
connection error, a 503) is retried with the same key on the next node.

1. Two nodes, then three (a third joins the same database): EVENTS × FANOUT deliveries each
   (10,000 + 10,000 by default; CLUSTER_EVENTS=2000 for 20,000 each), no faults. Every delivery id arrives, none twice; per-node share from each node's
   herald_deliveries_total.
2. kill -9 of one of three nodes once KILL_AT of the phase's deliveries arrived. The claims it
   held (rows in flight under its lease owner, read from the database right after the kill) are
   taken over by the others: nothing lost, every repeated delivery id is one of those claims, and
   repeats ≤ Σ channel concurrency. Takeover time = kill → arrival of the last of those claims.
3. The all-clear across nodes: AC_RUNS incidents triggered via node A, resolved via node B once
   their notices arrived; every all-clear has kind all_clear, thread = its notice's delivery id,
   and arrives within 5 s of the resolve's 202 (p50/p99 printed).
4. `pg_ctl restart -m fast` of the database while events are posted and delivered (the sink
   answering in 0.2 s, so attempts are in flight): every event that got a 202 has all its
   deliveries arrive; every node answers POST /v1/events again within 30 s (503s and errors are
   retried with the same key); 503s / connection errors seen by the clients and recovery times
   are printed; repeats ≤ nodes × Σ concurrency (attempts whose outcome could not be recorded are
   sent again after their lease). On failure, what each node answers then is printed.

    scripts/reliability cluster        (HERALD_BIN, HERALD_TEST_POSTGRES_URL, CLUSTER_EVENTS)
"""
import glob, json, os, pwd, re, shutil, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h

EVENTS = int(os.environ.get("CLUSTER_EVENTS", 1000))          # per no-fault phase (× FANOUT deliveries)
FAULT_EVENTS = int(os.environ.get("CLUSTER_FAULT_EVENTS", 300))   # kill and restart phases
FANOUT = 10
CONCURRENCY = 8
AC_CHANNELS = 3
AC_RUNS = int(os.environ.get("CLUSTER_AC_RUNS", 50))
INGEST_THREADS = 4
KILL_AT = 0.25
KILL_SINK_DELAY = 1.0      # the sink's answer delay until the kill: every lane of every node is busy
RESTART_SINK_DELAY = 0.2   # during the restart phase: attempts are in flight when the database goes
RESTART_DEADLINE_S = 30    # an event not accepted this long (retrying every 50 ms) fails the check
TIMEOUT_S, LEASE_MARGIN_S, SWEEP_S = 2, 1, 5
NAME = "cluster"


# ---------------------------------------------------------------- PostgreSQL

def find_pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def with_db(url, db):
    return re.sub(r"/[^/?]*(\?.*)?$", lambda m: f"/{db}{m.group(1) or ''}", url, count=1)


def psql(url, sql, timeout=30):
    r = subprocess.run(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=timeout)
    h.check(r.returncode == 0, f"psql failed ({sql[:80]}): {r.stderr.strip()}")
    return [line.split("|") for line in r.stdout.splitlines() if line]


class Postgres:
    """The server (ours from scripts/pg-start, or HERALD_TEST_POSTGRES_URL) and a fresh database."""

    def __init__(self):
        self.dir, self.db = None, None
        self.server = os.environ.get("HERALD_TEST_POSTGRES_URL") or None
        h.on_cleanup(self.stop)
        if not self.server:
            self.dir = tempfile.mkdtemp(prefix="herald-pg.")
            r = subprocess.run([os.path.join(h.REPO, "scripts/pg-start"), self.dir], capture_output=True, text=True, timeout=180)
            h.check(r.returncode == 0 and r.stdout.startswith("postgres"), f"scripts/pg-start failed: {r.stderr[-1500:]}")
            self.server = r.stdout.strip().splitlines()[-1]
        self.db = f"herald_cluster_{os.getpid()}_{int(time.time())}"
        psql(self.server, f"CREATE DATABASE {self.db}")
        self.url = with_db(self.server, self.db)
        # For the restart phase: the data directory and the user that owns it.
        if self.dir:
            self.data = os.path.join(self.dir, "data")
        else:
            try:
                self.data = psql(self.server, "SHOW data_directory")[0][0]
            except h.ScenarioFailure:
                self.data = "(unknown data directory)"

    def can_restart(self):
        return bool(find_pg_bin("pg_ctl")) and os.path.isfile(os.path.join(self.data, "postmaster.pid")) and \
            (os.geteuid() == 0 or os.stat(self.data).st_uid == os.geteuid())

    def restart(self):
        owner = pwd.getpwuid(os.stat(self.data).st_uid).pw_name
        cmd = [find_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t", "60", "restart"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", owner, "--"] + cmd
        # -l keeps the server's log where pg-start put it. Either way the restarted postmaster
        # inherits pg_ctl's output: a file beside the nodes' logs, never our pipes (it would hold
        # them open, and this call would wait for them until its timeout).
        if self.dir:
            cmd += ["-l", os.path.join(self.dir, "postgres.log")]
        with open(os.path.join(os.environ.get("RELIABILITY_DIR", tempfile.gettempdir()), "cluster-pg_ctl.log"), "w+b") as out:
            r = subprocess.run(cmd, stdout=out, stderr=out, timeout=90, stdin=subprocess.DEVNULL)
            out.seek(0)
            said = out.read().decode(errors="replace")
        h.check(r.returncode == 0, f"pg_ctl restart failed: {said[-1000:]}")

    def stop(self):
        if self.dir:
            # The server's log goes with the nodes' (kept when a scenario fails): a restart's
            # terminated backends and any lock waits are in it.
            try:
                shutil.copy(os.path.join(self.dir, "postgres.log"), os.path.join(os.environ.get("RELIABILITY_DIR", "."), "cluster-postgres.log"))
            except OSError:
                pass
            subprocess.run([os.path.join(h.REPO, "scripts/pg-stop"), self.dir], capture_output=True, timeout=90)
            self.dir = self.db = None
        elif self.server and self.db:
            subprocess.run(["psql", self.server, "-qAtX", "-c", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"],
                           capture_output=True, timeout=30)
            self.db = None


# ---------------------------------------------------------------- the cluster

class Cluster:
    def __init__(self, pg, cfg, secrets):
        self.pg, self.cfg, self.s = pg, cfg, secrets
        self.nodes = []
        h.on_cleanup(self.kill_all)

    def add(self):
        n = h.Herald(f"{NAME}-n{len(self.nodes) + 1}", self.cfg, log_level="info", listen_port=h.free_port(),
                     store=self.pg.url)
        n.alive = False
        self.nodes.append(n)
        return self.start(n)

    def start(self, n):
        n.start()
        n.alive = True
        n.owner = wait_owner(n)
        return n

    def live(self):
        return [n for n in self.nodes if n.alive]

    def kill_all(self):
        for n in self.nodes:
            n.kill9()

    def delivered_per_node(self):
        out = {}
        for n in self.live():
            m = h.metrics(n.port, NAME)
            out[n.name] = int(sum(v for k, v in m.items() if k.startswith("herald_deliveries_total{") and 'outcome="delivered"' in k))
        return out

    def depth(self):
        for n in self.live():
            try:
                return h.queue_depth(n.port, NAME, store=n.store)
            except OSError:
                continue
        return None


def wait_owner(node):
    """The dispatcher's lease owner id, from its 'dispatcher started' log line."""
    def find():
        for line in node.stderr_tail(200000).splitlines():
            if "dispatcher started" in line:
                m = re.search(r"\bnode=(\S+)", line)
                if m:
                    return m.group(1).strip('",]')
        return None
    return h.wait_until(find, 10, 0.05, f"{node.name}'s 'dispatcher started' log line")


class Ingest:
    """Posts events round-robin across the live nodes from INGEST_THREADS threads; a connection
    error or a 503 is retried (same Idempotency-Key) on the next live node."""

    def __init__(self, cluster, tag, count, body_fn, deadline_s=60, client_timeout=15):
        self.cluster, self.tag, self.count, self.body_fn, self.deadline_s = cluster, tag, count, body_fn, deadline_s
        self.client_timeout = client_timeout
        self.suspect = set()
        self.accepted = {}       # i -> (event_id, deliveries, t_202)
        self.errors = []
        self.answers = []        # (t, status or None) of every answer other than a first-try 202
        self.n503 = self.nconn = self.nother = 0
        self.lock = threading.Lock()
        self.counter = iter(range(count))
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(INGEST_THREADS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=120):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        h.check(not any(t.is_alive() for t in self.threads), f"ingest ({self.tag}) still running after {timeout} s")
        h.check(not self.errors, f"ingest ({self.tag}) failed for {len(self.errors)} events: {self.errors[:3]}")
        h.check(len(self.accepted) == self.count, f"ingest ({self.tag}): only {len(self.accepted)} of {self.count} events accepted")

    def run(self):
        s = self.cluster.s
        clients = {}
        while True:
            with self.lock:
                # After one event could not be posted in time, the others stop too (fail fast).
                i = None if self.errors else next(self.counter, None)
            if i is None:
                break
            body = json.dumps(self.body_fn(i))
            deadline = time.monotonic() + self.deadline_s
            attempt = 0
            while True:
                # A node that did not answer in time is left out for the rest of the phase (as a
                # load balancer would); whether it answers again is checked on its own.
                live = [n for n in self.cluster.live() if n.name not in self.suspect] or self.cluster.live()
                node = live[(i + attempt) % len(live)]
                c = clients.get(node.name)
                if c is None or c.port != node.port:
                    c = clients[node.name] = h.Client(node.port, NAME, token=s["ingest_token"], timeout=self.client_timeout)
                try:
                    st, _, data = c.request("POST", "/v1/events", body, {
                        "Content-Type": "application/json", "Idempotency-Key": f"{self.tag}-{i}"}, record=False)
                except OSError as e:
                    c.close()
                    st, data = None, repr(e).encode()
                    if isinstance(e, TimeoutError):
                        with self.lock:
                            self.suspect.add(node.name)
                now = time.monotonic()
                if st == 202:
                    r = json.loads(data)
                    with self.lock:
                        self.accepted[i] = (r["event_id"], r["deliveries"], now)
                        if attempt:
                            self.answers.append((now, 202))
                    break
                with self.lock:
                    self.answers.append((now, st))
                    if st is None:
                        self.nconn += 1
                    elif st == 503:
                        self.n503 += 1
                    else:
                        self.nother += 1
                if st not in (None, 503) or now > deadline:
                    with self.lock:
                        self.errors.append(f"event {i}: {st} {data[:200]!r}")
                    break
                attempt += 1
                time.sleep(0.05)
        for c in clients.values():
            c.close()


class Arrivals:
    """Parses the sink's arrivals incrementally: by delivery id, and (event id, channel) -> ids."""

    def __init__(self, sink):
        self.sink, self.n = sink, 0
        self.by_wid = {}       # wid -> [t, ...]
        self.pairs = {}        # (event_id, channel) -> {wid}
        self.bodies = {}       # wid -> parsed body (first arrival)
        self.mismatched = 0

    def update(self):
        arrivals = self.sink.snapshot()
        for a in arrivals[self.n:]:
            b = json.loads(a.body)
            if b.get("delivery_id") != a.wid:
                self.mismatched += 1
            self.by_wid.setdefault(a.wid, []).append(a.t)
            self.bodies.setdefault(a.wid, b)
            ch = a.path.strip("/").split("/")[0]
            self.pairs.setdefault((b["event"]["id"], ch), set()).add(a.wid)
        self.n = len(arrivals)
        return self


def expected_pairs(ingest):
    return {(ev, f"hook{c}") for ev, _, _ in ingest.accepted.values() for c in range(FANOUT)}


def settle(cluster, arr, expect, timeout, what):
    """Until every expected (event, channel) arrived and the store holds nothing waiting."""
    def done():
        arr.update()
        if not expect <= arr.pairs.keys():
            return None
        d = cluster.depth()
        return d if d and d["queued"] + d["in_flight"] + d["retrying"] == 0 else None
    try:
        return h.wait_until(done, timeout, 0.1, what)
    except h.ScenarioFailure:
        arr.update()
        missing = expect - arr.pairs.keys()
        raise h.ScenarioFailure(f"{what}: {len(missing)} of {len(expect)} deliveries never arrived "
                                f"(store: {cluster.depth()}); e.g. {sorted(missing)[:3]}")


def tally(arr, expect):
    """(lost, duplicate delivery ids per pair, repeated wids {wid: times}) for these pairs."""
    lost = len(expect - arr.pairs.keys())
    dup_ids = sum(len(arr.pairs[p]) - 1 for p in expect if p in arr.pairs)
    repeated = {}
    for p in expect:
        for wid in arr.pairs.get(p, ()):
            n = len(arr.by_wid[wid])
            if n > 1:
                repeated[wid] = n - 1
    return lost, dup_ids, repeated


def bulk_body(tag):
    return lambda i: h.event_body(i, incident=f"{tag}-{i}", labels={"lane": "bulk"})


# ---------------------------------------------------------------- phases

def phase_clean(sc, cluster, arr, tag):
    n = len(cluster.live())
    before = cluster.delivered_per_node()
    t0 = time.monotonic()
    ing = Ingest(cluster, tag, EVENTS, bulk_body(tag)).start()
    ing.join(120)
    t_ingest = time.monotonic() - t0
    expect = expected_pairs(ing)
    total = EVENTS * FANOUT
    h.check(sum(d for _, d, _ in ing.accepted.values()) == total, f"{n} nodes: 202s announced a different delivery count than {total}")
    settle(cluster, arr, expect, 120, f"{n} nodes: every delivery")
    dt = time.monotonic() - t0
    time.sleep(0.5)   # late repeats, if any, would arrive now
    arr.update()
    after = cluster.delivered_per_node()
    share = {k: after[k] - before.get(k, 0) for k in after}
    lost, dup_ids, repeated = tally(arr, expect)
    sc.figure(f"{n} nodes: {total} deliveries ({EVENTS} events × {FANOUT} channels, posted round-robin) in {dt:.1f} s "
              f"({total / dt:,.0f}/s; ingest {t_ingest:.1f} s, {ing.n503} 503s, {ing.nconn} connection errors); "
              f"lost {lost}, repeated {sum(repeated.values())}, extra delivery ids {dup_ids}; "
              f"per-node share {' / '.join(f'{v} ({v / max(1, sum(share.values())):.0%})' for v in share.values())}")
    h.check(lost == 0, f"{n} nodes: {lost} deliveries never arrived")
    h.check(dup_ids == 0, f"{n} nodes: {dup_ids} extra delivery ids for the same (event, channel)")
    h.check(not repeated, f"{n} nodes, no faults: {len(repeated)} delivery ids arrived more than once, e.g. {list(repeated)[:3]}")
    h.check(sum(share.values()) == total, f"{n} nodes: the nodes' herald_deliveries_total add up to {sum(share.values())}, not {total}")


def phase_kill(sc, cluster, arr, tag):
    live = cluster.live()
    h.check(len(live) == 3, "kill phase needs three nodes")
    victim = live[2]
    bound = FANOUT * CONCURRENCY
    total = FAULT_EVENTS * FANOUT
    start_n = arr.sink.count()
    t0 = time.monotonic()
    # A slow sink until the kill: work backs up and each node holds up to its Σ concurrency claims.
    arr.sink.route("/hook", h.sleep_then(KILL_SINK_DELAY))
    ing = Ingest(cluster, tag, FAULT_EVENTS, bulk_body(tag)).start()
    h.wait_until(lambda: arr.sink.count() - start_n >= KILL_AT * total, 60, 0.005, f"{KILL_AT:.0%} of the kill phase's deliveries")
    share_before = cluster.delivered_per_node()
    victim.kill9()
    t_kill = time.monotonic()
    victim.alive = False
    orphans = {r[0] for r in psql(cluster.pg.url, f"SELECT id FROM deliveries WHERE state = 'in_flight' AND lease_owner = '{victim.owner}'")}
    arr.sink.route("/hook", h.ok)
    ing.join(120)
    expect = expected_pairs(ing)
    settle(cluster, arr, expect, 60, "kill -9: every delivery")
    t_all = time.monotonic() - t0
    time.sleep(0.5)
    arr.update()
    lost, dup_ids, repeated = tally(arr, expect)
    n_rep = sum(repeated.values())
    not_orphan = [w for w in repeated if w not in orphans]
    # Takeover: the kill → the (first) arrival after the kill of each claim the dead node held.
    takeover = []
    for wid in orphans:
        after = [t for t in arr.by_wid.get(wid, []) if t > t_kill]
        if after:
            takeover.append(after[0] - t_kill)
    sent_before = sum(1 for w in orphans if any(t < t_kill for t in arr.by_wid.get(w, [])))
    sc.figure(f"kill -9 of 1 of 3 nodes at {KILL_AT:.0%} of {total} deliveries (sink answering in {KILL_SINK_DELAY:g} s until then; "
              f"the node had delivered {share_before.get(victim.name, '?')} in all): it held {len(orphans)} claims "
              f"({sent_before} of them had reached the sink); lost {lost}, repeated {n_rep} "
              f"(≤ its claims ≤ Σ concurrency {bound}, asserted); extra delivery ids {dup_ids}")
    if takeover:
        sc.figure(f"takeover (kill → arrival of its claims via the other nodes; lease = timeout {TIMEOUT_S} s + margin "
                  f"{LEASE_MARGIN_S} s, sweep every {SWEEP_S} s): first {min(takeover):.2f} s, last {max(takeover):.2f} s; "
                  f"phase settled {t_all:.1f} s after the first POST ({ing.nconn} connection errors, {ing.n503} 503s retried on other nodes)")
    h.check(lost == 0, f"kill -9: {lost} deliveries never arrived")
    h.check(dup_ids == 0, f"kill -9: {dup_ids} extra delivery ids for the same (event, channel)")
    h.check(not not_orphan, f"kill -9: {len(not_orphan)} repeated delivery ids were not claims of the killed node, e.g. {not_orphan[:3]}")
    h.check(len(orphans) <= bound, f"kill -9: the dead node held {len(orphans)} claims > Σ channel concurrency {bound}")
    h.check(n_rep <= len(orphans), f"kill -9: {n_rep} repeats > the {len(orphans)} claims the dead node held")
    h.check(len(takeover) == len(orphans), f"kill -9: {len(orphans) - len(takeover)} of the dead node's claims never arrived after the kill")
    limit = TIMEOUT_S + LEASE_MARGIN_S + SWEEP_S + 5
    h.check(not takeover or max(takeover) <= limit, f"kill -9: takeover took {max(takeover or [0]):.1f} s > {limit} s")
    # Back to three nodes for the next phase (a new process, a new lease owner).
    cluster.start(victim)


def phase_restart(sc, cluster, arr, tag):
    pg = cluster.pg
    if not pg.can_restart():
        sc.figure(f"database restart: SKIPPED (cannot run pg_ctl on {pg.data})")
        return
    n = len(cluster.live())
    total = FAULT_EVENTS * FANOUT
    bound = n * FANOUT * CONCURRENCY
    start_n = arr.sink.count()
    t0 = time.monotonic()
    arr.sink.route("/hook", h.sleep_then(RESTART_SINK_DELAY))
    ing = Ingest(cluster, tag, FAULT_EVENTS, bulk_body(tag), deadline_s=RESTART_DEADLINE_S, client_timeout=5).start()
    h.wait_until(lambda: arr.sink.count() - start_n >= KILL_AT * total, 60, 0.005, f"{KILL_AT:.0%} of the restart phase's deliveries")
    accepted_before = len(ing.accepted)
    t_r0 = time.monotonic()
    pg.restart()
    t_r1 = time.monotonic()
    try:
        ing.join(RESTART_DEADLINE_S * 2 + 30)
    except h.ScenarioFailure as e:
        raise h.ScenarioFailure(f"database restart: {e}; after the restart: {probe_nodes(cluster)}")
    expect = expected_pairs(ing)
    try:
        settle(cluster, arr, expect, RESTART_DEADLINE_S, "database restart: every delivery of an accepted event")
    except h.ScenarioFailure as e:
        raise h.ScenarioFailure(f"{e}; after the restart: {probe_nodes(cluster)}")
    arr.sink.route("/hook", h.ok)
    t_all = time.monotonic() - t0
    time.sleep(0.5)
    arr.update()
    lost, dup_ids, repeated = tally(arr, expect)
    n_rep = sum(repeated.values())
    # Recovery: the last failed answer, and the first 202 / arrival after the restart returned.
    fails = [t for t, st in ing.answers if st != 202]
    first_202 = min((t for _, _, t in ing.accepted.values() if t > t_r1), default=None)
    arrivals = sorted(t for ts in arr.by_wid.values() for t in ts if t > t_r1)
    first_arrival = arrivals[0] if arrivals else None
    # The longest pause in arrivals around the restart.
    window = sorted(t for ts in arr.by_wid.values() for t in ts if t_r0 - 2 < t < t_r1 + 30)
    gap = max((b - a for a, b in zip(window, window[1:])), default=0)
    fmt = lambda t: f"+{t - t_r0:.2f} s" if t is not None else "never"
    sc.figure(f"database restart (pg_ctl -m fast, {t_r1 - t_r0:.2f} s) at {KILL_AT:.0%} of {total} deliveries, "
              f"{n} nodes, {accepted_before} of {FAULT_EVENTS} events accepted before it: clients saw {ing.n503} 503s, "
              f"{ing.nconn} connection errors, {ing.nother} other answers (retried with the same key)")
    sc.figure(f"recovery: last failed post {fmt(max(fails) if fails else None)}, first 202 after the restart {fmt(first_202)}, "
              f"first delivery after it {fmt(first_arrival)}; longest pause in deliveries {gap:.2f} s; "
              f"all settled {t_all:.1f} s after the first POST")
    sc.figure(f"database restart: lost {lost}, repeated {n_rep} (≤ nodes × Σ concurrency {bound}, asserted), extra delivery ids {dup_ids}")
    # Every node must take events again after the restart (not only the cluster as a whole).
    silent = []
    for node in cluster.live():
        c = h.Client(node.port, NAME, token=cluster.s["ingest_token"], timeout=5)
        ok = False
        while not ok and time.monotonic() < t_r1 + RESTART_DEADLINE_S:
            try:
                st, _, _ = c.request("POST", "/v1/events", json.dumps(bulk_body(tag + "-probe")(node.port)),
                                     {"Content-Type": "application/json", "Idempotency-Key": f"{tag}-probe-{node.name}"}, record=False)
                ok = st == 202
            except OSError:
                c.close()
            if not ok:
                time.sleep(0.2)
        c.close()
        if not ok:
            silent.append(node.name)
    if ing.suspect or silent:
        sc.figure(f"database restart: nodes that stopped answering POST /v1/events: {sorted(ing.suspect | set(silent))}; "
                  f"still silent {RESTART_DEADLINE_S} s after the restart: {silent}; now: {probe_nodes(cluster)}")
    h.check(lost == 0, f"database restart: {lost} deliveries of accepted events never arrived")
    h.check(not silent, f"database restart: {silent} never answered POST /v1/events again within {RESTART_DEADLINE_S} s of the "
                        f"restart (ingest hangs while /readyz says 200): {probe_nodes(cluster)}")
    h.check(dup_ids == 0, f"database restart: {dup_ids} extra delivery ids for the same (event, channel)")
    h.check(n_rep <= bound, f"database restart: {n_rep} repeats > nodes × Σ concurrency {bound}")


def probe_nodes(cluster):
    """What each node answers now (5 s timeout): a fresh event, /readyz, and the store's queue depth."""
    out = []
    for n in cluster.live():
        res = []
        c = h.Client(n.port, NAME, token=cluster.s["ingest_token"], timeout=5)
        t = time.monotonic()
        try:
            st, _, _ = c.request("POST", "/v1/events", json.dumps(h.event_body(0, incident=f"probe-{os.urandom(4).hex()}")),
                                 {"Content-Type": "application/json"}, record=False)
            res.append(f"POST /v1/events {st} in {time.monotonic() - t:.2f} s")
        except OSError as e:
            res.append(f"POST /v1/events no answer in {time.monotonic() - t:.1f} s ({type(e).__name__})")
        c.close()
        try:
            st, _, _ = n.client(timeout=5).request("GET", "/readyz", record=False)
            res.append(f"/readyz {st}")
        except OSError as e:
            res.append(f"/readyz {type(e).__name__}")
        out.append(f"{n.name}: " + ", ".join(res))
    try:
        out.append(f"store: {h.queue_depth(cluster.live()[0].port, NAME, store=cluster.live()[0].store)}")
    except OSError:
        pass
    return "; ".join(out)


def phase_allclear(sc, cluster, arr, tag):
    a, b = cluster.live()[0], cluster.live()[1]
    s = cluster.s
    ca, cb = a.client(token=s["ingest_token"]), b.client(token=s["ingest_token"])
    sink = arr.sink
    chans = [f"ac{c}" for c in range(AC_CHANNELS)]
    lat, problems = [], []

    def wait_kind(key, kind, since, timeout=10):
        """{channel: parsed body} of the `kind` arrivals of incident `key` from sink index `since`."""
        found = {}
        end = time.monotonic() + timeout
        with sink.cond:
            while True:
                for x in sink.arrivals[since:]:
                    if x.path.startswith("/ac") and f'"{kind}"' in x.body.decode(errors="replace"):
                        body = json.loads(x.body)
                        if body["kind"] == kind and body["incident"]["key"] == key:
                            found.setdefault(x.path.strip("/").split("/")[0], (x.t, body))
                if len(found) >= AC_CHANNELS:
                    return found
                left = end - time.monotonic()
                if left <= 0:
                    return found
                sink.cond.wait(left)

    for i in range(AC_RUNS):
        key = f"{tag}-{i}"
        since = sink.count()
        st, _ = ca.json("POST", "/v1/events", {"incident": key, "status": "triggered", "severity": "critical",
                                               "title": "Cluster all-clear", "labels": {"lane": "ac"}}, record=False)
        h.check(st == 202, f"all-clear: trigger via {a.name} answered {st}")
        notices = wait_kind(key, "notice", since)
        h.check(len(notices) == AC_CHANNELS, f"all-clear: {key}: only {len(notices)} of {AC_CHANNELS} notices arrived")
        since = sink.count()
        st, _ = cb.json("POST", "/v1/events", {"incident": key, "status": "resolved", "title": "Cluster all-clear",
                                               "labels": {"lane": "ac"}}, record=False)
        t202 = time.monotonic()
        h.check(st == 202, f"all-clear: resolve via {b.name} answered {st}")
        clears = wait_kind(key, "all_clear", since, timeout=5)
        for ch in chans:
            if ch not in clears:
                problems.append(f"{key}/{ch}: no all-clear within 5 s of the resolve's 202")
                continue
            t, body = clears[ch]
            lat.append((t - t202) * 1000)
            if body.get("thread") != notices[ch][1]["delivery_id"]:
                problems.append(f"{key}/{ch}: all-clear thread {body.get('thread')!r} != notice {notices[ch][1]['delivery_id']!r}")
    ca.close(); cb.close()
    if lat:
        sc.figure(f"all-clear across nodes (trigger via node A, resolve via node B, {AC_RUNS} incidents × {AC_CHANNELS} channels): "
                  f"resolve 202 → all-clear at the sink p50 {h.percentile(lat, 50):.1f} ms, p99 {h.percentile(lat, 99):.1f} ms, "
                  f"max {max(lat):.1f} ms")
    h.check(not problems, f"all-clear across nodes: {len(problems)} problems: {problems[:3]}")


def main():
    with h.Scenario(NAME, budget=240) as sc:
        s = h.run_secrets()
        t_pg = time.monotonic()
        pg = Postgres()
        rc, out, err = h.run_cli(["migrate", "--store", pg.url], f"{NAME}-migrate")
        h.check(rc == 0, f"herald migrate failed ({rc}): {err[-500:]}")
        sink = h.Sink(secret=s["webhook_secret"])

        def hook(path):
            return {"type": "webhook", "url": f'"http://127.0.0.1:{sink.port}/{path}/{s["hook_path"]}"',
                    "secret": f'"{s["webhook_secret"]}"', "concurrency": CONCURRENCY, "timeout": f"{TIMEOUT_S}s"}
        chans = {f"hook{i}": hook(f"hook{i}") for i in range(FANOUT)}
        chans.update({f"ac{i}": hook(f"ac{i}") for i in range(AC_CHANNELS)})
        routes = [("{labels: {lane: bulk}}", [f"hook{i}" for i in range(FANOUT)]),
                  ("{labels: {lane: ac}}", [f"ac{i}" for i in range(AC_CHANNELS)])]
        cfg = h.herald_config(chans, routes, h.standard_tokens(s),
                              retry="{initial: 100ms, max: 1s, max_attempts: 100, max_age: 1h}",
                              store=f"{{url: '{pg.url}', lease_margin: {LEASE_MARGIN_S}s}}")
        cluster = Cluster(pg, cfg, s)
        cluster.add(); cluster.add()
        sc.figure(f"PostgreSQL {'from HERALD_TEST_POSTGRES_URL' if not pg.dir else 'from scripts/pg-start'}, "
                  f"database {pg.db}, two nodes ready in {time.monotonic() - t_pg:.1f} s")
        arr = Arrivals(sink)
        tag = f"cl-{os.urandom(3).hex()}"

        phase_clean(sc, cluster, arr, f"{tag}-two")
        cluster.add()
        phase_clean(sc, cluster, arr, f"{tag}-three")
        phase_kill(sc, cluster, arr, f"{tag}-kill")
        phase_allclear(sc, cluster, arr, f"{tag}-ac")
        phase_restart(sc, cluster, arr, f"{tag}-restart")   # last: the database restart leaves it as it is

        h.check(arr.mismatched == 0, f"{arr.mismatched} requests whose webhook-id differs from the body's delivery_id")
        h.check(sink.bad_signatures == 0, f"{sink.bad_signatures} requests with a bad webhook-signature")
        d = cluster.depth()
        h.check(d and d["failed"] == 0, f"the store shows failed deliveries: {d}")
        for n in cluster.live():
            n.stop()


if __name__ == "__main__":
    main()
