#!/usr/bin/env python3
"""Summarizes the load benchmark's wrk outputs: medians over rounds, ratios, sanity checks.

usage: report.py OUT_DIR   (reads OUT_DIR/raw/*.txt written by benches/load.sh)
"""
import glob
import os
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
TARGETS = ["origin", "nginx", "haproxy", "haproxy-jwt", "pingora", "rolegate"]
GATEWAYS = {"haproxy-jwt", "rolegate"}


def parse(path):
    text = open(path).read()
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        out[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:(.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else ""
    return out


def med(values):
    return statistics.median(values) if values else float("nan")


def main():
    out_dir = sys.argv[1]
    runs = {}
    problems = []
    for path in sorted(glob.glob(os.path.join(out_dir, "raw", "r*-*.txt"))):
        name = os.path.basename(path)[:-4]
        _, alg, path_kind, target = name.split("-", 3)
        r = parse(path)
        scenario = f"{alg}-{path_kind}"
        runs.setdefault((scenario, target), []).append(r)
        deny_expected = path_kind == "deny" and target in GATEWAYS
        if r["requests"] == 0:
            problems.append(f"{name}: no requests completed")
        elif deny_expected and r["non2xx"] < r["requests"] * 0.999:
            problems.append(f"{name}: {r['requests'] - r['non2xx']} requests were not denied")
        elif not deny_expected and r["non2xx"] > 0:
            problems.append(f"{name}: {r['non2xx']} non-2xx responses")
        if r["socket_errors"]:
            problems.append(f"{name}: socket errors {r['socket_errors']}")
    scenarios = sorted({s for s, _ in runs}, key=lambda s: (s.split("-")[0], s.split("-")[1] != "allow"))
    rounds = max((len(v) for v in runs.values()), default=0)
    print(f"\nmedians over {rounds} rounds (wrk, req/s; latency in ms)\n")
    print(f"| scenario | target | req/s | p50 ms | p99 ms |")
    print(f"|---|---|---|---|---|")
    summary = {}
    for s in scenarios:
        for t in TARGETS:
            rs = runs.get((s, t))
            if not rs:
                continue
            row = {k: med([r[k] for r in rs]) for k in ("rps", "p50", "p99")}
            summary[(s, t)] = row
            print(f"| {s} | {t} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} |")
    print("\nratios (req/s of the gateway over the other target's, same scenario, medians of each)\n")
    print("| scenario | gateway | /nginx | /haproxy | /haproxy-jwt | /pingora |")
    print("|---|---|---|---|---|---|")
    for s in scenarios:
        for gw in ("rolegate",):
            rg = summary.get((s, gw))
            if not rg:
                continue
            cells = []
            for t in ("nginx", "haproxy", "haproxy-jwt", "pingora"):
                o = summary.get((s, t))
                cells.append(f"{rg['rps'] / o['rps']:.2f}" if o and o["rps"] else "-")
            print(f"| {s} | {gw} | " + " | ".join(cells) + " |")
    half = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "raw", "half-*.txt"))):
        target = os.path.basename(path)[5:-4]
        half[target] = parse(path)
    if half:
        print("\nhalf load (same offered rate for every target; paced wrk)\n")
        print("| target | req/s | p50 ms | p99 ms | p99 added over origin ms |")
        print("|---|---|---|---|---|")
        base = half.get("origin", {}).get("p99", float("nan"))
        for t in TARGETS:
            if t in half:
                h = half[t]
                print(f"| {t} | {h['rps']:.0f} | {h['p50']:.2f} | {h['p99']:.2f} | {h['p99'] - base:.2f} |")
    if problems:
        print("\nchecks that failed:")
        for p in problems:
            print("  " + p)
    else:
        print("\nchecks: every allow answered 2xx, every gateway deny answered 403, no socket errors")


if __name__ == "__main__":
    main()
