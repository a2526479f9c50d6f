#!/usr/bin/env bash
# The design seed's corporate network on loopback: Finance (AS 65001), the
# corporate core with a route reflector (AS 65000), Engineering (AS 65002).
# Starts the seven nodes, waits for them to converge, checks every policy
# README.md describes (PASS/FAIL lines), stops them. Exit 0 only when every
# check passed. ABGP=path picks the binary; KEEP=1 keeps the node dirs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../common.sh
source "$HERE/../common.sh"

setup corporate corporate

# Keys, ports and ASN certificates of the corporate authority.
node fin-1 65001
node fin-2 65001
node core-1 65000
node core-rr 65000
node core-2 65000
node eng-1 65002
node eng-2 65002

for n in fin-1 fin-2; do render "$n" "$HERE/nodes/$n.toml" "$HERE/policies/finance.toml"; done
for n in core-1 core-rr core-2; do render "$n" "$HERE/nodes/$n.toml" "$HERE/policies/core.toml"; done
for n in eng-1 eng-2; do render "$n" "$HERE/nodes/$n.toml" "$HERE/policies/engineering.toml"; done

for n in "${NODES[@]}"; do start "$n"; done
wait_running
say "-- waiting for the sessions and the routes"
wait_for "fin-1's 2 sessions" established fin-1 2
wait_for "core-rr's 2 sessions" established core-rr 2
wait_for "core-1's 2 sessions" established core-1 2
wait_for "core-2's 2 sessions" established core-2 2
wait_for "eng-1's 2 sessions" established eng-1 2

FINANCE="finance/audit finance/budget finance/report"
FIN_PUBLIC="finance/budget finance/report"
ENGINEERING="eng/code eng/deploy eng/test"
# Everything a node should see has arrived; what it should not see would
# have come along the same sessions by now (checked below from the sender's
# side too).
wait_for "Finance to see Engineering" has_agents fin-2 "$ENGINEERING $FINANCE"
wait_for "fin-1 to see everything" has_agents fin-1 "$ENGINEERING $FINANCE"
for n in core-1 core-rr core-2; do
    wait_for "$n to see the public Finance and Engineering agents" has_agents "$n" "$FIN_PUBLIC $ENGINEERING"
done
wait_for "eng-2 to see Engineering" has_agents eng-2 "$ENGINEERING"

say "-- routes at each node"
check "fin-1 and fin-2 see all of Finance and all of Engineering" \
    same "$(words "$FINANCE $ENGINEERING")" "$(agents fin-1)"
check "fin-2 sees the same" same "$(words "$FINANCE $ENGINEERING")" "$(agents fin-2)"
for n in core-1 core-rr core-2; do
    check "$n sees Finance's public agents and Engineering, not the confidential audit agent" \
        same "$(words "$FIN_PUBLIC $ENGINEERING")" "$(agents "$n")"
done
for n in eng-1 eng-2; do
    check "$n sees Engineering only: none of Finance's routes" \
        same "$(words "$ENGINEERING")" "$(agents "$n")"
done
check "at Finance, Engineering's routes come through the core: AS path 65000 65002" \
    same "65000 65002" "$(as_path fin-2 eng/deploy/echo)"
check "at the core, Finance's routes have AS path 65001" \
    same "65001" "$(as_path core-2 finance/report/echo)"
check "core-2 does not advertise Finance to eng-1: the export statement finance-routes rejects it" \
    not_exported core-2 finance/budget/echo eng-1 'statement "finance-routes"'
check "fin-1 keeps the audit agent inside Finance: statement confidential rejects it towards core-1" \
    not_exported fin-1 finance/audit/echo core-1 'statement "confidential"'

say "-- the route reflector"
check "core-2 learned Finance's routes reflected by core-rr: originator core-1, cluster list [1]" \
    same "$(get core-1.node_id) [1]" "$(route_field core-2 finance/budget/echo 'r["originator"] + " " + str(r["cluster_list"])')"
check "core-1 learned Engineering's routes reflected: originator core-2, cluster list [1]" \
    same "$(get core-2.node_id) [1]" "$(route_field core-1 eng/code/echo 'r["originator"] + " " + str(r["cluster_list"])')"
check "reflection attributes stay inside the core: none at Finance" \
    same "None []" "$(route_field fin-1 eng/code/echo 'str(r["originator"]) + " " + str(r["cluster_list"])')"

say "-- calls"
T=$(front_name fin-1 eng/code/echo)
check "Finance calls Engineering's code agent ($T at fin-1) across the core" \
    call_ok fin-1 "$T" '{"text":"from finance"}' "from finance"
check "the call crossed AS 65001, the core AS 65000, then AS 65002" same "65001 65000 65002" "$(hops)"
FIN_TRACE=$(trace_id)
FIN_PATH=$(trace_names)
say "      nodes crossed: $FIN_PATH"
T=$(hashed_name finance/budget/echo echo)
check "eng-1's front lists no Finance tool (none under finance/, none named $T)" \
    same "" "$(abgp_json eng-1 tools | py "' '.join(t['name'] for t in d if t['name'] == '$T' or t['prefix'].startswith('finance/'))")"
check "Engineering cannot call Finance's budget agent: no route for $T at eng-1" \
    call_fails eng-1 "$T" '{"text":"from engineering"}' '1|4' "no tool \"$T\" is routed to this node"
T=$(front_name core-1 finance/report/echo)
check "the core may call Finance's report agent (fin-2's access rule for AS 65000)" \
    call_ok core-1 "$T" '{"text":"from the core"}' "from the core"
T=$(front_name core-1 finance/budget/echo)
check "the core may not call Finance's budget agent: access_denied by fin-1's default" \
    call_fails core-1 "$T" '{"text":"from the core"}' 1 "access to finance/budget/echo denied to AS65000"


say "-- the core's audit log"
check "the call crossed both core borders, core-1 and core-2" \
    contains "$FIN_PATH" core-1 core-2
for n in $FIN_PATH; do
    [[ $n == core-* ]] || continue
    check "$n's audit log has Finance's call to Engineering (caller AS 65001, node fin-1, ok)" \
        audited "$n" "$FIN_TRACE" caller_asn=65001 "caller_node=$(get fin-1.node_id)" \
        target=eng/code/echo outcome=ok
done
check "core-1's audit log has its own refused call (caller AS 65000, access_denied)" \
    audited core-1 any caller_asn=65000 target=finance/budget/echo outcome=access_denied
check "no arguments in the audit log (log_arguments is off)" \
    lacks "$WORK/core-1/audit.jsonl" "from finance"
check "the audit log is 0600" same 600 "$(stat -c %a "$WORK/core-1/audit.jsonl")"
