// An Event Hubs namespace reached only by Microsoft Entra identities (SAS keys are refused), one hub and the
// consumer group the function app's Event Hub trigger reads with.

@description('Name of the Event Hubs namespace (6-50 characters).')
@minLength(6)
@maxLength(50)
param namespaceName string

@description('Azure region of the namespace.')
param location string

@description('Tags applied to the namespace.')
param tags object = {}

@description('Name of the event hub.')
param eventHubName string

@description('Partitions of the hub; the Event Hub trigger scales out to at most one instance per partition.')
@minValue(1)
@maxValue(32)
param partitionCount int

@description('Days events stay readable (Standard tier: 1-7).')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 1

@description('Consumer group that the Event Hub trigger of the function app reads with.')
param consumerGroupName string

resource eventHubNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: 1
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    isAutoInflateEnabled: false
  }
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubNamespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: eventHub
  name: consumerGroupName
}

output namespaceName string = eventHubNamespace.name
// Public-cloud host name, the form EVENTHUB__fullyQualifiedNamespace takes.
output fullyQualifiedNamespace string = '${eventHubNamespace.name}.servicebus.windows.net'
output eventHubName string = eventHub.name
output consumerGroupName string = consumerGroup.name
