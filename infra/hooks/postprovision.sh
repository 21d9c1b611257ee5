#!/bin/sh
# azd postprovision hook: writes local.settings.json at the repository root, so that `func start` (or
# `python -m devhost --backend azure`) runs the app on this machine against the resources just provisioned.
#
# - Every connection is identity-based and names no client id or credential, so the SDKs and the Functions host
#   sign in as the developer (az login / azd auth login); infra/app/rbac.bicep gave the deploying user the same
#   data-plane roles as the app. No key or password is ever written.
# - Host storage (AzureWebJobsStorage, Durable Functions) stays on Azurite.
# - The local host gets its own change-feed lease prefix and Event Hubs consumer group, so it never takes
#   partitions or leases away from the deployed app.
# - Microshare forwarding stays off here: its password and API key live only in Key Vault.
# - No alert webhook is called from here: the URLs (which carry tokens) live only in Key Vault.
#
# Values come from the azd environment (the outputs of infra/main.bicep), which azd exports to hooks.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
target="$root/local.settings.json"

for name in COSMOS_ENDPOINT COSMOS_DATABASE_NAME EVENTHUB_NAMESPACE EVENTHUB_NAME STATE_TABLE_SERVICE_URI TASKHUB_NAME \
    IMPORTS_BLOB_SERVICE_URI IMPORTS_QUEUE_SERVICE_URI; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "postprovision: $name is not set; run azd provision first" >&2
        exit 1
    fi
done

# Setting names and values, in pairs.
set -- \
    FUNCTIONS_WORKER_RUNTIME python \
    AzureWebJobsStorage UseDevelopmentStorage=true \
    AzureWebJobsDisableHomepage true \
    STORAGE_BACKEND azure \
    TASKHUB_NAME "$TASKHUB_NAME" \
    COSMOS__accountEndpoint "$COSMOS_ENDPOINT" \
    COSMOS_DATABASE_NAME "$COSMOS_DATABASE_NAME" \
    LEASE_CONTAINER_PREFIX local- \
    EVENTHUB__fullyQualifiedNamespace "$EVENTHUB_NAMESPACE" \
    EVENTHUB_NAME "$EVENTHUB_NAME" \
    EVENTHUB_CONSUMER_GROUP '$Default' \
    EVENTHUB_EXTRA_HUBS '[]' \
    STATE__tableServiceUri "$STATE_TABLE_SERVICE_URI" \
    IMPORTS__blobServiceUri "$IMPORTS_BLOB_SERVICE_URI" \
    IMPORTS__queueServiceUri "$IMPORTS_QUEUE_SERVICE_URI" \
    SIMULATOR_SCHEDULE "${SIMULATOR_SCHEDULE:-*/5 * * * * *}" \
    SENSOR_COUNT "${SENSOR_COUNT:-5}" \
    WINDOW_SIZE "${WINDOW_SIZE:-10}" \
    SUMMARY_TTL_SECONDS "${SUMMARY_TTL_SECONDS:-604800}" \
    READING_TTL_SECONDS "${READING_TTL_SECONDS:-604800}" \
    ALERT_WEBHOOK_URLS '' \
    MICROSHARE_AUTH_URL "${MICROSHARE_AUTH_URL:-https://auth.microshare.io}" \
    MICROSHARE_API_URL "${MICROSHARE_API_URL:-https://api.microshare.io}" \
    MICROSHARE_USERNAME '' \
    MICROSHARE_PASSWORD '' \
    MICROSHARE_API_KEY '' \
    MICROSHARE_CLUSTER_ID "${MICROSHARE_CLUSTER_ID:-}" \
    MICROSHARE_CLUSTER_REC_TYPE "${MICROSHARE_CLUSTER_REC_TYPE:-io.microshare.peoplecounter.packed}" \
    MICROSHARE_PEOPLE_COUNTER_VIEW_ID "${MICROSHARE_PEOPLE_COUNTER_VIEW_ID:-}" \
    MICROSHARE_SNAPSHOT_VIEW_ID "${MICROSHARE_SNAPSHOT_VIEW_ID:-}" \
    MICROSHARE_DATA_CONTEXT "${MICROSHARE_DATA_CONTEXT:-[\"people\"]}" \
    MICROSHARE_IDENTITY "${MICROSHARE_IDENTITY:-}" \
    MICROSHARE_LOCATION_PREFIX "${MICROSHARE_LOCATION_PREFIX:-}" \
    MICROSHARE_SNAPSHOT_CATEGORY "${MICROSHARE_SNAPSHOT_CATEGORY:-space}" \
    MICROSHARE_SNAPSHOT_METRIC "${MICROSHARE_SNAPSHOT_METRIC:-occupancy}" \
    MICROSHARE_PAGE_SIZE "${MICROSHARE_PAGE_SIZE:-999}" \
    MICROSHARE_TIMEOUT_SECONDS "${MICROSHARE_TIMEOUT_SECONDS:-30}" \
    MICROSHARE_OVERLAP_MINUTES "${MICROSHARE_OVERLAP_MINUTES:-60}" \
    MICROSHARE_DEDUP_RETENTION_HOURS "${MICROSHARE_DEDUP_RETENTION_HOURS:-72}" \
    MICROSHARE_FIRST_RUN_LOOKBACK_HOURS "${MICROSHARE_FIRST_RUN_LOOKBACK_HOURS:-24}" \
    MICROSHARE_BACKFILL_AFTER_HOURS "${MICROSHARE_BACKFILL_AFTER_HOURS:-6}" \
    MICROSHARE_BACKFILL_MAX_DAYS "${MICROSHARE_BACKFILL_MAX_DAYS:-31}"

# Quotes $1 as a JSON string for the fallback writer; a control character is refused rather than guessed at.
json_string() {
    case $1 in
        *[[:cntrl:]]*)
            echo "postprovision: a value holds a control character; install python3 to write it" >&2
            exit 1
            ;;
    esac
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

python=''
for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3,))'; then
        python=$candidate
        break
    fi
done

partial="$target.partial"
trap 'rm -f "$partial"' EXIT
if [ -n "$python" ]; then
    "$python" -c '
import json, sys
target, pairs = sys.argv[1], sys.argv[2:]
values = dict(zip(pairs[0::2], pairs[1::2]))
with open(target, "w", encoding="utf-8") as out:
    json.dump({"IsEncrypted": False, "Values": values}, out, indent=2)
    out.write("\n")
' "$partial" "$@"
else
    {
        printf '{\n  "IsEncrypted": false,\n  "Values": {'
        separator=''
        while [ "$#" -ge 2 ]; do
            printf '%s\n    ' "$separator"
            json_string "$1"
            printf ': '
            json_string "$2"
            separator=','
            shift 2
        done
        printf '\n  }\n}\n'
    } >"$partial"
fi
if [ -f "$target" ] && ! cmp -s "$partial" "$target"; then
    cp "$target" "$target.bak"  # the developer's own settings are kept, never silently replaced
    echo "postprovision: kept the previous local.settings.json as local.settings.json.bak"
fi
mv "$partial" "$target"

echo "postprovision: wrote $target"
echo "postprovision: the app now runs locally against ${AZURE_FUNCTION_APP_NAME:-the deployed resources} with your own login;"
echo "postprovision: start Azurite for host storage; Microshare forwarding stays off (its secrets are in Key Vault ${KEY_VAULT_NAME:-})."
