#!/usr/bin/env python3
"""Security: token scopes as openapi.json describes them, then a scan of every log file and every
answer body the whole suite produced for the run's configured secrets.

Auth (openapi.json): no token, a malformed header or an unknown token is 401 (with
WWW-Authenticate); a valid token without the scope is 403; /v2/enqueue takes an ingest token as
routing_key (anything else is 401, PagerDuty-style); /healthz, /readyz, /metrics, /status*,
/openapi.json are public.

Secrets (random per run, see harness.run_secrets): the ingest/admin tokens, the webhook signing
secret (whsec_… and its base64 part), a secret-looking webhook URL path and query, and a secret
header value. This scenario runs herald with --log-level debug and makes it log and answer about
webhooks that fail (connection refused, 404, timeout), runs `herald check`, `herald deliveries` and
`herald test-channel`, then scans every herald stdout/stderr, CLI output and recorded answer body
in the run directory (all scenarios of the suite run) for those strings.
"""
import http.client, re, urllib.request, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h


def main():
    with h.Scenario("security", budget=90) as sc:
        s = h.run_secrets()
        sink = h.Sink(secret=s["webhook_secret"])
        sink.route("/gone", h.answer(404, body=b'{"error":"no such hook"}'))
        sink.route("/slow", h.sleep_then(2.0))
        dead_port = h.free_port()

        def hook(path, port=None, **kw):
            c = {"type": "webhook",
                 "url": f'"http://127.0.0.1:{port or sink.port}/{path}/{s["hook_path"]}?token={s["hook_query"]}"',
                 "secret": f'"{s["webhook_secret"]}"',
                 "headers": f'{{X-Api-Key: "{s["header_secret"]}", Authorization: "Bearer {s["header_secret"]}"}}',
                 "retry": "{initial: 50ms, max: 200ms, max_attempts: 2}"}
            c.update(kw)
            return c
        chans = {"good": hook("good"), "gone": hook("gone"), "dead": hook("dead", port=dead_port),
                 "slow": hook("slow", timeout="300ms"),
                 "raw": hook("raw", secret=f'"{s["webhook_secret_raw"]}"')}
        # The matrix below sends dozens of wrong tokens from one address on purpose: the throttle
        # is checked on its own, further down, with its default budget.
        cfg = h.herald_config(chans, [(None, list(chans))], h.standard_tokens(s), failed_auth="{burst: 1000, per_second: 1000}")
        herald = h.Herald("security", cfg, log_level="debug").start()
        port = herald.port
        c = h.Client(port, "security")
        ev = h.event_body(1, incident="sec-1")
        ev_json = json.dumps(ev)
        J = {"Content-Type": "application/json"}
        wrong = "WRONGtok" + os.urandom(12).hex()
        problems = []

        def expect(desc, method, path, token, want, body=None, headers=None, raw_auth=None):
            hdrs = dict(headers or {})
            if raw_auth is not None:
                hdrs["Authorization"] = raw_auth
            st, rh, data = c.request(method, path, body, hdrs, token=token)
            try:
                j = json.loads(data)
            except ValueError:
                j = None
            ok = st == want
            if ok and st in (401, 403) and path != "/v2/enqueue":
                ok = isinstance(j, dict) and isinstance(j.get("error"), str)
                if ok and st == 401:
                    ok = "bearer" in rh.get("www-authenticate", "").lower()
            if not ok:
                problems.append(f"{desc}: {method} {path} -> {st} {data[:120]!r} (expected {want})")
            return st, j

        expect("no token", "POST", "/v1/events", None, 401, ev_json, J)
        expect("wrong token", "POST", "/v1/events", wrong, 401, ev_json, J)
        expect("Basic auth", "POST", "/v1/events", None, 401, ev_json, J, raw_auth="Basic " + s["ingest_token"])
        expect("Bearer without token", "POST", "/v1/events", None, 401, ev_json, J, raw_auth="Bearer ")
        expect("token in the query string", "POST", f"/v1/events?access_token={s['ingest_token']}", None, 401, ev_json, J)
        expect("admin-only token on ingest", "POST", "/v1/events", s["admin_token"], 403, ev_json, J)
        expect("admin-only token on alertmanager", "POST", "/v1/hooks/alertmanager", s["admin_token"], 403, '{"alerts":[]}', J)
        expect("no token on grafana", "POST", "/v1/hooks/grafana", None, 401, '{}', J)
        st, acc = expect("ingest token", "POST", "/v1/events", s["ingest_token"], 202, ev_json, J)
        expect("ingest+admin token on ingest", "POST", "/v1/events", s["both_token"], 202, json.dumps(h.event_body(2, incident="sec-2")), J)
        for method, path, body in [("GET", "/v1/deliveries", None), ("GET", "/v1/deliveries/dlv_x", None),
                                   ("POST", "/v1/deliveries/dlv_x/replay", None), ("POST", "/v1/replay", '{"state":"failed","dry_run":true}'),
                                   ("GET", "/v1/incidents", None), ("GET", "/v1/incidents/sec-1", None)]:
            expect("no token on admin", method, path, None, 401, body, J if body else None)
            expect("wrong token on admin", method, path, wrong, 401, body, J if body else None)
            expect("ingest token on admin", method, path, s["ingest_token"], 403, body, J if body else None)
        expect("admin token on admin", "GET", "/v1/deliveries", s["admin_token"], 200)
        expect("ingest+admin token on admin", "GET", "/v1/incidents", s["both_token"], 200)
        pd = {"event_action": "trigger", "dedup_key": "sec-pd", "payload": {"summary": "pd", "source": "rel", "severity": "critical"}}
        expect("pagerduty: admin-only token as routing_key", "POST", "/v2/enqueue", None, 401, json.dumps({**pd, "routing_key": s["admin_token"]}), J)
        expect("pagerduty: wrong routing_key", "POST", "/v2/enqueue", None, 401, json.dumps({**pd, "routing_key": wrong}), J)
        expect("pagerduty: ingest token as routing_key", "POST", "/v2/enqueue", None, 202, json.dumps({**pd, "routing_key": s["ingest_token"]}), J)
        for path in ("/healthz", "/readyz", "/metrics", "/status.json", "/openapi.json", "/status", "/status/feed.atom"):
            expect("public", "GET", path, None, 200)
        n_auth = 40

        # Make herald log and answer about failing webhooks, then read everything back.
        adm = herald.client(token=s["admin_token"])

        def settled():
            ds = h.list_deliveries(adm, limit=1000)
            return ds if len(ds) >= 3 * len(chans) and all(d["state"] in ("delivered", "failed") for d in ds) else None
        ds = h.wait_until(settled, 30, 0.3, "the security scenario's deliveries to settle")
        for d in ds:
            adm.json("GET", f"/v1/deliveries/{d['id']}")
        adm.json("GET", "/v1/incidents")
        adm.json("GET", "/v1/incidents/sec-1")
        adm.json("POST", "/v1/replay", {"state": "failed", "dry_run": True})
        for path in ("/metrics", "/status.json", "/openapi.json"):
            c.request("GET", path)
        env = dict(os.environ, HERALD_URL=f"http://127.0.0.1:{port}", HERALD_TOKEN=s["admin_token"])
        env.pop("HERALD_CONFIG", None)
        cli = [(["check", "--config", herald.config], "security-cli-check"),
               (["deliveries", "--json"], "security-cli-deliveries-json"),
               (["deliveries", "--failed"], "security-cli-deliveries-failed"),
               (["deliveries", "--id", ds[0]["id"]], "security-cli-deliveries-id"),
               (["replay", "--state", "failed", "--since", "1h", "--dry-run"], "security-cli-replay"),
               (["test-channel", "gone", "--config", herald.config], "security-cli-test-gone"),
               (["test-channel", "dead", "--config", herald.config], "security-cli-test-dead")]
        cli_rcs = {}
        for args, name in cli:
            rc, out, err = h.run_cli(args, name, timeout=60, env=env)
            cli_rcs[name.replace("security-cli-", "")] = rc
        herald.stop()
        failed_reasons = sorted({(d["channel"], (d.get("last_error") or "")[:60]) for d in ds if d["state"] == "failed"})

        # ---- the scan
        root = h.run_dir()
        names = {v: k for k, v in s.items()}
        wanted = h.secret_strings(s)
        hits, files, nbytes = [], 0, 0
        for dirpath, _, filenames in os.walk(root):
            for fn in filenames:
                if fn.endswith((".yaml", ".sqlite", ".sqlite-wal", ".sqlite-shm")) or fn.startswith("secrets.json"):
                    continue
                path = os.path.join(dirpath, fn)
                with open(path, "rb") as f:
                    data = f.read()
                files += 1; nbytes += len(data)
                for sec in wanted:
                    i = data.find(sec.encode())
                    if i >= 0:
                        ctx = data[max(0, i - 60):i].decode(errors="replace").replace("\n", " ")
                        hits.append(f"{os.path.relpath(path, root)}: {names.get(sec, 'whsec base64')} after …{ctx!r}")
        # Token guessing is throttled per client address, with the default budget (a burst of 10,
        # then 1 per second): the 11th wrong token from 127.0.0.1 gets 429 with Retry-After, and
        # so does the right token from there while it lasts; the right token from 127.0.0.2 works.
        tcfg = h.herald_config({"good": hook("good")}, [(None, ["good"])], h.standard_tokens(s))
        throttled = h.Herald("security-throttle", tcfg).start()

        def post(token, source):
            conn = http.client.HTTPConnection("127.0.0.1", throttled.port, timeout=10, source_address=(source, 0))
            conn.request("POST", "/v1/events", ev_json, {"Authorization": f"Bearer {token}", **J})
            r = conn.getresponse()
            r.read()
            conn.close()
            return r.status, r.getheader("Retry-After")
        guesses = [post(wrong + str(i), "127.0.0.1")[0] for i in range(11)]
        right_here = post(s["ingest_token"], "127.0.0.1")
        right_elsewhere = post(s["ingest_token"], "127.0.0.2")
        mtext = urllib.request.urlopen(f"http://127.0.0.1:{throttled.port}/metrics", timeout=10).read().decode()
        counted = re.search(r'herald_auth_failures_total\{outcome="throttled"\} (\d+)', mtext)
        if guesses[:10] != [401] * 10 or guesses[10] != 429:
            problems.append(f"throttle: 11 wrong tokens answered {guesses}, expected 10 × 401 then 429")
        if right_here[0] != 429 or not (right_here[1] or "").isdigit():
            problems.append(f"throttle: the right token from the throttled address got {right_here}, expected 429 with Retry-After")
        if right_elsewhere[0] != 202:
            problems.append(f"throttle: the right token from another address got {right_elsewhere[0]}, expected 202")
        if not counted or int(counted.group(1)) < 2:
            problems.append("throttle: /metrics does not count the throttled requests")
        throttled.stop()
        n_auth += 4
        sc.figure(f"throttle: wrong tokens {guesses.count(401)} × 401 then {guesses[10]}; right token there {right_here[0]} "
                  f"(Retry-After {right_here[1]}), from 127.0.0.2 {right_elsewhere[0]}")
        sc.figure(f"{n_auth}+ auth checks, {len(problems)} wrong; CLI exit codes {cli_rcs}")
        sc.figure(f"failed-delivery reasons seen: {failed_reasons}")
        sc.figure(f"scanned {files} files ({nbytes / 1e6:.1f} MB: herald logs of every scenario, CLI output, every answer body) "
                  f"for {len(wanted)} secrets: {len(hits)} hits")
        for hit in hits[:15]:
            print("  leak:", hit)
        # The scan is only meaningful if the secrets really are configured and the logs exist.
        with open(herald.config) as f:
            conf = f.read()
        h.check(all(x in conf for x in (s["ingest_token"], s["admin_token"], s["hook_path"], s["webhook_secret"], s["header_secret"])),
                "the secrets scanned for are not all in the security config")
        with open(os.path.join(root, "security-herald-1.err"), "rb") as f:
            log = f.read()
        h.check(b" debug herald" in log and log.count(b"delivery=") >= 10,
                "herald's debug log of the security scenario has no debug lines or no delivery lines: nothing to scan")
        h.check(not problems, f"{len(problems)} auth answers wrong: " + " | ".join(problems))
        h.check(not hits, f"{len(hits)} secret occurrences in logs/answers, first: {hits[:3]}")


if __name__ == "__main__":
    main()
