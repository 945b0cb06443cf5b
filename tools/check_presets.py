#!/usr/bin/env python3
"""Check the preset configs in config/ against the role matrices, cell by cell.

For every preset this loads the top-level file and its includes, expands each role's grants (inheritance, globs
where `*` matches any run of characters, and the implicit roles every caller holds) over the action catalog, and
compares the result with the CSV matrices in tests/fixtures/matrices/. It also checks the catalog (ids, documented
labels, sections), role names and scopes, and, where routes are present, that every route names a catalog action
and every action is reachable by a route. Prints every mismatch; exits 1 if there is any.

Usage: python3 tools/check_presets.py [--config DIR] [--matrices DIR]

Standard library only. The YAML reader below handles the subset the presets use (block mappings and sequences,
flow lists and maps, plain and quoted scalars, comments) and rejects anchors, aliases, tags and duplicate keys.
"""

import argparse
import csv
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# preset file -> matrices it must reproduce, and the scope of the roles of each matrix
PRESETS = [
    ("taikun.yaml", [("taikun.csv", "tenant")]),
    ("enterprise.yaml", [("enterprise.csv", "tenant")]),
    ("child-tenants.yaml", [("child-tenants.csv", "tenant")]),
    ("palette.yaml", [("palette-tenant.csv", "tenant"), ("palette-project.csv", "project")]),
]


# ---------------------------------------------------------------------------------------------------- YAML subset
class YamlError(Exception):
    pass


def _strip_comment(line):
    """Drops a `#` comment (at line start or after whitespace) that is outside quotes."""
    quote, escaped = None, False
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _balance(text):
    depth, quote, prev = 0, None, ""
    for ch in text:
        if quote:
            if ch == quote and prev != "\\":
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        prev = ch
    return depth


def _split_key(text, where):
    """Splits `key: value` at the first `: ` (or final `:`) outside quotes and brackets; None if not a mapping."""
    quote, depth = None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or text[i - 1] in " [{,"):
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == ":" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            return _scalar(text[:i].strip(), where), text[i + 1:].strip()
    return None


def _scalar(text, where):
    if not text:
        return None
    if text[0] in "&*!|>%@`":
        raise YamlError(f"{where}: anchors, aliases, tags and block scalars are not allowed: `{text}`")
    if text[0] == '"':
        if len(text) < 2 or text[-1] != '"':
            raise YamlError(f"{where}: unterminated string `{text}`")
        return re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise YamlError(f"{where}: unterminated string `{text}`")
        return text[1:-1].replace("''", "'")
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text in ("null", "~"):
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def _flow(text, where):
    """Parses a flow list or map (nesting allowed)."""
    pos = 0

    def skip():
        nonlocal pos
        while pos < len(text) and text[pos] in " \t\n":
            pos += 1

    def item():
        nonlocal pos
        skip()
        if text[pos] == "[":
            pos += 1
            out = []
            skip()
            if text[pos] == "]":
                pos += 1
                return out
            while True:
                out.append(item())
                skip()
                if text[pos] == ",":
                    pos += 1
                    continue
                if text[pos] == "]":
                    pos += 1
                    return out
                raise YamlError(f"{where}: expected `,` or `]` in `{text}`")
        if text[pos] == "{":
            pos += 1
            out = {}
            skip()
            if text[pos] == "}":
                pos += 1
                return out
            while True:
                k = atom(":")
                if text[pos] != ":":
                    raise YamlError(f"{where}: expected `:` in `{text}`")
                pos += 1
                if k in out:
                    raise YamlError(f"{where}: duplicate key `{k}`")
                out[k] = item()
                skip()
                if text[pos] == ",":
                    pos += 1
                    skip()
                    continue
                if text[pos] == "}":
                    pos += 1
                    return out
                raise YamlError(f"{where}: expected `,` or `}}` in `{text}`")
        return atom("")

    def atom(extra):
        nonlocal pos
        skip()
        start = pos
        if text[pos] in "\"'":
            q = text[pos]
            pos += 1
            while pos < len(text) and text[pos] != q:
                pos += 2 if text[pos] == "\\" and q == '"' else 1
            pos += 1
        else:
            while pos < len(text) and text[pos] not in ",]}" + extra:
                pos += 1
        return _scalar(text[start:pos].strip(), where)

    try:
        value = item()
        skip()
    except IndexError:
        raise YamlError(f"{where}: unterminated flow collection `{text}`") from None
    if pos != len(text):
        raise YamlError(f"{where}: trailing text after `{text[:pos]}`")
    return value


def parse_yaml(text, name):
    """Parses the YAML subset into dicts, lists and scalars."""
    lines = []  # (indent, text, line number)
    raw = text.split("\n")
    i = 0
    while i < len(raw):
        no = i + 1
        line = _strip_comment(raw[i])
        i += 1
        if not line.strip() or line.strip() in ("---",):
            continue
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError(f"{name}:{no}: tab in indentation")
        # join the lines of a flow collection that spans several lines
        while _balance(line) > 0 and i < len(raw):
            line += " " + _strip_comment(raw[i]).strip()
            i += 1
        lines.append((len(line) - len(line.lstrip()), line.strip(), no))

    pos = 0

    def block(indent):
        nonlocal pos
        if pos >= len(lines) or lines[pos][0] < indent:
            return None
        ind, text, no = lines[pos]
        if text.startswith("- ") or text == "-":
            return seq(ind)
        return mapping(ind)

    def value_of(rest, ind, where):
        nonlocal pos
        if rest == "":
            if pos < len(lines) and lines[pos][0] > ind:
                return block(lines[pos][0])
            if pos < len(lines) and lines[pos][0] == ind and lines[pos][1].startswith("- "):
                return seq(ind)
            return None
        if rest[0] in "[{":
            return _flow(rest, where)
        return _scalar(rest, where)

    def mapping(ind):
        nonlocal pos
        out = {}
        while pos < len(lines) and lines[pos][0] == ind and not lines[pos][1].startswith("- "):
            _, text, no = lines[pos]
            where = f"{name}:{no}"
            kv = _split_key(text, where)
            if kv is None:
                raise YamlError(f"{where}: expected `key: value`, got `{text}`")
            key, rest = kv
            if key in out:
                raise YamlError(f"{where}: duplicate key `{key}`")
            pos += 1
            out[key] = value_of(rest, ind, where)
        if pos < len(lines) and lines[pos][0] > ind:
            raise YamlError(f"{name}:{lines[pos][2]}: unexpected indentation")
        return out

    def seq(ind):
        nonlocal pos
        out = []
        while pos < len(lines) and lines[pos][0] == ind and (lines[pos][1].startswith("- ") or lines[pos][1] == "-"):
            _, text, no = lines[pos]
            where = f"{name}:{no}"
            rest = text[1:].lstrip()
            child = ind + (len(text) - len(rest))
            if rest and _split_key(rest, where) is not None and rest[0] not in "[{":
                # `- key: value` starts a mapping whose further keys sit at the item's column
                lines[pos] = (child, rest, no)
                out.append(mapping(child))
            else:
                pos += 1
                out.append(value_of(rest, ind, where))
        return out

    doc = block(0) if lines else {}
    if pos != len(lines):
        raise YamlError(f"{name}:{lines[pos][2]}: unexpected indentation")
    return doc if doc is not None else {}


# ---------------------------------------------------------------------------------------------------- config
MAP_KEYS = ("actions", "roles", "upstreams", "tenants")
LIST_KEYS = ("routes",)
ONCE_KEYS = ("gateway", "auth", "claims")
KNOWN = set(MAP_KEYS + LIST_KEYS + ONCE_KEYS + ("include",))


def load_config(path, problems, notes, base):
    """Reads a preset and its includes; merges maps (duplicate keys are errors) and lists (includes first)."""
    merged = {k: {} for k in MAP_KEYS}
    merged["routes"] = []
    where = {k: {} for k in MAP_KEYS}
    seen = set()

    def read(p, stack):
        p = os.path.normpath(p)
        rel = os.path.relpath(p, base)
        if p in stack:
            problems.append(f"{rel}: include cycle")
            return
        if p in seen:
            problems.append(f"{rel}: included twice")
            return
        if not os.path.exists(p):
            notes.append(f"{rel}: not present (owned elsewhere?); its contents are not checked")
            return
        seen.add(p)
        with open(p, encoding="utf-8") as f:
            try:
                doc = parse_yaml(f.read(), rel)
            except YamlError as e:
                problems.append(str(e))
                return
        if not isinstance(doc, dict):
            problems.append(f"{rel}: top level is not a mapping")
            return
        for k in doc:
            if k not in KNOWN:
                problems.append(f"{rel}: unknown top-level key `{k}`")
        for inc in doc.get("include") or []:
            read(os.path.join(os.path.dirname(p), inc), stack + [p])
        for k in MAP_KEYS:
            for name, v in (doc.get(k) or {}).items():
                if k == "actions" and isinstance(v, dict):
                    for aid, label in v.items():
                        add("actions", aid, (name, label), rel)
                else:
                    add(k, name, (None, v) if k == "actions" else v, rel)
        merged["routes"].extend(doc.get("routes") or [])
        for k in ONCE_KEYS:
            if k in doc:
                if k in merged:
                    problems.append(f"{rel}: `{k}` is set twice (first in {merged[k][1]})")
                merged[k] = (doc[k], rel)

    def add(kind, key, value, rel):
        if key in merged[kind]:
            problems.append(f"{rel}: {kind[:-1]} `{key}` defined twice (first in {where[kind][key]})")
            return
        merged[kind][key] = value
        where[kind][key] = rel

    read(path, [])
    return merged


def read_matrix(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    head = rows[0]
    meta = [h for h in head if h in ("action", "permission", "documented", "section", "note")]
    roles = [h for h in head if h not in meta]
    table = {}
    for r in rows[1:]:
        if not r:
            continue
        rec = dict(zip(head, r))
        aid = rec.get("action") or rec.get("permission")
        table[aid] = rec
    return roles, table


def glob_re(pattern):
    return re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)) + r"\Z")


def expand(roles, catalog, problems, preset):
    """Effective action set of every role: own grants (globs expanded) plus those of inherited roles."""
    order = {a: i for i, a in enumerate(catalog)}
    direct = {}
    for name, role in roles.items():
        acts = set()
        last = -1
        for g in role.get("grants") or []:
            if "*" in g:
                rx = glob_re(g)
                hit = {a for a in catalog if rx.match(a)}
                if not hit:
                    problems.append(f"{preset}: role `{name}`: glob `{g}` matches no action")
                first = min((order[a] for a in hit), default=last)
            else:
                hit = {g} if g in order else set()
                if not hit:
                    problems.append(f"{preset}: role `{name}`: unknown action `{g}`")
                first = order.get(g, last)
            if first < last:
                problems.append(f"{preset}: role `{name}`: grant `{g}` is out of catalog order")
            last = max(last, first)
            if hit and hit <= acts:
                problems.append(f"{preset}: role `{name}`: grant `{g}` repeats earlier grants")
            acts |= hit
        direct[name] = acts

    eff = {}

    def resolve(name, stack):
        if name in eff:
            return eff[name]
        if name in stack:
            problems.append(f"{preset}: inheritance cycle {' -> '.join(stack + [name])}")
            return set()
        acts = set(direct.get(name, set()))
        for parent in roles[name].get("inherits") or []:
            if parent not in roles:
                problems.append(f"{preset}: role `{name}` inherits unknown role `{parent}`")
                continue
            inherited = resolve(parent, stack + [name])
            again = direct[name] & inherited
            if again:
                problems.append(f"{preset}: role `{name}` grants {sorted(again)} already inherited from `{parent}`")
            acts |= inherited
        eff[name] = acts
        return acts

    for name in roles:
        resolve(name, [])
    return eff


def check_preset(cfg_dir, mat_dir, preset, matrices):
    problems, notes = [], []
    cfg = load_config(os.path.join(cfg_dir, preset), problems, notes, os.path.dirname(os.path.abspath(cfg_dir)))
    if problems:  # unreadable or conflicting files: the comparison below would only echo them
        return problems, notes, f"{preset}: not compared"
    actions = cfg["actions"]
    catalog = list(actions)
    roles = {k: (v or {}) for k, v in cfg["roles"].items()}
    for name, role in roles.items():
        bad = set(role) - {"description", "scope", "implicit", "inherits", "grants"}
        if bad:
            problems.append(f"{preset}: role `{name}`: unknown keys {sorted(bad)}")
        for key in ("grants", "inherits"):
            if isinstance(role.get(key), str):
                role[key] = [role[key]]
    eff = expand(roles, catalog, problems, preset)
    implicit = set().union(*[eff[n] for n, r in roles.items() if r.get("implicit")] or [set()])

    mats = []
    for csv_name, scope in matrices:
        croles, table = read_matrix(os.path.join(mat_dir, csv_name))
        mats.append((csv_name, scope, croles, table))

    # catalog vs matrices
    in_csv = set().union(*[set(t) for _, _, _, t in mats])
    for a in catalog:
        if a not in in_csv:
            problems.append(f"{preset}: action `{a}` is in no matrix")
    for csv_name, _, _, table in mats:
        for a, rec in table.items():
            if a not in actions:
                problems.append(f"{preset}: {csv_name} action `{a}` missing from the catalog")
                continue
            section, label = actions[a]
            if "documented" in rec and label != rec["documented"]:
                problems.append(f"{preset}: `{a}` label `{label}` != documented `{rec['documented']}`")
            if "section" in rec and section != rec["section"]:
                problems.append(f"{preset}: `{a}` in section `{section}`, {csv_name} says `{rec['section']}`")

    # roles vs matrices
    matrix_roles = {}
    for csv_name, scope, croles, _ in mats:
        for r in croles:
            matrix_roles[r] = (csv_name, scope)
    for name, role in roles.items():
        if role.get("implicit"):
            if role.get("scope", "tenant") != "tenant":
                problems.append(f"{preset}: implicit role `{name}` must be tenant-scoped")
            continue
        if name not in matrix_roles:
            problems.append(f"{preset}: role `{name}` is in no matrix")
        elif role.get("scope", "tenant") != matrix_roles[name][1]:
            problems.append(f"{preset}: role `{name}` has scope `{role.get('scope', 'tenant')}`, "
                            f"{matrix_roles[name][0]} roles are `{matrix_roles[name][1]}`")

    cells = 0
    for csv_name, _, croles, table in mats:
        for r in croles:
            if r not in roles:
                problems.append(f"{preset}: {csv_name} role `{r}` missing")
                continue
            held = eff[r] | implicit
            for a in catalog:
                if a in table:
                    want = table[a][r] == "Y"
                    cells += 1
                elif a in implicit:
                    continue  # held by every caller; this matrix has no row for it
                else:
                    want = False  # the matrix lists no such permission for its roles
                got = a in held
                if want != got:
                    why = "implicit role" if a in implicit and a not in eff[r] else "grants/inherits"
                    problems.append(f"{preset}: {csv_name}: `{r}` x `{a}`: matrix "
                                    f"{'Y' if want else 'N' if a in table else '(no row)'}, preset "
                                    f"{'Y (' + why + ')' if got else 'N'}")

    # routes
    routed = set()
    for group in cfg["routes"]:
        for key, val in (group.get("map") or {}).items():
            act = val.get("action") if isinstance(val, dict) else val
            if act == "public" or (isinstance(val, dict) and val.get("public")):
                continue
            if act not in actions:
                problems.append(f"{preset}: route `{key}` names unknown action `{act}`")
            routed.add(act)
    if cfg["routes"]:
        for a in catalog:
            if a not in routed:
                problems.append(f"{preset}: action `{a}` is reachable by no route")
    else:
        notes.append(f"{preset}: no routes loaded; route reachability not checked")
    for up in (cfg["upstreams"] or {}).values():
        if not (up or {}).get("addresses"):
            problems.append(f"{preset}: an upstream has no addresses")

    summary = (f"{preset}: {len(catalog)} actions, {len(roles)} roles, {sum(len(g.get('map') or {}) for g in cfg['routes'])}"
               f" routes; {cells} matrix cells compared ({', '.join(m[0] for m in mats)})")
    return problems, notes, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(ROOT, "config"))
    ap.add_argument("--matrices", default=os.path.join(ROOT, "tests", "fixtures", "matrices"))
    args = ap.parse_args()
    failed = False
    for preset, matrices in PRESETS:
        problems, notes, summary = check_preset(args.config, args.matrices, preset, matrices)
        for n in notes:
            print(f"note: {n}")
        for p in problems:
            print(f"MISMATCH: {p}")
        print(("FAIL " if problems else "ok   ") + summary)
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
