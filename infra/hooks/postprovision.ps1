# azd postprovision hook (Windows): writes local.settings.json at the repository root, so that `func start` (or
# `python -m devhost --backend azure`) runs the app on this machine against the resources just provisioned.
# The same settings as postprovision.sh; see there for why each differs from the deployed app's:
# identity-based connections with no client id or credential (the developer's own login), host storage on
# Azurite, a local lease prefix and consumer group, Microshare forwarding off, no alert webhook. No key or
# password is written.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$target = Join-Path $root 'local.settings.json'

function Get-Required([string] $Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value)) {
        throw "postprovision: $Name is not set; run azd provision first"
    }
    return $value
}

function Get-OrDefault([string] $Name, [string] $Default) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value)) {
        return $Default
    }
    return $value
}

$values = [ordered]@{
    FUNCTIONS_WORKER_RUNTIME = 'python'
    AzureWebJobsStorage = 'UseDevelopmentStorage=true'
    AzureWebJobsDisableHomepage = 'true'
    STORAGE_BACKEND = 'azure'
    TASKHUB_NAME = (Get-Required 'TASKHUB_NAME')
    COSMOS__accountEndpoint = (Get-Required 'COSMOS_ENDPOINT')
    COSMOS_DATABASE_NAME = (Get-Required 'COSMOS_DATABASE_NAME')
    LEASE_CONTAINER_PREFIX = 'local-'
    EVENTHUB__fullyQualifiedNamespace = (Get-Required 'EVENTHUB_NAMESPACE')
    EVENTHUB_NAME = (Get-Required 'EVENTHUB_NAME')
    EVENTHUB_CONSUMER_GROUP = '$Default'
    EVENTHUB_EXTRA_HUBS = '[]'
    STATE__tableServiceUri = (Get-Required 'STATE_TABLE_SERVICE_URI')
    IMPORTS__blobServiceUri = (Get-Required 'IMPORTS_BLOB_SERVICE_URI')
    IMPORTS__queueServiceUri = (Get-Required 'IMPORTS_QUEUE_SERVICE_URI')
    SIMULATOR_SCHEDULE = (Get-OrDefault 'SIMULATOR_SCHEDULE' '*/5 * * * * *')
    SENSOR_COUNT = (Get-OrDefault 'SENSOR_COUNT' '5')
    WINDOW_SIZE = (Get-OrDefault 'WINDOW_SIZE' '10')
    SUMMARY_TTL_SECONDS = (Get-OrDefault 'SUMMARY_TTL_SECONDS' '604800')
    READING_TTL_SECONDS = (Get-OrDefault 'READING_TTL_SECONDS' '604800')
    ALERT_WEBHOOK_URLS = ''
    MICROSHARE_AUTH_URL = (Get-OrDefault 'MICROSHARE_AUTH_URL' 'https://auth.microshare.io')
    MICROSHARE_API_URL = (Get-OrDefault 'MICROSHARE_API_URL' 'https://api.microshare.io')
    MICROSHARE_USERNAME = ''
    MICROSHARE_PASSWORD = ''
    MICROSHARE_API_KEY = ''
    MICROSHARE_CLUSTER_ID = (Get-OrDefault 'MICROSHARE_CLUSTER_ID' '')
    MICROSHARE_CLUSTER_REC_TYPE = (Get-OrDefault 'MICROSHARE_CLUSTER_REC_TYPE' 'io.microshare.peoplecounter.packed')
    MICROSHARE_PEOPLE_COUNTER_VIEW_ID = (Get-OrDefault 'MICROSHARE_PEOPLE_COUNTER_VIEW_ID' '')
    MICROSHARE_SNAPSHOT_VIEW_ID = (Get-OrDefault 'MICROSHARE_SNAPSHOT_VIEW_ID' '')
    MICROSHARE_DATA_CONTEXT = (Get-OrDefault 'MICROSHARE_DATA_CONTEXT' '["people"]')
    MICROSHARE_IDENTITY = (Get-OrDefault 'MICROSHARE_IDENTITY' '')
    MICROSHARE_LOCATION_PREFIX = (Get-OrDefault 'MICROSHARE_LOCATION_PREFIX' '')
    MICROSHARE_SNAPSHOT_CATEGORY = (Get-OrDefault 'MICROSHARE_SNAPSHOT_CATEGORY' 'space')
    MICROSHARE_SNAPSHOT_METRIC = (Get-OrDefault 'MICROSHARE_SNAPSHOT_METRIC' 'occupancy')
    MICROSHARE_PAGE_SIZE = (Get-OrDefault 'MICROSHARE_PAGE_SIZE' '999')
    MICROSHARE_TIMEOUT_SECONDS = (Get-OrDefault 'MICROSHARE_TIMEOUT_SECONDS' '30')
    MICROSHARE_OVERLAP_MINUTES = (Get-OrDefault 'MICROSHARE_OVERLAP_MINUTES' '60')
    MICROSHARE_DEDUP_RETENTION_HOURS = (Get-OrDefault 'MICROSHARE_DEDUP_RETENTION_HOURS' '72')
    MICROSHARE_FIRST_RUN_LOOKBACK_HOURS = (Get-OrDefault 'MICROSHARE_FIRST_RUN_LOOKBACK_HOURS' '24')
    MICROSHARE_BACKFILL_AFTER_HOURS = (Get-OrDefault 'MICROSHARE_BACKFILL_AFTER_HOURS' '6')
    MICROSHARE_BACKFILL_MAX_DAYS = (Get-OrDefault 'MICROSHARE_BACKFILL_MAX_DAYS' '31')
}

# ConvertTo-Json escapes every value; the file is written as UTF-8 without a byte-order mark.
$json = [ordered]@{ IsEncrypted = $false; Values = $values } | ConvertTo-Json -Depth 4
if (Test-Path $target) {
    # The developer's own settings are kept, never silently replaced.
    Copy-Item $target "$target.bak" -Force
    Write-Host "postprovision: kept the previous local.settings.json as local.settings.json.bak"
}
[System.IO.File]::WriteAllText($target, $json + "`n", [System.Text.UTF8Encoding]::new($false))

Write-Host "postprovision: wrote $target"
Write-Host 'postprovision: the app now runs locally against the deployed resources with your own login;'
Write-Host 'postprovision: start Azurite for host storage; Microshare forwarding stays off (its secrets are in Key Vault).'
