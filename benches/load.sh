#!/usr/bin/env bash
# Loopback load benchmark: rolegate beside nginx and HAProxy, in one run, side by side.
#
# Starts on 127.0.0.1 an origin (nginx, static 200), nginx as a plain reverse proxy, HAProxy as a
# plain proxy and as a JWT gateway (jwt_verify + iss/exp + the same path/role decision), a bare
# pingora proxy (benches/passthrough.rs: rolegate's ceiling), and rolegate (Palette preset, decision
# log off), checks every one answers as expected (allow 200,
# deny 403, no token 401), then runs wrk against them in rotation for several rounds, HS256 and
# ES256 tokens, allow and deny paths, and prints medians and ratios. Then a paced run at half of
# rolegate's measured maximum gives p99 added latency, and rolegate's RSS is read. Everything it
# starts it stops. Usage and figures: BENCHMARKS.md.
#
# Environment: THREADS (2) worker threads for every proxy; ROUNDS (3); DURATION (8) seconds per
# wrk run; CONNECTIONS (32); PORT_BASE (18080); OUT (target/load/<time>); ROLEGATE_BIN (built with
# cargo build --release when unset); SCENARIOS ("hs256-allow hs256-deny es256-allow es256-deny");
# HALF (1: run the half-load phase).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
LOAD="$REPO/benches/load"
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-32}
PORT_BASE=${PORT_BASE:-18080}
SCENARIOS=${SCENARIOS:-"hs256-allow hs256-deny es256-allow es256-deny"}
HALF=${HALF:-1}
OUT=${OUT:-"$REPO/target/load/$(date +%Y%m%d-%H%M%S)"}

ORIGIN_PORT=$((PORT_BASE + 1))
NGINX_PORT=$((PORT_BASE + 2))
HAPROXY_PORT=$((PORT_BASE + 3))
HAPROXY_HS_PORT=$((PORT_BASE + 4))
HAPROXY_ES_PORT=$((PORT_BASE + 5))
ROLEGATE_PORT=$((PORT_BASE + 6))
ADMIN_PORT=$((PORT_BASE + 7))
PINGORA_PORT=$((PORT_BASE + 8))
HS_ISS=rolegate-bench-hs256
ES_ISS=rolegate-bench-es256
ALLOW_PATH=/v1/spectroclusters/6f1c2a
ROLE="Tenant Viewer"

say() { printf '%s\n' "$*" >&2; }
die() { say "load.sh: $*"; exit 1; }

# ---- tools -------------------------------------------------------------------------------------
need=()
for t in wrk nginx haproxy openssl python3 curl; do
    command -v "$t" >/dev/null 2>&1 || need+=("$t")
done
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing: ${need[*]}"
        pkgs=()
        for t in "${need[@]}"; do
            case $t in python3) pkgs+=(python3-minimal) ;; *) pkgs+=("$t") ;; esac
        done
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        die "missing tools: ${need[*]} (install them, e.g. apt-get install ${need[*]})"
    fi
fi
[[ $(haproxy -vv 2>/dev/null) == *USE_OPENSSL=1* ]] || die "haproxy lacks OpenSSL (jwt_verify)"

# ---- rolegate binary ---------------------------------------------------------------------------
if [[ -z ${ROLEGATE_BIN:-} ]]; then
    say "building rolegate (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet --bin rolegate)
    ROLEGATE_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/rolegate"
fi
[[ -x $ROLEGATE_BIN ]] || die "no rolegate binary at $ROLEGATE_BIN"
if [[ -z ${PASSTHROUGH_BIN:-} ]]; then
    say "building the bare pingora proxy (cargo bench --bench passthrough --no-run)"
    PASSTHROUGH_BIN=$(cd "$REPO" && cargo bench --quiet --bench passthrough --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "passthrough" and m.get("executable"):
        print(m["executable"])')
fi
[[ -x $PASSTHROUGH_BIN ]] || die "no passthrough binary (cargo bench --bench passthrough --no-run)"

for p in $ORIGIN_PORT $NGINX_PORT $HAPROXY_PORT $HAPROXY_HS_PORT $HAPROXY_ES_PORT $ROLEGATE_PORT $ADMIN_PORT $PINGORA_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "127.0.0.1:$p is in use (set PORT_BASE)"
    fi
done

# ---- work dir, keys, tokens, configs -----------------------------------------------------------
DIR=$(mktemp -d /tmp/rolegate-load.XXXXXX)
# rolegate reloads when a file changes in a directory its configuration came from: keys and its
# configuration live in conf/, logs and outputs elsewhere.
CONF="$DIR/conf"
mkdir -p "$DIR/tmp" "$CONF" "$OUT/raw"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HS_SECRET=$(openssl rand -hex 32)
printf '%s' "$HS_SECRET" >"$CONF/hs.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/es.key" 2>/dev/null
openssl ec -in "$DIR/es.key" -pubout -out "$CONF/es.pub.pem" 2>/dev/null

render() { # template -> file, placeholders @NAME@ from the variables above
    sed -e "s|@DIR@|$DIR|g" -e "s|@CONF@|$CONF|g" -e "s|@REPO@|$REPO|g" -e "s|@THREADS@|$THREADS|g" \
        -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@NGINX_PORT@|$NGINX_PORT|g" \
        -e "s|@HAPROXY_PORT@|$HAPROXY_PORT|g" -e "s|@HAPROXY_HS_PORT@|$HAPROXY_HS_PORT|g" \
        -e "s|@HAPROXY_ES_PORT@|$HAPROXY_ES_PORT|g" -e "s|@ROLEGATE_PORT@|$ROLEGATE_PORT|g" \
        -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" -e "s|@HS_ISS@|$HS_ISS|g" -e "s|@ES_ISS@|$ES_ISS|g" \
        -e "s|@HS_SECRET@|$HS_SECRET|g" -e "s|@GET_ROLES@|${GET_ROLES:-}|g" \
        -e "s|@DELETE_ROLES@|${DELETE_ROLES:-}|g" "$1" >"$2"
}
render "$LOAD/rolegate.yaml" "$CONF/rolegate.yaml"

# The roles HAProxy lets through come from rolegate's own answer for each Palette tenant role.
roles_granting() { # action -> quoted role list for an HAProxy -m str ACL
    local action=$1 role list=""
    while IFS= read -r role; do
        if "$ROLEGATE_BIN" check --config "$CONF/rolegate.yaml" \
            --claims "{\"sub\":\"x\",\"tenant\":\"t1\",\"roles\":[\"$role\"]}" \
            --action "$action" >/dev/null 2>&1; then
            list+="\"$role\" "
        fi
    done < <(awk '/^  [A-Z][A-Za-z ]*:$/ {name=substr($0, 3, length($0) - 3)} /scope: tenant/ {print name}' \
        "$REPO/config/palette/roles.yaml")
    [[ -n $list ]] || die "no Palette tenant role grants $action"
    printf '%s' "${list% }"
}
GET_ROLES=$(roles_granting cluster.get)
DELETE_ROLES=$(roles_granting cluster.delete)
render "$LOAD/origin.nginx.conf" "$DIR/origin.nginx.conf"
render "$LOAD/proxy.nginx.conf" "$DIR/proxy.nginx.conf"
render "$LOAD/haproxy.cfg" "$DIR/haproxy.cfg"

TOKEN_HS=$(python3 "$LOAD/mint.py" hs256 "$CONF/hs.key" "$HS_ISS" "$ROLE")
TOKEN_ES=$(python3 "$LOAD/mint.py" es256 "$DIR/es.key" "$ES_ISS" "$ROLE")

# ---- start -------------------------------------------------------------------------------------
nginx -p "$DIR" -c "$DIR/origin.nginx.conf" -e "$DIR/origin.error.log" -g 'daemon off;' &
PIDS+=($!)
nginx -p "$DIR" -c "$DIR/proxy.nginx.conf" -e "$DIR/nginx.error.log" -g 'daemon off;' &
PIDS+=($!)
haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
PIDS+=($!)
"$ROLEGATE_BIN" serve --config "$CONF/rolegate.yaml" >"$DIR/rolegate.log" 2>&1 &
ROLEGATE_PID=$!
PIDS+=("$ROLEGATE_PID")
PASSTHROUGH_LISTEN=127.0.0.1:$PINGORA_PORT PASSTHROUGH_UPSTREAM=127.0.0.1:$ORIGIN_PORT PASSTHROUGH_THREADS=$THREADS \
    "$PASSTHROUGH_BIN" >"$DIR/pingora.log" 2>&1 &
PIDS+=($!)
TARGETS=(origin nginx haproxy haproxy-jwt pingora rolegate)
PORTS=($ORIGIN_PORT $NGINX_PORT $HAPROXY_PORT $HAPROXY_HS_PORT $HAPROXY_ES_PORT $PINGORA_PORT $ROLEGATE_PORT)

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    say "--- logs"; tail -n 20 "$DIR"/*.log >&2 || true
    die "nothing listens on 127.0.0.1:$1"
}
for p in "${PORTS[@]}"; do
    wait_port "$p"
done
RSS_IDLE=$(awk '/VmRSS/ {print $2}' "/proc/$ROLEGATE_PID/status")

url_of() {
    case $1 in
        origin) echo "http://127.0.0.1:$ORIGIN_PORT$ALLOW_PATH" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT$ALLOW_PATH" ;;
        haproxy) echo "http://127.0.0.1:$HAPROXY_PORT$ALLOW_PATH" ;;
        haproxy-jwt-hs256) echo "http://127.0.0.1:$HAPROXY_HS_PORT$ALLOW_PATH" ;;
        haproxy-jwt-es256) echo "http://127.0.0.1:$HAPROXY_ES_PORT$ALLOW_PATH" ;;
        rolegate) echo "http://127.0.0.1:$ROLEGATE_PORT$ALLOW_PATH" ;;
        pingora) echo "http://127.0.0.1:$PINGORA_PORT$ALLOW_PATH" ;;
    esac
}
token_of() { if [[ $1 == hs256 ]]; then echo "$TOKEN_HS"; else echo "$TOKEN_ES"; fi; }

# ---- the same decisions before any timing ------------------------------------------------------
expect() { # status method target token
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' -X "$2" ${4:+-H "Authorization: Bearer $4"} "$(url_of "$3")")
    [[ $got == "$1" ]] || die "$2 via $3 answered $got, expected $1"
}
for target in origin nginx haproxy pingora; do expect 200 GET "$target" "$TOKEN_HS"; done
# A token whose signature has one character changed well inside it (the last character of a
# base64url signature carries padding bits a lenient decoder ignores).
tampered() {
    local t=$1 i=$((${#1} - 10)) c
    c=${t:i:1}
    [[ $c == A ]] && c=B || c=A
    printf '%s' "${t:0:i}$c${t:i+1}"
}
for alg in hs256 es256; do
    tok=$(token_of $alg)
    for target in "haproxy-jwt-$alg" "${TARGETS[@]:5}"; do
        expect 200 GET "$target" "$tok"
        expect 403 DELETE "$target" "$tok"
        expect 401 GET "$target" ""
        expect 401 GET "$target" "$(tampered "$tok")"
    done
done
say "checks passed: allow 200, deny 403, missing or bad token 401 at both gateways, both algorithms"

# ---- rotation ----------------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), rolegate $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "settings: THREADS=$THREADS ROUNDS=$ROUNDS DURATION=${DURATION}s CONNECTIONS=$CONNECTIONS (wrk -t1), rolegate decision log off"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/meta.txt" >&2

run_wrk() { # out target alg kind [wrk args...]
    local out=$1 target=$2 alg=$3 kind=$4
    shift 4
    local url=$target args=()
    [[ $target == haproxy-jwt ]] && url="haproxy-jwt-$alg"
    [[ $kind == deny ]] && args+=(-s "$LOAD/delete.lua")
    wrk -t1 --latency -H "Authorization: Bearer $(token_of "$alg")" "${args[@]}" "$@" "$(url_of "$url")" >"$out"
}

say "warm-up"
for alg in hs256 es256; do
    for target in "${TARGETS[@]}"; do
        run_wrk /dev/null "$target" "$alg" allow -c"$CONNECTIONS" -d1s
    done
done
for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        alg=${scenario%-*}
        kind=${scenario#*-}
        n=${#TARGETS[@]}
        for i in $(seq 0 $((n - 1))); do
            target=${TARGETS[$(((i + round) % n))]}
            say "round $round/$ROUNDS $scenario $target"
            run_wrk "$OUT/raw/r$round-$alg-$kind-$target.txt" "$target" "$alg" "$kind" \
                -c"$CONNECTIONS" -d"${DURATION}s"
        done
    done
done

# ---- half load: the same offered rate for every target -----------------------------------------
if [[ $HALF == 1 ]]; then
    max=$(python3 - "$OUT" <<'EOF'
import glob, re, statistics, sys
v = [float(re.search(r"Requests/sec:\s+([\d.]+)", open(p).read()).group(1))
     for p in glob.glob(sys.argv[1] + "/raw/r*-hs256-allow-rolegate.txt")]
print(int(statistics.median(v)) if v else 0)
EOF
)
    if ((max > 0)); then
        rate=$((max / 2))
        export WRK_DELAY_MS=2
        conns=$(( (rate * 23 + 9999) / 10000 ))
        run_wrk "$OUT/calibrate.txt" rolegate hs256 allow -s "$LOAD/paced.lua" -c"$conns" -d3s
        got=$(sed -n 's/^Requests\/sec: *\([0-9]*\).*/\1/p' "$OUT/calibrate.txt")
        conns=$(( conns * rate / (got > 0 ? got : 1) ))
        ((conns < 1)) && conns=1
        say "half load: target $rate req/s (rolegate max $max), $conns paced connections"
        for target in origin nginx haproxy-jwt pingora "${TARGETS[@]:5}"; do
            run_wrk "$OUT/raw/half-$target.txt" "$target" hs256 allow -s "$LOAD/paced.lua" \
                -c"$conns" -d"${DURATION}s"
        done
        echo "half load: target $rate req/s = half of rolegate's median max ($max), $conns connections x ${WRK_DELAY_MS} ms pause" >>"$OUT/meta.txt"
    fi
fi

RSS_NOW=$(awk '/VmRSS/ {print $2}' "/proc/$ROLEGATE_PID/status")
RSS_PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$ROLEGATE_PID/status")
{
    echo "rolegate RSS: idle after start $((RSS_IDLE / 1024)) MiB, after the runs $((RSS_NOW / 1024)) MiB, peak $((RSS_PEAK / 1024)) MiB"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT/meta.txt" >&2

python3 "$LOAD/report.py" "$OUT" | tee "$OUT/report.md"
cat "$OUT/meta.txt" >>"$OUT/report.md"
say "raw wrk outputs and report: $OUT"
