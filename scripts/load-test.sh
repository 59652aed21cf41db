#!/usr/bin/env bash
# Load test of `ets serve --demo` with wrk on 127.0.0.1: a member's holdings (GET
# /api/v1/accounts/{number} with its token), market data (GET /api/v1/instruments/{code},
# public) and order entry (POST /api/v1/orders, scripts/load/orders.lua). Prints requests/s,
# p50 and p99 latency and the non-2xx count of each, and the orders' accepted/refused
# breakdown. Exits non-zero if a read answered anything but 2xx, an order run had socket
# errors, or the server died.
#
#   scripts/load-test.sh                       # 10 s per endpoint
#   ETS_LOAD_SECONDS=30 scripts/load-test.sh
#
# Knobs (environment):
#   ETS_LOAD_SECONDS      duration of each wrk run (default 10)
#   ETS_LOAD_THREADS      wrk threads (default 1)
#   ETS_LOAD_CONNS_READ   connections for the reads (default 32)
#   ETS_LOAD_CONNS_ORDER  connections for the orders (default 64)
#   ETS_LOAD_LODGE        tonnes each member lodges for the trading run (default 30000)
#   ETS_LOAD_MIXED=0      skip the last run: orders and market data at once (half the
#                         connections each), not held to the targets, reported as measured
#   ETS_BIN               a prebuilt `ets`; otherwise `cargo build --release -p ets-cli` (a
#                         no-op when up to date) in CARGO_TARGET_DIR (default target/)
#
# Choices for a 2-core machine that runs both the server and the generator: one wrk thread
# (wrk is event-driven; one thread keeps it to at most one core and leaves the other, plus
# whatever wrk does not use, to the server's two tokio workers and its exchange writer).
# 32 connections for reads are enough to keep both server workers busy without queueing
# inflating the tail; orders get 64 so that more of them are in flight while the exchange's
# pipelined writer commits a batch to SQLite, which is what lets it take many orders per
# commit. Each endpoint runs on its own, in sequence, against one server.
#
# The order flows (see scripts/load/orders.lua), over the national market's members that have
# cash and units; the script makes a `loadtest` user (through the API, as the demo's admin)
# who is exchange member for each of them:
#   orders   alternating 1 t GTC buys just below the instrument's previous close (read from the
#            API first) and 1 t IOC sells just above it: order entry, nothing trades;
#   trading  a 1 t GTC buy at the close by one member, then a 1 t IOC sell below it by the
#            next, which trades: every second order is a trade. The members lodge units for it
#            first (POST /api/v1/lodgements, ETS_LOAD_LODGE tonnes each).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
seconds=${ETS_LOAD_SECONDS:-10}
threads=${ETS_LOAD_THREADS:-1}
conns_read=${ETS_LOAD_CONNS_READ:-32}
conns_order=${ETS_LOAD_CONNS_ORDER:-64}

say() { printf 'load-test: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- wrk
if ! command -v wrk > /dev/null; then
    say "installing wrk from Debian"
    if [[ $(id -u) == 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    fi
fi

# ---------------------------------------------------------------- the binary
if [[ -n ${ETS_BIN:-} ]]; then
    ets=$ETS_BIN
else
    say "building ets (release; a no-op when up to date)"
    (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release --quiet -p ets-cli --bin ets)
    ets=$target/release/ets
fi
[[ -x $ets ]] || die "no ets binary at $ets"

# ---------------------------------------------------------------- the server
work=$(mktemp -d "${TMPDIR:-/tmp}/ets-load.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
origin=http://127.0.0.1:$port
base=$origin/api/v1
say "starting ets serve --demo on 127.0.0.1:$port"
(cd "$work" && exec "$ets" serve --demo --listen "127.0.0.1:$port" > serve.out 2> serve.err) &
server_pid=$!
for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "ets serve exited during start-up"; }
    python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
    sleep 0.2
done
python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null \
    || die "the server did not answer $base/health within 60 s"

# ---------------------------------------------------------------- tokens, resources, members
ETS_SCRIPTS="$repo/scripts" python3 - "$base" "$work/serve.err" > "$work/env.sh" <<'PY'
import json, os, re, shlex, sys, urllib.error, urllib.request

base, log = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.environ["ETS_SCRIPTS"])
import demo_users
users, password = demo_users.read(log)

def call(method, path, body=None, bearer=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if bearer:
        req.add_header("authorization", "Bearer " + bearer)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def ok(answer):
    status, body = answer
    if status // 100 != 2:
        sys.exit(f"unexpected {status}: {body}")
    return body

def token(user, pw):
    session = ok(call("POST", "/session", {"user": user, "password": pw}))
    return ok(call("POST", "/tokens", {}, bearer=session["secret"]))["secret"]

member, account = next((u, re.search(r"representative of (\S+)", p).group(1))
                       for u, p in users if "exchange member" in p and "representative of" in p)
member_token = token(member, password)
market = ok(call("GET", "/accounts/" + account, bearer=member_token))["account"]["market"]
instrument = next(i for i in ok(call("GET", "/instruments")) if i["market"] == market)
code, close = instrument["code"], instrument["previous_close_fen"]

# The instrument's members, from its recent trades; a `loadtest` user trades for all of them.
view = ok(call("GET", "/instruments/" + code))
candidates = sorted({t["buyer"] for t in view["recent_trades"]} | {t["seller"] for t in view["recent_trades"]})
admin = token("admin", password)
ok(call("POST", "/users", {"user": "loadtest", "password": "loadtest-password-1",
                           "roles": ["exchange-member:" + m for m in candidates]}, bearer=admin))
lt = token("loadtest", "loadtest-password-1")
# Keep those that can sell 1 t (lodged units) and buy 20,000 t (cash for 20,000 resting 1 t
# buys): IOC probes away from the close that rest nothing and trade nothing.
chosen = []
for m in candidates:
    sell = call("POST", "/orders", {"instrument": code, "side": "sell", "price_fen": close + 5, "qty_t": 1, "tif": "ioc", "member": m}, bearer=lt)
    buy = call("POST", "/orders", {"instrument": code, "side": "buy", "price_fen": close - 5, "qty_t": 20000, "tif": "ioc", "member": m}, bearer=lt)
    if sell[0] == 201 and buy[0] == 201:
        chosen.append(m)
    else:
        print(f"# not used: {m}: sell {sell[0]} {sell[1].get('message', '')}; buy {buy[0]} {buy[1].get('message', '')}", file=sys.stderr)
if len(chosen) < 2:
    sys.exit(f"fewer than two members can both buy and sell: {chosen}")
# Units for the trading run: each lodges ETS_LOAD_LODGE t (halved until the account has them).
# The registry takes a lodgement from the account's representative, whose name is the member's:
# a member without a demo user gets one (as the demo's admin) to lodge with.
lodge = int(os.environ.get("ETS_LOAD_LODGE", "30000"))
known = {u for u, _ in users}
accounts = {rep: a["number"] for a in ok(call("GET", "/accounts?market=" + market, bearer=admin)) for rep in a["representatives"]}
traders = []
for m in chosen:
    if m not in accounts:
        print(f"# not trading: {m} represents no {market} account", file=sys.stderr)
        continue
    if m in known:
        rep = token(m, password)
    else:
        ok(call("POST", "/users", {"user": m, "password": "loadtest-password-1",
                                   "roles": ["exchange-member:" + m, "account-representative:" + accounts[m]]}, bearer=admin))
        rep = token(m, "loadtest-password-1")
    q = lodge
    while q >= 100:
        status, body = call("POST", "/lodgements", {"instrument": code, "qty_t": q, "member": m}, bearer=rep)
        if status == 201:
            traders.append(m)
            print(f"# {m} lodged {q} t", file=sys.stderr)
            break
        q //= 2
    else:
        print(f"# not trading: {m}: {body.get('message', '')}", file=sys.stderr)
if len(traders) < 2:
    sys.exit(f"fewer than two members could lodge units to trade: {traders}")
out = dict(MEMBER=member, MEMBER_TOKEN=member_token, ACCOUNT=account, INSTRUMENT=code, CLOSE=str(close),
           LT_TOKEN=lt, LT_MEMBERS=" ".join(chosen), LT_TRADERS=" ".join(traders))
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
PY
# shellcheck disable=SC1091
source "$work/env.sh"
holdings_bytes=$(curl -s -H "Authorization: Bearer $MEMBER_TOKEN" "$base/accounts/$ACCOUNT" | wc -c)
market_bytes=$(curl -s "$base/instruments/$INSTRUMENT" | wc -c)
say "holdings of $ACCOUNT as $MEMBER ($holdings_bytes bytes); market data of $INSTRUMENT ($market_bytes bytes, previous close $CLOSE fen)"
say "order flow over members: $LT_MEMBERS"

# ---------------------------------------------------------------- the runs
rows=()
failed=()
# launch NAME CONNS wrk-args...: starts one wrk run in the background (its pid in $wrk_pid).
launch() {
    local name=$1 conns=$2
    shift 2
    say "$name: wrk -t$threads -c$conns -d${seconds}s --latency $(sed -E 's/Bearer [0-9a-f]+/Bearer <token>/' <<< "$*") (load average $(cut -d' ' -f1 /proc/loadavg))"
    loads[$name]=$(cut -d' ' -f1 /proc/loadavg)
    wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency "$@" > "$work/$name.out" 2>&1 &
    wrk_pid=$!
}
# collect NAME: appends a row "name|rps|p50|p99|non2xx|errors|load" from the run's output.
collect() {
    local name=$1 rps p50 p99 non2xx errors
    cat "$work/$name.out" >&2
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/$name.out")
    p50=$(awk '$1 == "50%" {print $2}' "$work/$name.out")
    p99=$(awk '$1 == "99%" {print $2}' "$work/$name.out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/$name.out")
    errors=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$work/$name.out")
    rows+=("$name|${rps:-?}|${p50:-?}|${p99:-?}|${non2xx:-0}|${errors:-none}|${loads[$name]}")
    [[ -n $rps ]] || failed+=("$name: wrk printed no result")
}
run() {
    launch "$@"
    wait "$wrk_pid" || true
    collect "$1"
}
declare -A loads
order_env=(ETS_LT_TOKEN="$LT_TOKEN" ETS_LT_MEMBERS="$LT_MEMBERS" ETS_LT_INSTRUMENT="$INSTRUMENT" ETS_LT_CLOSE="$CLOSE")

run holdings "$conns_read" -H "Authorization: Bearer $MEMBER_TOKEN" "$base/accounts/$ACCOUNT"
run market-data "$conns_read" "$base/instruments/$INSTRUMENT"
export "${order_env[@]}"
run orders "$conns_order" -s "$repo/scripts/load/orders.lua" "$origin"
export ETS_LT_CROSS=1 ETS_LT_MEMBERS="$LT_TRADERS"
run trading "$conns_order" -s "$repo/scripts/load/orders.lua" "$origin"
export ETS_LT_CROSS=0 ETS_LT_MEMBERS="$LT_MEMBERS"
if [[ ${ETS_LOAD_MIXED:-1} == 1 ]]; then
    # Order entry while market data is read flat out (two wrk processes at once, half the
    # connections each): how the exchange's writer fares when reads saturate both cores.
    launch mixed-orders $((conns_order / 2)) -s "$repo/scripts/load/orders.lua" "$origin"
    orders_pid=$wrk_pid
    launch mixed-market $((conns_read / 2)) "$base/instruments/$INSTRUMENT"
    wait "$wrk_pid" || true
    wait "$orders_pid" || true
    collect mixed-orders
    collect mixed-market
fi

kill -0 "$server_pid" 2>/dev/null || failed+=("the server died")
if grep -nE 'panicked|internal error' "$work/serve.err" >&2; then
    failed+=("the server logged a panic or an internal error")
fi

# ---------------------------------------------------------------- the summary
echo
echo "ets serve --demo, wrk -t$threads, ${seconds}s per run, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-12s %12s %10s %10s %8s %-18s %s\n' endpoint requests/s p50 p99 non-2xx socket-errors load-avg
for row in "${rows[@]}"; do
    IFS='|' read -r name rps p50 p99 non2xx errors load <<< "$row"
    printf '%-12s %12s %10s %10s %8s %-18s %s\n' "$name" "$rps" "$p50" "$p99" "$non2xx" "$errors" "$load"
    if [[ $name != *orders && $name != trading && $non2xx != 0 ]]; then
        failed+=("$name: $non2xx non-2xx responses")
    fi
    if [[ ($name == *orders || $name == trading) && $errors != none ]]; then
        failed+=("$name: socket errors $errors")
    fi
    target_rps=20000
    [[ $name == *orders || $name == trading ]] && target_rps=5000
    if [[ $name != mixed-* && $rps != "?" ]] && awk -v r="$rps" -v t="$target_rps" 'BEGIN {exit !(r < t)}'; then
        echo "  below the target of $target_rps requests/s"
    fi
done
for name in orders trading mixed-orders; do
    if [[ -f $work/$name.out ]]; then
        sed "s/^orders:/$name:/" "$work/$name.out" | grep "^$name:" || true
    fi
done

if ((${#failed[@]})); then
    die "$(printf '%s; ' "${failed[@]}")"
fi
