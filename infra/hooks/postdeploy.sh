#!/bin/sh
# azd postdeploy hook: subscribes the bulk import's blob trigger to the BlobCreated events of the `imports` container.
#
# The trigger (`import_blob`, blueprints/imports.py) uses the Event Grid source, the only blob trigger Flex Consumption
# runs: Event Grid posts each event to the app's blob extension webhook, which takes the `blobs_extension` system key
# in its query string. That key exists only once the deployed app has started with the trigger, so infra/ declares the
# system topic and this hook, run after every deploy, makes the subscription. `create` replaces a subscription of the
# same name, so running it again (after a key rotation, say) is harmless.
#
# The key is a secret: it stays in shell variables, is never printed, logged, traced, written to a file or to the azd
# environment; az runs with its output off, and an az error is printed with the key and any `code=` value blanked.
#
# Run by hand after `func azure functionapp publish <app>`: `./infra/hooks/postdeploy.sh`. It reads RESOURCE_GROUP,
# AZURE_FUNCTION_APP_NAME, AZURE_FUNCTION_APP_URL and IMPORTS_SYSTEM_TOPIC_NAME from the environment (azd exports its
# environment to hooks) or else from `azd env get-values`. Needs the Azure CLI signed in (`az login`) as someone who
# may list the app's keys and create event subscriptions on the topic (Contributor on the resource group).
set +x
set -eu

function_name=import_blob  # the blob trigger, as registered; its path is imports/{name}
container=imports
subscription=imports-blob-created
wait_seconds=${POSTDEPLOY_WAIT_SECONDS:-300}
retry_seconds=${POSTDEPLOY_RETRY_SECONDS:-10}
[ "$retry_seconds" -ge 1 ] || retry_seconds=1

azd_values=''
for name in RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_URL IMPORTS_SYSTEM_TOPIC_NAME; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        if [ -z "$azd_values" ] && command -v azd >/dev/null 2>&1; then
            azd_values=$(azd env get-values 2>/dev/null) || azd_values=''
        fi
        value=$(printf '%s\n' "$azd_values" | sed -n "s/^$name=\"\\(.*\\)\"\$/\\1/p")
        if [ -z "$value" ]; then
            echo "postdeploy: $name is not set; run azd provision first (or set it in the environment)" >&2
            exit 1
        fi
        eval "$name=\$value"
    fi
done
app_url=${AZURE_FUNCTION_APP_URL%/}

if ! command -v az >/dev/null 2>&1; then
    echo "postdeploy: the Azure CLI (az) is needed to subscribe the import trigger to blob events" >&2
    exit 1
fi
if ! az account show --only-show-errors -o none >/dev/null 2>&1; then
    echo "postdeploy: the Azure CLI is not signed in; run az login, then ./infra/hooks/postdeploy.sh" >&2
    exit 1
fi

# Prints stdin with the key, and any code= value, blanked. The key reaches awk in its environment, never as an argument.
redact() {
    REDACT_SECRET=$key awk '{
        secret = ENVIRON["REDACT_SECRET"]
        while (secret != "" && (at = index($0, secret)) > 0)
            $0 = substr($0, 1, at - 1) "<redacted>" substr($0, at + length(secret))
        gsub(/code=[^&" \t]*/, "code=<redacted>")
        gsub(/code%3[Dd][^&" \t]*/, "code%3D<redacted>")
        print
    }'
}

# Flex Consumption scales to zero: a request starts an instance, and the blob extension creates its key when the host
# first starts with the trigger.
key=''
waited=0
while :; do
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 30 "$app_url/api/health" || true
    fi
    key=$(az functionapp keys list --resource-group "$RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
        --query systemKeys.blobs_extension -o tsv --only-show-errors 2>/dev/null) || key=''
    if [ -n "$key" ]; then
        break
    fi
    if [ "$waited" -ge "$wait_seconds" ]; then
        echo "postdeploy: no blobs_extension system key of $AZURE_FUNCTION_APP_NAME after ${wait_seconds}s." >&2
        echo "postdeploy: It appears once the app runs with the blob trigger $function_name: check that the" >&2
        echo "postdeploy: deploy succeeded, that the app starts and that you may list its keys, then run" >&2
        echo "postdeploy: ./infra/hooks/postdeploy.sh again." >&2
        exit 1
    fi
    echo "postdeploy: waiting for the app's blobs_extension key (the blob trigger registers it when the app starts)"
    sleep "$retry_seconds"
    waited=$((waited + retry_seconds))
done

# Event Grid validates the endpoint by calling it; an instance still starting may miss that, so creating is retried.
endpoint="$app_url/runtime/webhooks/blobs?functionName=Host.Functions.$function_name&code=$key"
attempt=1
while :; do
    if error=$(az eventgrid system-topic event-subscription create \
        --resource-group "$RESOURCE_GROUP" \
        --system-topic-name "$IMPORTS_SYSTEM_TOPIC_NAME" \
        --name "$subscription" \
        --endpoint-type webhook \
        --endpoint "$endpoint" \
        --included-event-types Microsoft.Storage.BlobCreated \
        --subject-begins-with "/blobServices/default/containers/$container/blobs/" \
        --event-delivery-schema eventgridschema \
        --max-delivery-attempts 30 \
        --event-ttl 1440 \
        --only-show-errors -o none 2>&1); then
        break
    fi
    if [ "$attempt" -ge 5 ]; then
        printf '%s\n' "$error" | redact >&2
        echo "postdeploy: could not subscribe $function_name to BlobCreated in $container;" \
            "run ./infra/hooks/postdeploy.sh again" >&2
        exit 1
    fi
    echo "postdeploy: the event subscription was refused (attempt $attempt of 5); retrying"
    attempt=$((attempt + 1))
    sleep "$retry_seconds"
done

echo "postdeploy: files written to the $container container now start $function_name" \
    "(event subscription $subscription on $IMPORTS_SYSTEM_TOPIC_NAME)"
