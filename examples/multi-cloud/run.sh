#!/usr/bin/env bash
# The design seed's multi-cloud federation on loopback: AWS (AS 65100) and
# Azure (AS 65200) joined by the route servers of an Internet BGP core
# (AS 65300), and a startup (AS 65400) that buys transit from both and
# leaks one's routes to the other. Starts the
# nodes, waits for them to converge, checks every policy and security rule
# README.md describes (PASS/FAIL lines), stops them. Exit 0 only when every
# check passed. ABGP=path picks the binary; KEEP=1 keeps the node dirs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../common.sh
source "$HERE/../common.sh"

setup multi-cloud multicloud

# Keys, ports and ASN certificates issued by the registry; the impostor's
# certificate is replaced by one it signs itself.
node aws-1 65100
node azure-1 65200
node ix-1 65300
node ix-2 65300
node startup 65400
node impostor 65100
rm -f "$WORK/impostor/node.cert"
for n in aws-1 azure-1 ix-1 ix-2 startup; do value "$n.token" "$(token)"; done

render aws-1 "$HERE/nodes/aws-1.toml" "$HERE/policies/aws.toml"
render azure-1 "$HERE/nodes/azure-1.toml" "$HERE/policies/azure.toml"
render ix-1 "$HERE/nodes/ix-1.toml" "$HERE/policies/core.toml"
render ix-2 "$HERE/nodes/ix-2.toml" "$HERE/policies/core.toml"
render startup "$HERE/nodes/startup.toml" "$HERE/policies/startup.toml"
render impostor "$HERE/nodes/impostor.toml"

for n in aws-1 azure-1 ix-1 ix-2 startup; do start "$n"; done
NODES=(aws-1 azure-1 ix-1 ix-2 startup)
wait_running
say "-- waiting for the sessions and the routes"
for n in ix-1 ix-2 startup; do
    wait_for "$n's 2 sessions" established "$n" 2
done
for n in aws-1 azure-1; do
    wait_for "$n's 3 sessions" established "$n" 3
done
AWS="aws/api aws/data aws/ml"
AWS_PUBLIC="aws/api aws/ml"
AZURE="azure/analytics azure/compute azure/storage"
AZURE_PUBLIC="azure/analytics azure/storage"
for n in ix-1 ix-2; do
    wait_for "$n to see both clouds' public agents" has_agents "$n" "$AWS_PUBLIC $AZURE_PUBLIC"
done
wait_for "AWS to see Azure's and the startup's" has_agents aws-1 "$AWS $AZURE_PUBLIC startup/app"
wait_for "Azure to see AWS's and the startup's" has_agents azure-1 "$AZURE aws/billing $AWS_PUBLIC startup/app"
wait_for "the startup to see both clouds' public agents" has_agents startup "$AWS_PUBLIC $AZURE_PUBLIC startup/app"

say "-- routes at each node"
check "aws-1 sees its own agents, Azure's analytics and storage (not compute), and its customer's" \
    same "$(words "$AWS $AZURE_PUBLIC startup/app")" "$(agents aws-1)"
check "azure-1 sees its own agents, AWS's API and ML (not data processing), and its customer's" \
    same "$(words "$AZURE aws/billing $AWS_PUBLIC startup/app")" "$(agents azure-1)"
for n in ix-1 ix-2; do
    check "the core ($n) sees each cloud's public agents only" \
        same "$(words "$AWS_PUBLIC $AZURE_PUBLIC")" "$(agents "$n")"
done
check "at Azure, AWS's ML agent has AS path 65100: the route servers add no ASN" \
    same "65100" "$(as_path azure-1 aws/ml/echo)"
check "at AWS, Azure's analytics agent has AS path 65200" \
    same "65200" "$(as_path aws-1 azure/analytics/echo)"
for n in aws-1 azure-1; do
    check "$n's sessions are the two route servers and the startup (none between the clouds)" \
        same "$(words "$(get ix-1.peer_id) $(get ix-2.peer_id) $(get startup.peer_id)")" "$(sessions "$n")"
done

say "-- what crosses between clouds, and why"
check "aws-1 does not export data processing: only the prefix list aws/api/*, aws/ml/* goes out" \
    not_exported aws-1 aws/data/echo ix-1 "the configured default"
check "azure-1 does not export compute: its routes carry no-export" \
    not_exported azure-1 azure/compute/echo ix-1 "NO_EXPORT community"
check "the core refuses Azure's announcement in AWS's space (aws/billing/echo): no statement of from-azure accepts it" \
    import_rejected ix-1 aws/billing/echo azure-1 "the configured default"
check "the core tags what it learned from AWS with 65300:100 (Azure's import requires it)" \
    same "65300:100" "$(route_field azure-1 aws/ml/echo '" ".join(r["communities"])')"
check "and what it learned from Azure with 65300:200" \
    same "65300:200" "$(route_field aws-1 azure/analytics/echo '" ".join(r["communities"])')"

say "-- a route leak: the startup passes one provider's routes to the other"
check "each cloud learns the startup's agent from it (AS path 65400)" \
    same "65400 65400" "$(as_path aws-1 startup/app/echo) $(as_path azure-1 startup/app/echo)"
check "the startup has AWS's ML route, marked only-to-customer by AWS (AS 65100)" \
    same 65100 "$(route_field startup aws/ml/echo 'r["otc"]')"
check "the startup (no roles, exports everything) leaks it to Azure, and Azure excludes it as a route leak" \
    eventually excluded_as azure-1 aws/ml/echo startup route-leak
check "so Azure, which prefers its customer's routes (local-pref 200), still goes to AWS direct (AS path 65100)" \
    same "65100" "$(as_path azure-1 aws/ml/echo)"
check "the other way: AWS excludes Azure's analytics route leaked by the startup" \
    eventually excluded_as aws-1 azure/analytics/echo startup route-leak
check "and AWS still reaches Azure's analytics direct (AS path 65200)" \
    same "65200" "$(as_path aws-1 azure/analytics/echo)"

say "-- signatures"
check "at Azure, AWS's route is signed by its origin and carries path signatures" \
    same true "$(route_field azure-1 aws/ml/echo 'r["signed"] and r["path_signatures"] >= 1')"
for n in aws-1 azure-1 ix-1 ix-2 startup; do
    check "$n verified routes and dropped none for a bad signature" verified_clean "$n"
done

say "-- calls"
# A route server names the announcing cloud as the next hop: calls go from
# cloud to cloud. Until a cloud has found the other's addresses in the
# route servers' DHT, a call goes through a route server instead (its
# second path); the checks wait for the direct one.
T=$(front_name azure-1 aws/ml/echo)
check "Azure calls AWS's ML agent ($T) straight to aws-1: the route servers are not on the call path" \
    eventually call_via azure-1 "$T" '{"text":"from azure"}' "from azure" "azure-1 aws-1"
check "the call crossed AS 65200 then AS 65100" same "65200 65100" "$(hops)"
T=$(front_name aws-1 azure/analytics/echo)
check "AWS calls Azure's analytics agent ($T) straight to azure-1" \
    eventually call_via aws-1 "$T" '{"text":"from aws"}' "from aws" "aws-1 azure-1"
T=$(front_name aws-1 azure/storage/echo)
check "AWS may not call Azure's storage (routed, but not on Azure's allow-list)" \
    call_fails aws-1 "$T" '{"text":"from aws"}' 1 "access to azure/storage/echo denied to AS65100"
T=$(front_name ix-1 aws/ml/echo)
check "the core may not call AWS's ML agent: default deny" \
    call_fails ix-1 "$T" '{"text":"from the core"}' 1 "access to aws/ml/echo denied to AS65300"
T=$(hashed_name aws/data/echo echo)
check "Azure cannot reach AWS's data processing: no route for $T" \
    call_fails azure-1 "$T" '{"text":"from azure"}' '1|4' "no tool \"$T\" is routed to this node"

say "-- tokens and identities"
check "aws-1's MCP front refuses a client without its bearer token (401)" \
    same 401 "$(http_status "$(front_url aws-1)" POST)"
check "aws-1's MCP front takes the token" \
    same 200 "$(http_status "$(front_url aws-1)" POST "$(get aws-1.token)")"
check "aws-1's admin API refuses a request without the admin token (401)" \
    same 401 "$(http_status "http://$(cat "$WORK/aws-1/admin.addr")/v1/status" GET)"
start impostor
NODES+=(impostor)
wait_for "impostor to start" running impostor
check "an impostor with ix-1's neighbour entry for AWS's second node but a self-signed certificate for AS 65100 is refused in OPEN" \
    eventually refused impostor "Open/18"
check "the core counts the refused OPEN" at_least "$(opens_refused ix-1)" 1
check "and never gives it a session (still 2 established)" established ix-1 2

say "-- the route servers go away"
stop ix-1
check "ix-1 stopped (a Cease): Azure keeps AWS's ML agent, learned through ix-2" \
    eventually best_via azure-1 aws/ml/echo ix-2
check "and AWS keeps Azure's analytics agent through ix-2" \
    eventually best_via aws-1 azure/analytics/echo ix-2
T=$(front_name azure-1 aws/ml/echo)
check "Azure still calls AWS's ML agent straight to aws-1" \
    call_via azure-1 "$T" '{"text":"after ix-1 stopped"}' "after ix-1 stopped" "azure-1 aws-1"
crash ix-2
check "ix-2 killed (no Cease): Azure keeps AWS's route, stale, for the graceful-restart time" \
    eventually route_stale azure-1 aws/ml/echo
check "and still calls AWS's ML agent straight to aws-1: no route server was on the call path" \
    call_via azure-1 "$T" '{"text":"no route server left"}' "no route server left" "azure-1 aws-1"
