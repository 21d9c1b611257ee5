// A Key Vault authorised by Azure RBAC (no access policies) that holds the app's secrets; the function app reads
// them through Key Vault references, so no secret value ever sits in an app setting.

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Secrets to store, secret name -> value. An empty value creates no secret: set it later in the vault.')
@secure()
param secrets object = {}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // enablePurgeProtection is left out (off) on purpose: `azd down --purge` can then remove the vault, and the
    // next `azd up` of the same environment reuses its name. Once purge protection is turned on it can never be
    // turned off again (a deleted vault then blocks its name for the retention period); turn it on for
    // production by adding `enablePurgeProtection: true` here.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource vaultSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for secret in items(secrets): if (!empty(secret.value)) {
    parent: keyVault
    name: secret.key
    properties: {
      value: secret.value
      contentType: 'text/plain'
    }
  }
]

output name string = keyVault.name
output vaultUri string = keyVault.properties.vaultUri
