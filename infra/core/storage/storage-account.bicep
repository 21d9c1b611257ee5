// A storage account reached only by Microsoft Entra identities (shared keys are refused): host storage for the
// Functions runtime and Durable Functions, the Flex Consumption deployment package, the app's state tables, and the
// bulk import's containers with a lifecycle policy that deletes their old blobs.

@description('Storage account name: 3-24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the account.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Blob containers to create, e.g. the one Flex Consumption deploys the app package from.')
param containers string[] = []

@description('Tables to create: the app keeps window state, watermarks, dedup keys and dead letters in them.')
param tables string[] = []

@description('Containers whose blobs are deleted this many days after their last change: container name -> days. Empty: no lifecycle policy.')
param deleteBlobsAfterDays object = {}

resource storageAccount 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storageAccount
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [
  for containerName in containers: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// One policy per account. A rule's prefix is `<container>/`, so `imports/` never matches `imports-results`.
resource lifecyclePolicy 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = if (!empty(deleteBlobsAfterDays)) {
  parent: storageAccount
  name: 'default'
  properties: {
    policy: {
      rules: [
        for rule in items(deleteBlobsAfterDays): {
          // Rule names are letters and digits only.
          name: 'delete${replace(rule.key, '-', '')}'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${rule.key}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: rule.value
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    blobContainers
  ]
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2024-01-01' = {
  parent: storageAccount
  name: 'default'
}

// The app creates a missing table on first use, but creating the set here keeps it visible next to the rest of
// the infrastructure and spares the first requests a create call each.
resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = [
  for tableName in tables: {
    parent: tableService
    name: tableName
  }
]

output name string = storageAccount.name
output id string = storageAccount.id
output blobEndpoint string = storageAccount.properties.primaryEndpoints.blob
output queueEndpoint string = storageAccount.properties.primaryEndpoints.queue
output tableEndpoint string = storageAccount.properties.primaryEndpoints.table
