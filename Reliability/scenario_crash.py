#!/usr/bin/env python3
"""Crash: kill -9 `herald serve` at random moments while 20,000 deliveries are in flight.

2,000 events × 10 signed webhook channels (concurrency 8 each) to a recording sink, ingested by 4
keep-alive threads (one Idempotency-Key per event, retried across crashes). At KILLS seeded random
points (fractions of the sink's arrival count) herald is SIGKILLed — after reading
herald_queue_depth{state="in_flight"} from /metrics — and restarted on the same store and port.

Asserts: every (event, channel) delivery arrived at the sink at least once (none lost), exactly one
delivery id per (event, channel) (no duplicate deliveries created by a retried ingest), every
repeat of a delivery id straddles a kill, and repeats ≤ Σ channel concurrency × kills (the hard
bound: at most `concurrency` attempts per channel can be in flight when the process dies). The
in-flight counts read just before each kill are printed beside it (they are racy by the few ms
between the read and the kill, so they are reported, not asserted).
"""
import json, os, random, sys, threading, time, bisect
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h

EVENTS = int(os.environ.get("CRASH_EVENTS", 2000))
FANOUT = 10
CONCURRENCY = 8
KILLS = int(os.environ.get("CRASH_KILLS", 6))
SEED = int(os.environ.get("RELIABILITY_SEED", 20261125))
INGEST_THREADS = 4


def main():
    with h.Scenario("crash", budget=200) as sc:
        s = h.run_secrets()
        rng = random.Random(SEED)
        sink = h.Sink(secret=s["webhook_secret"])
        chans = {f"hook{i}": {
            "type": "webhook",
            "url": f'"http://127.0.0.1:{sink.port}/hook{i}/{s["hook_path"]}?k={s["hook_query"]}"',
            "secret": f'"{s["webhook_secret"]}"',
            "headers": f'{{X-Api-Key: "{s["header_secret"]}"}}',
            "concurrency": CONCURRENCY, "timeout": "5s"} for i in range(FANOUT)}
        cfg = h.herald_config(chans, [(None, list(chans))], h.standard_tokens(s),
                              retry="{initial: 100ms, max: 1s, max_attempts: 30, max_age: 1h}")
        herald = h.Herald("crash", cfg, log_level="info", listen_port=h.free_port()).start()
        port = herald.port
        run_tag = os.urandom(4).hex()

        # ---- ingest: 4 keep-alive threads; a connection error (herald killed) is retried with the
        # same Idempotency-Key until the restarted herald answers.
        accepted = {}          # i -> (event_id, deliveries)
        errors, lock = [], threading.Lock()
        counter = iter(range(EVENTS))
        ingest_retries = [0]

        def ingest():
            c = h.Client(port, "crash", token=s["ingest_token"], timeout=10)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                body = json.dumps(h.event_body(i, incident=f"crash-{run_tag}-{i}"))
                deadline = time.monotonic() + 90
                while True:
                    try:
                        st, _, data = c.request("POST", "/v1/events", body, {
                            "Content-Type": "application/json", "Idempotency-Key": f"crash-{run_tag}-{i}"})
                    except OSError:
                        st, data = None, b""
                    if st == 202:
                        r = json.loads(data)
                        with lock:
                            accepted[i] = (r["event_id"], r["deliveries"])
                        break
                    if st not in (None, 503) or time.monotonic() > deadline:
                        with lock:
                            errors.append(f"event {i}: {st} {data[:200]!r}")
                        break
                    with lock:
                        ingest_retries[0] += 1
                    time.sleep(0.1)
            c.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=ingest, daemon=True) for _ in range(INGEST_THREADS)]
        for t in threads:
            t.start()

        # ---- kills at seeded random points of the delivery stream
        total = EVENTS * FANOUT
        points = sorted(rng.uniform(0.05, 0.85) * total for _ in range(KILLS))
        kills = []   # (t_kill, in_flight_before, queued_before)
        for pt in points:
            h.wait_until(lambda: sink.count() >= pt, 120, 0.005, f"{int(pt)} arrivals at the sink")
            time.sleep(rng.uniform(0, 0.15))
            try:
                depth = h.queue_depth(port, "crash")
            except OSError:
                depth = {"in_flight": -1, "queued": -1}
            herald.kill9()
            t_kill = time.monotonic()
            herald.start()
            kills.append((t_kill, depth["in_flight"], depth["queued"], time.monotonic()))
        for t in threads:
            t.join(120)
        t_ingest = time.monotonic() - t0
        h.check(not errors, f"ingest failed for {len(errors)} events: {errors[:3]}")
        h.check(len(accepted) == EVENTS, f"only {len(accepted)} of {EVENTS} events were accepted")
        expected = sum(d for _, d in accepted.values())
        h.check(expected == total, f"202s announced {expected} deliveries, expected {total}")

        # ---- wait until the store says everything is delivered (or failed)
        def done():
            d = h.queue_depth(port, "crash", store=herald.store)
            return d if d["delivered"] + d["failed"] >= total and d["queued"] + d["in_flight"] + d["retrying"] == 0 else None
        try:
            depth = h.wait_until(done, 150, 0.25, "every delivery to be delivered")
        except h.ScenarioFailure:
            depth = h.queue_depth(port, "crash", store=herald.store)
        t_all = time.monotonic() - t0
        time.sleep(0.5)   # late repeats, if any, would arrive now
        arrivals = sink.snapshot()

        # ---- analysis
        by_wid = {}
        pair_wids = {}
        mismatched = 0
        for a in arrivals:
            by_wid.setdefault(a.wid, []).append(a.t)
            b = json.loads(a.body)
            if b.get("delivery_id") != a.wid:
                mismatched += 1
            ch = a.path.split("/")[1]
            pair_wids.setdefault((b["event"]["id"], ch), set()).add(a.wid)
        expected_pairs = {(ev, f"hook{i}") for ev, _ in accepted.values() for i in range(FANOUT)}
        lost = len(expected_pairs - set(pair_wids))
        unexpected = len(set(pair_wids) - expected_pairs)
        duplicated_deliveries = sum(len(w) - 1 for w in pair_wids.values())
        repeated = len(arrivals) - len(by_wid)
        kill_times = [k[0] for k in kills]
        ready_times = [k[3] for k in kills]
        per_kill = [0] * len(kills)
        not_straddling = 0
        for wid, ts in by_wid.items():
            ts.sort()
            for t1, t2 in zip(ts, ts[1:]):
                # A repeat must follow a kill (the last one before it) whose restart ended after the
                # first arrival (0.5 s slack: the sink may read a request sent just before the kill
                # a moment late). It is counted against that kill.
                k = bisect.bisect_left(kill_times, t2) - 1
                if k >= 0 and t1 < ready_times[k] + 0.5:
                    per_kill[k] += 1
                else:
                    not_straddling += 1
                    if os.environ.get("CRASH_DEBUG"):
                        print("non-straddling repeat", wid, [round(x - t0, 3) for x in ts], "kills at", [round(x - t0, 3) for x in kill_times])
        bound = FANOUT * CONCURRENCY * len(kills)
        measured_inflight = sum(max(0, k[1]) for k in kills)

        sc.figure(f"{total} deliveries ({EVENTS} events × {FANOUT} channels, concurrency {CONCURRENCY}), "
                  f"{len(kills)} kills (seed {SEED}), ingest {t_ingest:.1f} s ({ingest_retries[0]} ingest retries across kills), "
                  f"all settled in {t_all:.1f} s")
        sc.figure(f"lost {lost}, repeated {repeated} (in flight at kills ≤ {bound} = Σ concurrency × kills, asserted; "
                  f"in_flight read from /metrics just before each kill: {[k[1] for k in kills]}, sum {measured_inflight})")
        sc.figure(f"repeats per kill {per_kill}; repeats not across a kill {not_straddling}; "
                  f"duplicate delivery ids for one (event, channel) {duplicated_deliveries}; "
                  f"store: delivered {depth['delivered']}, failed {depth['failed']}; bad signatures {sink.bad_signatures}; "
                  f"requests cut off by a kill {sink.truncated}")

        h.check(lost == 0, f"{lost} deliveries never arrived at the sink")
        h.check(unexpected == 0, f"{unexpected} (event, channel) pairs arrived that were never sent")
        h.check(duplicated_deliveries == 0, f"{duplicated_deliveries} extra delivery ids for the same (event, channel)")
        h.check(mismatched == 0, f"{mismatched} requests whose webhook-id differs from the body's delivery_id")
        h.check(not_straddling == 0, f"{not_straddling} repeats of a delivery id happened without a kill in between")
        h.check(repeated <= bound, f"{repeated} repeats > {bound} (Σ channel concurrency × kills)")
        h.check(depth["delivered"] == total and depth["failed"] == 0,
                f"store shows delivered {depth['delivered']}, failed {depth['failed']} of {total}: {depth}")
        h.check(sink.bad_signatures == 0, f"{sink.bad_signatures} requests with a bad webhook-signature")
        herald.stop()


if __name__ == "__main__":
    main()
