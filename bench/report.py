#!/usr/bin/env python3
"""Turns the JSON lines of switchyard-bench (bench/results.jsonl, written by
bench/compare.sh) into BENCHMARKS.md and bench/chart.png: the machine, the commands,
one table per workload with both routers' medians and the Switchyard/Crossbar ratio,
and the project's targets marked met or missed.

Usage: report.py --results bench/results.jsonl --out BENCHMARKS.md --chart bench/chart.png
       [--mode quick|full] [--repeat N] [--duration S] [--started ISO] [--command TEXT]
       [--crossbar-python PATH]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

import sections  # bench/sections.py

SY, CB = "switchyard", "crossbar"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The project's targets (issue 3).
TARGET_FANOUT_RATIO = 30.0
TARGET_RPC_RATIO = 20.0
TARGET_LATENCY_P99_US = 1000.0
TARGET_RSS_KIB = 20.0


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine(crossbar_python):
    cpu = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    mem = ""
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    cb = sh(f"{crossbar_python} -c 'import crossbar; print(crossbar.__version__)'") if crossbar_python else ""
    cbpy = sh(f"{crossbar_python} -c 'import platform; print(platform.python_version())'") if crossbar_python else ""
    return [
        ("cores (nproc)", sh("nproc")),
        ("CPU", cpu or platform.processor()),
        ("memory", mem),
        ("kernel", sh("uname -r")),
        ("rustc", sh("rustc --version")),
        ("Crossbar.io", f"{cb} (CPython {cbpy}, Twisted, in a venv from PyPI)" if cb else "?"),
        ("Switchyard", sh(f"git -C '{REPO}' describe --always --dirty") or "?"),
        ("open files limit", sh("bash -c 'ulimit -Hn'")),
    ]


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    runs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return runs


def key_of(r):
    p = r.get("params", {})
    w = r["workload"]
    k = {"fanout": p.get("subscribers"), "rpc": p.get("callers"), "latency": p.get("rate"), "scale": p.get("sessions")}[w]
    return (w, r["label"], r["transport"], r["serializer"], k)


def group(runs):
    g = defaultdict(list)
    for r in runs:
        g[key_of(r)].append(r)
    return g


def med(rs, field):
    vals = [r.get(field) for r in rs if isinstance(r.get(field), (int, float)) and not isinstance(r.get(field), bool)]
    return statistics.median(vals) if vals else None


def flags(rs):
    n = len(rs)
    out = []
    gb = sum(1 for r in rs if r.get("generator_bound"))
    if gb:
        out.append(f"generator-bound {gb}/{n}")
    sat = sum(1 for r in rs if r.get("machine_saturated") and not r.get("generator_bound"))
    if sat:
        out.append(f"saturated {sat}/{n}")
    nq = sum(1 for r in rs if r.get("machine_not_quiet"))
    if nq:
        out.append(f"machine not quiet {nq}/{n}")
    bad = sum(1 for r in rs if not r.get("ok"))
    if bad:
        out.append(f"FAILED {bad}/{n}")
    return ", ".join(out)


def fmt(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, float) and digits == 0:
        x = round(x)
    if isinstance(x, int) or digits == 0:
        return f"{int(x):,}"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "–" if x is None else f"{x:.1f}×"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--repeat", default="3")
    ap.add_argument("--duration", default="10")
    ap.add_argument("--started", default="")
    ap.add_argument("--command", default="bench/compare.sh")
    ap.add_argument("--crossbar-python", default="")
    a = ap.parse_args()

    runs = load(a.results)
    if not runs:
        sys.exit(f"{a.results}: no results")
    g = group(runs)

    def rs(w, label, n, transport="websocket", ser="json"):
        return g.get((w, label, transport, ser, n), [])

    md = []
    md.append("# Benchmarks: Switchyard and Crossbar.io")
    md.append("")
    md.append(
        f"Generated by `{a.command}` (started {a.started or '?'}; {a.mode} mode: {a.duration} s per trial, "
        f"figures are the median of {a.repeat} trial{'s' if str(a.repeat) != '1' else ''}). "
        "How to run it and what each figure means: [docs/benchmarks.md](docs/benchmarks.md). "
        "Raw results, one JSON object per trial: `bench/results.jsonl`."
    )
    if a.mode == "quick":
        md.append("")
        md.append(
            "**Quick mode**: short trials, one repeat, no largest scale size. These figures show that the "
            "harness works; they are not the comparison. Run `bench/compare.sh` on a quiet machine for that."
        )
    md.append("")
    md.append("## Machine")
    md.append("")
    md.append(table(["", ""], machine(a.crossbar_python)))
    md.append("")
    md.append(
        "The routers and the load generator share these cores. Only one router runs at a time (Switchyard's "
        "trials first, then Crossbar's); each router's CPU time is read from `/proc/<pid>/stat` (for Crossbar, "
        "the router worker process, not the node controller), so *per router CPU-second* figures do not "
        "depend on how much CPU the generator took. A trial is flagged *generator-bound* when the generator "
        "used at least 90 % of the cores left to it while the router stayed below 90 % of one core; "
        "*saturated* when router and generator together kept the cores at least 90 % busy; *machine not "
        "quiet* when other processes used more than a fifth of a core during the trial (its figures are "
        "suspect)."
    )
    md.append("")
    md.append("## Commands")
    md.append("")
    md.append("```sh")
    md.append(a.command)
    md.append("# which runs, for each router (ROUTER_PID: Switchyard's process / Crossbar's router worker):")
    md.append("target/release/switchyard serve --listen 127.0.0.1:18080 --rawsocket 127.0.0.1:18081")
    md.append("crossbar start --cbdir <scratch>/.crossbar   # config written by bench/compare.sh, ports 19080/19081")
    md.append(f"target/release/switchyard-bench --label L --router-pid ROUTER_PID --duration {a.duration} --url ws://127.0.0.1:PORT/ws --serializer json fanout --subscribers N")
    md.append(f"target/release/switchyard-bench ... rpc --callers N")
    md.append(f"target/release/switchyard-bench ... latency --rate R --subscribers 10")
    md.append(f"target/release/switchyard-bench ... scale --sessions N --procs P --source-ips 4   # fresh router per trial")
    md.append("```")
    md.append("")

    # ---- targets ----
    fan_sy = med(rs("fanout", SY, 100), "events_per_router_cpu_s")
    fan_cb = med(rs("fanout", CB, 100), "events_per_router_cpu_s")
    rpc_sy = med(rs("rpc", SY, 16), "calls_per_router_cpu_s")
    rpc_cb = med(rs("rpc", CB, 16), "calls_per_router_cpu_s")
    lat_sy = med(rs("latency", SY, 1000), "latency_p99_us")
    scale_sizes = sorted({k[4] for k in g if k[0] == "scale" and k[1] == SY})
    rss_n = scale_sizes[-1] if scale_sizes else None
    rss_sy = med(rs("scale", SY, rss_n), "rss_per_session_kib") if rss_n else None

    def verdict(ok):
        return "–" if ok is None else ("**met**" if ok else "**missed**")

    fr, rr = ratio(fan_sy, fan_cb), ratio(rpc_sy, rpc_cb)
    md.append("## Targets")
    md.append("")
    md.append(
        table(
            ["target", "Switchyard", "Crossbar", "measured", "result"],
            [
                [
                    f"fan-out to 100 subscribers: ≥ {TARGET_FANOUT_RATIO:.0f}× Crossbar's events per router CPU-second",
                    fmt(fan_sy),
                    fmt(fan_cb),
                    fmt_ratio(fr),
                    verdict(None if fr is None else fr >= TARGET_FANOUT_RATIO),
                ],
                [
                    f"RPC with 16 callers: ≥ {TARGET_RPC_RATIO:.0f}× Crossbar's calls per router CPU-second",
                    fmt(rpc_sy),
                    fmt(rpc_cb),
                    fmt_ratio(rr),
                    verdict(None if rr is None else rr >= TARGET_RPC_RATIO),
                ],
                [
                    "latency at 1,000 publications/s to 10 subscribers: p99 ≤ 1 ms",
                    f"{fmt(lat_sy, 1)} µs" if lat_sy is not None else "–",
                    f"{fmt(med(rs('latency', CB, 1000), 'latency_p99_us'), 1)} µs",
                    f"{fmt(lat_sy, 1)} µs" if lat_sy is not None else "–",
                    verdict(None if lat_sy is None else lat_sy <= TARGET_LATENCY_P99_US),
                ],
                [
                    f"idle WebSocket session with a subscription: ≤ {TARGET_RSS_KIB:.0f} KiB router RSS "
                    f"(measured with two subscriptions each, at {fmt(rss_n)} sessions)",
                    f"{fmt(rss_sy, 1)} KiB" if rss_sy is not None else "–",
                    f"{fmt(med(rs('scale', CB, rss_n), 'rss_per_session_kib'), 1)} KiB" if rss_n else "–",
                    f"{fmt(rss_sy, 1)} KiB" if rss_sy is not None else "–",
                    verdict(None if rss_sy is None else rss_sy <= TARGET_RSS_KIB),
                ],
            ],
        )
    )
    md.append("")

    # ---- fanout ----
    md.append("## Fan-out (WebSocket, JSON, 100-byte payload, 100 publications in flight)")
    md.append("")
    md.append(
        "One publisher, N subscribers; *events/s* is the sum over subscribers; loss = publications × N − events "
        "received after the drain."
    )
    md.append("")
    rows = []
    fan_ns = sorted({k[4] for k in g if k[0] == "fanout" and k[2] == "websocket" and k[3] == "json"})
    for n in fan_ns:
        s, c = rs("fanout", SY, n), rs("fanout", CB, n)
        rows.append(
            [
                fmt(n),
                fmt(med(s, "events_per_s")),
                fmt(med(c, "events_per_s")),
                fmt_ratio(ratio(med(s, "events_per_s"), med(c, "events_per_s"))),
                fmt(med(s, "events_per_router_cpu_s")),
                fmt(med(c, "events_per_router_cpu_s")),
                fmt_ratio(ratio(med(s, "events_per_router_cpu_s"), med(c, "events_per_router_cpu_s"))),
                f"{fmt(med(s, 'loss'))} / {fmt(med(c, 'loss'))}",
                f"{fmt(med(s, 'router_cores'), 2)} / {fmt(med(c, 'router_cores'), 2)}",
                "; ".join(x for x in [("S: " + flags(s)) if flags(s) else "", ("C: " + flags(c)) if flags(c) else ""] if x),
            ]
        )
    md.append(
        table(
            ["subscribers", "Switchyard events/s", "Crossbar events/s", "ratio", "Switchyard events / router CPU-s",
             "Crossbar events / router CPU-s", "ratio", "loss S / C", "router cores S / C", "flags"],
            rows,
        )
    )
    md.append("")

    # ---- rpc ----
    md.append("## RPC (WebSocket, JSON, 100-byte arguments echoed, one call in flight per caller)")
    md.append("")
    rows = []
    rpc_ns = sorted({k[4] for k in g if k[0] == "rpc" and k[2] == "websocket" and k[3] == "json"})
    for n in rpc_ns:
        s, c = rs("rpc", SY, n), rs("rpc", CB, n)
        rt = lambda x: f"{fmt(med(x, 'rtt_p50_us'))} / {fmt(med(x, 'rtt_p99_us'))} / {fmt(med(x, 'rtt_max_us'))}"
        rows.append(
            [
                fmt(n),
                fmt(med(s, "calls_per_s")),
                fmt(med(c, "calls_per_s")),
                fmt_ratio(ratio(med(s, "calls_per_s"), med(c, "calls_per_s"))),
                fmt(med(s, "calls_per_router_cpu_s")),
                fmt(med(c, "calls_per_router_cpu_s")),
                fmt_ratio(ratio(med(s, "calls_per_router_cpu_s"), med(c, "calls_per_router_cpu_s"))),
                rt(s),
                rt(c),
                "; ".join(x for x in [("S: " + flags(s)) if flags(s) else "", ("C: " + flags(c)) if flags(c) else ""] if x),
            ]
        )
    md.append(
        table(
            ["callers", "Switchyard calls/s", "Crossbar calls/s", "ratio", "Switchyard calls / router CPU-s",
             "Crossbar calls / router CPU-s", "ratio", "Switchyard round trip p50 / p99 / max µs",
             "Crossbar round trip p50 / p99 / max µs", "flags"],
            rows,
        )
    )
    md.append("")

    # ---- latency ----
    md.append("## Latency (WebSocket, JSON, 10 subscribers, fixed publication rate, no acknowledgement)")
    md.append("")
    md.append("Publish → event, over all subscribers, the first 0.5 s of each trial left out.")
    md.append("")
    rows = []
    lat_rs = sorted({k[4] for k in g if k[0] == "latency"})
    for n in lat_rs:
        for label in (SY, CB):
            x = rs("latency", label, n)
            if not x:
                continue
            rows.append(
                [
                    fmt(n),
                    label,
                    fmt(med(x, "achieved_rate")),
                    fmt(med(x, "latency_p50_us")),
                    fmt(med(x, "latency_p99_us")),
                    fmt(med(x, "latency_p999_us")),
                    fmt(med(x, "latency_max_us")),
                    fmt(med(x, "loss")),
                    fmt(med(x, "events_per_router_cpu_s")),
                    fmt(med(x, "router_cores"), 2),
                    flags(x),
                ]
            )
    md.append(
        table(
            ["publications/s", "router", "achieved/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "loss",
             "events / router CPU-s", "router cores", "flags"],
            rows,
        )
    )
    md.append("")

    # ---- transports ----
    md.append("## Transports and serializers (fan-out to 100, RPC with 16 callers)")
    md.append("")
    rows = []
    for w, n, field in (("fanout", 100, "events_per_router_cpu_s"), ("rpc", 16, "calls_per_router_cpu_s")):
        for transport, ser in (("websocket", "json"), ("websocket", "msgpack"), ("rawsocket", "msgpack")):
            s, c = rs(w, SY, n, transport, ser), rs(w, CB, n, transport, ser)
            if not s and not c:
                continue
            per_s = "events_per_s" if w == "fanout" else "calls_per_s"
            rows.append(
                [
                    f"{w} {n}",
                    f"{transport}/{ser}",
                    fmt(med(s, per_s)),
                    fmt(med(c, per_s)),
                    fmt(med(s, field)),
                    fmt(med(c, field)),
                    fmt_ratio(ratio(med(s, field), med(c, field))),
                    "; ".join(x for x in [("S: " + flags(s)) if flags(s) else "", ("C: " + flags(c)) if flags(c) else ""] if x),
                ]
            )
    if not rows:
        rows.append(["not measured", "", "", "", "", "", "", ""])
    md.append(
        table(
            ["workload", "transport", "Switchyard per s", "Crossbar per s", "Switchyard per router CPU-s",
             "Crossbar per router CPU-s", "ratio", "flags"],
            rows,
        )
    )
    md.append("")

    # ---- scale ----
    md.append("## Scale (idle WebSocket/JSON sessions, each subscribed to its own topic and one shared topic)")
    md.append("")
    md.append(
        "Router RSS per session = (VmRSS with every session up − VmRSS before) / sessions; connect rate counts "
        "sessions connected, joined and subscribed twice; *shared event* is the time from publishing one event "
        "on the shared topic to its receipt by the last of the N sessions. A fresh router for every trial."
    )
    md.append("")
    rows = []
    for n in sorted({k[4] for k in g if k[0] == "scale"}):
        for label in (SY, CB):
            x = rs("scale", label, n)
            if not x:
                continue
            rows.append(
                [
                    fmt(n),
                    label,
                    fmt(med(x, "connected")),
                    fmt(med(x, "connect_rate_per_s")),
                    fmt(med(x, "rss_per_session_kib"), 1),
                    fmt(med(x, "router_rss_after_kib")),
                    fmt(med(x, "shared_event_to_all_ms"), 1),
                    flags(x),
                ]
            )
    md.append(
        table(
            ["sessions", "router", "connected", "connects/s", "router RSS KiB / session", "router RSS KiB (all up)",
             "shared event to all, ms", "flags"],
            rows,
        )
    )
    md.append("")

    # ---- problems ----
    bad = [r for r in runs if not r.get("ok") or r.get("errors")]
    md.append("## Errors and failed trials")
    md.append("")
    if not bad:
        md.append("None: every trial completed without errors or lost events.")
    else:
        for r in bad:
            p = " ".join(f"{k}={v}" for k, v in r.get("params", {}).items())
            errs = "; ".join(r.get("errors", [])[:3]) or f"loss {r.get('loss')}"
            md.append(f"- {r['label']} {r['workload']} ({p}, {r['transport']}/{r['serializer']}): {errs}")
    md.append("")

    # Sections other scripts wrote (bench/ab.sh, bench/hostile_report.py) stay.
    kept = sections.kept(a.out)
    with open(a.out, "w") as f:
        f.write("\n".join(md))
        if kept:
            f.write("\n" + kept)

    chart(g, a.chart, a.mode)


def chart(g, path, mode):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {SY: "#1f77b4", CB: "#d62728"}
    names = {SY: "Switchyard", CB: "Crossbar.io"}
    for label in (SY, CB):
        ns = sorted(k[4] for k in g if k[0] == "fanout" and k[1] == label and k[2] == "websocket" and k[3] == "json")
        ys = [med(g[("fanout", label, "websocket", "json", n)], "events_per_router_cpu_s") for n in ns]
        pts = [(n, y) for n, y in zip(ns, ys) if y]
        if pts:
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[label], label=names[label])
        ns = sorted(k[4] for k in g if k[0] == "rpc" and k[1] == label and k[2] == "websocket" and k[3] == "json")
        ys = [med(g[("rpc", label, "websocket", "json", n)], "calls_per_s") for n in ns]
        pts = [(n, y) for n, y in zip(ns, ys) if y]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[label], label=names[label])
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("subscribers")
    ax1.set_ylabel("events delivered per router CPU-second")
    ax1.set_title("Fan-out efficiency (WebSocket/JSON)")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrent callers (one call in flight each)")
    ax2.set_ylabel("calls per second")
    ax2.set_title("RPC throughput (WebSocket/JSON)")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:,.0f}")
    for ax, xs in ((ax1, [1, 10, 100, 1000]), (ax2, [1, 4, 16, 64])):
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(plain)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if mode == "quick":
        fig.suptitle("quick mode: short single trials, not the comparison", fontsize=9, color="gray")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
