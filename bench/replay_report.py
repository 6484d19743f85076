"""Turns one run of bench/replay.sh (its lines in bench/replay-results.jsonl, by
`replay_run`) into the `replay` section of BENCHMARKS.md: what was measured and how,
the figures against issue 8's targets, and the details. The rest of BENCHMARKS.md is
kept (bench/sections.py).

    python3 bench/replay_report.py [--results bench/replay-results.jsonl] [--run ID]
                                   [--out BENCHMARKS.md] [--command TEXT] [--notes FILE]

--run: the `replay_run` to report (default: the last one in the file).
--notes: markdown appended to the section (observations made by hand during the run).
"""

import argparse
import json
import math
import statistics
from collections import defaultdict

import sections  # bench/sections.py

# Issue 8's targets.
TARGET_REPLAY_MS = 50.0  # 10,000 events of 100 B to a new subscriber
TARGET_STORE_RATIO = 0.90  # fan-out with the memory store: at most 10 % fewer events per router CPU-s
TARGET_DURABLE_PER_S = 50_000  # acknowledged (committed) publications per second

TRANSPORT_TITLE = {
    "ws-json": "WebSocket/JSON",
    "ws-msgpack": "WebSocket/MessagePack",
    "raw-msgpack": "RawSocket/MessagePack",
}

INTRO = """\
## The replay store: history, fan-out cost, durable writes, slow consumers (bench/replay.sh)

What the replay store of issue 8 delivers and costs. `bench/replay.sh` runs the router
(release build, a separate process, a fresh one per trial) and `switchyard-bench`
against it on loopback; the machine has 2 cores shared by the router, the generator and
PostgreSQL 15.

- **History** (`switchyard-bench replay`): 10,000 events of 100 B are published to one
  topic (realm keeping 200,000 per topic, `bench/replay/stored.toml`); then each trial
  opens a fresh session and asks for all of them, either by
  `SUBSCRIBE.Options._replay = {"last": 10000}` (timed from the SUBSCRIBE written to the
  last history EVENT read) or by SUBSCRIBE then
  `CALL wamp.subscription.get_events(subscription, 10000)` (timed from the CALL written
  to the RESULT read, and from the SUBSCRIBE). Frames are timed on arrival and checked
  afterwards: all 10,000, `_pos` contiguous up to the topic's last, `_replayed`, no `_gap`.
- **Fan-out cost of the memory store**: the workload of `bench/ab.sh` (one publisher, 100
  subscribers, 100 publications in flight, 100 B) on the embedded default realm1 (no
  configuration file: every topic stored, 1,000 events each) against realm1 without a
  `[replay]` table (`bench/replay/nostore.toml`); same binary; trials alternate (which
  goes first alternates too); figures are events per router CPU-second, medians.
- **Durable writes** (`switchyard-bench durable`): every topic durable
  (`bench/replay/durable.toml`, a freshly created database per run), 8 publisher
  sessions over RawSocket/MessagePack each keeping 1,000 acknowledged publications
  outstanding (PUBLISHED comes after COMMIT), on one topic and round robin over 1,000
  topics. Acknowledged publications per second, the router's
  `replay_durable_committed_events` over the same window, the highest
  `replay_durable_queue` seen, the CPU of the router and of every `postgres` process.
- **Slow consumer** (`switchyard-bench slow-consumer`): 2,000 publications/s of 100 B
  (open loop, each carrying its send time) for 60 s to 99 fast subscribers
  (WebSocket/JSON), with one more subscriber that reads 200 messages/s (10 %) while the
  publisher runs and then as fast as it can, and without it (baseline); the topic keeps
  200,000 events (more than the 120,000 of a run), so the slow one is caught up from the
  store, not dropped. Every subscriber checks `_pos` contiguous from 1, no `_gap`, no
  `_dropped`."""


def load(path):
    runs = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return runs


def pct(vals, p):
    """Nearest rank, as switchyard-bench's own percentiles."""
    vals = sorted(vals)
    if not vals:
        return None
    rank = max(1, math.ceil(p * len(vals)))
    return vals[min(rank, len(vals)) - 1]


def med(rs, f):
    vals = [r[f] for r in rs if r.get(f) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def met(ok):
    return "**met**" if ok else "**missed**"


def failed(rs):
    return sum(1 for r in rs if not r.get("ok"))


def not_quiet(r):
    """Other load beside the trial. For durable runs PostgreSQL is part of the workload,
    not other load."""
    if r.get("waited_for_quiet_s"):
        return True
    if r.get("workload") == "durable":
        return r.get("other_cores_besides_postgres", 0) > 0.2
    if r.get("workload") == "replay":
        # A trial lasts tens of milliseconds: a few clock ticks of /proc, too coarse to
        # tell other load from rounding.
        return False
    return bool(r.get("machine_not_quiet"))


def noisy(rs):
    return sum(1 for r in rs if not_quiet(r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="bench/replay-results.jsonl")
    ap.add_argument("--run", default=None)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--command", default="bench/replay.sh")
    ap.add_argument("--notes", default=None)
    a = ap.parse_args()
    everything = [r for r in load(a.results) if r.get("replay_run")]
    if not everything:
        raise SystemExit(f"{a.results}: no line of bench/replay.sh")
    run_id = a.run or everything[-1]["replay_run"]
    rows = [r for r in everything if r["replay_run"] == run_id]

    replay = defaultdict(list)  # (mode, transport) -> trials
    fan = defaultdict(lambda: defaultdict(list))  # transport -> side -> trials
    durable = defaultdict(list)  # topics -> runs
    slow = defaultdict(list)  # baseline|slow -> runs
    for r in rows:
        parts = r["label"].split(":")
        if parts[0] == "replay":
            replay[(parts[1], parts[2])].append(r)
        elif parts[0] == "fanout":
            fan[parts[2]][parts[1]].append(r)
        elif parts[0] == "durable":
            durable[int(parts[1].removeprefix("topics"))].append(r)
        elif parts[0] == "slow":
            slow[parts[1]].append(r)

    md = [INTRO, "", f"`{a.command}`, {run_id}; raw results: `bench/replay-results.jsonl` (lines with "
          f"`replay_run` = `{run_id}`).", ""]
    waited = max((r.get("waited_for_quiet_s", 0) for r in rows), default=0)
    loud = noisy(rows)
    if loud:
        wait = f"; before some trials the script waited up to {waited} s for a compilation to end" if waited else ""
        md += [f"{loud} of {len(rows)} lines ran beside other load (other processes used more than a fifth of a "
               f"core: `machine_not_quiet`, PostgreSQL not counted for durable runs; history trials, tens of "
               f"milliseconds each, are too short to tell{wait}).", ""]

    # Targets.
    md += ["### Figures and targets", "", "| figure | measured | target | |", "|---|---|---|---|"]
    for t in TRANSPORT_TITLE:
        rs = replay.get(("replay", t), [])
        vals = [r["subscribe_to_last_event_ms"] for r in rs if r.get("ok") and r.get("subscribe_to_last_event_ms") is not None]
        if vals:
            m, p90 = statistics.median(vals), pct(vals, 0.9)
            md.append(f"| history by `_replay {{\"last\": 10000}}`, {TRANSPORT_TITLE[t]}: SUBSCRIBE → last EVENT, "
                      f"median / p90 of {len(vals)} trials | {m:.1f} / {p90:.1f} ms | ≤ {TARGET_REPLAY_MS:.0f} ms "
                      f"| {met(m <= TARGET_REPLAY_MS)}{'' if p90 <= TARGET_REPLAY_MS else f' (p90 {p90:.2f} ms: over)'} |")
    for t in TRANSPORT_TITLE:
        rs = replay.get(("get-events", t), [])
        vals = [r["call_to_result_ms"] for r in rs if r.get("ok") and r.get("call_to_result_ms") is not None]
        tot = [r["subscribe_to_result_ms"] for r in rs if r.get("ok") and r.get("subscribe_to_result_ms") is not None]
        if vals:
            m, p90 = statistics.median(vals), pct(vals, 0.9)
            md.append(f"| history by `wamp.subscription.get_events(sub, 10000)`, {TRANSPORT_TITLE[t]}: CALL → RESULT "
                      f"(SUBSCRIBE → RESULT), median / p90 of {len(vals)} trials | {m:.1f} / {p90:.1f} ms "
                      f"({statistics.median(tot):.1f} / {pct(tot, 0.9):.1f} ms) | ≤ {TARGET_REPLAY_MS:.0f} ms "
                      f"| {met(m <= TARGET_REPLAY_MS)}{'' if p90 <= TARGET_REPLAY_MS else f' (p90 {p90:.2f} ms: over)'} |")
    for t in ("ws-json", "raw-msgpack"):
        sides = fan.get(t)
        if not sides or "store" not in sides or "nostore" not in sides:
            continue
        on = statistics.median(r["events_per_router_cpu_s"] for r in sides["store"])
        off = statistics.median(r["events_per_router_cpu_s"] for r in sides["nostore"])
        pairs = [s["events_per_router_cpu_s"] / n["events_per_router_cpu_s"] for s, n in zip(sides["store"], sides["nostore"])]
        ratio = on / off
        verdict = met(ratio >= TARGET_STORE_RATIO)
        both = sides["store"] + sides["nostore"]
        if 2 * noisy(both) > len(both):
            verdict += f" but **inconclusive**: {noisy(both)} of {len(both)} trials beside other load"
        md.append(f"| fan-out to 100, {TRANSPORT_TITLE[t]}: events per router CPU-s, store on / off (medians) "
                  f"| {ratio:.3f} (median of per-trial ratios {statistics.median(pairs):.3f}) "
                  f"| ≥ {TARGET_STORE_RATIO:.2f} (≤ 10 % fewer) | {verdict} |")
    for topics in sorted(durable):
        rs = durable[topics]
        m = med(rs, "acked_per_s")
        md.append(f"| durable, {topics:,} topic{'s' if topics > 1 else ''}: acknowledged (committed) publications/s, "
                  f"median of {len(rs)} runs | {fmt(m)} | ≥ {TARGET_DURABLE_PER_S:,} | {met(m is not None and m >= TARGET_DURABLE_PER_S)} |")
    if slow.get("baseline") and slow.get("slow"):
        b, s = slow["baseline"], slow["slow"]
        bp99, sp99 = med(b, "fast_latency_p99_us"), med(s, "fast_latency_p99_us")
        bp50, sp50 = med(b, "fast_latency_p50_us"), med(s, "fast_latency_p50_us")
        md.append(f"| slow consumer: the 99 fast subscribers' publish → event p99 (p50), with the slow one / without "
                  f"(medians of {len(s)} and {len(b)} runs) | {sp99 / 1000:.2f} ms ({sp50 / 1000:.2f}) / "
                  f"{bp99 / 1000:.2f} ms ({bp50 / 1000:.2f}) | unchanged within noise | see below |")
        complete = all(r.get("slow_loss") == 0 and r.get("slow_disorder") == 0 and r.get("slow_gap") == 0
                       and r.get("slow_dropped") == 0 for r in s)
        got = ", ".join(f"{r.get('slow_received', 0):,} of {r.get('publications', 0):,}" for r in s)
        md.append(f"| slow consumer: every event, in order, no `_gap`, no `_dropped` | {got}; disorder "
                  f"{sum(r.get('slow_disorder', 0) for r in s)}, `_gap` {sum(r.get('slow_gap', 0) for r in s)}, "
                  f"`_dropped` {sum(r.get('slow_dropped', 0) for r in s)} | all, 0, 0, 0 | {met(complete)} |")
    md.append("")

    # Details.
    if replay:
        md += ["### History to a new subscriber (10,000 events of 100 B)", "",
               "| mode | transport | trials (failed) | SUBSCRIBE → SUBSCRIBED median | → first EVENT median "
               "| → last EVENT (or CALL → RESULT) median / p90 / max | SUBSCRIBE → RESULT median / p90 "
               "| bytes received | router CPU per trial (median) |",
               "|---|---|---|---|---|---|---|---|---|"]
        for mode in ("replay", "get-events"):
            for t in TRANSPORT_TITLE:
                rs = replay.get((mode, t))
                if not rs:
                    continue
                ok = [r for r in rs if r.get("ok")]
                main_f = "subscribe_to_last_event_ms" if mode == "replay" else "call_to_result_ms"
                vals = [r[main_f] for r in ok if r.get(main_f) is not None]
                tot = [r["subscribe_to_result_ms"] for r in ok if r.get("subscribe_to_result_ms") is not None]
                size = med(ok, "history_bytes" if mode == "replay" else "result_bytes")
                md.append(
                    f"| {'`_replay`' if mode == 'replay' else '`get_events`'} | {TRANSPORT_TITLE[t]} | {len(rs)} ({failed(rs)}) "
                    f"| {fmt(med(ok, 'subscribe_to_subscribed_ms'), 2)} ms "
                    f"| {fmt(med(ok, 'subscribe_to_first_event_ms'), 2) + ' ms' if mode == 'replay' else '–'} "
                    f"| {fmt(statistics.median(vals) if vals else None, 1)} / {fmt(pct(vals, 0.9), 1)} / {fmt(max(vals) if vals else None, 1)} ms "
                    f"| {(fmt(statistics.median(tot), 1) + ' / ' + fmt(pct(tot, 0.9), 1) + ' ms') if tot else '–'} "
                    f"| {fmt(size)} | {fmt(med(ok, 'router_cpu_s'), 3)} s |")
        md.append("")
    if fan:
        md += ["### Fan-out to 100 subscribers: memory store on (embedded realm1) and off (no `[replay]`)", "",
               "| transport | store on: events per router CPU-s | store off | on/off | per-trial on/off | on: events/s "
               "| off: events/s | trials | failed or lossy | beside other load |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for t in ("ws-json", "raw-msgpack"):
            sides = fan.get(t)
            if not sides or "store" not in sides or "nostore" not in sides:
                continue
            st, ns = sides["store"], sides["nostore"]
            on, off = med(st, "events_per_router_cpu_s"), med(ns, "events_per_router_cpu_s")
            pairs = [s["events_per_router_cpu_s"] / n["events_per_router_cpu_s"] for s, n in zip(st, ns)]
            bad = sum(1 for r in st + ns if not r.get("ok") or r.get("loss", 0))
            md.append(f"| {TRANSPORT_TITLE[t]} | {fmt(on)} | {fmt(off)} | {on / off:.3f} | {statistics.median(pairs):.3f} "
                      f"({min(pairs):.3f}–{max(pairs):.3f}) | {fmt(med(st, 'events_per_s'))} | {fmt(med(ns, 'events_per_s'))} "
                      f"| {min(len(st), len(ns))} | {bad} | {noisy(st + ns)} |")
        md.append("")
    if durable:
        md += ["### Durable writes (8 publishers × 1,000 acknowledgements outstanding, RawSocket/MessagePack, 100 B)", "",
               "| topics | run | acknowledged/s | committed/s (metric) | ack p50 / p99 | max writer queue | router cores "
               "| postgres cores | generator cores | ok |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for topics in sorted(durable):
            for i, r in enumerate(durable[topics], 1):
                md.append(f"| {topics:,} | {i} | {fmt(r.get('acked_per_s'))} | {fmt(r.get('committed_per_s'))} "
                          f"| {fmt(r.get('ack_p50_us', 0) / 1000, 1)} / {fmt(r.get('ack_p99_us', 0) / 1000, 1)} ms "
                          f"| {fmt(r.get('max_durable_queue'))} | {fmt(r.get('router_cores'), 2)} | {fmt(r.get('postgres_cores'), 2)} "
                          f"| {fmt(r.get('generator_cores'), 2)} | {'yes' if r.get('ok') else 'no: ' + str(r.get('errors'))[:80]} |")
        md.append("")
    if slow:
        md += ["### Slow consumer (2,000 publications/s, 100 B, 60 s, 99 fast subscribers, WebSocket/JSON)", "",
               "| run | fast p50 / p90 / p99 / p99.9 / max (ms) | fast loss, disorder, `_gap`, `_dropped` "
               "| slow: received while publishing | slow: received in all | drain | lagged / caught up (metrics) "
               "| router cores | generator cores | ok |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for kind in ("baseline", "slow"):
            for i, r in enumerate(slow.get(kind, []), 1):
                lat = " / ".join(fmt(r.get(f"fast_latency_{k}_us", 0) / 1000, 2) for k in ("p50", "p90", "p99", "p999", "max"))
                fast_bad = f"{r.get('fast_loss')}, {r.get('fast_disorder')}, {r.get('fast_gap')}, {r.get('fast_dropped')}"
                if kind == "slow":
                    sl = (f"| {fmt(r.get('slow_received_while_publishing'))} | {fmt(r.get('slow_received'))} of "
                          f"{fmt(r.get('publications'))} | {fmt(r.get('slow_drain_s'), 2)} s ")
                else:
                    sl = "| – | – | – "
                md.append(f"| {'with slow' if kind == 'slow' else 'baseline'} {i} | {lat} | {fast_bad} {sl}"
                          f"| {fmt(r.get('subscribers_lagged'))} / {fmt(r.get('events_caught_up'))} "
                          f"| {fmt(r.get('router_cores'), 2)} | {fmt(r.get('generator_cores'), 2)} "
                          f"| {'yes' if r.get('ok') else 'no: ' + str(r.get('errors'))[:80]} |")
        md.append("")
    bad = [r for r in rows if not r.get("ok")]
    md += ["### Failed trials", ""]
    if bad:
        for r in bad[:10]:
            md.append(f"- `{r['label']}`: {'; '.join(r.get('errors') or []) or 'failed (loss or nothing measured)'}")
    else:
        md.append("None: every trial completed with every event, in order.")
    md.append("")
    if a.notes:
        md += [open(a.notes).read().strip(), ""]
    sections.put(a.out, "replay", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
