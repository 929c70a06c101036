"""Shared harness for Herald's reliability scenarios (stdlib only).

Free loopback ports, a run directory shared by every scenario of one suite run (logs, answer
bodies, per-run secrets), starting/killing `herald serve` with a generated YAML config, a threaded
recording HTTP sink whose behaviour is programmable per path, an HTTP client that records every
answer body, and polling helpers for the admin API and /metrics.

Every child process is started in its own session and killed with SIGKILL at exit (normal exit,
exception, SIGTERM/SIGINT, or the scenario's time budget running out).
"""
import atexit, base64, errno, hashlib, hmac, http.client, http.server, json, os, random, re, secrets, signal
import shutil, socket, socketserver, struct, subprocess, sys, tempfile, threading, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HERALD_BIN = os.path.abspath(os.environ.get("HERALD_BIN") or os.path.join(REPO, ".build/debug/herald"))


class ScenarioFailure(AssertionError):
    pass


def check(cond, msg):
    """Assert with a clear message (kept even under python -O)."""
    if not cond:
        raise ScenarioFailure(msg)


# ---------------------------------------------------------------- run directory, secrets, cleanup

def run_dir():
    d = os.environ.get("RELIABILITY_DIR")
    if not d:
        d = tempfile.mkdtemp(prefix="herald-reliability-")
        os.environ["RELIABILITY_DIR"] = d
    os.makedirs(d, exist_ok=True)
    return d


def run_secrets():
    """Distinctive random secrets for this suite run, shared by every scenario (secrets.json in
    the run directory). The security scenario scans every log and answer for them."""
    path = os.path.join(run_dir(), "secrets.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    tag = secrets.token_hex(4)
    s = {
        "ingest_token": f"INGESTtok{tag}{secrets.token_hex(12)}",
        "admin_token": f"ADMINtok{tag}{secrets.token_hex(12)}",
        "both_token": f"BOTHtok{tag}{secrets.token_hex(12)}",
        "webhook_secret_raw": f"WHSECraw{tag}{secrets.token_hex(12)}",
        "hook_path": f"SECRETPATH{tag}{secrets.token_hex(10)}",
        "hook_query": f"QUERYSECRET{tag}{secrets.token_hex(8)}",
        "header_secret": f"HDRSECRET{tag}{secrets.token_hex(10)}",
    }
    # A Standard Webhooks secret: whsec_ + base64 of random bytes (key = the decoded bytes).
    s["webhook_secret"] = "whsec_" + base64.b64encode(("WHSECb64" + tag + secrets.token_hex(12)).encode()).decode()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(s, f)
    os.replace(tmp, path)
    return s


def secret_strings(s=None):
    """The strings that must never appear in a log or an answer."""
    s = s or run_secrets()
    out = [s["ingest_token"], s["admin_token"], s["both_token"], s["webhook_secret_raw"], s["hook_path"],
           s["hook_query"], s["header_secret"], s["webhook_secret"], s["webhook_secret"][len("whsec_"):]]
    return out


_children = []
_cleanups = []


def _kill_all():
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception:
            pass
    for p in list(_children):
        _sigkill(p)


def _sigkill(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                p.kill()
            except ProcessLookupError:
                pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _on_signal(signum, frame):
    raise SystemExit(f"interrupted by signal {signum}")


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def on_cleanup(fn):
    _cleanups.append(fn)


def spawn(args, name, **kw):
    """Start a child in its own session, stdout/stderr to files in the run directory."""
    d = run_dir()
    out = open(os.path.join(d, f"{name}.out"), "ab")
    err = open(os.path.join(d, f"{name}.err"), "ab")
    deadline = time.monotonic() + 180
    while True:
        try:
            p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
            break
        except OSError as e:
            # ETXTBSY / ENOENT: the binary is being rebuilt by someone else; wait for it.
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(1)
    out.close(); err.close()
    _children.append(p)
    return p


def run_cli(args, name, timeout=60, env=None):
    """Run a short herald CLI command; output kept in the run directory (scanned for secrets)."""
    p = spawn([HERALD_BIN] + args, name, env=env)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _sigkill(p); rc = -9
    d = run_dir()
    with open(os.path.join(d, f"{name}.out"), "rb") as f:
        out = f.read().decode(errors="replace")
    with open(os.path.join(d, f"{name}.err"), "rb") as f:
        err = f.read().decode(errors="replace")
    return rc, out, err


class Scenario:
    """with Scenario("crash", budget=120) as sc: ... — a time budget (SIGALRM), a figures list
    printed at the end, and a PASS/FAIL line; exit status 1 on failure."""

    def __init__(self, name, budget):
        self.name, self.budget, self.figures, self.t0 = name, budget, [], time.monotonic()

    def __enter__(self):
        def alarm(signum, frame):
            raise ScenarioFailure(f"{self.name}: time budget of {self.budget} s exceeded")
        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(self.budget)
        run_secrets()
        return self

    def figure(self, line):
        self.figures.append(line)
        print(f"{self.name}: {line}", flush=True)

    def __exit__(self, et, ev, tb):
        signal.alarm(0)
        _kill_all()
        dt = time.monotonic() - self.t0
        if et is None:
            print(f"{self.name}: PASS ({dt:.1f} s)", flush=True)
            sys.exit(0)
        if issubclass(et, ScenarioFailure):
            print(f"{self.name}: FAIL: {ev} ({dt:.1f} s)", flush=True)
        else:
            import traceback
            traceback.print_exception(et, ev, tb)
            print(f"{self.name}: FAIL: {et.__name__}: {ev} ({dt:.1f} s)", flush=True)
        sys.exit(1)


# ---------------------------------------------------------------- ports, polling

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_until(fn, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise ScenarioFailure(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def listening_ports(pid):
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:"):
                inodes.add(link[8:-1])
    except OSError:
        return []
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:
                ports.append(int(parts[1].split(":")[1], 16))
    return ports


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


# ---------------------------------------------------------------- HTTP client that records answers

_resp_lock = threading.Lock()


def record_answer(scenario, method, path, status, body):
    """Every answer body the suite receives goes to responses-<scenario>.log (scanned for secrets)."""
    if isinstance(body, str):
        body = body.encode()
    with _resp_lock:
        with open(os.path.join(run_dir(), f"responses-{scenario}.log"), "ab") as f:
            # The request's query string is left out: it may carry a (deliberately misplaced) token.
            f.write(f"--- {method} {str(path).split('?')[0]} -> {status}\n".encode() + body + b"\n")


class Client:
    """A keep-alive HTTP/1.1 client to herald; reconnects on errors. Not thread-safe: one per thread."""

    def __init__(self, port, scenario, token=None, timeout=10):
        self.port, self.scenario, self.token, self.timeout = port, scenario, token, timeout
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close(); self.conn = None

    def request(self, method, path, body=None, headers=None, token="default", record=True):
        h = {}
        tok = self.token if token == "default" else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body, h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                self.close()
                if attempt == 2:
                    raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        if record:
            record_answer(self.scenario, method, path, r.status, data)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, method, path, body=None, **kw):
        status, headers, data = self.request(method, path, body, **kw)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data


def metrics(port, scenario):
    c = Client(port, scenario, timeout=30)
    try:
        status, _, body = c.request("GET", "/metrics", record=False)
    finally:
        c.close()
    check(status == 200, f"/metrics answered {status}")
    out = {}
    for m in re.finditer(r'^(\w+)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$', body.decode(), re.M):
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def queue_depth(port, scenario, store=None):
    """Deliveries per state. The waiting states come from /metrics (herald_queue_depth: waiting
    work only, so a scrape never counts the history); delivered, failed and superseded are read
    from the store itself when `store` (a SQLite path or a postgres:// URL) is given, else 0."""
    m = metrics(port, scenario)
    depth = {st: int(m.get(f'herald_queue_depth{{state="{st}"}}', 0)) for st in ("queued", "in_flight", "retrying")}
    finished = store_counts(store) if store else {}
    for st in ("delivered", "failed", "superseded"):
        depth[st] = finished.get(st, 0)
    return depth


def store_counts(store):
    """{state: count} of every delivery, read from the store (SQLite read-only beside the running
    server, or psql for PostgreSQL)."""
    if store.startswith("postgres"):
        psql = shutil.which("psql") or next(iter(sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), "psql")
        out = subprocess.run([psql, store, "-At", "-F", "\t", "-c", "SELECT state, count(*) FROM deliveries GROUP BY state"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise OSError(f"psql: {out.stderr.strip()}")
        return {st: int(n) for st, n in (line.split("\t") for line in out.stdout.splitlines() if line)}
    import sqlite3
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return {st: n for st, n in db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")}
    finally:
        db.close()


# ---------------------------------------------------------------- herald

class Herald:
    """`herald serve` with a generated config. Output to <name>-<n>.out/.err in the run directory."""

    def __init__(self, name, config_yaml, log_level="info", listen_port=None, store=None, extra_args=()):
        """store: a SQLite path or a postgres:// URL (default: herald.sqlite in its directory);
        extra_args: more `herald serve` arguments (e.g. ["--migrate"])."""
        self.name = name
        self.dir = os.path.join(run_dir(), name)
        os.makedirs(self.dir, exist_ok=True)
        self.store = store or os.path.join(self.dir, "herald.sqlite")
        self.extra_args = list(extra_args)
        self.config = os.path.join(self.dir, "herald.yaml")
        with open(self.config, "w") as f:
            f.write(config_yaml)
        self.log_level = log_level
        self.listen_port = listen_port
        self.proc, self.port, self.starts = None, None, 0

    def start(self, timeout=60):
        self.starts += 1
        args = [HERALD_BIN, "serve", "--config", self.config, "--store", self.store, "--log-level", self.log_level] + self.extra_args
        if self.listen_port:
            args += ["--listen", f"127.0.0.1:{self.listen_port}"]
        # The lead may be rebuilding: wait for the binary to come back.
        wait_until(lambda: os.access(HERALD_BIN, os.X_OK), 120, 0.5, f"{HERALD_BIN} to exist")
        self.proc = spawn(args, f"{self.name}-herald-{self.starts}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ScenarioFailure(f"herald exited with {self.proc.returncode} at start: {self.stderr_tail()}")
            ports = listening_ports(self.proc.pid)
            if ports:
                self.port = self.listen_port or ports[0]
                try:
                    c = Client(self.port, self.name, timeout=5)
                    st, _, _ = c.request("GET", "/readyz", record=False)
                    c.close()
                    if st == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise ScenarioFailure(f"herald did not become ready in {timeout} s: {self.stderr_tail()}")

    def stderr_tail(self, n=2000):
        try:
            with open(os.path.join(run_dir(), f"{self.name}-herald-{self.starts}.err"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        if self.proc:
            _sigkill(self.proc)

    def stop(self, timeout=15):
        """SIGTERM (graceful drain), then SIGKILL if it has not exited in `timeout` s."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                _sigkill(self.proc)

    def client(self, token=None, timeout=10):
        return Client(self.port, self.name, token=token, timeout=timeout)


def herald_config(channels, routes, tokens, max_body_bytes=None, retry="{initial: 100ms, max: 1s, max_attempts: 5, max_age: 1h}",
                  drain="2s", store="{path: ./herald.sqlite}", failed_auth=None):
    """channels: {name: {key: yaml-scalar-or-flow}}; routes: list of (match-flow-or-None, [channels]);
    store: the `store:` value (flow YAML), e.g. "{url: 'postgres://…', lease_margin: 1s}";
    failed_auth: the `server.failed_auth` value (flow YAML), e.g. "{burst: 1000, per_second: 1000}"."""
    lines = ["server:", "  listen: 127.0.0.1:0", f"  drain_timeout: {drain}"]
    if max_body_bytes:
        lines.append(f"  max_body_bytes: {max_body_bytes}")
    if failed_auth:
        lines.append(f"  failed_auth: {failed_auth}")
    lines.append("  tokens:")
    for name, tok, scopes in tokens:
        lines.append(f"    - {{name: {name}, token: \"{tok}\", scopes: [{', '.join(scopes)}]}}")
    lines += [f"store: {store}", f"retry: {retry}", "channels:"]
    for name, keys in channels.items():
        lines.append(f"  {name}:")
        for k, v in keys.items():
            lines.append(f"    {k}: {v}")
    lines.append("routes:")
    for match, chans in routes:
        if match:
            lines.append(f"  - match: {match}")
            lines.append(f"    channels: [{', '.join(chans)}]")
        else:
            lines.append(f"  - channels: [{', '.join(chans)}]")
    return "\n".join(lines) + "\n"


def standard_tokens(s=None):
    s = s or run_secrets()
    return [("monitoring", s["ingest_token"], ["ingest"]), ("ops", s["admin_token"], ["admin"]),
            ("both", s["both_token"], ["ingest", "admin"])]


def list_deliveries(client, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    st, body = client.json("GET", "/v1/deliveries" + (f"?{q}" if q else ""))
    check(st == 200, f"GET /v1/deliveries?{q} answered {st}: {body}")
    return body["deliveries"]


def event_body(i, incident=None, severity="major", **extra):
    b = {"incident": incident or f"rel-{i}", "status": "triggered", "severity": severity,
         "title": f"Reliability incident {i}", "message": "reliability suite"}
    b.update(extra)
    return b


# ---------------------------------------------------------------- sink

class Arrival:
    __slots__ = ("t", "path", "wid", "headers", "body", "answer", "peer")

    def __init__(self, t, path, wid, headers, body):
        self.t, self.path, self.wid, self.headers, self.body, self.answer, self.peer = t, path, wid, headers, body, None, None


# Behaviours: callables (arrival, sink) -> an action tuple.
#   ("answer", status, {headers}, body)  ("sleep", seconds, action)  ("reset",)  ("close",)
def ok(arrival=None, sink=None):
    return ("answer", 200, {}, b'{"ok":true}')


def answer(status, headers=None, body=b'{"error":"sink says no"}'):
    return lambda a, s: ("answer", status, headers or {}, body)


def flaky(p, seed):
    rng, lock = random.Random(seed), threading.Lock()

    def b(a, s):
        with lock:
            bad = rng.random() < p
        return ("answer", 500, {}, b'{"error":"flaky"}') if bad else ok()
    return b


def sleep_then(seconds, then=ok):
    return lambda a, s: ("sleep", seconds, then(a, s))


def reset():
    return lambda a, s: ("reset",)


def first_attempt(behaviour, then=ok):
    """`behaviour` for the first request of each webhook-id, `then` for the later ones."""
    seen, lock = set(), threading.Lock()

    def b(a, s):
        with lock:
            first = a.wid not in seen
            seen.add(a.wid)
        return behaviour(a, s) if first else then(a, s)
    return b


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass   # a peer that resets or is killed mid-request is expected here


class Sink:
    """A threaded HTTP/1.1 sink recording every POST (time, path, webhook-id, headers, body).
    Behaviour per path prefix: sink.route("/a", behaviour) (longest prefix wins; default ok).
    Sink(port=P, listen=False) reserves nothing: P stays closed until .start()."""

    def __init__(self, port=None, listen=True, secret=None):
        self.port = port or free_port()
        self.routes = {}
        self.arrivals = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.secret_key = None
        if secret:
            self.secret_key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
        self.bad_signatures = 0
        # Requests cut off before their Content-Length (the sender died mid-request, as in the
        # crash scenario): a receiver never acts on one, so they are counted, not recorded.
        self.truncated = 0
        self.server = None
        if listen:
            self.start()

    def route(self, prefix, behaviour):
        self.routes[prefix] = behaviour

    def behaviour(self, path):
        best = None
        for p in self.routes:
            if path.startswith(p) and (best is None or len(p) > len(best)):
                best = p
        return self.routes[best] if best is not None else ok

    def start(self):
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if len(body) < n:
                    with sink.lock:
                        sink.truncated += 1
                    self.close_connection = True
                    return
                a = Arrival(time.monotonic(), self.path, self.headers.get("webhook-id"), dict(self.headers), body)
                a.peer = self.client_address[1]
                if sink.secret_key is not None and not sink.signature_ok(a):
                    with sink.lock:
                        sink.bad_signatures += 1
                action = sink.behaviour(self.path)(a, sink)
                while action[0] == "sleep":
                    time.sleep(action[1]); action = action[2]
                a.answer = action[1] if action[0] == "answer" else action[0]
                with sink.cond:
                    sink.arrivals.append(a)
                    sink.cond.notify_all()
                if action[0] == "answer":
                    _, status, headers, rbody = action
                    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(rbody)}", "Content-Type: application/json"]
                    head += [f"{k}: {v}" for k, v in headers.items()]
                    self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + rbody)
                    self.wfile.flush()
                elif action[0] == "reset":
                    # SO_LINGER 0 then close: an RST, no answer (shutdown() first would send a FIN).
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.rfile.close(); self.wfile.close(); self.connection.close()
                    self.close_connection = True
                else:
                    self.close_connection = True

            do_PUT = do_POST

        self.server = _Server(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        on_cleanup(self.stop)
        return self

    def stop(self):
        if self.server:
            self.server.shutdown(); self.server.server_close(); self.server = None

    def signature_ok(self, a):
        sig = a.headers.get("webhook-signature", "")
        ts = a.headers.get("webhook-timestamp", "")
        if not a.wid or not ts or not sig:
            return False
        mac = base64.b64encode(hmac.new(self.secret_key, f"{a.wid}.{ts}.".encode() + a.body, hashlib.sha256).digest()).decode()
        return any(part == f"v1,{mac}" for part in sig.split(" "))

    def snapshot(self):
        with self.lock:
            return list(self.arrivals)

    def count(self):
        with self.lock:
            return len(self.arrivals)
