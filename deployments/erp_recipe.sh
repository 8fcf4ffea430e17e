#!/usr/bin/env bash
# Start a Bindery deployment from an ERP system over Prefect's REST API, once per ERP message, and wait.
#   PREFECT_API_URL=http://prefect.example:4200/api PREFECT_API_AUTH_STRING=erp:secret \
#     deployments/erp_recipe.sh bind-and-provision/bind-and-provision PO-4711 \
#     '{"bid": "D001", "user": "ann@acme.io", "cloud_api": "iot"}'
# Prints the flow run id, then its final state; exits 0 only when the run COMPLETED.
set -euo pipefail
API=${PREFECT_API_URL:?set PREFECT_API_URL (http://host:port/api)}
DEPLOYMENT=$1 MESSAGE=$2 PARAMETERS=$3
# curl retries 408, 429, 5xx and refused connections (honouring Retry-After, at most 6 times); any other
# 4xx fails at once and prints the server's answer. Retrying the create call is safe: same key, same run.
CURL=(curl -sS --fail-with-body --retry 6 --retry-connrefused --retry-delay 0 --retry-max-time 120)
if [ -n "${PREFECT_API_AUTH_STRING:-}" ]; then CURL+=(-u "$PREFECT_API_AUTH_STRING"); fi
ANSWER=$(mktemp)
trap 'rm -f "$ANSWER"' EXIT
call() {  # the final answer's body (curl starts the file anew on each retry); on failure, to stderr
  "${CURL[@]}" -o "$ANSWER" "$@" || { cat "$ANSWER" >&2; echo >&2; return 1; }
  cat "$ANSWER"
}
# 1. the deployment, by flow-name/deployment-name
DEP=$(call "$API/deployments/name/$DEPLOYMENT" | jq -er .id)
# 2. a run; Prefect keeps idempotency keys unique per *flow*, so the key carries the deployment
BODY=$(jq -n --argjson parameters "$PARAMETERS" --arg key "$DEPLOYMENT:$MESSAGE" \
  '{parameters: $parameters, idempotency_key: $key}')
RUN=$(call -X POST "$API/deployments/$DEP/create_flow_run" -H 'Content-Type: application/json' -d "$BODY" |
  jq -er .id)
echo "$RUN"
# 3. poll until COMPLETED, FAILED, CRASHED or CANCELLED
while :; do
  STATE=$(call "$API/flow_runs/$RUN" | jq -er .state.type)
  case $STATE in COMPLETED|FAILED|CRASHED|CANCELLED) break ;; esac
  sleep 2
done
echo "$STATE"
[ "$STATE" = COMPLETED ]
