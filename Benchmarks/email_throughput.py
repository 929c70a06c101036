#!/usr/bin/env python3
"""Emails/s from `herald serve` to a local SMTP server (aiosmtpd), beside plain Python smtplib
reusing one connection and Apprise's mailto:// (when apprise is importable), to the same server.
Apprise waits 5.5 s between notifications to one service by default; the figure here is with that
throttle switched off (its plugin's request_rate_per_sec = 0), i.e. its best case. Prints figures
and a RESULT line; asserts nothing.

    .venv-test/bin/python Benchmarks/email_throughput.py [--events 100] [--recipients 10]
(needs aiosmtpd in the Python that runs it: scripts/test installs it into .venv-test)
"""
import argparse, http.client, json, os, shutil, smtplib, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import emit, free_port, start_herald, stop_herald
from email.message import EmailMessage

class Counter:
    def __init__(self): self.n = 0; self.lock = threading.Lock()
    async def handle_DATA(self, server, session, envelope):
        with self.lock: self.n += len(envelope.rcpt_tos)
        return "250 OK"

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--recipients", type=int, default=10)
    a = ap.parse_args()
    from aiosmtpd.controller import Controller
    counter = Counter()
    smtp_port = free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = tempfile.mkdtemp(prefix="herald-mail-")
    to = ", ".join(f"user{i}@example.com" for i in range(a.recipients))
    herald, port, _ = start_herald(a.herald, tmp, f"""  tokens: [{{name: b, token: bench-token-0123456789abcdefgh, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  mail: {{type: email, url: 'smtp://127.0.0.1:{smtp_port}', from: 'herald@example.com', to: [{to}], starttls: off, concurrency: 16}}
routes:
  - channels: [mail]
""")
    try:
        total = a.events * a.recipients
        conn = http.client.HTTPConnection("127.0.0.1", port)
        t0 = time.perf_counter()
        for i in range(a.events):
            conn.request("POST", "/v1/events", json.dumps({"incident": f"mail-{i}", "status": "triggered", "severity": "major",
                                                           "title": f"Störung {i}: DNS resolution failing", "message": "x" * 300}),
                         {"Content-Type": "application/json", "Authorization": "Bearer bench-token-0123456789abcdefgh"})
            r = conn.getresponse(); r.read(); assert r.status == 202
        while counter.n < total and time.perf_counter() - t0 < 300:
            time.sleep(0.05)
        herald_rate = counter.n / (time.perf_counter() - t0)
        print(f"herald: {counter.n} emails ({a.events} events x {a.recipients} recipients, one delivery each) in "
              f"{time.perf_counter() - t0:.2f} s: {herald_rate:,.0f} emails/s")
        # Plain smtplib, one connection reused, one message per recipient, same size.
        before = counter.n
        t1 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", smtp_port) as s:
            for i in range(total):
                m = EmailMessage(); m["From"] = "herald@example.com"; m["To"] = f"user{i % a.recipients}@example.com"
                m["Subject"] = f"Störung {i}"; m.set_content("x" * 300); m.add_alternative("<p>" + "x" * 300 + "</p>", subtype="html")
                s.send_message(m)
        py_rate = (counter.n - before) / (time.perf_counter() - t1)
        print(f"python smtplib, one reused connection: {py_rate:,.0f} emails/s; herald/smtplib = {herald_rate / py_rate:.2f}")
        result = dict(herald=herald_rate, smtplib=py_rate, herald_over_smtplib=herald_rate / py_rate)
        try:
            import apprise
        except ImportError:
            apprise = None
            print("apprise: not importable in this Python (Benchmarks/run provides a venv with it)")
        if apprise:
            ap_obj = apprise.Apprise()
            ap_obj.add(f"mailto://127.0.0.1:{smtp_port}?from=herald@example.com&to=user0@example.com&mode=insecure")
            for service in ap_obj.services:
                service.request_rate_per_sec = 0
            n = min(total, 300)
            before = counter.n
            t2 = time.perf_counter()
            for i in range(n):
                ap_obj.notify(title=f"Störung {i}", body="x" * 300)
            ap_rate = (counter.n - before) / (time.perf_counter() - t2)
            print(f"apprise {apprise.__version__} mailto:// ({n} emails, throttle off): {ap_rate:,.0f} emails/s; herald/apprise = {herald_rate / ap_rate:.1f}x")
            result.update(apprise=ap_rate, herald_over_apprise=herald_rate / ap_rate)
        emit(result)
    finally:
        stop_herald(herald)
        controller.stop()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
