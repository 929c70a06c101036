#!/usr/bin/env python3
"""Apprise (PyPI) delivering the same kind of messages to the same nginx sink as
delivery_throughput.py, with `json://` targets: notifications/s, to put beside Herald's
deliveries/s. Run with a Python that has apprise installed. Prints figures; asserts nothing.

    /path/to/venv/bin/python Benchmarks/apprise_compare.py [--messages 200] [--fanout 10]
"""
import argparse, os, shutil, signal, socket, subprocess, tempfile, time
import apprise

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--fanout", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="apprise-bench-")
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    open(conf, "w").write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/e.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{"ok":true}}'; }} }} }}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        ap_obj = apprise.Apprise()
        for i in range(a.fanout):
            ap_obj.add(f"json://127.0.0.1:{port}/hook{i}")
        t0 = time.perf_counter()
        ok = 0
        for i in range(a.messages):
            if ap_obj.notify(title=f"[MAJOR] Benchmark incident {i}", body="x" * 200):
                ok += 1
        dt = time.perf_counter() - t0
        total = a.messages * a.fanout
        print(f"apprise {apprise.__version__}: {total:,} notifications ({a.messages} messages x {a.fanout} json:// targets, "
              f"{ok} fully delivered) in {dt:.2f} s: {total / dt:,.0f} notifications/s")
    finally:
        nginx.send_signal(signal.SIGQUIT); nginx.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
