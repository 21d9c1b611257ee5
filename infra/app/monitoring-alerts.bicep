// Azure Monitor alert rules on the pipeline itself, and the action group they notify:
//   function-failures   a function execution failed (Application Insights `requests`, success == false)
//   dead-letters        items were parked as dead letters (the app's counter sensorpulse_dead_letters_total)
//   summariser-lag      the summariser's end-to-end lag stayed high for 10 minutes (histogram sensorpulse_lag_seconds)
//   cosmos-throttling   Cosmos DB answered 429 (platform metric TotalRequests, StatusCode 429)
// The first three are log search rules on the Application Insights component: the app's metrics reach it through
// OpenTelemetry as rows of `customMetrics`, each holding the increase over one export interval. Their queries are
// the files under alerts/, which tests/unit/test_infra_bicep.py checks against the metric names the app exports.
//
// The action group exists only when alertEmail is set; without it the rules still fire (in the portal's Alerts
// view) but notify no one.

@description('Azure region of the log search rules: that of the Application Insights component.')
param location string

@description('Tags applied to every rule and the action group.')
param tags object = {}

@description('Application Insights component the log search rules query.')
param applicationInsightsName string

@description('Cosmos DB account whose throttled requests are watched.')
param cosmosAccountName string

@description('Name of the action group.')
param actionGroupName string

@description('Name of the rule on failed function executions.')
param functionFailuresRuleName string

@description('Name of the rule on dead letters.')
param deadLettersRuleName string

@description('Name of the rule on the summariser lag.')
param summariserLagRuleName string

@description('Name of the rule on Cosmos DB throttling.')
param cosmosThrottlingRuleName string

@description('Email address the action group notifies; empty: no action group, the rules notify no one.')
param alertEmail string = ''

@description('The summariser lag rule fires when the mean lag of a source\'s readings stays above this many seconds for 10 minutes.')
@minValue(1)
@maxValue(86400)
param summariserLagThresholdSeconds int = 300

var withEmail = !empty(alertEmail)
// At most 12 characters: the name SMS and email notifications show.
var actionGroupShortName = 'sensorpulse'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource cosmosAccount 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (withEmail) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var logAlertActions = {
  actionGroups: withEmail ? [actionGroup.id] : []
}

resource functionFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: functionFailuresRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sensor Pulse: function failures'
    description: 'A function execution failed in the last 5 minutes (one alert per function).'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('alerts/function-failures.kql')
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'function_name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: logAlertActions
  }
}

resource deadLetters 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: deadLettersRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sensor Pulse: dead letters'
    description: 'Items were parked as dead letters in the last 5 minutes (one alert per source; the table deadletters holds them).'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('alerts/dead-letters.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'dead_letters'
          dimensions: [
            {
              name: 'source'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: logAlertActions
  }
}

// Two 5-minute periods, both above the threshold: the lag stayed high for 10 minutes. The lag is measured as
// readings are summarised: no row while nothing is (a failing summariser shows up as function failures).
resource summariserLag 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: summariserLagRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sensor Pulse: summariser lag'
    description: 'The mean end-to-end lag of a source\'s readings stayed above ${summariserLagThresholdSeconds} s for 10 minutes.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('alerts/summariser-lag.kql')
          timeAggregation: 'Average'
          metricMeasureColumn: 'lag_seconds'
          dimensions: [
            {
              name: 'source'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: summariserLagThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 2
            minFailingPeriodsToAlert: 2
          }
        }
      ]
    }
    autoMitigate: true
    actions: logAlertActions
  }
}

resource cosmosThrottling 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: cosmosThrottlingRuleName
  location: 'global'
  tags: tags
  properties: {
    description: 'Cosmos DB answered requests with 429 (request rate too large) in the last 5 minutes.'
    severity: 2
    enabled: true
    scopes: [
      cosmosAccount.id
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'throttled-requests'
          metricNamespace: 'Microsoft.DocumentDB/databaseAccounts'
          metricName: 'TotalRequests'
          dimensions: [
            {
              name: 'StatusCode'
              operator: 'Include'
              values: [
                '429'
              ]
            }
          ]
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    autoMitigate: true
    actions: withEmail
      ? [
          {
            actionGroupId: actionGroup.id
          }
        ]
      : []
  }
}
