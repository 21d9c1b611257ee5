// The app's document store: a Cosmos DB for NoSQL account reached only by Microsoft Entra identities, the
// database and the three containers of shared/storage/names.py with indexing shaped by the queries the app runs.
//
// The app writes a per-item `ttl`; Cosmos DB applies it only where the container has a default TTL, so
// `readings` and `summaries` get one (from the same parameters as READING_TTL_SECONDS and SUMMARY_TTL_SECONDS).

@description('Name of the Cosmos DB account (3-44 characters).')
@minLength(3)
@maxLength(44)
param accountName string

@description('Azure region of the account.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Name of the SQL database.')
param databaseName string

@description('serverless: pay per request; provisioned: the database shares autoscale throughput.')
@allowed([
  'serverless'
  'provisioned'
])
param throughputMode string = 'serverless'

@description('Most RU/s the database scales to when throughputMode is provisioned.')
@minValue(1000)
@maxValue(1000000)
param autoscaleMaxThroughput int = 1000

@description('Default time to live of readings, in seconds.')
@minValue(1)
param readingTtlSeconds int

@description('Default time to live of summaries, in seconds.')
@minValue(1)
param summaryTtlSeconds int

var serverless = throughputMode == 'serverless'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: serverless
      ? [
          {
            name: 'EnableServerless'
          }
        ]
      : []
    disableLocalAuth: true
    // Databases and containers change only through ARM (this template), never through the data plane.
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless
      ? {}
      : {
          autoscaleSettings: {
            maxThroughput: autoscaleMaxThroughput
          }
        }
  }
}

// Readings are written on the hot path and read back only through the change feed, so few paths are indexed:
// the latest readings of a sensor (optionally of one metric), newest first by timestamp.
resource readings 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'readings'
  properties: {
    resource: {
      id: 'readings'
      partitionKey: {
        paths: [
          '/sensor_id'
        ]
        kind: 'Hash'
      }
      defaultTtl: readingTtlSeconds
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/sensor_id/?'
          }
          {
            path: '/metric/?'
          }
          {
            path: '/timestamp/?'
          }
        ]
        excludedPaths: [
          {
            path: '/*'
          }
          {
            path: '/"_etag"/?'
          }
        ]
      }
    }
  }
}

// The dashboard reads the history of one series:
//   SELECT TOP @limit * FROM c WHERE c.sensor_id = @pk AND c.metric = @v0 ORDER BY c.window_end DESC
// (shared/storage/azure/cosmos_documents.py, latest()); the sensors list comes from the `windows` table, not from here.
// A single-property ORDER BY is served by the range index on that path; a composite index would be used only if the
// filtered fields were also in the ORDER BY, and within one partition and one metric there is little left to filter.
resource summaries 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'summaries'
  properties: {
    resource: {
      id: 'summaries'
      partitionKey: {
        paths: [
          '/sensor_id'
        ]
        kind: 'Hash'
      }
      defaultTtl: summaryTtlSeconds
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/sensor_id/?'
          }
          {
            path: '/metric/?'
          }
          {
            path: '/window_end/?'
          }
        ]
        excludedPaths: [
          {
            path: '/*'
          }
          {
            path: '/"_etag"/?'
          }
        ]
      }
    }
  }
}

// Change-feed leases of the summariser's Cosmos DB trigger; the lease documents must never expire.
resource leases 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: 'leases'
  properties: {
    resource: {
      id: 'leases'
      partitionKey: {
        paths: [
          '/id'
        ]
        kind: 'Hash'
      }
    }
  }
}

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
