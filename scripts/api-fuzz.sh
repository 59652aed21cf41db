#!/usr/bin/env bash
# Validates the OpenAPI document of `ets serve` and fuzzes the running API with schemathesis
# (property-based: it generates requests from the document, valid and invalid, and checks
# every response). Exits non-zero if the document is invalid, if any response is a 5xx, if a
# documented response does not match its schema, or if the server logged a panic or an
# internal error.
#
#   scripts/api-fuzz.sh                        # CI size: ETS_FUZZ_EXAMPLES=25, about a minute
#   ETS_FUZZ_EXAMPLES=500 scripts/api-fuzz.sh  # a full run (several minutes)
#
# Knobs (environment):
#   ETS_FUZZ_EXAMPLES  test cases per operation and pass (schemathesis --max-examples); default 25
#   ETS_FUZZ_SEED      seed for a reproducible run; default random (printed)
#   ETS_FUZZ_STRICT=0  check only for 5xx and response-schema mismatches; the default (1) also
#                      checks status_code_conformance and content_type_conformance (every status
#                      and content type documented; the document lists each operation's
#                      refusals, see `with_refusals` in crates/server/src/api.rs).
#   ETS_BIN            a prebuilt `ets` binary; otherwise `cargo build --release -p ets-cli`
#                      (a no-op when it is up to date) in CARGO_TARGET_DIR (default target/)
#
# What it does: a Python venv under $CARGO_TARGET_DIR/fuzz-venv (made once, re-made when the
# pins below change) with pinned schemathesis and openapi-spec-validator; `ets serve --demo` in a
# temporary directory on a free port of 127.0.0.1; an API token for `admin`, one for the
# first exchange member the demo prints, one for the exchange operator and one for the finance
# operator; then five passes
# over every operation:
#   1. admin, every parameter generated (unknown accounts, instruments, ids: the 4xx paths);
#   2. admin, with path parameters pinned to real demo resources (an account, an instrument,
#      a second account) so the bodies reach the handlers' logic;
#   3. the exchange member, pinned the same way (orders, transfers, trusted lists as the owner);
#   4. the exchange operator, pinned the same way (the member's cash; days opened and closed);
#   5. the finance operator, pinned the same way (desk and inclusion commands).
# Each pass runs schemathesis's examples, coverage, fuzzing and stateful phases. The server is
# stopped at the end, whatever happened; its log and schemathesis's reports are kept under
# $CARGO_TARGET_DIR/api-fuzz/ when a pass fails.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
examples=${ETS_FUZZ_EXAMPLES:-25}
seed=${ETS_FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
checks=not_a_server_error,response_schema_conformance
if [[ ${ETS_FUZZ_STRICT:-1} == 1 ]]; then
    checks=$checks,status_code_conformance,content_type_conformance
fi

say() { printf 'api-fuzz: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- the venv
venv=$target/fuzz-venv
pins="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
if [[ ! -x $venv/bin/schemathesis || "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]]; then
    say "creating $venv ($pins)"
    rm -rf "$venv"
    mkdir -p "$target"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
    echo "$pins" > "$venv/.pins"
fi
py=$venv/bin/python

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
work=$(mktemp -d "${TMPDIR:-/tmp}/ets-api-fuzz.XXXXXX")
server_pid=
status=1
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $status != 0 ]]; then
        rm -rf "$target/api-fuzz"
        mkdir -p "$target/api-fuzz"
        cp -r "$work"/*.log "$work"/*.toml "$work"/openapi.json "$work"/serve.* "$work"/report-* "$target/api-fuzz/" 2>/dev/null || true
        say "server log and reports kept in $target/api-fuzz/"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port/api/v1
say "starting ets serve --demo on 127.0.0.1:$port in $work"
(cd "$work" && exec "$ets" serve --demo --listen "127.0.0.1:$port" > serve.out 2> serve.err) &
server_pid=$!

for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "ets serve exited during start-up"; }
    if "$py" -c "import urllib.request,sys; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
"$py" -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null \
    || die "the server did not answer $base/health within 60 s"

# ---------------------------------------------------------------- the document
curl_doc() { "$py" -c "import urllib.request,sys; sys.stdout.buffer.write(urllib.request.urlopen('$base/openapi.json').read())"; }
curl_doc > "$work/openapi.json"
say "validating the OpenAPI document ($(wc -c < "$work/openapi.json") bytes)"
"$venv/bin/openapi-spec-validator" "$work/openapi.json" >&2 || die "the OpenAPI document at $base/openapi.json is INVALID"

# ---------------------------------------------------------------- credentials and resources
# The demo users are parsed from what `ets serve --demo` printed; an API token (not the
# session secret) is used so that the fuzzer's DELETE /session cannot sign us out.
ETS_SCRIPTS="$repo/scripts" "$py" - "$base" "$work/serve.err" > "$work/env.sh" <<'PY'
import json, os, re, shlex, sys, urllib.request

base, log = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.environ["ETS_SCRIPTS"])
import demo_users
users, password = demo_users.read(log)
if not users:
    sys.exit("no demo users in the server's output")

def call(method, path, body=None, bearer=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if bearer:
        req.add_header("authorization", "Bearer " + bearer)
    with urllib.request.urlopen(req) as r:
        return json.load(r)

def token(user):
    session = call("POST", "/session", {"user": user, "password": password})
    return call("POST", "/tokens", {}, bearer=session["secret"])["secret"]

members = [(u, p) for u, p in users if "exchange member" in p and re.search(r"representative of (\S+)", p)]
if len(members) < 2:
    sys.exit("fewer than two exchange members among the demo users")
account = lambda p: re.search(r"representative of (\S+)", p).group(1)
member, member_account, other_account = members[0][0], account(members[0][1]), account(members[1][1])
market = call("GET", "/accounts/" + member_account, bearer=token(member))["account"]["market"]
instrument = next(i["code"] for i in call("GET", "/instruments") if i["market"] == market)
operator = next((u for u, p in users if "exchange's operator" in p), None)
if operator is None:
    sys.exit("no exchange operator among the demo users")
finance = next((u for u, p in users if "finance desk's" in p), None)
if finance is None:
    sys.exit("no finance operator among the demo users")
out = dict(
    ADMIN_TOKEN=token("admin"), MEMBER=member, MEMBER_TOKEN=token(member), OPERATOR_TOKEN=token(operator),
    FINANCE_TOKEN=token(finance),
    ACCOUNT=member_account, OTHER_ACCOUNT=other_account, INSTRUMENT=instrument,
)
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
PY
# shellcheck disable=SC1091
source "$work/env.sh"
say "member $MEMBER (account $ACCOUNT), second account $OTHER_ACCOUNT, instrument $INSTRUMENT"

cat > "$work/pinned.toml" <<EOF
# Path parameters pinned to real demo resources, so generated bodies reach the handlers' logic.
[parameters]
"path.number" = "$ACCOUNT"
"path.code" = "$INSTRUMENT"
"path.trusted" = "$OTHER_ACCOUNT"
"path.member" = "$MEMBER"
EOF
: > "$work/free.toml"

# ---------------------------------------------------------------- the passes
failed=()
run_pass() {
    local name=$1 config=$2 token=$3
    say "pass $name: $examples examples per operation, seed $seed, checks $checks"
    if ! (cd "$work" && "$venv/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$examples" \
        --seed "$seed" \
        --generation-database none \
        --request-timeout 10 \
        --report junit --report-dir "$work/report-$name" \
        --no-color > "$work/$name.log" 2>&1); then
        failed+=("$name")
        sed -n '/= FAILURES =/,$p' "$work/$name.log" >&2
        grep -q '= FAILURES =' "$work/$name.log" || tail -40 "$work/$name.log" >&2
    fi
    grep -E '^ +[0-9]+ generated|Test cases:' -A1 "$work/$name.log" | grep generated | sed "s/^ */api-fuzz: pass $name: /" >&2 || true
}
run_pass admin "$work/free.toml" "$ADMIN_TOKEN"
run_pass admin-pinned "$work/pinned.toml" "$ADMIN_TOKEN"
run_pass member-pinned "$work/pinned.toml" "$MEMBER_TOKEN"
run_pass operator-pinned "$work/pinned.toml" "$OPERATOR_TOKEN"
run_pass finance-pinned "$work/pinned.toml" "$FINANCE_TOKEN"

kill -0 "$server_pid" 2>/dev/null || failed+=("server died")
if grep -nE 'panicked|internal error' "$work/serve.err" >&2; then
    failed+=("server logged a panic or an internal error")
fi

if ((${#failed[@]})); then
    die "${failed[*]} (seed $seed; rerun with ETS_FUZZ_SEED=$seed)"
fi
status=0
say "OK: document valid, no 5xx and no schema mismatch in 5 passes over every operation (seed $seed; checks $checks)"
