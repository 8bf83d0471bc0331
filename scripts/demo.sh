#!/usr/bin/env bash
# `make demo`: the main job on a fresh machine. Starts a real Vault (dev
# mode, cached binary from `make vault`) and the Salesforce simulator seeded
# with a Dev Hub, two subscriber orgs and four ECAs (one packaged, rotated
# through the Metadata API); writes the initial
# credentials as an operator would have set them up by hand; rotates one app
# by hand, then runs the daemon (`ecarotator run`) for about two minutes with
# second-level schedules so that several rotations and retirements happen,
# watching them with `status --server`; shows the final status and the
# verified audit trail. Stops everything it started (trap), by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
demo="$root/.demo"
bin="$root/bin"
vault_bin=$(scripts/vault.sh path)
rm -rf "$demo"; mkdir -p "$demo"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_http URL WHAT: poll until URL answers any HTTP status (bash only: no
# curl needed on a fresh machine), for at most 20 s.
wait_http() {
  local rest=${1#http://} hostport path
  hostport=${rest%%/*}; path=/${rest#*/}
  for _ in $(seq 1 200); do
    if { exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"; } 2>/dev/null; then
      printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
      if head -c 12 <&3 2>/dev/null | grep -q '^HTTP/'; then exec 3<&- 3>&-; return 0; fi
      exec 3<&- 3>&-
    fi
    sleep 0.1
  done
  echo "demo: $2 did not come up at $1" >&2; return 1
}
for port in 18200 18440 18441 18442 18443 18464; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "demo: port $port is in use; stop whatever holds it" >&2; exit 1
  fi
done

export VAULT_ADDR=http://127.0.0.1:18200 VAULT_TOKEN=demo-root-token
step "Starting a real Vault $("$vault_bin" version | awk '{print $2}') (dev mode) on $VAULT_ADDR"
"$vault_bin" server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address=127.0.0.1:18200 -dev-no-store-token >"$demo/vault.log" 2>&1 &
pids+=($!)
wait_http "$VAULT_ADDR/v1/sys/health" vault

step "Creating the audit keys in Vault transit (HMAC for records, ed25519 for the chain head)"
"$vault_bin" secrets enable transit >/dev/null
"$vault_bin" write -f transit/keys/ecarotator-audit >/dev/null
"$vault_bin" write transit/keys/ecarotator-audit-sign type=ed25519 >/dev/null
echo "  transit/keys/ecarotator-audit (HMAC) and transit/keys/ecarotator-audit-sign (ed25519): the daemon uses them, nobody reads them"

step "Starting the Salesforce simulator (Dev Hub + subscriber orgs acme and globex)"
"$bin/sfsim" -c salesforce/sfsim/testdata/demo.yaml -login-port 18440 -port devhub=18441 -port acme=18442 -port globex=18443 >"$demo/sfsim.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:18441/__sfsim/state sfsim
sed 's/^/  /' "$demo/sfsim.log" | awk 'NR <= 8'

step "Writing ecarotator's own Dev Hub key and the apps' initial credentials to Vault"
"$vault_bin" kv put -mount=secret ecarotator/devhubs/devhub private_key=@salesforce/sfsim/testdata/demo-rotator-key.pem >/dev/null
put_initial() { # app key secret url
  "$vault_bin" kv put -mount=secret "salesforce/$1" consumer_key="$2" consumer_secret="$3" token_url="$4" >/dev/null
  echo "  secret/salesforce/$1  consumer_key=$2"
}
put_initial billing   3MVG9DEMO.billing.consumer.key.0000000000000000000000000000000000000000000002 B111111111111111111111111111111111111111111111111111111111111111 http://127.0.0.1:18441/services/oauth2/token
put_initial support   3MVG9DEMO.support.consumer.key.0000000000000000000000000000000000000000000003 5111111111111111111111111111111111111111111111111111111111111111 http://127.0.0.1:18441/services/oauth2/token
put_initial analytics 3MVG9DEMO.analytics.consumer.key.00000000000000000000000000000000000000000005 A111111111111111111111111111111111111111111111111111111111111111 http://127.0.0.1:18441/services/oauth2/token
put_initial payroll   3MVG9DEMO.payroll.consumer.key.0000000000000000000000000000000000000000000006 9111111111111111111111111111111111111111111111111111111111111111 http://127.0.0.1:18441/services/oauth2/token

cfg=configs/demo.yaml
ec() { "$bin/ecarotator" -c "$cfg" "$@"; }

step "ecarotator config validate"
ec config validate

step "ecarotator doctor: read-only readiness checks against the (strict) simulator"
ec doctor

step "ecarotator plan (no change is made)"
ec plan

step "One manual rotation first: ecarotator rotate billing (adopts the hand-written path)"
ec rotate billing --reason "demo: first rotation by hand"

step "The packaged ECA: ecarotator rotate payroll (strategy auto → metadata: deploy of Payroll_glbl with shouldRotateConsumerSecret)"
ec rotate payroll --reason "demo: packaged ECA through the Metadata API"

step "An auditor's Vault token (configs/policies/auditor.hcl) for the console"
"$vault_bin" policy write auditor configs/policies/auditor.hcl >/dev/null
auditor_token=$("$vault_bin" token create -policy=auditor -ttl=2h -field=token)
echo "  policy auditor written; token created (2h): read-only, never a credential"

daemon_secs=${DEMO_DAEMON_SECONDS:-110}
step "ecarotator run: the daemon takes over for ${daemon_secs}s (schedules @every 40s/45s/50s/60s, window 5s, overlap 15s; payroll by the Metadata API)"
"$bin/ecarotator" -c "$cfg" run >"$demo/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
wait_http http://127.0.0.1:18464/readyz daemon
echo "  daemon pid $daemon_pid, logs in .demo/daemon.log, API on http://127.0.0.1:18464"
echo "  auditor console (while the daemon runs): http://127.0.0.1:18464/ui/"
echo "    paste this auditor token to log in: $auditor_token"
elapsed=0
while [ "$elapsed" -lt "$daemon_secs" ]; do
  chunk=$(( daemon_secs - elapsed < 25 ? daemon_secs - elapsed : 25 ))
  sleep "$chunk"; elapsed=$(( elapsed + chunk ))
  if ! kill -0 "$daemon_pid" 2>/dev/null; then echo "demo: the daemon exited early" >&2; tail -20 "$demo/daemon.log" >&2; exit 1; fi
  printf '\n  -- t+%ss: ecarotator status --server http://127.0.0.1:18464\n' "$elapsed"
  ec status --server http://127.0.0.1:18464 | sed 's/^/  /'
done

step "Stopping the daemon (SIGTERM: running rotations reach a journal boundary first)"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
echo "  daemon exited with status $?"
grep -c '"rotation succeeded"' "$demo/daemon.log" | xargs printf '  rotations completed by the daemon: %s\n'

step "ecarotator status (read from Vault; no daemon needed)"
ec status

step "Apps read their new credentials from Vault (secret stays in Vault; key shown)"
for app in billing support analytics payroll; do
  printf "  %-10s %s\n" "$app" "$("$vault_bin" kv get -mount=secret -field=consumer_key "salesforce/$app")"
done

step "The audit trail: verify the chain, then list it"
ec audit verify
echo "  offline, with only the public key (what an auditor keeps with an archived log):"
ec audit public-key --out "$demo/audit-public-key.json"
"$bin/ecarotator" audit verify --file "$demo/audit.log" --public-key "$demo/audit-public-key.json" | sed 's/^/  /'
# awk, not head: head closing the pipe early would SIGPIPE grep (pipefail).
ec audit list 2>/dev/null | grep -E 'daemon\.|rotation\.(started|succeeded|failed)|previous\.|secret_access\.|metadata\.' | awk 'NR <= 60'

rotations=$(ec audit list 2>/dev/null | grep -c 'rotation.succeeded' || true)
retired=$(ec audit list 2>/dev/null | grep -c 'previous.retired' || true)
echo
echo "  rotations succeeded: $rotations, previous pairs retired: $retired"
if [ "$rotations" -lt 3 ] || [ "$retired" -lt 1 ]; then
  echo "demo: expected at least 3 rotations and 1 retirement" >&2; exit 1
fi

step "Demo finished: stopping Vault and the simulator"
