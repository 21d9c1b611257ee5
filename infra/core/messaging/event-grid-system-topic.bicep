// The Event Grid system topic of a storage account: where the account publishes its blob events. Subscriptions to
// it are not declared here: the bulk import's webhook needs the function app's `blobs_extension` system key, which
// exists only once the app runs, so infra/hooks/postdeploy.* subscribe after each deploy.

@description('Name of the system topic.')
param name string

@description('Azure region of the topic: the storage account\'s.')
param location string

@description('Tags applied to the topic.')
param tags object = {}

@description('Storage account whose events the topic publishes (one system topic per account).')
param storageAccountName string

resource storageAccount 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storageAccount.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
