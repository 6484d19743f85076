"""Turns one run of bench/graph.sh (its lines in bench/graph-results.jsonl, by
`graph_run`) into the `graph` section of BENCHMARKS.md: what was measured and how, the
figures against the targets, and the details.

    python3 bench/graph_report.py [--results bench/graph-results.jsonl] [--run ID]
                                  [--out BENCHMARKS.md] [--command TEXT] [--notes FILE]

--run: the `graph_run` to report (default: the last one in the file).
--notes: markdown appended to the section (e.g. a profile made by hand).

The authorizer-cost verdict is taken on the ratio of the medians; when that misses the
target but the median of the per-trial ratios (each trial's pair of runs back to back)
meets it, the machine drifted between trials and the verdict is "inconclusive".
"""

import argparse
import json
import statistics
from collections import defaultdict

import sections  # bench/sections.py

# The targets (the issue that asked for these figures).
TARGET_REVOKE_P99_MS = 50.0
TARGET_GRAPH_RATIO = 0.95  # graph realm at most 5 % slower per router CPU-second

AB_ORDER = ["fanout-ws-json", "rpc-ws-json", "fanout-raw-msgpack"]
AB_TITLE = {
    "fanout-ws-json": "fan-out to 100, WebSocket/JSON",
    "rpc-ws-json": "RPC, 16 callers, WebSocket/JSON",
    "fanout-raw-msgpack": "fan-out to 100, RawSocket/MessagePack",
}

INTRO = """\
## The permission graph: revocation, authorizer cost, cold decisions, token joins (bench/graph.sh)

What the graph realm (`[graph]`, PostgreSQL 15 on the same machine) costs and how fast
it takes a permission back. `bench/graph.sh` recreates a database, applies the schema,
and runs the router (release build, a separate process, `bench/graph/router.toml`: realm
`static` with a static role and realm `workbench` on the graph with
`bench/graph/policy.toml`) and `switchyard-bench` against it; the generator writes the
graph's rows as the platform would and reads the router's CPU from /proc and its
counters from /metrics.

- **Revocation** (`switchyard-bench revoke`): 1,000 user sessions, each joined with its
  own API token (WAMP-Ticket, `subscription_revocation` announced), hold 5,000
  subscriptions to `containers.<id>.logs` of 1,000 containers (5 each, readable through
  user → role → project or user → project grants; 5 users per project). The controller
  publishes 1,000 events/s round robin over the 1,000 topics, with acknowledgement.
  After 1 s, 200 changes, one every 30 ms, each a transaction `delete from grants where
  tail_id = … and head_id = …` through sqlx that ends one user's path to its 5
  containers (1,000 revoked subscriptions per run; half role memberships, half project
  shares). Latency: the generator's clock when COMMIT returned → when the subscriber
  read `[UNSUBSCRIBED, 0, {subscription, reason}]`, for every revoked subscription.
  Leaks: events a revoked subscription received after its UNSUBSCRIBED; events whose
  PUBLISHED reached the controller after the UNSUBSCRIBED reached the subscriber; events
  whose PUBLISH was even sent after it. Also checked: every expected revocation came,
  no other did, and subscriptions never revoked lost no event.
- **Authorizer cost** (warm cache): the workloads of `bench/ab.sh` (fan-out to 100
  subscribers with 100 publications in flight; RPC with 16 callers, one call in flight
  each; 100-byte payloads) on realm `static` (anonymous sessions, a static role allowing
  `containers.`) and on realm `workbench` (subscribers and callers are token users with
  read on container `ab_obj` through a role and a project; the controller publishes, the
  dispatcher registers `containers.ab_obj.inspect`, which needs `call = "read"`), same
  topic and procedure. Trials alternate between the realms (which goes first alternates
  too), a fresh router each; figures are work per router CPU-second, medians.
- **Cold decisions** (`switchyard-bench graph-cold`): 50 users one after another, one
  SUBSCRIBE in flight, nothing else running: each user's first SUBSCRIBE (closure and
  object not cached: two queries run together), its next 99 on containers nobody
  subscribed to yet (one query: the object's access), then 99 on containers the user
  before it loaded (cached: the level is computed in memory).
- **Token joins**: 5,000 clients, 64 at a time, each connects over WebSocket, joins with
  its own token (HELLO → CHALLENGE → AUTHENTICATE → WELCOME, one token lookup), and
  leaves; for reference, the same with the controller's static ticket.

The machine has 2 cores shared by the router, the generator and PostgreSQL; the router's
CPU-seconds are what the per-CPU figures divide by."""


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


def med(rs, f):
    vals = [r[f] for r in rs if r.get(f) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def per_cpu(r):
    return r.get("events_per_router_cpu_s") or r.get("calls_per_router_cpu_s")


def per_s(r):
    return r.get("events_per_s") or r.get("calls_per_s")


def met(ok):
    return "**met**" if ok else "**missed**"


def paired(st, gr):
    """Median of graph/static over trial i of each (run back to back, in either order)."""
    return statistics.median(per_cpu(g) / per_cpu(s) for s, g in zip(st, gr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="bench/graph-results.jsonl")
    ap.add_argument("--run", default=None)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--command", default="bench/graph.sh")
    ap.add_argument("--notes", default=None)
    a = ap.parse_args()
    everything = [r for r in load(a.results) if r.get("graph_run")]
    if not everything:
        raise SystemExit(f"{a.results}: no line of bench/graph.sh")
    run_id = a.run or everything[-1]["graph_run"]
    rows = [r for r in everything if r["graph_run"] == run_id]

    ab = defaultdict(lambda: defaultdict(list))
    revoke, cold = [], []
    for r in rows:
        realm, name = r["label"].split(":", 1)
        if name == "revoke":
            revoke.append(r)
        elif name == "cold":
            cold.append(r)
        else:
            ab[name][realm].append(r)

    md = [INTRO, "", f"`{a.command}`, {run_id}; raw results: `bench/graph-results.jsonl` (lines with "
          f"`graph_run` = `{run_id}`).", ""]

    # Targets.
    md += ["### Figures and targets", "", "| figure | measured | target | |", "|---|---|---|---|"]
    if revoke:
        p50 = med(revoke, "revoke_p50_ms")
        p99 = med(revoke, "revoke_p99_ms")
        worst = max(r.get("revoke_max_ms", 0) for r in revoke)
        n = sum(r.get("revoke_samples", 0) for r in revoke)
        md.append(f"| revocation, COMMIT → UNSUBSCRIBED p50 / p99 / max | {p50:.1f} / {p99:.1f} / {worst:.1f} ms "
                  f"(median p50, p99 of {len(revoke)} runs; max of all; {n:,} revocations) "
                  f"| p99 ≤ {TARGET_REVOKE_P99_MS:.0f} ms | {met(p99 <= TARGET_REVOKE_P99_MS)} |")
        acked = sum(r.get("events_acked_after_unsubscribed", 0) for r in revoke)
        after = sum(r.get("events_after_unsubscribed", 0) for r in revoke)
        sent = sum(r.get("events_sent_after_unsubscribed", 0) for r in revoke)
        md.append(f"| events acknowledged to the publisher after the subscriber had UNSUBSCRIBED | {acked} "
                  f"(received after UNSUBSCRIBED at all: {after}; published after it: {sent}) | 0 | {met(acked == 0)} |")
        bad = sum(r.get("revocations_missing", 0) + r.get("revocations_unexpected", 0) for r in revoke)
        lost = sum(r.get("events_lost_on_kept_subscriptions", 0) for r in revoke)
        md.append(f"| revocations missing or unexpected; events lost on kept subscriptions | {bad}; {lost} | 0; 0 "
                  f"| {met(bad == 0 and lost == 0)} |")
    for name in AB_ORDER:
        sides = ab.get(name)
        if not sides or "static" not in sides or "graph" not in sides:
            continue
        s, g = statistics.median(per_cpu(r) for r in sides["static"]), statistics.median(per_cpu(r) for r in sides["graph"])
        ratio = g / s
        pr = paired(sides["static"], sides["graph"])
        verdict = met(ratio >= TARGET_GRAPH_RATIO)
        if ratio < TARGET_GRAPH_RATIO <= pr:
            verdict = "**inconclusive** (drift between trials)"
        md.append(f"| authorizer cost, {AB_TITLE[name]}: graph / static per router CPU-second | {ratio:.3f} "
                  f"(median of per-trial ratios {pr:.3f}) | ≥ {TARGET_GRAPH_RATIO:.2f} (≤ 5 % slower) | {verdict} |")
    if cold:
        c = cold[-1]
        md.append(f"| cold decision (object not cached, one query), SUBSCRIBE → SUBSCRIBED p50 / p99 "
                  f"| {c['cold_subscribe_p50_ms']:.2f} / {c['cold_subscribe_p99_ms']:.2f} ms | – | |")
        md.append(f"| token authentication, joins/s (HELLO → WELCOME p50 / p99) | {fmt(c.get('token_joins_per_s'))} "
                  f"({c['token_join_p50_ms']:.1f} / {c['token_join_p99_ms']:.1f} ms) | – | |")
    md.append("")

    # A/B details.
    if ab:
        md += ["### Authorizer cost: realm `static` against realm `workbench` (warm cache)", "",
               "| workload | static per router CPU-s | graph per router CPU-s | graph/static | per-trial graph/static "
               "| static per s | graph per s | trials | failed trials | trials on a machine not quiet |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for name in AB_ORDER:
            sides = ab.get(name)
            if not sides or "static" not in sides or "graph" not in sides:
                continue
            st, gr = sides["static"], sides["graph"]
            s, g = statistics.median(per_cpu(r) for r in st), statistics.median(per_cpu(r) for r in gr)
            failed = sum(1 for r in st + gr if not r.get("ok") or r.get("loss", 0))
            noisy = sum(1 for r in st + gr if r.get("machine_not_quiet"))
            trials = ", ".join(f"{per_cpu(b) / per_cpu(a):.3f}" for a, b in zip(st, gr))
            md.append(f"| {AB_TITLE[name]} | {fmt(s)} | {fmt(g)} | {g / s:.3f} | {trials} | {fmt(statistics.median(per_s(r) for r in st))} "
                      f"| {fmt(statistics.median(per_s(r) for r in gr))} | {min(len(st), len(gr))} | {failed} | {noisy} |")
        md += ["", "Events (fan-out: deliveries to subscribers) or calls; medians over the trials. Per-trial "
               "ratios: trial i of each realm, run back to back. They vary by several per cent on this machine, "
               "more than the 5 % the target allows, so the timing alone cannot settle a difference that small.", ""]

    # Revocation details.
    if revoke:
        md += ["### Revocation under load, per run", "",
               "| run | revocations | p50 | p90 | p99 | max | UNSUBSCRIBED before COMMIT returned | events after UNSUBSCRIBED "
               "| acknowledged after | published after | filtered by guards | router cores | publications/s |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(revoke, 1):
            md.append(
                f"| {i} | {r.get('revoke_samples', 0):,} | {r['revoke_p50_ms']:.2f} ms | {r['revoke_p90_us'] / 1000:.2f} ms "
                f"| {r['revoke_p99_ms']:.2f} ms | {r['revoke_max_ms']:.2f} ms | {r.get('revocations_before_commit_returned', 0)} "
                f"| {r.get('events_after_unsubscribed', 0)} | {r.get('events_acked_after_unsubscribed', 0)} "
                f"| {r.get('events_sent_after_unsubscribed', 0)} | {fmt(r.get('router_events_filtered'))} "
                f"| {fmt(r.get('router_cores'), 2)} | {fmt(r.get('publish_rate_achieved'))} |")
        md += ["", "Router cores: its CPU over the window of the changes (1,000 events/s to 5,000 subscriptions "
               "and the revocations). Filtered by guards: events the router withheld from a subscription "
               "whose permission was gone before its UNSUBSCRIBED was sent (`switchyard_events_filtered`).", ""]

    # Cold decisions and joins.
    if cold:
        c = cold[-1]
        md += ["### Cold decisions and token joins", "",
               "| | samples | p50 | p99 | max |", "|---|---|---|---|---|"]
        for key, what in [("first_subscribe", "a user's first SUBSCRIBE (closure and object not cached)"),
                          ("cold_subscribe", "SUBSCRIBE, object not cached (closure cached)"),
                          ("warm_subscribe", "SUBSCRIBE, object cached (level computed in memory)"),
                          ("token_join", "join with an API token, HELLO → WELCOME (64 joining at once)"),
                          ("ticket_join", "join with a static ticket, HELLO → WELCOME (64 joining at once)")]:
            if c.get(f"{key}_samples"):
                md.append(f"| {what} | {c[f'{key}_samples']:,} | {c[f'{key}_p50_ms']:.2f} ms | {c[f'{key}_p99_ms']:.2f} ms "
                          f"| {c[f'{key}_max_ms']:.2f} ms |")
        md += ["", "| joins | per second | per router CPU-second | router cores | generator cores | other (PostgreSQL) cores |",
               "|---|---|---|---|---|---|"]
        md.append(f"| API token | {fmt(c.get('token_joins_per_s'))} | {fmt(c.get('token_joins_per_router_cpu_s'))} "
                  f"| {fmt(c.get('token_joins_router_cores'), 2)} | {fmt(c.get('token_joins_generator_cores'), 2)} "
                  f"| {fmt(c.get('token_joins_other_cores'), 2)} |")
        if c.get("ticket_joins"):
            md.append(f"| static ticket | {fmt(c.get('ticket_joins_per_s'))} | {fmt(c.get('ticket_joins_per_router_cpu_s'))} "
                      f"| {fmt(c.get('ticket_joins_router_cores'), 2)} | {fmt(c.get('ticket_joins_generator_cores'), 2)} | – |")
        md += ["", "A join includes the WebSocket handshake on both sides; the generator, the router and PostgreSQL "
               "share the 2 cores, so joins/s is the machine's, not the router's alone.", ""]

    if a.notes:
        md += [open(a.notes).read().strip(), ""]

    errors = [e for r in rows for e in r.get("errors", [])]
    warn = max((r.get("router_log_warn", 0) for r in rows), default=0)
    error = max((r.get("router_log_error", 0) for r in rows), default=0)
    md.append(f"Runs: {len(rows)}, failed: {sum(1 for r in rows if not r.get('ok'))}; router log lines at WARN / "
              f"ERROR (most in one run): {warn} / {error}" + (f"; first error: `{errors[0]}`" if errors else "") + ".")
    sections.put(a.out, "graph", "\n".join(md))


if __name__ == "__main__":
    main()
