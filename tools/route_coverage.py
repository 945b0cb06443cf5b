#!/usr/bin/env python3
"""Route coverage checker for rolegate presets (dev-only; needs PyYAML: `pip install pyyaml`).

Loads one or more routes files (the `routes:` groups of the rolegate config format), an operation inventory
(TSV: method, path, operationId, tag, summary) and the action catalog, then reports every operation as
`action`, `public` or `UNMAPPED`. Exits 1 when any operation is unmapped, any route names an action that is not in
the catalog, two routes have the same method and path shape, or a spot check fails.

Catalog sources: matrix CSVs (first column is the action id; lines starting with `#` are comments) and YAML files
with an `actions:` map (a key whose value is a map is a section).

Examples:
  tools/route_coverage.py --routes config/palette/routes.yaml \
      --inventory tests/fixtures/apis/palette-operations.tsv \
      --catalog tests/fixtures/matrices/palette-tenant.csv tests/fixtures/matrices/palette-project.csv \
      --spot tests/fixtures/spot-checks/palette.tsv
  tools/route_coverage.py --preset palette      # the same, with the repository's default paths
  tools/route_coverage.py --preset taikun --report /tmp/taikun-coverage.tsv
"""

import argparse
import csv
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("route_coverage.py needs PyYAML: pip install pyyaml")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRESETS = {
    "palette": {
        "routes": ["config/palette/routes.yaml"],
        "inventory": "tests/fixtures/apis/palette-operations.tsv",
        "catalog": ["tests/fixtures/matrices/palette-tenant.csv", "tests/fixtures/matrices/palette-project.csv"],
        "spot": "tests/fixtures/spot-checks/palette.tsv",
    },
    "taikun": {
        "routes": ["config/taikun/routes.yaml"],
        "inventory": "tests/fixtures/apis/taikun-operations.tsv",
        "catalog": ["tests/fixtures/matrices/taikun.csv", "config/taikun/api-actions.yaml"],
        "spot": "tests/fixtures/spot-checks/taikun.tsv",
    },
}


def normalize(path):
    """The path as the router takes it: no trailing slash (except the root)."""
    return path.rstrip("/") if len(path) > 1 else path


def segments(path):
    return normalize(path).split("/")[1:]


def is_param(seg):
    return seg.startswith("{") and seg.endswith("}")


def shape(path):
    return "/".join("{}" if is_param(s) and not s.startswith("{*") else s for s in segments(path))


class Route:
    def __init__(self, methods, path, target, origin):
        self.methods = methods  # list of upper-case methods, or ["*"]
        self.path = path
        self.segs = segments(path)
        self.target = target  # action id or "public"
        self.origin = origin

    def takes(self, method):
        return "*" in self.methods or method in self.methods


def load_routes(files):
    routes = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        for gi, group in enumerate(doc.get("routes") or []):
            group_public = bool(group.get("public"))
            for key, value in (group.get("map") or {}).items():
                method_part, _, path = key.strip().partition(" ")
                methods = [m.strip().upper() for m in method_part.split(",")]
                if isinstance(value, dict):
                    target = "public" if value.get("public") else value.get("action")
                else:
                    target = value
                if group_public:
                    target = "public"
                routes.append(Route(methods, path.strip(), target, f"{os.path.relpath(f, ROOT)} group {gi + 1}"))
    return routes


def load_catalog(files):
    ids = set()
    for f in files:
        if f.endswith(".csv"):
            with open(f, encoding="utf-8") as fh:
                rows = csv.reader(line for line in fh if not line.startswith("#"))
                next(rows, None)  # header
                ids.update(r[0].strip() for r in rows if r and r[0].strip())
        else:
            with open(f, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
            for key, value in (doc.get("actions") or {}).items():
                if isinstance(value, dict):
                    ids.update(value.keys())
                else:
                    ids.add(key)
    return ids


def load_inventory(path):
    with open(path, encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    return [r for r in rows[1:] if len(r) >= 3]


def match_template(route_segs, path_segs, concrete):
    """Router-like match. `concrete`: path segments are real values; otherwise a `{x}` in the path only matches a
    parameter of the route (coverage of a spec operation). Returns a priority tuple (lower wins) or None."""
    score = []
    for i, rs in enumerate(route_segs):
        if rs.startswith("{*"):
            return tuple(score + [2])
        if i >= len(path_segs):
            return None
        ps = path_segs[i]
        if is_param(rs):
            if not concrete or ps:
                score.append(1)
            else:
                return None
        else:
            if not concrete and is_param(ps):
                return None
            if rs != ps:
                return None
            score.append(0)
    return tuple(score) if len(route_segs) == len(path_segs) else None


def find(routes, method, path, concrete):
    segs = segments(path)
    best = None
    for r in routes:
        if not r.takes(method):
            continue
        s = match_template(r.segs, segs, concrete)
        if s is None:
            continue
        # the router prefers a route for the exact method over `*`, then static segments over parameters
        key = (0 if method in r.methods else 1, s)
        if best is None or key < best[0]:
            best = (key, r)
    return best[1] if best else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), help="use the repository's default files for a preset")
    ap.add_argument("--routes", nargs="+", default=[], help="routes YAML file(s)")
    ap.add_argument("--inventory", help="operation inventory TSV")
    ap.add_argument("--catalog", nargs="+", default=[], help="matrix CSVs and/or YAML files with `actions:`")
    ap.add_argument("--spot", help="spot-check TSV: method, concrete path, expected action or `public`")
    ap.add_argument("--report", help="write the per-operation report (TSV) here instead of stdout")
    ap.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    args = ap.parse_args()

    if args.preset:
        p = PRESETS[args.preset]
        args.routes = args.routes or [os.path.join(ROOT, x) for x in p["routes"]]
        args.inventory = args.inventory or os.path.join(ROOT, p["inventory"])
        args.catalog = args.catalog or [os.path.join(ROOT, x) for x in p["catalog"]]
        if not args.spot and os.path.exists(os.path.join(ROOT, p["spot"])):
            args.spot = os.path.join(ROOT, p["spot"])
    if not args.routes or not args.inventory or not args.catalog:
        ap.error("give --preset, or --routes, --inventory and --catalog")

    routes = load_routes(args.routes)
    catalog = load_catalog(args.catalog)
    ops = load_inventory(args.inventory)
    problems = []

    # 1. every action id exists
    for r in routes:
        if r.target != "public" and r.target not in catalog:
            problems.append(f"unknown action `{r.target}` in route `{','.join(r.methods)} {r.path}` ({r.origin})")

    # 2. no two routes with the same method and shape; no trailing slash
    seen = {}
    for r in routes:
        if len(r.path) > 1 and r.path.endswith("/"):
            problems.append(f"route `{r.path}` ends with `/` ({r.origin})")
        for m in r.methods:
            k = (m, shape(r.path))
            if k in seen:
                problems.append(f"route `{m} {r.path}` conflicts with `{m} {seen[k].path}` (same shape)")
            else:
                seen[k] = r

    # 3. coverage of every operation
    lines = ["method\tpath\toperationId\tresult"]
    mapped = public = unmapped = 0
    used = set()
    for op in ops:
        method, path, op_id = op[0], op[1], op[2]
        r = find(routes, method, path, concrete=False)
        if r is None:
            unmapped += 1
            result = "UNMAPPED"
            problems.append(f"unmapped operation {method} {path} ({op_id})")
        else:
            used.add(id(r))
            if r.target == "public":
                public += 1
            else:
                mapped += 1
            result = r.target
        lines.append(f"{method}\t{path}\t{op_id}\t{result}")
    extra = [r for r in routes if id(r) not in used]

    # 4. spot checks: concrete paths through the same matcher
    spot_total = spot_failed = 0
    if args.spot:
        with open(args.spot, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) < 3 or cols[0] == "method":
                    continue
                spot_total += 1
                method, path, expected = cols[0].strip(), cols[1].strip(), cols[2].strip()
                r = find(routes, method, path.split("?")[0], concrete=True)
                got = r.target if r else "UNMAPPED"
                if got != expected:
                    spot_failed += 1
                    problems.append(f"spot check line {n}: {method} {path}: expected `{expected}`, got `{got}`")

    report = "\n".join(lines) + "\n"
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            fh.write(report)
    elif not args.quiet:
        sys.stdout.write(report)
    for p in problems:
        print("PROBLEM: " + p, file=sys.stderr)
    for r in extra:
        print(f"note: route `{','.join(r.methods)} {r.path}` matches no operation of the inventory", file=sys.stderr)
    total = len(ops)
    pct = 100.0 * (mapped + public) / total if total else 0.0
    print(
        f"{total} operations: {mapped} mapped to actions, {public} public, {unmapped} unmapped ({pct:.1f}% covered); "
        f"{len(routes)} routes, {len({r.target for r in routes} - {'public'})} distinct actions; "
        f"spot checks: {spot_total - spot_failed}/{spot_total} passed",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
