// Sensor Pulse on Azure, as `azd up` provisions it: a Python function app on Flex Consumption that runs as a
// user-assigned managed identity and reaches Cosmos DB, Event Hubs, Storage (host storage, Durable Functions,
// state tables, the bulk import's containers), Key Vault and Application Insights with that identity only; local (key)
// auth is off everywhere. Blob events of the storage account go to an Event Grid system topic; the bulk import's
// subscription to it is made after each deploy by infra/hooks/postdeploy.* (it needs a key of the running app).
// See infra/README.md for the module layout, the parameters and the API versions.
targetScope = 'subscription'

// ----- Environment -----

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds the resource token.')
param environmentName string

@minLength(1)
@description('Azure region of every resource; it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying principal: it gets the same data-plane roles as the app (empty: none).')
param principalId string = ''

@description('Kind of principal principalId is: User, or ServicePrincipal when a pipeline deploys.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

// ----- Hosting -----

@description('Memory of each function app instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the function app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Instances kept warm for the HTTP functions (dashboard, ingest API); 0 keeps none.')
@minValue(0)
@maxValue(100)
param alwaysReadyInstances int = 0

// ----- Cosmos DB -----

@description('serverless: pay per request; provisioned: the database shares autoscale throughput.')
@allowed([
  'serverless'
  'provisioned'
])
param cosmosThroughputMode string = 'serverless'

@description('Most RU/s the database scales to when cosmosThroughputMode is provisioned.')
@minValue(1000)
@maxValue(1000000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Cosmos DB database of the readings, summaries and leases containers.')
param cosmosDatabaseName string = 'sensorpulse'

@description('Seconds a reading lives: the readings container default TTL and READING_TTL_SECONDS.')
@minValue(1)
param readingTtlSeconds int = 604800

@description('READING_MAX_AGE_SECONDS: readings older than this are refused on every path (0: no limit).')
@minValue(0)
@maxValue(315360000)
param readingMaxAgeSeconds int = readingTtlSeconds

@description('Seconds a summary lives: the summaries container default TTL and SUMMARY_TTL_SECONDS.')
@minValue(1)
param summaryTtlSeconds int = 604800

@description('Prefix of the change-feed leases of this app; another host reading the same feed needs its own.')
param leaseContainerPrefix string = 'azure-'

// ----- Event Hubs -----

@description('Event hub the Microshare forwarder sends to and the summariser reads from.')
@minLength(1)
@maxLength(256)
param eventHubName string = 'telemetry'

@description('Partitions of the event hub.')
@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4

@description('Further hubs the forwarder delivers to, as a JSON list (see shared/microshare/hub_fanout.py).')
param eventHubExtraHubs string = '[]'

// ----- App -----

@description('Durable Functions task hub name: letters and digits only, starting with a letter (3-45).')
@minLength(3)
@maxLength(45)
param taskHubName string = 'sensorpulse'

@description('NCRONTAB schedule (with seconds) of the sensor simulator timer.')
param simulatorSchedule string = '*/5 * * * * *'

@description('Simulated sensors; 0 turns the simulator off.')
@minValue(0)
@maxValue(10000)
param sensorCount int = 5

@description('Readings in each sliding window.')
@minValue(1)
@maxValue(500)
param windowSize int = 10

@description('Level of the app\'s own log records: DEBUG, INFO, WARNING or ERROR.')
@allowed(['DEBUG', 'INFO', 'WARNING', 'ERROR'])
param logLevel string = 'INFO'

// ----- Ingest API -----

@description('Most readings in one POST /api/readings.')
@minValue(1)
@maxValue(1000)
param ingestMaxBatch int = 100

@description('Largest body POST /api/readings accepts, in bytes (413 beyond).')
@minValue(1024)
@maxValue(4194304)
param ingestMaxBodyBytes int = 262144

@description('How far ahead of the clock a posted reading\'s timestamp may be, in seconds.')
@minValue(0)
@maxValue(86400)
param ingestMaxFutureSeconds int = 300

@description('Extra or replaced metrics for the ingest API: JSON object metric -> {"unit", "min", "max"}; empty keeps the built-in ones.')
param ingestMetrics string = ''

// ----- Dashboard -----
@description('Least seconds between two versions of a series\' 10-minute chart (1-600).')
@minValue(1)
@maxValue(600)
param chartRefresh10mSeconds int = 5

@description('Least seconds between two versions of a series\' 1-hour chart (1-3600).')
@minValue(1)
@maxValue(3600)
param chartRefresh1hSeconds int = 30

@description('Least seconds between two versions of a series\' 1-day chart (1-86400).')
@minValue(1)
@maxValue(86400)
param chartRefresh1dSeconds int = 300

@description('Least seconds between two versions of a series\' 7-day chart (1-604800).')
@minValue(1)
@maxValue(604800)
param chartRefresh7dSeconds int = 1800

@description('Most rows in one CSV download of a series\' readings or summaries (1-1000000).')
@minValue(1)
@maxValue(1000000)
param csvMaxRows int = 100000

// ----- Bulk import (shared.imports) -----

@description('Largest file accepted from the imports container, and largest content once decompressed (a gzip file), in bytes (1024-1099511627776).')
@minValue(1024)
@maxValue(1099511627776)
param importMaxBytes int = 2147483648

@description('Most rows in one imported file (1-1000000000).')
@minValue(1)
@maxValue(1000000000)
param importMaxRows int = 50000000

@description('Largest body of POST /api/imports, in bytes (1024-209715200); bigger files are uploaded to the imports container with storage tools.')
@minValue(1024)
@maxValue(209715200)
param importUploadMaxBytes int = 104857600

@description('Days a file stays in the imports container after its last change; then the lifecycle policy deletes it.')
@minValue(1)
@maxValue(3650)
param importsRetentionDays int = 30

@description('Days an import\'s results stay in the imports-results container after their last change.')
@minValue(1)
@maxValue(3650)
param importResultsRetentionDays int = 90

// ----- Alerts (shared.alerts) -----

@description('Where alert notifications go: a JSON array of http(s) webhook URLs. They often hold a token, so the value is stored in Key Vault; empty: no webhooks (the secret then holds []).')
@secure()
param alertWebhookUrls string = ''

@description('Timeout of each alert webhook call, in seconds (1-120).')
@minValue(1)
@maxValue(120)
param alertWebhookTimeoutSeconds int = 10

@description('Seconds a notification is retried before it is parked as a dead letter (60-604800).')
@minValue(10)
@maxValue(604800)
param alertDeliveryDeadlineSeconds int = 3600

@description('Days alert history is kept (1-365).')
@minValue(1)
@maxValue(365)
param alertHistoryDays int = 30

@description('NCRONTAB schedule (with seconds) of the timer that ends expired alert silences.')
param alertSilenceSchedule string = '0 * * * * *'

@description('NCRONTAB schedule (with seconds) of the timer that sends pending alert notifications.')
param alertSenderSchedule string = '*/15 * * * * *'

// ----- Alert rules on the pipeline itself (app/monitoring-alerts.bicep) -----

@description('Email address notified when a rule fires (function failures, dead letters, summariser lag, Cosmos DB throttling); empty: no action group, the rules notify no one.')
param alertEmail string = ''

@description('The summariser lag rule fires when the mean lag of a source\'s readings stays above this many seconds for 10 minutes (1-86400).')
@minValue(1)
@maxValue(86400)
param summariserLagAlertSeconds int = 300

// ----- Microshare forwarding (off while microshareUsername is empty) -----

@description('Microshare authentication service base URL.')
param microshareAuthUrl string = 'https://auth.microshare.io'

@description('Microshare API base URL.')
param microshareApiUrl string = 'https://api.microshare.io'

@description('Microshare account; empty turns forwarding off.')
param microshareUsername string = ''

@description('Microshare password; stored in Key Vault (empty: set the secret in the vault yourself).')
@secure()
param microsharePassword string = ''

@description('Microshare API key; stored in Key Vault (empty: set the secret in the vault yourself).')
@secure()
param microshareApiKey string = ''

@description('Device cluster whose people-counter records are forwarded.')
param microshareClusterId string = ''

@description('recType of the device cluster records.')
param microshareClusterRecType string = 'io.microshare.peoplecounter.packed'

@description('View that returns people-counter records.')
param microsharePeopleCounterViewId string = ''

@description('View that returns occupancy snapshots.')
param microshareSnapshotViewId string = ''

@description('Data context: a name, or a JSON list of names such as ["people"].')
param microshareDataContext string = '["people"]'

@description('Owner organisation of the device clusters to use; empty: every cluster.')
param microshareIdentity string = ''

@description('Only locations starting with this prefix are forwarded; empty: all.')
param microshareLocationPrefix string = ''

@description('Snapshot category to read.')
param microshareSnapshotCategory string = 'space'

@description('Snapshot metric to read.')
param microshareSnapshotMetric string = 'occupancy'

@description('Records per Microshare API page.')
@minValue(1)
@maxValue(999)
param microsharePageSize int = 999

@description('Timeout of each Microshare API call, in seconds.')
@minValue(1)
@maxValue(600)
param microshareTimeoutSeconds int = 30

@description('Minutes each fetch reaches back before the watermark, so late records are not missed.')
@minValue(0)
@maxValue(10080)
param microshareOverlapMinutes int = 60

@description('Hours dedup keys are kept; must exceed the overlap.')
@minValue(1)
@maxValue(2160)
param microshareDedupRetentionHours int = 72

@description('Hours the first run reads back when there is no watermark yet.')
@minValue(1)
@maxValue(2160)
param microshareFirstRunLookbackHours int = 24

@description('A gap since the watermark longer than this many hours is handed to a Durable backfill.')
@minValue(1)
@maxValue(2160)
param microshareBackfillAfterHours int = 6

@description('Most days one backfill covers.')
@minValue(1)
@maxValue(366)
param microshareBackfillMaxDays int = 31

// ----- Names -----

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'
var microsharePasswordSecretName = 'microshare-password'
var microshareApiKeySecretName = 'microshare-api-key'
var alertWebhookUrlsSecretName = 'alert-webhook-urls'
// The bulk import: files dropped into `imports` start the blob trigger `import_blob` (blueprints/imports.py, path
// imports/{name}); each import's results are written to `imports-results`.
var importsContainerName = 'imports'
var importResultsContainerName = 'imports-results'
// shared/storage/names.py: every *_TABLE.
var stateTables = [
  'windows'
  'deadletters'
  'simulator'
  'devices'
  'microshare'
  'forwarder'
  'deliveries'
  'alertrules'
  'alerts'
]

// ----- Resources -----

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module apiIdentity 'core/identity/user-assigned-identity.bicep' = {
  name: 'api-identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentContainerName
      importsContainerName
      importResultsContainerName
    ]
    tables: stateTables
    deleteBlobsAfterDays: {
      '${importsContainerName}': importsRetentionDays
      '${importResultsContainerName}': importResultsRetentionDays
    }
  }
}

// BlobCreated in `imports` reaches the blob trigger through this topic (the Event Grid source, the only blob trigger
// Flex Consumption runs); infra/hooks/postdeploy.* subscribe the trigger's webhook to it.
module importEvents 'core/messaging/event-grid-system-topic.bicep' = {
  name: 'import-events'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

module monitoring 'core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module documents 'app/document-store.bicep' = {
  name: 'document-store'
  scope: rg
  params: {
    accountName: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    throughputMode: cosmosThroughputMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    readingTtlSeconds: readingTtlSeconds
    summaryTtlSeconds: summaryTtlSeconds
  }
}

module eventHubs 'core/messaging/event-hubs.bicep' = {
  name: 'event-hubs'
  scope: rg
  params: {
    namespaceName: '${abbrs.eventHubNamespaces}${resourceToken}'
    location: location
    tags: tags
    eventHubName: eventHubName
    partitionCount: eventHubPartitionCount
    messageRetentionInDays: 1
    consumerGroupName: 'summariser'
  }
}

module keyVault 'core/security/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    secrets: {
      '${microsharePasswordSecretName}': microsharePassword
      '${microshareApiKeySecretName}': microshareApiKey
      // Always written, as [] when empty: an unresolved reference would reach the app as the reference text.
      '${alertWebhookUrlsSecretName}': empty(alertWebhookUrls) ? '[]' : alertWebhookUrls
    }
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: apiIdentity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    storageAccountName: storage.outputs.name
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    cosmosAccountName: documents.outputs.accountName
  }
}

module monitoringAlerts 'app/monitoring-alerts.bicep' = {
  name: 'monitoring-alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    cosmosAccountName: documents.outputs.accountName
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    functionFailuresRuleName: '${abbrs.insightsScheduledQueryRules}function-failures-${resourceToken}'
    deadLettersRuleName: '${abbrs.insightsScheduledQueryRules}dead-letters-${resourceToken}'
    summariserLagRuleName: '${abbrs.insightsScheduledQueryRules}summariser-lag-${resourceToken}'
    cosmosThrottlingRuleName: '${abbrs.insightsMetricAlerts}cosmos-throttling-${resourceToken}'
    alertEmail: alertEmail
    summariserLagThresholdSeconds: summariserLagAlertSeconds
  }
}

// The app settings, one per line: tests/infra_bicep.py reads this block, and tests/unit/test_settings_drift.py
// compares the names with the settings the code reads. Numbers are strings, as app settings are.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: apiIdentity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsDisableHomepage: 'true'
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${apiIdentity.outputs.clientId};Authorization=AAD'
  AZURE_CLIENT_ID: apiIdentity.outputs.clientId
  TASKHUB_NAME: taskHubName
  STORAGE_BACKEND: 'azure'
  COSMOS__accountEndpoint: documents.outputs.endpoint
  COSMOS__credential: 'managedidentity'
  COSMOS__clientId: apiIdentity.outputs.clientId
  COSMOS_DATABASE_NAME: documents.outputs.databaseName
  LEASE_CONTAINER_PREFIX: leaseContainerPrefix
  EVENTHUB__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
  EVENTHUB__credential: 'managedidentity'
  EVENTHUB__clientId: apiIdentity.outputs.clientId
  EVENTHUB_NAME: eventHubs.outputs.eventHubName
  EVENTHUB_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
  EVENTHUB_EXTRA_HUBS: eventHubExtraHubs
  STATE__tableServiceUri: storage.outputs.tableEndpoint
  STATE__clientId: apiIdentity.outputs.clientId
  SIMULATOR_SCHEDULE: simulatorSchedule
  SENSOR_COUNT: string(sensorCount)
  WINDOW_SIZE: string(windowSize)
  SUMMARY_TTL_SECONDS: string(summaryTtlSeconds)
  READING_TTL_SECONDS: string(readingTtlSeconds)
  READING_MAX_AGE_SECONDS: string(readingMaxAgeSeconds)
  LOG_LEVEL: logLevel
  INGEST_MAX_BATCH: string(ingestMaxBatch)
  INGEST_MAX_BODY_BYTES: string(ingestMaxBodyBytes)
  INGEST_MAX_FUTURE_SECONDS: string(ingestMaxFutureSeconds)
  INGEST_METRICS: ingestMetrics
  CHART_REFRESH_10M_SECONDS: string(chartRefresh10mSeconds)
  CHART_REFRESH_1H_SECONDS: string(chartRefresh1hSeconds)
  CHART_REFRESH_1D_SECONDS: string(chartRefresh1dSeconds)
  CHART_REFRESH_7D_SECONDS: string(chartRefresh7dSeconds)
  CSV_MAX_ROWS: string(csvMaxRows)
  IMPORTS__blobServiceUri: storage.outputs.blobEndpoint
  IMPORTS__queueServiceUri: storage.outputs.queueEndpoint
  IMPORTS__credential: 'managedidentity'
  IMPORTS__clientId: apiIdentity.outputs.clientId
  IMPORT_MAX_BYTES: string(importMaxBytes)
  IMPORT_MAX_ROWS: string(importMaxRows)
  IMPORT_UPLOAD_MAX_BYTES: string(importUploadMaxBytes)
  ALERT_WEBHOOK_URLS: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${alertWebhookUrlsSecretName})'
  ALERT_WEBHOOK_TIMEOUT_SECONDS: string(alertWebhookTimeoutSeconds)
  ALERT_DELIVERY_DEADLINE_SECONDS: string(alertDeliveryDeadlineSeconds)
  ALERT_HISTORY_DAYS: string(alertHistoryDays)
  ALERT_SILENCE_SCHEDULE: alertSilenceSchedule
  ALERT_SENDER_SCHEDULE: alertSenderSchedule
  MICROSHARE_AUTH_URL: microshareAuthUrl
  MICROSHARE_API_URL: microshareApiUrl
  MICROSHARE_USERNAME: microshareUsername
  MICROSHARE_PASSWORD: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${microsharePasswordSecretName})'
  MICROSHARE_API_KEY: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${microshareApiKeySecretName})'
  MICROSHARE_CLUSTER_ID: microshareClusterId
  MICROSHARE_CLUSTER_REC_TYPE: microshareClusterRecType
  MICROSHARE_PEOPLE_COUNTER_VIEW_ID: microsharePeopleCounterViewId
  MICROSHARE_SNAPSHOT_VIEW_ID: microshareSnapshotViewId
  MICROSHARE_DATA_CONTEXT: microshareDataContext
  MICROSHARE_IDENTITY: microshareIdentity
  MICROSHARE_LOCATION_PREFIX: microshareLocationPrefix
  MICROSHARE_SNAPSHOT_CATEGORY: microshareSnapshotCategory
  MICROSHARE_SNAPSHOT_METRIC: microshareSnapshotMetric
  MICROSHARE_PAGE_SIZE: string(microsharePageSize)
  MICROSHARE_TIMEOUT_SECONDS: string(microshareTimeoutSeconds)
  MICROSHARE_OVERLAP_MINUTES: string(microshareOverlapMinutes)
  MICROSHARE_DEDUP_RETENTION_HOURS: string(microshareDedupRetentionHours)
  MICROSHARE_FIRST_RUN_LOOKBACK_HOURS: string(microshareFirstRunLookbackHours)
  MICROSHARE_BACKFILL_AFTER_HOURS: string(microshareBackfillAfterHours)
  MICROSHARE_BACKFILL_MAX_DAYS: string(microshareBackfillMaxDays)
}

module functionApp 'core/host/flex-consumption-function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    planName: '${abbrs.webServerFarms}${resourceToken}'
    appName: functionAppName
    location: location
    tags: tags
    serviceName: 'api'
    identityId: apiIdentity.outputs.id
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${deploymentContainerName}'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyInstances: alwaysReadyInstances
    appSettings: appSettings
  }
  // The roles must exist before the app starts: it pulls its package, resolves Key Vault references and opens
  // its triggers with the identity.
  dependsOn: [
    rbac
  ]
}

// ----- Outputs (azd stores them in the environment and hands them to the hooks) -----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_CLIENT_ID string = apiIdentity.outputs.clientId
output COSMOS_ENDPOINT string = documents.outputs.endpoint
output COSMOS_DATABASE_NAME string = documents.outputs.databaseName
output EVENTHUB_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output EVENTHUB_NAME string = eventHubs.outputs.eventHubName
output EVENTHUB_CONSUMER_GROUP string = eventHubs.outputs.consumerGroupName
output STATE_TABLE_SERVICE_URI string = storage.outputs.tableEndpoint
output KEY_VAULT_NAME string = keyVault.outputs.name
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output TASKHUB_NAME string = taskHubName
output IMPORTS_BLOB_SERVICE_URI string = storage.outputs.blobEndpoint
output IMPORTS_QUEUE_SERVICE_URI string = storage.outputs.queueEndpoint
output IMPORTS_SYSTEM_TOPIC_NAME string = importEvents.outputs.name
