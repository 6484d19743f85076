"""Turns bench/hostile-results.jsonl (bench/hostile.sh) into the "Hostile clients"
section of BENCHMARKS.md: per scenario and router, the router's RSS before the attack,
at its peak and settled after it, how the router ended the attacking connections, and
what the attacker received. With several runs of one (label, scenario), medians.

    python3 bench/hostile_report.py [--results bench/hostile-results.jsonl] [--out BENCHMARKS.md] [--intro FILE]

--intro: markdown put before the table (what was compared, and why).
"""

import argparse
import json
import statistics
from collections import defaultdict

import sections  # bench/sections.py

ORDER = ["ping-before-hello", "partial-frame", "partial-frames-48", "ws-partial-frames-48", "unread-results",
         "idle-connections", "slow-headers", "burst"]


def mib(v):
    return "–" if v is None else f"{v / 1024:,.1f}"


def median(rs, f):
    vals = [r[f] for r in rs if r.get(f) is not None]
    return statistics.median(vals) if vals else None


def settled(rs):
    """Settled RSS at each settle point, as 's: MiB' pairs."""
    by = defaultdict(list)
    for r in rs:
        for s, v in (r.get("router_rss_settled_kib_by_s") or {}).items():
            by[s].append(v)
    return " / ".join(f"{mib(statistics.median(v))} ({s} s)" for s, v in sorted(by.items(), key=lambda kv: float(kv[0])))


def closes(rs):
    r = rs[0]
    if r.get("connections") is None:
        return "–"
    c = r.get("close_after_s") or {}
    closed = f"{r.get('closed_by_router')}/{r.get('connections')}"
    if not c:
        return f"{closed} closed"
    span = f"{c['min']}" if c["min"] == c["max"] else f"{c['min']}–{c['max']}"
    return f"{closed} closed after {span} s"


def outcomes(rs):
    o = rs[0].get("outcomes") or {}
    return "; ".join(f"{k} ×{v}" if v > 1 else k for k, v in o.items()) or "–"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="bench/hostile-results.jsonl")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--intro", default=None)
    a = ap.parse_args()
    runs = [json.loads(l) for l in open(a.results) if l.strip()]
    groups = defaultdict(list)
    labels = []
    for r in runs:
        key = (r["params"]["scenario"], r["label"])
        groups[key].append(r)
        if r["label"] not in labels:
            labels.append(r["label"])
    md = ["## Hostile clients: what an attack costs the router", ""]
    if a.intro:
        md += [open(a.intro).read().strip(), ""]
    md.append("| scenario | router | RSS before | peak | settled (after the attack's connections closed) | the router's answer | what the attacker got | log WARN / ERROR |")
    md.append("|---|---|---|---|---|---|---|---|")
    for scenario in ORDER:
        for label in labels:
            rs = groups.get((scenario, label))
            if not rs:
                continue
            warn = max(r.get("router_log_warn", 0) for r in rs)
            err = max(r.get("router_log_error", 0) for r in rs)
            alive = "" if all(r.get("router_alive", True) for r in rs) else " **router died**"
            md.append(
                f"| {scenario} | {label} | {mib(median(rs, 'router_rss_before_kib'))} | {mib(median(rs, 'router_rss_peak_kib'))} "
                f"| {settled(rs)} | {closes(rs)}{alive} | {outcomes(rs)} | {warn} / {err} |"
            )
    md += ["", "RSS in MiB (median over the runs of a row); raw results, one JSON object per run: "
           "`bench/hostile-results.jsonl`. Each run against a freshly started router."]
    sections.put(a.out, "hostile", "\n".join(md))


if __name__ == "__main__":
    main()
