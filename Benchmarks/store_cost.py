#!/usr/bin/env python3
"""The embedded store's CPU per delivery, without the network: runs the release build of
`herald-store-bench` (Benchmarks/StoreBench), which enqueues EVENTS events fanned out to 10
channels, then drains every channel at once, claiming 16 at a time and recording the outcomes,
and prints this process's CPU time per delivery for each half. A program, not a test.

    python3 Benchmarks/store_cost.py [--events 20000] [--bench .build/release/herald-store-bench]
"""
import argparse, subprocess, sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=".build/release/herald-store-bench")
    ap.add_argument("--events", type=int, default=20000)
    a = ap.parse_args()
    p = subprocess.run([a.bench, "--events", str(a.events)], capture_output=True, text=True)
    sys.stdout.write(p.stdout + p.stderr)
    sys.exit(p.returncode)

if __name__ == "__main__":
    main()
