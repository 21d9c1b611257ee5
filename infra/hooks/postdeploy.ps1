# azd postdeploy hook (Windows): subscribes the bulk import's blob trigger to the BlobCreated events of the `imports`
# container. The same steps as postdeploy.sh; see there for why the subscription is made after the deploy, not in
# infra/. The `blobs_extension` key stays in variables: it is never printed, logged, written to a file or to the azd
# environment; az runs with its output off, and an az error is printed with the key and any `code=` value blanked.
#
# Run by hand after `func azure functionapp publish <app>`: `pwsh ./infra/hooks/postdeploy.ps1`. It reads
# RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME, AZURE_FUNCTION_APP_URL and IMPORTS_SYSTEM_TOPIC_NAME from the environment or
# else from `azd env get-values`, and needs the Azure CLI signed in (`az login`).
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
# Each az call runs in a script block with 'Continue': under 'Stop', a line az writes to stderr would become a
# terminating error; az is judged by its exit code instead.

$functionName = 'import_blob'  # the blob trigger, as registered; its path is imports/{name}
$container = 'imports'
$subscription = 'imports-blob-created'
$waitSeconds = if ($env:POSTDEPLOY_WAIT_SECONDS) { [int]$env:POSTDEPLOY_WAIT_SECONDS } else { 300 }
$retrySeconds = if ($env:POSTDEPLOY_RETRY_SECONDS) { [Math]::Max(1, [int]$env:POSTDEPLOY_RETRY_SECONDS) } else { 10 }

$azdValues = $null
function Get-Value([string] $Name) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if (-not [string]::IsNullOrEmpty($value)) {
        return $value
    }
    if ($null -eq $script:azdValues -and (Get-Command azd -ErrorAction SilentlyContinue)) {
        $script:azdValues = @(& { $ErrorActionPreference = 'Continue'; azd env get-values 2>$null })
    }
    foreach ($line in @($script:azdValues)) {
        if ($line -match "^$Name=`"(.*)`"$") {
            return $Matches[1]
        }
    }
    throw "postdeploy: $Name is not set; run azd provision first (or set it in the environment)"
}

$resourceGroup = Get-Value 'RESOURCE_GROUP'
$appName = Get-Value 'AZURE_FUNCTION_APP_NAME'
$appUrl = (Get-Value 'AZURE_FUNCTION_APP_URL').TrimEnd('/')
$topicName = Get-Value 'IMPORTS_SYSTEM_TOPIC_NAME'

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    throw 'postdeploy: the Azure CLI (az) is needed to subscribe the import trigger to blob events'
}
& { $ErrorActionPreference = 'Continue'; az account show --only-show-errors -o none 2>$null } | Out-Null
if ($LASTEXITCODE -ne 0) {
    throw 'postdeploy: the Azure CLI is not signed in; run az login, then pwsh ./infra/hooks/postdeploy.ps1'
}

# The text with the key, and any code= value, blanked.
function Hide-Key([string] $Text, [string] $Secret) {
    if (-not [string]::IsNullOrEmpty($Secret)) {
        $Text = $Text.Replace($Secret, '<redacted>')
    }
    $Text = $Text -replace 'code=[^&"\s]*', 'code=<redacted>'
    return $Text -replace '(?i)code%3D[^&"\s]*', 'code%3D<redacted>'
}

# Flex Consumption scales to zero: a request starts an instance, and the blob extension creates its key when the host
# first starts with the trigger.
$key = ''
$waited = 0
while ($true) {
    try {
        Invoke-WebRequest -Uri "$appUrl/api/health" -TimeoutSec 30 -UseBasicParsing -ErrorAction Stop | Out-Null
    } catch {
        # Only a wake-up call: the key is what is waited for.
    }
    $key = (& { $ErrorActionPreference = 'Continue'; az functionapp keys list --resource-group $resourceGroup `
        --name $appName --query systemKeys.blobs_extension -o tsv --only-show-errors 2>$null } | Out-String).Trim()
    if (-not [string]::IsNullOrWhiteSpace($key)) {
        break
    }
    if ($waited -ge $waitSeconds) {
        throw ("postdeploy: no blobs_extension system key of $appName after ${waitSeconds}s. It appears once the app " +
            "runs with the blob trigger ${functionName}: check that the deploy succeeded, that the app starts and " +
            'that you may list its keys, then run pwsh ./infra/hooks/postdeploy.ps1 again.')
    }
    Write-Host 'postdeploy: waiting for the blobs_extension key (the blob trigger registers it when the app starts)'
    Start-Sleep -Seconds $retrySeconds
    $waited += $retrySeconds
}

# Event Grid validates the endpoint by calling it; an instance still starting may miss that, so creating is retried.
$endpoint = "$appUrl/runtime/webhooks/blobs?functionName=Host.Functions.$functionName&code=$key"
# The URL holds an `&`, and on Windows az is az.cmd, run by cmd.exe: there the URL travels inside double quotes, or
# cmd.exe would end the command at the `&` (and try to run the rest, key included, as a command of its own).
if ([Environment]::OSVersion.Platform -eq 'Win32NT') { $endpoint = '"' + $endpoint + '"' }
$attempt = 1
while ($true) {
    $errorText = (& { $ErrorActionPreference = 'Continue'; az eventgrid system-topic event-subscription create `
        --resource-group $resourceGroup `
        --system-topic-name $topicName `
        --name $subscription `
        --endpoint-type webhook `
        --endpoint $endpoint `
        --included-event-types Microsoft.Storage.BlobCreated `
        --subject-begins-with "/blobServices/default/containers/$container/blobs/" `
        --event-delivery-schema eventgridschema `
        --max-delivery-attempts 30 `
        --event-ttl 1440 `
        --only-show-errors -o none 2>&1 } | Out-String)
    if ($LASTEXITCODE -eq 0) {
        break
    }
    if ($attempt -ge 5) {
        [Console]::Error.WriteLine((Hide-Key $errorText $key))
        throw ("postdeploy: could not subscribe $functionName to BlobCreated in ${container}; " +
            'run pwsh ./infra/hooks/postdeploy.ps1 again')
    }
    Write-Host "postdeploy: the event subscription was refused (attempt $attempt of 5); retrying"
    $attempt += 1
    Start-Sleep -Seconds $retrySeconds
}

Write-Host ("postdeploy: files written to the $container container now start $functionName " +
    "(event subscription $subscription on $topicName)")
