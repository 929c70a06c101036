#!/usr/bin/env python3
"""Bad input against a live server: every malformed request gets a 4xx with a JSON {"error": …}
body naming the problem (never a 5xx, never a dropped connection); slow-loris connections do not
slow down a normal client; the server is healthy afterwards.

Limits are the documented defaults (server.max_body_bytes: 1048576).
"""
import json, os, socket, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h

MAX_BODY = 1048576
LORIS = 200
LORIS_SECONDS = 15


def raw(port, data, timeout=10, read_all=True):
    """Send raw bytes, return (status, headers-dict, body bytes) or (None, {}, b"") if the server
    closed without an answer. Sends in pieces; a server that answers early and closes is fine."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            for i in range(0, len(data), 65536):
                s.sendall(data[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                hdrs = {}
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.decode("latin-1").partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "-1"))
                if n >= 0 and len(body) >= n:
                    break
    finally:
        s.close()
    if not buf.startswith(b"HTTP/"):
        return None, {}, buf
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        body = body[:int(hdrs["content-length"])]
    return status, hdrs, body


def post(path, body, token, ctype="application/json", extra=b""):
    if isinstance(body, str):
        body = body.encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + extra + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def main():
    with h.Scenario("badinput", budget=90) as sc:
        s = h.run_secrets()
        sink = h.Sink(secret=s["webhook_secret"])
        chans = {"hook": {"type": "webhook", "url": f'"http://127.0.0.1:{sink.port}/hook/{s["hook_path"]}"',
                          "secret": f'"{s["webhook_secret"]}"'}}
        cfg = h.herald_config(chans, [(None, ["hook"])], h.standard_tokens(s))
        herald = h.Herald("badinput", cfg, log_level="info").start()
        port = herald.port
        ing, adm = s["ingest_token"], s["admin_token"]
        valid = {"incident": "bad-input", "status": "triggered", "title": "valid"}

        # (name, path, raw request, expected statuses, keywords one of which the error must contain, pagerduty-style?)
        big = json.dumps({**valid, "message": "x" * (MAX_BODY + 1)})
        chunked_big = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {ing}\r\n"
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        piece = b"x" * 65536
        for _ in range((2 * MAX_BODY) // len(piece)):
            chunked_big += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        chunked_big += b"0\r\n\r\n"
        lying = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {ing}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{").encode()
        deep_arr = "[" * 100000
        deep_obj = '{"a":' * 50000
        deep_inside = json.dumps(valid)[:-1] + ', "labels": {"a": ' + "[" * 100000 + "]" * 100000 + "}}"
        bad_utf8 = b'{"incident":"bad-\xff\xfe-utf8","status":"triggered","title":"t\xc3"}'
        overlong = b'{"incident":"\xc0\xafetc","status":"triggered","title":"t"}'
        truncated = json.dumps(valid)[:-7]
        size_kw = ["large", "too big", "bytes", "limit", "size"]
        json_kw = ["json", "pars", "nest", "deep", "depth", "invalid", "malformed", "syntax", "truncat", "unexpected", "utf"]
        utf_kw = ["utf", "encoding", "unicode", "invalid", "json"]
        cases = [
            ("body over max_body_bytes (Content-Length)", post("/v1/events", big, ing), {413}, size_kw),
            ("body over max_body_bytes (chunked)", chunked_big, {413}, size_kw),
            ("Content-Length: 10 GB, body never sent", lying, {413}, size_kw),
            ("100k [ nesting", post("/v1/events", deep_arr, ing), {400}, json_kw),
            ("50k {\"a\": nesting", post("/v1/events", deep_obj, ing), {400}, json_kw),
            ("100k [ nesting inside labels", post("/v1/events", deep_inside, ing), {400}, json_kw),
            ("invalid UTF-8", post("/v1/events", bad_utf8, ing), {400}, utf_kw),
            ("overlong UTF-8", post("/v1/events", overlong, ing), {400}, utf_kw),
            ("Content-Type: text/plain", post("/v1/events", json.dumps(valid), ing, ctype="text/plain"), {415}, ["content-type", "content type", "json"]),
            ("Content-Type: form", post("/v1/events", json.dumps(valid), ing, ctype="application/x-www-form-urlencoded"), {415}, ["content-type", "content type", "json"]),
            ("truncated JSON", post("/v1/events", truncated, ing), {400}, json_kw),
            ("empty body", post("/v1/events", b"", ing), {400}, json_kw + ["empty", "body"]),
            ("JSON array, not an object", post("/v1/events", "[1,2]", ing), {400}, json_kw + ["object"]),
            ("number 1e999999", post("/v1/events", '{"incident":"a","status":"triggered","title":"t","severity":1e999999}', ing), {400}, json_kw + ["severity", "number"]),
            ("trailing garbage", post("/v1/events", json.dumps(valid) + "}}garbage", ing), {400}, json_kw),
            ("alertmanager: 100k [", post("/v1/hooks/alertmanager", deep_arr, ing), {400}, json_kw),
            ("alertmanager: truncated", post("/v1/hooks/alertmanager", '{"alerts":[{"status":"fir', ing), {400}, json_kw),
            ("alertmanager: invalid UTF-8", post("/v1/hooks/alertmanager", b'{"alerts":[{"status":"\xff"}]}', ing), {400}, utf_kw),
            ("grafana: 100k [", post("/v1/hooks/grafana", deep_arr, ing), {400}, json_kw),
            ("grafana: over max_body_bytes", post("/v1/hooks/grafana", big, ing), {413}, size_kw),
            ("replay: 100k [", post("/v1/replay", deep_arr, adm), {400}, json_kw),
            ("replay: truncated", post("/v1/replay", '{"state":"fai', adm), {400}, json_kw),
            ("pagerduty: 100k [", post("/v2/enqueue", deep_arr, None), {400}, None),
            ("pagerduty: invalid UTF-8", post("/v2/enqueue", b'{"routing_key":"\xff","event_action":"trigger"}', None), {400, 401}, None),
            ("pagerduty: over max_body_bytes", post("/v2/enqueue", big, None), {413}, None),
        ]
        failures, lines = [], []
        for name, req, want, kws in cases:
            t = time.monotonic()
            try:
                st, hdrs, body = raw(port, req, timeout=15)
            except OSError as e:
                st, hdrs, body = None, {}, str(e).encode()
            dt = time.monotonic() - t
            h.record_answer("badinput", "RAW", name, st, body)
            try:
                j = json.loads(body)
            except ValueError:
                j = None
            if kws is None:   # PagerDuty-compatible: its own JSON error shape
                msg = json.dumps(j) if isinstance(j, dict) else None
            else:
                msg = j.get("error") if isinstance(j, dict) and isinstance(j.get("error"), str) else None
            ok = st in want and msg is not None and (kws is None or any(k in (msg + " " + str(j.get("field", ""))).lower() for k in kws))
            lines.append(f"  {name}: {st} in {dt * 1000:.0f} ms {body[:110].decode(errors='replace')!r}")
            if not ok:
                failures.append(f"{name}: got {st} {body[:160]!r}, expected {sorted(want)} with a JSON error" + (f" mentioning one of {kws[:4]}…" if kws else ""))
            if st is not None and st >= 500:
                failures.append(f"{name}: 5xx ({st})")
        # Request-level garbage: not a 5xx (a 4xx or a closed connection is fine)
        extra = [("100 KB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"),
                 ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n"),
                 # Routes+Ingest.swift accepts a missing Content-Type on purpose (openapi.json says 415 for "not application/json")
                 ("no Content-Type", post("/v1/events", json.dumps(valid), ing, ctype=None)),
                 ("NUL in title", post("/v1/events", '{"incident":"nul","status":"triggered","title":"a\\u0000b"}', ing)),
                 ("lone surrogate escape", post("/v1/events", '{"incident":"sur","status":"triggered","title":"a\\ud800b"}', ing))]
        for name, req in extra:
            try:
                st, _, body = raw(port, req, timeout=10)
            except OSError:
                st, body = None, b""
            h.record_answer("badinput", "RAW", name, st, body)
            lines.append(f"  {name}: {st} {body[:110].decode(errors='replace')!r}")
            if st is not None and st >= 500:
                failures.append(f"{name}: 5xx ({st}) {body[:160]!r}")
        c = h.Client(port, "badinput")
        st, _, _ = c.request("GET", "/healthz")
        h.check(st == 200, f"/healthz answered {st} after the malformed requests")
        sc.figure(f"{len(cases)} malformed bodies + {len(extra)} malformed requests: {len(cases) - len({f.split(':')[0] for f in failures})} answered as expected")
        for line in lines:
            print(line)

        # ---------------- slow loris
        def normal_requests(seconds, out):
            cl = h.Client(port, "badinput", token=ing, timeout=10)
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                i += 1
                t = time.monotonic()
                try:
                    if i % 2:
                        st, _, _ = cl.request("POST", "/v1/events", json.dumps({**valid, "incident": f"normal-{i}"}),
                                              {"Content-Type": "application/json"})
                        good = st == 202
                    else:   # a fresh connection each time: accept() must keep up too
                        c2 = h.Client(port, "badinput", timeout=10)
                        st, _, _ = c2.request("GET", "/readyz"); c2.close()
                        good = st == 200
                except OSError as e:
                    good, st = False, str(e)
                out.append((time.monotonic() - t, good, st))
                time.sleep(0.03)
            cl.close()
        base = []
        normal_requests(3, base)
        loris = []
        stop = threading.Event()
        closed_by_server = [0]
        line = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: "
                + b"a" * 200 + b"\r\n")

        def attack():
            for _ in range(LORIS):
                try:
                    so = socket.create_connection(("127.0.0.1", port), timeout=5)
                    so.setblocking(False)
                    loris.append(so)
                except OSError:
                    pass
            i = 0
            while not stop.is_set():
                for so in list(loris):
                    try:
                        so.send(line[i % len(line):i % len(line) + 1])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        loris.remove(so); so.close(); closed_by_server[0] += 1
                i += 1
                stop.wait(1.0)
        at = threading.Thread(target=attack, daemon=True)
        at.start()
        time.sleep(1.0)
        during = []
        normal_requests(LORIS_SECONDS - 1, during)
        still_open = len(loris)
        stop.set(); at.join(5)
        for so in loris:
            so.close()
        bl = [x[0] * 1000 for x in base]
        dl = [x[0] * 1000 for x in during]
        bad = [x for x in during if not x[1]]
        bp99, dp99 = h.percentile(bl, 99), h.percentile(dl, 99)
        sc.figure(f"slow loris: {LORIS} connections sending headers 1 byte/s for {LORIS_SECONDS} s ({still_open} still open at the end, "
                  f"{closed_by_server[0]} closed by the server); normal client {len(dl)} requests: p50 {h.percentile(dl, 50):.1f} ms "
                  f"p99 {dp99:.1f} ms (before the attack: {len(bl)} requests, p50 {h.percentile(bl, 50):.1f} ms p99 {bp99:.1f} ms), "
                  f"{len(bad)} failed")
        c = h.Client(port, "badinput", token=ing)
        st, _, _ = c.request("GET", "/healthz", token=None)
        st2, _, _ = c.request("POST", "/v1/events", json.dumps({**valid, "incident": "after"}), {"Content-Type": "application/json"})
        sc.figure(f"after: /healthz {st}, POST /v1/events {st2}")
        h.check(not failures, f"{len(failures)} malformed requests not answered as expected: " + " | ".join(failures))
        h.check(not bad, f"{len(bad)} normal requests failed during the slow-loris attack: {bad[:3]}")
        h.check(dp99 <= max(250.0, 3 * bp99), f"normal client p99 {dp99:.1f} ms during the attack > max(250 ms, 3 × {bp99:.1f} ms)")
        h.check(st == 200 and st2 == 202, f"after the attack: /healthz {st}, POST /v1/events {st2}")
        herald.stop()


if __name__ == "__main__":
    main()
