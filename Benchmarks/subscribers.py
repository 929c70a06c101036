#!/usr/bin/env python3
"""One public incident to N confirmed status-page subscribers (default 100,000), by email to a local
SMTP server (aiosmtpd): time from the trigger's 202 to the last notice the server accepted, from the
resolve's 202 to the last all-clear, and Herald's peak RSS meanwhile. The subscribers are written
into a fresh store before Herald starts (as confirmed sign-ups), so the figures are the fan-out and
the sending, not the sign-ups. Prints figures and a RESULT line; asserts nothing.

    .venv-test/bin/python Benchmarks/subscribers.py [--subscribers 100000] [--concurrency 16]
(needs aiosmtpd in the Python that runs it: scripts/test installs it into .venv-test)
"""
import argparse, http.client, json, os, shutil, sqlite3, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit, free_port, rss_mb, cpu_seconds, start_herald, stop_herald

class Counter:
    """Counts notices and all-clears (a reply: `Subject: Re: …`) and when the last of each came."""
    def __init__(self):
        self.lock = threading.Lock()
        self.notices = self.clears = 0
        self.last_notice = self.last_clear = None
    async def handle_DATA(self, server, session, envelope):
        reply = b"\r\nIn-Reply-To: " in envelope.content or envelope.content.startswith(b"In-Reply-To: ")
        now = time.perf_counter()
        with self.lock:
            if reply:
                self.clears += 1; self.last_clear = now
            else:
                self.notices += 1; self.last_notice = now
        return "250 OK"

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    from aiosmtpd.controller import Controller
    counter = Counter()
    smtp_port = free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = tempfile.mkdtemp(prefix="herald-subs-")
    store = os.path.join(tmp, "h.sqlite")
    config = f"""  tokens: [{{name: b, token: bench-token-0123456789abcdefgh, scopes: [ingest]}}]
store: {{path: {store}}}
channels:
  public: {{type: statuspage}}
  customers: {{type: subscribers, url: 'smtp://127.0.0.1:{smtp_port}', from: 'status@example.com', starttls: 'off',
              public_url: 'https://status.example.com', concurrency: {a.concurrency}}}
routes:
  - channels: [public]
"""
    # A first start makes the store; the subscribers go in while Herald is stopped.
    herald, _, _ = start_herald(a.herald, tmp, config)
    stop_herald(herald)
    db = sqlite3.connect(store)
    now = time.time()
    db.executemany("INSERT INTO subscribers (id, address, components, token, created_at, confirmed_at) VALUES (?, ?, '[]', ?, ?, ?)",
                   ((f"sub_{i:08d}", f"user{i}@example.com", f"tok{i:08d}", now, now) for i in range(a.subscribers)))
    db.commit(); db.close()
    herald, port, _ = start_herald(a.herald, tmp, config)
    peak = [0.0]
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            try: peak[0] = max(peak[0], rss_mb(herald.pid)[0])
            except OSError: pass
            time.sleep(0.1)
    threading.Thread(target=sample, daemon=True).start()
    try:
        def post(status):
            # A connection each: Herald closes one idle for a minute, and the notices take longer.
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("POST", "/v1/events", json.dumps({"incident": "dns", "status": status, "severity": "major",
                                                           "title": "DNS resolution failing", "message": "x" * 300}),
                         {"Content-Type": "application/json", "Authorization": "Bearer bench-token-0123456789abcdefgh"})
            r = conn.getresponse(); r.read(); assert r.status == 202, r.status
            return time.perf_counter()
        n = a.subscribers
        cpu0 = cpu_seconds(herald.pid)
        t_trigger = post("triggered")
        while counter.notices < n and time.perf_counter() - t_trigger < 900: time.sleep(0.05)
        notices_s = counter.last_notice - t_trigger
        rss_notices = peak[0]
        print(f"trigger 202 -> last notice accepted: {notices_s:.1f} s ({counter.notices:,} notices), peak RSS {rss_notices:.0f} MB", flush=True)
        cpu1 = cpu_seconds(herald.pid)
        t_resolve = post("resolved")
        while counter.clears < n and time.perf_counter() - t_resolve < 900: time.sleep(0.05)
        clears_s = counter.last_clear - t_resolve if counter.last_clear else float("nan")
        cpu2 = cpu_seconds(herald.pid)
        print(f"{n:,} subscribers, concurrency {a.concurrency}")
        print(f"trigger 202 -> last notice accepted:    {notices_s:7.1f} s ({counter.notices:,} notices, {counter.notices / notices_s:,.0f}/s, "
              f"herald CPU {1e6 * (cpu1 - cpu0) / max(1, counter.notices):.0f} µs each)")
        print(f"resolve 202 -> last all-clear accepted: {clears_s:7.1f} s ({counter.clears:,} all-clears, {counter.clears / clears_s:,.0f}/s, "
              f"herald CPU {1e6 * (cpu2 - cpu1) / max(1, counter.clears):.0f} µs each)")
        print(f"herald peak RSS: {peak[0]:.0f} MB (during the notices: {rss_notices:.0f} MB)")
        emit({"bench": "subscribers", "subscribers": n, "notices_s": round(notices_s, 1), "allclears_s": round(clears_s, 1),
              "notices": counter.notices, "allclears": counter.clears, "peak_rss_mb": round(peak[0], 1)})
    finally:
        stop.set()
        stop_herald(herald)
        controller.stop()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
