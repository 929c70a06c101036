#!/usr/bin/env python3
"""The CLI as a monitoring hook runs it: one `herald send` process per event to a local `herald
serve` (SQLite, one webhook channel on nginx), wall time from fork to exit, as a Nagios-style
notification command waits for it. Beside it, on the same server and in the same run: `herald
--version` (process start-up alone) and the `curl` tool posting the same event (the floor for any
process that makes one HTTP request). The three alternate, run by run, so a busy moment costs each
alike. Prints figures and a RESULT line; asserts nothing.

    python3 Benchmarks/cli_hook.py [--herald .build/release/herald] [--runs 60]
"""
import argparse, json, os, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *

TOKEN = "bench-token-0123456789abcdefgh"

def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} {cmd[1]} exited {r.returncode}: {r.stderr.decode()[:300]}")
    return ms

def summary(values):
    s = sorted(values)
    return dict(p50=percentile(s, 0.5), p90=percentile(s, 0.9), min=s[0])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", default=".build/release/herald")
    ap.add_argument("--runs", type=int, default=60)
    a = ap.parse_args()
    herald_bin = os.path.abspath(a.herald)
    tmp = tempfile.mkdtemp(prefix="herald-cli-")
    sink_port = free_port()
    nginx = start_nginx(tmp, sink_port)
    herald = None
    try:
        herald, port, _ = start_herald(herald_bin, tmp, f"""  tokens: [{{name: nagios, token: {TOKEN}, scopes: [ingest]}}]
store: {{path: {tmp}/h.sqlite}}
channels:
  ops: {{type: webhook, url: 'http://127.0.0.1:{sink_port}/hook', secret: whsec_YmVuY2htYXJrLXNpZ25pbmcta2V5}}
routes:
  - channels: [ops]
""")
        server = f"http://127.0.0.1:{port}"
        env_send = lambda i: [herald_bin, "send", "--server", server, "--token", TOKEN, "--incident", f"host{i}/disk",
                              "--status", "PROBLEM", "--title", f"Disk full on host{i}", "--severity", "critical",
                              "--message", "DISK CRITICAL - free space: / 312 MB (2%)"]
        curl = lambda i: ["curl", "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json",
                          "-d", json.dumps({"incident": f"curl{i}/disk", "status": "triggered", "title": f"Disk full on curl{i}",
                                            "severity": "critical", "message": "DISK CRITICAL - free space: / 312 MB (2%)"}),
                          server + "/v1/events"]
        for i in range(3):                      # warm the page cache and the server
            timed(env_send(-1 - i)); timed([herald_bin, "--version"]); timed(curl(-1 - i))
        send, version, tool = [], [], []
        for i in range(a.runs):
            send.append(timed(env_send(i)))
            version.append(timed([herald_bin, "--version"]))
            tool.append(timed(curl(i)))
        s, v, c = summary(send), summary(version), summary(tool)
        print(f"herald send ({a.runs} runs): p50 {s['p50']:.1f} ms, p90 {s['p90']:.1f} ms, fastest {s['min']:.1f} ms")
        print(f"herald --version: p50 {v['p50']:.1f} ms, fastest {v['min']:.1f} ms")
        print(f"curl posting the same event: p50 {c['p50']:.1f} ms, fastest {c['min']:.1f} ms")
        libs = subprocess.run(["ldd", herald_bin], capture_output=True, text=True).stdout
        linked = len([l for l in libs.splitlines() if "=>" in l or l.strip().startswith("/")])
        print(f"shared libraries loaded at start: {linked}{' (libcurl among them)' if 'libcurl' in libs else ' (libcurl not among them: loaded on first use)'}")
        emit(dict(send_p50_ms=s["p50"], send_p90_ms=s["p90"], send_min_ms=s["min"], version_p50_ms=v["p50"],
                  curl_p50_ms=c["p50"], shared_libraries=linked))
    finally:
        if herald: stop_herald(herald)
        stop_nginx(nginx)

if __name__ == "__main__":
    main()
