# shellcheck shell=bash
# Shared by examples/*/run.sh (sourced, not run): find or build abgp, make
# node directories with issued ASN certificates, render node.toml templates,
# start and stop nodes, wait on observable state, and report checks.
#
# Nothing here sleeps to synchronise: every wait polls a node's admin API (or
# a file the node writes) until a condition holds or a deadline passes.
#
# Environment:
#   ABGP=path   the abgp binary (default: target/debug/abgp, built if missing)
#   KEEP=1      keep the temporary directory (node dirs, logs) after the run
#   WAIT=secs   deadline of each wait (default 60)

set -euo pipefail

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$EXAMPLES_DIR/.." && pwd)
WAIT=${WAIT:-60}
PASSED=0
FAILED=0
START_SECONDS=$SECONDS
declare -A PID=()      # node name -> pid of its `abgp run`
NODES=()               # node names, in start order

say() { printf '%s\n' "$*"; }
die() {
    printf 'FATAL: %s\n' "$*" >&2
    FAILED=$((FAILED + 1))
    exit 1
}

# find_abgp: sets ABGP to an absolute path of a runnable abgp.
find_abgp() {
    if [[ -n ${ABGP:-} ]]; then
        [[ -x $ABGP ]] || die "ABGP=$ABGP is not an executable"
    else
        ABGP=$REPO_DIR/target/debug/abgp
        if [[ ! -x $ABGP ]]; then
            say "building abgp (cargo build --bin abgp) ..."
            (cd "$REPO_DIR" && cargo build --quiet --bin abgp) || die "cargo build failed"
        fi
    fi
    ABGP=$(cd "$(dirname "$ABGP")" && pwd)/$(basename "$ABGP")
    export ABGP
}

# setup NAME FEDERATION: the temporary directory, the stop trap, the
# federation's authority (its public key in $AUTHORITY).
setup() {
    EXAMPLE=$1
    FEDERATION=$2
    find_abgp
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/abgp-$EXAMPLE.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    : >"$WORK/values"
    : >"$WORK/ports"
    AUTHORITY=$("$ABGP" asn authority-init --key "$WORK/authority.key" |
        grep -oE '[0-9a-f]{64}' | head -n 1) || die "abgp asn authority-init failed"
    [[ -n $AUTHORITY ]] || die "no public key in abgp asn authority-init's output"
    value authority "$AUTHORITY"
    value abgp "$ABGP"
    say "== $EXAMPLE: $ABGP, nodes in $WORK"
}

# Stops every node (SIGTERM, then SIGKILL after 10 s), prints the summary
# and, after a failure, the tail of every node's log.
cleanup() {
    local rc=$? name pid i
    trap - EXIT INT TERM
    for name in "${NODES[@]}"; do
        pid=${PID[$name]:-}
        if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for name in "${NODES[@]}"; do
        pid=${PID[$name]:-}
        [[ -n $pid ]] || continue
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name did not stop on SIGTERM within 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if ((rc != 0 || FAILED > 0)); then
        for name in "${NODES[@]}"; do
            [[ -f $WORK/$name/node.log ]] || continue
            say "---- last lines of $name's log ($WORK/$name/node.log)"
            tail -n 25 "$WORK/$name/node.log"
        done
        ((rc != 0)) || rc=1
    fi
    say "== $EXAMPLE: $PASSED passed, $FAILED failed, $((SECONDS - START_SECONDS)) s"
    if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then
        say "node directories and logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# value KEY VALUE: a substitution for the node.toml templates (@KEY@).
value() { printf '%s=%s\n' "$1" "$2" >>"$WORK/values"; }

# free_port: a loopback port free for TCP and UDP, below the ephemeral
# range (so no outgoing connection can take it before the node binds it),
# not handed out earlier in this run.
free_port() {
    python3 - "$WORK/ports" <<'EOF'
import random, socket, sys
used = set(open(sys.argv[1]).read().split())
start = random.randrange(12000)
for i in range(12000):
    port = 20000 + (start + i) % 12000
    if str(port) in used:
        continue
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", port))
            s.close()
    except OSError:
        continue
    open(sys.argv[1], "a").write(f"{port}\n")
    print(port)
    break
else:
    sys.exit("no free port")
EOF
}

# node NAME ASN: `abgp init` in $WORK/NAME (a fresh key), a certificate for
# ASN issued by the federation's authority, a port; records NAME.peer_id,
# NAME.node_id, NAME.port and NAME.asn for the templates.
node() {
    local name=$1 asn=$2 dir=$WORK/$1 out peer nid port
    out=$("$ABGP" init --dir "$dir" --federation "$FEDERATION" --ports 0) ||
        die "abgp init $name failed"
    peer=$(awk '$1 == "peer" && $2 == "id" { print $3 }' <<<"$out")
    nid=$(awk '$1 == "node" && $2 == "id" { print $3 }' <<<"$out")
    [[ -n $peer && -n $nid ]] || die "no peer id in abgp init's output: $out"
    "$ABGP" asn issue --authority-key "$WORK/authority.key" --asn "$asn" \
        --node "$peer" --days 1 --out "$dir/node.cert" >/dev/null ||
        die "abgp asn issue $name failed"
    port=$(free_port)
    value "$name.peer_id" "$peer"
    value "$name.node_id" "$nid"
    value "$name.port" "$port"
    value "$name.asn" "$asn"
    NODES+=("$name")
}

# get NAME.KEY: a recorded value.
get() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print; exit }' "$WORK/values"; }

# render NAME TEMPLATE [POLICY]: NAME's node.toml from TEMPLATE (every @KEY@
# replaced; an unknown key is an error) and its policy.toml from POLICY.
render() {
    local name=$1 template=$2 policy=${3:-}
    python3 - "$WORK/values" "$template" "$WORK/$name/node.toml" <<'EOF' ||
import re, sys
values = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
text = open(sys.argv[2]).read()
missing = sorted({k for k in re.findall(r"@([A-Za-z0-9_.-]+)@", text) if k not in values})
if missing:
    sys.exit(f"{sys.argv[2]}: no value for {', '.join(missing)}")
out = re.sub(r"@([A-Za-z0-9_.-]+)@", lambda m: values[m.group(1)], text)
open(sys.argv[3], "w").write(out)
EOF
        die "rendering $template failed"
    if [[ -n $policy ]]; then
        cp "$policy" "$WORK/$name/policy.toml"
        "$ABGP" policy check --offline "$WORK/$name/policy.toml" >/dev/null ||
            die "$policy does not compile"
    fi
}

# start NAME: runs the node in the background (stdout and log in its dir).
start() {
    local name=$1
    "$ABGP" run --config "$WORK/$name/node.toml" \
        >"$WORK/$name/stdout.log" 2>"$WORK/$name/node.log" &
    PID[$name]=$!
}

# cfg NAME: the node.toml path, for the operator CLI.
cfg() { printf '%s' "$WORK/$1/node.toml"; }

# abgp_json NAME ARGS...: the CLI's --json answer from node NAME.
abgp_json() {
    local name=$1
    shift
    "$ABGP" "$@" --json --config "$(cfg "$name")"
}

# py EXPR: evaluates a Python expression over the JSON document on stdin
# (bound to `d`); prints strings as they are and the rest as JSON.
py() {
    python3 -c '
import json, sys
d = json.load(sys.stdin)
r = eval(sys.argv[1])
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))
' "$1"
}

# wait_for WHAT COMMAND...: runs COMMAND every 200 ms until it succeeds;
# fails the run after $WAIT seconds.
wait_for() {
    local what=$1 deadline=$((SECONDS + WAIT))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            say "FAIL: timed out after ${WAIT}s waiting for $what"
            FAILED=$((FAILED + 1))
            exit 1
        fi
        sleep 0.2
    done
}

# running NAME: NAME answers on its admin API; a node that exited stops the
# run at once.
running() {
    if ! kill -0 "${PID[$1]}" 2>/dev/null; then
        say "FAIL: $1 exited during start-up:"
        tail -n 5 "$WORK/$1/node.log"
        FAILED=$((FAILED + 1))
        exit 1
    fi
    abgp_json "$1" status
}

# wait_running: every node answers on its admin API.
wait_running() {
    local name
    for name in "${NODES[@]}"; do
        wait_for "$name to start" running "$name"
    done
}

# established NAME N: NAME has N established sessions.
established() {
    [[ $(abgp_json "$1" peers | py 'sum(1 for p in d if p.get("state") == "established")') == "$2" ]]
}

# agents NAME: the agents whose tools are in NAME's Loc-RIB, as
# "prefix-base" words sorted (finance/budget for finance/budget/echo).
agents() {
    abgp_json "$1" routes |
        py '" ".join(sorted({r["prefix"].rsplit("/", 1)[0] for r in d if "/" in r["prefix"]}))'
}

# has_agents NAME "A B ...": every listed agent's echo is in NAME's Loc-RIB.
has_agents() {
    local have a
    have=" $(agents "$1") "
    for a in $2; do
        [[ $have == *" $a "* ]] || return 1
    done
}

# check WHAT COMMAND...: one PASS or FAIL line.
check() {
    local what=$1
    shift
    if "$@"; then
        say "PASS: $what"
        PASSED=$((PASSED + 1))
    else
        say "FAIL: $what"
        FAILED=$((FAILED + 1))
    fi
}

# same WANT GOT: compares two words lists, saying what differs.
same() {
    if [[ $1 == "$2" ]]; then
        return 0
    fi
    say "      want: $1"
    say "      got:  $2"
    return 1
}

# front_name NAME PREFIX: the name NAME's MCP front lists the tool routed
# under PREFIX as (empty when it lists no such tool).
front_name() {
    abgp_json "$1" tools | py "next((t['name'] for t in d if t['prefix'] == '$2'), '')"
}

# call NAME TOOL ARGS: calls TOOL through NAME's front; the answer (JSON)
# in $WORK/call.out, the error in $WORK/call.err; returns abgp call's
# exit code.
call() {
    local rc=0
    "$ABGP" call "$2" --args "$3" --timeout 20s --json --config "$(cfg "$1")" \
        >"$WORK/call.out" 2>"$WORK/call.err" || rc=$?
    return "$rc"
}

# call_fails NAME TOOL ARGS CODES TEXT: the call exits with one of CODES
# ("1", "1|4") and its error says TEXT.
call_fails() {
    local rc=0
    call "$1" "$2" "$3" || rc=$?
    if [[ $rc =~ ^($4)$ ]] && grep -qF -- "$5" "$WORK/call.err"; then
        say "      refused: $(head -c 300 "$WORK/call.err")"
        return 0
    fi
    say "      exit $rc, want $4 with \"$5\": $(head -c 300 "$WORK/call.err") $(head -c 300 "$WORK/call.out")"
    return 1
}

# hops: the ASes the last call crossed, caller first, origin last (each
# AS once however many of its nodes the call crossed).
hops() {
    py '" ".join(str(a) for i, a in enumerate(h["asn"] for h in d["_meta"]["agent-bgp/trace"]) if i == 0 or a != d["_meta"]["agent-bgp/trace"][i - 1]["asn"])' <"$WORK/call.out"
}

# hop_count: how many nodes the last call crossed, the caller's included.
hop_count() {
    py 'len(d["_meta"]["agent-bgp/trace"])' <"$WORK/call.out"
}

# words LIST: the words of LIST sorted, duplicates removed, on one line.
words() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -u | paste -sd ' ' -; }

# eventually COMMAND...: like wait_for, but returns 1 at the deadline (for
# a check on something a node writes shortly after it answered).
eventually() {
    local deadline=$((SECONDS + WAIT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# as_path NAME PREFIX: the AS path of NAME's best path for PREFIX.
as_path() {
    abgp_json "$1" routes |
        py "' '.join(str(a) for r in d if r['prefix'] == '$2' and r['status'] == 'best' for a in r['as_path'])"
}

# route_field NAME PREFIX EXPR: EXPR over NAME's best path for PREFIX
# (bound to `r`).
route_field() {
    abgp_json "$1" routes |
        py "next((($3) for r in d if r['prefix'] == '$2' and r['status'] == 'best'), 'no route')"
}

# not_exported NAME PREFIX PEER WHY: `abgp why PREFIX` at NAME says
# the best path is not advertised to node PEER, for a reason that says
# WHY (the export statement, the default, a community).
not_exported() {
    local peer got
    peer=$(get "$3.peer_id")
    got=$(abgp_json "$1" why "$2" |
        py "next((('advertised' if e['advertised'] else 'not advertised') + ': ' + ((e.get('export') or {}).get('decided_by') or str(e.get('reason_text'))) for e in d['exports'] if e['peer'] == '$peer'), 'no session with $3')")
    say "      $1 -> $3: $got"
    [[ $got == "not advertised: "*"$4"* ]]
}

# call_ok NAME TOOL ARGS TEXT: the call succeeds and echoes TEXT.
call_ok() {
    if ! call "$1" "$2" "$3"; then
        say "      $(head -c 300 "$WORK/call.err")"
        return 1
    fi
    [[ $(py 'd.get("structuredContent", {}).get("text", "")' <"$WORK/call.out") == "$4" ]]
}

# trace_id: the W3C trace id of the last call (the audit log has it too).
trace_id() {
    py 'd["_meta"]["traceparent"].split("-")[1]' <"$WORK/call.out"
}

# audit_has NAME TRACE FIELD=VALUE...: NAME's audit log has a tools/call
# line of trace TRACE ("any": of any trace) with every FIELD equal to
# VALUE (compared as text).
audit_has() {
    local name=$1 trace=$2
    shift 2
    python3 - "$WORK/$name/audit.jsonl" "$trace" "$@" <<'PY'
import json, sys
path, trace, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
try:
    lines = [json.loads(l) for l in open(path) if l.strip()]
except FileNotFoundError:
    sys.exit(1)
ok = any(
    l.get("op") == "tools/call" and trace in ("any", l.get("trace_id"))
    and all(str(l.get(k)) == v for k, v in want.items())
    for l in lines
)
sys.exit(0 if ok else 1)
PY
}

# audited NAME TRACE FIELD=VALUE...: audit_has, waited for (the log is
# written by its own thread just after the call finished at NAME).
audited() { eventually audit_has "$@"; }

# hashed_name PREFIX TOOL: the front name a node gives the tool TOOL routed
# under PREFIX when another tool of that name is listed too (docs/mcp.md,
# "Front names"): the same at every node, so a name only that route has.
hashed_name() {
    python3 -c 'import hashlib, sys; print(sys.argv[2] + "_" + hashlib.sha256(f"{sys.argv[1]}\0{sys.argv[2]}".encode()).hexdigest()[:8])' "$1" "$2"
}

# token: 64 random hex digits (a bearer token).
token() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }

# front_url NAME: NAME's MCP front, from its start-up summary.
front_url() { awk '$1 == "mcp" && $2 == "front" { print $3; exit }' "$WORK/$1/stdout.log"; }

# http_status URL METHOD [TOKEN]: the HTTP status of a request to URL (an
# MCP initialize for POST), with `Authorization: Bearer TOKEN` if given.
http_status() {
    python3 - "$@" <<'PY'
import json, sys, urllib.error, urllib.request
url, method = sys.argv[1], sys.argv[2]
body = None
headers = {"Accept": "application/json, text/event-stream"}
if method == "POST":
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "run.sh", "version": "1"}}}).encode()
    headers["Content-Type"] = "application/json"
if len(sys.argv) > 3:
    headers["Authorization"] = "Bearer " + sys.argv[3]
req = urllib.request.Request(url, data=body, method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

# import_rejected NAME PREFIX PEER WHY: `abgp why PREFIX` at NAME lists the
# path from node PEER among those import policy rejected, decided by WHY.
import_rejected() {
    local peer got
    peer=$(get "$3.peer_id")
    got=$(abgp_json "$1" why "$2" |
        py "next((str((p.get('import') or {}).get('decided_by')) for p in d['rejected'] if p['peer'] == '$peer'), 'not among the rejected paths')")
    say "      $1 <- $3: $got"
    [[ $got == *"$4"* ]]
}

# excluded_as NAME PREFIX PEER REASON: `abgp why PREFIX` at NAME shows the
# path from node PEER as excluded from selection, for REASON (its
# kebab-case name, such as route-leak).
excluded_as() {
    local peer got
    peer=$(get "$3.peer_id")
    got=$(abgp_json "$1" why "$2" |
        py "next((p['status'] + ' ' + str(p.get('reason')) + ', as path ' + ' '.join(str(a) for a in p['as_path']) for p in d['paths'] if p.get('peer') == '$peer'), 'no path from $3')")
    say "      $1 <- $3: $got"
    [[ $got == "excluded $4,"* ]]
}

# verified_clean NAME: NAME checks route signatures, some routes passed
# and none was dropped for a failed check.
verified_clean() {
    local v
    v=$(abgp_json "$1" status | py 'd["status"]["verify"]')
    say "      $1: $(py '"enabled %(enabled)s, routes ok %(routes_ok)s, dropped %(routes_dropped)s" % d' <<<"$v")"
    [[ $(py 'd["enabled"] and d["routes_ok"] > 0 and d["routes_dropped"] == 0' <<<"$v") == true ]]
}

# opens_refused NAME: how many OPENs NAME refused for their certificate.
opens_refused() { abgp_json "$1" status | py 'd["status"]["verify"]["opens_refused"]'; }

# refused NAME TEXT: a session of NAME ended with an error saying TEXT.
refused() {
    [[ $(abgp_json "$1" peers | py "any('$2' in str(p.get('last_error')) for p in d)") == true ]]
}

# trace_names: the nodes the last call crossed, caller first, by name.
trace_names() {
    python3 - "$WORK/values" "$WORK/call.out" <<'PY'
import json, sys
names = {}
for l in open(sys.argv[1]):
    k, _, v = l.rstrip("\n").partition("=")
    if k.endswith(".node_id"):
        names[v[:8]] = k[: -len(".node_id")]
trace = json.load(open(sys.argv[2]))["_meta"]["agent-bgp/trace"]
print(" ".join(names.get(h["node"][:8], h["node"]) for h in trace))
PY
}

# contains LIST WORD...: every WORD is a word of LIST.
contains() {
    local list=" $1 " w
    shift
    for w in "$@"; do
        [[ $list == *" $w "* ]] || return 1
    done
}

# at_least N M: N >= M (numbers).
at_least() { (($1 >= $2)); }

# lacks FILE TEXT: FILE exists and does not contain TEXT.
lacks() { [[ -f $1 ]] && ! grep -qF -- "$2" "$1"; }

# stop NAME: stops node NAME (SIGTERM: it sends its peers a Cease) and
# waits for it to exit.
stop() {
    local pid=${PID[$1]} i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "$1 did not stop on SIGTERM within 15 s"
    wait "$pid" 2>/dev/null || true
    unset "PID[$1]"
}

# best_via NAME PREFIX PEER: NAME's best path for PREFIX came from node PEER.
best_via() {
    [[ $(route_field "$1" "$2" 'r["peer"]') == "$(get "$3.peer_id")" ]]
}

# sessions NAME: the peer ids NAME has an established session with, sorted.
sessions() {
    abgp_json "$1" peers | py '" ".join(sorted(p["peer_id"] for p in d if p.get("state") == "established"))'
}

# call_via NAME TOOL ARGS TEXT NODES: the call echoes TEXT and crossed
# exactly NODES (names, caller first).
call_via() {
    call_ok "$1" "$2" "$3" "$4" || return 1
    local got
    got=$(trace_names)
    [[ $got == "$5" ]] && return 0
    say "      crossed $got, want $5"
    return 1
}

# crash NAME: kills node NAME (SIGKILL: no Cease; its peers see the
# transport close) and waits for it to be gone.
crash() {
    local pid=${PID[$1]}
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$1]"
}

# route_stale NAME PREFIX: NAME's best path for PREFIX is marked stale.
route_stale() { [[ $(route_field "$1" "$2" 'r["stale"]') == true ]]; }
