"""The infrastructure for `azd up`: infra/ (Bicep, parameters, hooks) and azure.yaml, read as text.

Every rule of tests/infra_rules.py must hold for this repository and must find the problem planted in a copy
broken in one place: a rule that cannot fail would let its property go unnoticed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra_bicep import ROOT
from tests.infra_imports import import_problems
from tests.infra_postdeploy import postdeploy_problems
from tests.infra_rules import (
    AZD_ENVIRONMENT,
    abbreviation_problems,
    alert_problems,
    api_version_problems,
    app_setting_problems,
    azure_yaml_problems,
    hardening_problems,
    hook_problems,
    key_problems,
    key_vault_reference_problems,
    output_problems,
    parameter_file_problems,
    rbac_problems,
    run_sh_hook,
    runtime_problems,
    secret_literal_problems,
    secure_param_problems,
    storage_name_problems,
)

# Mirrors the table in infra/README.md (api_version_problems compares the two): a new resource type or version is
# added to both, with where it was confirmed.
API_VERSIONS = {
    ("Microsoft.Resources/resourceGroups", "2024-03-01"),
    ("Microsoft.ManagedIdentity/userAssignedIdentities", "2023-01-31"),
    ("Microsoft.Storage/storageAccounts", "2024-01-01"),
    ("Microsoft.Storage/storageAccounts/blobServices", "2024-01-01"),
    ("Microsoft.Storage/storageAccounts/blobServices/containers", "2024-01-01"),
    ("Microsoft.Storage/storageAccounts/tableServices", "2024-01-01"),
    ("Microsoft.Storage/storageAccounts/tableServices/tables", "2024-01-01"),
    ("Microsoft.Web/serverfarms", "2024-04-01"),
    ("Microsoft.Web/sites", "2024-04-01"),
    ("Microsoft.Web/sites/config", "2024-04-01"),
    ("Microsoft.DocumentDB/databaseAccounts", "2024-11-15"),
    ("Microsoft.DocumentDB/databaseAccounts/sqlDatabases", "2024-11-15"),
    ("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers", "2024-11-15"),
    ("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments", "2024-11-15"),
    ("Microsoft.EventHub/namespaces", "2024-01-01"),
    ("Microsoft.EventHub/namespaces/eventhubs", "2024-01-01"),
    ("Microsoft.EventHub/namespaces/eventhubs/consumergroups", "2024-01-01"),
    ("Microsoft.KeyVault/vaults", "2023-07-01"),
    ("Microsoft.KeyVault/vaults/secrets", "2023-07-01"),
    ("Microsoft.OperationalInsights/workspaces", "2023-09-01"),
    ("Microsoft.Insights/components", "2020-02-02"),
    ("Microsoft.Insights/actionGroups", "2023-01-01"),
    ("Microsoft.Insights/scheduledQueryRules", "2023-12-01"),
    ("Microsoft.Insights/metricAlerts", "2018-03-01"),
    ("Microsoft.Authorization/roleAssignments", "2022-04-01"),
    ("Microsoft.Storage/storageAccounts/managementPolicies", "2024-01-01"),
    ("Microsoft.EventGrid/systemTopics", "2022-06-15"),
}


RULES: dict[str, Callable[[Path], list[str]]] = {
    "hardening": hardening_problems,
    "keys": key_problems,
    "secret literals": secret_literal_problems,
    "secure params": secure_param_problems,
    "key vault references": key_vault_reference_problems,
    "api versions": lambda root: api_version_problems(root, API_VERSIONS),
    "runtime": runtime_problems,
    "outputs": output_problems,
    "app settings": app_setting_problems,
    "rbac": rbac_problems,
    "storage names": storage_name_problems,
    "abbreviations": abbreviation_problems,
    "parameter file": parameter_file_problems,
    "azure.yaml": azure_yaml_problems,
    "hooks": hook_problems,
    "alerts": alert_problems,
    "imports": import_problems,
    "postdeploy": postdeploy_problems,
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_infrastructure_keeps_the_rule(rule: str) -> None:
    assert RULES[rule](ROOT) == []


@dataclass(frozen=True, slots=True)
class Breakage:
    name: str
    rule: str
    file: str  # relative to the repository root
    old: str
    new: str


MAIN, PARAMETERS, README = "infra/main.bicep", "infra/main.parameters.json", "infra/README.md"
DOCS, RBAC = "infra/app/document-store.bicep", "infra/app/rbac.bicep"
HOST, VAULT = "infra/core/host/flex-consumption-function-app.bicep", "infra/core/security/key-vault.bicep"
MONITOR, EVENTS = "infra/core/monitor/monitoring.bicep", "infra/core/messaging/event-hubs.bicep"
STORAGE, IDENTITY = "infra/core/storage/storage-account.bicep", "infra/core/identity/user-assigned-identity.bicep"
SH, PS1, ABBREVIATIONS = "infra/hooks/postprovision.sh", "infra/hooks/postprovision.ps1", "infra/abbreviations.json"
ALERTS, ALERT_QUERIES = "infra/app/monitoring-alerts.bicep", "infra/app/alerts"
TOPIC = "infra/core/messaging/event-grid-system-topic.bicep"
DEPLOY_SH, DEPLOY_PS1 = "infra/hooks/postdeploy.sh", "infra/hooks/postdeploy.ps1"

# fmt: off
BREAKAGES = [
    Breakage("cosmos accepts keys", "hardening", DOCS,
             "disableLocalAuth: true", "disableLocalAuth: false"),
    Breakage("event hubs accept keys", "hardening", EVENTS,
             "    disableLocalAuth: true\n", ""),
    Breakage("app insights accepts keys", "hardening", MONITOR,
             "    DisableLocalAuth: true\n", ""),
    Breakage("storage accepts shared keys", "hardening", STORAGE,
             "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
    Breakage("purge protection off", "hardening", VAULT,
             "    publicNetworkAccess", "    enablePurgeProtection: false\n    publicNetworkAccess"),
    Breakage("a key is read", "keys", MAIN,
             "string = taskHubName", "string = rg.listKeys().keys[0].value"),
    Breakage("a connection string from keys", "keys", MAIN,
             "STORAGE_BACKEND: 'azure'", "STORAGE_BACKEND: 'AccountKey=x'"),
    Breakage("a key-like literal", "secret literals", MAIN,
             "ClusterId string = ''", "ClusterId string = 'Zm9vYmFyMTIzNDU2Nzg5MGFiY2RlZkdISUpL'"),
    Breakage("a password default", "secret literals", MAIN,
             "Password string = ''", "Password string = 'hunter2'"),
    Breakage("a password parameter default", "secret literals", PARAMETERS,
             "${MICROSHARE_PASSWORD}", "${MICROSHARE_PASSWORD=hunter2}"),
    Breakage("password not secure", "secure params", MAIN,
             "@secure()\nparam microsharePassword", "param microsharePassword"),
    Breakage("api key not secure", "secure params", MAIN,
             "@secure()\nparam microshareApiKey", "param microshareApiKey"),
    Breakage("webhook urls not secure", "secure params", MAIN,
             "@secure()\nparam alertWebhookUrls", "param alertWebhookUrls"),
    Breakage("a webhook url default", "secret literals", MAIN,
             "alertWebhookUrls string = ''", "alertWebhookUrls string = '[\"https://hooks.example/t\"]'"),
    Breakage("a secret output", "secure params", MAIN,
             "TASKHUB_NAME string = taskHubName", "TASKHUB_NAME string = microshareApiKey"),
    Breakage("password as plain text", "key vault references", MAIN,
             "MICROSHARE_PASSWORD: '@Microsoft.KeyVault(", "MICROSHARE_PASSWORD: '("),
    Breakage("webhook urls as plain text", "key vault references", MAIN,
             "ALERT_WEBHOOK_URLS: '@Microsoft.KeyVault(", "ALERT_WEBHOOK_URLS: '("),
    Breakage("webhook urls left unstored when empty", "key vault references", MAIN,
             "empty(alertWebhookUrls) ? '[]' : alertWebhookUrls", "alertWebhookUrls"),
    Breakage("an empty secret stored", "key vault references", VAULT,
             ": if (!empty(secret.value)) {", ": {"),
    Breakage("a preview version", "api versions", MONITOR,
             "workspaces@2023-09-01", "workspaces@2023-09-01-preview"),
    Breakage("no version", "api versions", IDENTITY,
             "userAssignedIdentities@2023-01-31", "userAssignedIdentities"),
    Breakage("an unchecked version", "api versions", HOST,
             "serverfarms@2024-04-01", "serverfarms@2023-12-01"),
    Breakage("the README table drifts", "api versions", README,
             "KeyVault/vaults` | `2023-07-01`", "KeyVault/vaults` | `2024-11-01`"),
    Breakage("a .NET runtime", "runtime", HOST,
             "name: 'python'", "name: 'dotnet-isolated'"),
    Breakage("another Python", "runtime", HOST,
             "version: '3.11'", "version: '3.12'"),
    Breakage("worker runtime set", "runtime", MAIN,
             "  STORAGE_BACKEND: 'azure'\n", "  STORAGE_BACKEND: 'azure'\n  FUNCTIONS_WORKER_RUNTIME: 'python'\n"),
    Breakage("a lower-case output", "outputs", MAIN,
             "output TASKHUB_NAME string", "output taskHubName string"),
    Breakage("a missing output", "outputs", MAIN,
             "output KEY_VAULT_NAME string = keyVault.outputs.name\n", ""),
    Breakage("the connection string is a name", "outputs", MONITOR,
             "string = applicationInsights.properties.ConnectionString", "string = applicationInsights.name"),
    Breakage("a number not a string", "app settings", MAIN,
             "SENSOR_COUNT: string(sensorCount)", "SENSOR_COUNT: sensorCount"),
    Breakage("a key-based credential", "app settings", MAIN,
             "COSMOS__credential: 'managedidentity'", "COSMOS__credential: 'connectionstring'"),
    Breakage("a fixed assignment name", "rbac", RBAC,
             "name: guid(keyVault.id, identityPrincipalId, keyVaultSecretsUser)", "name: 'kv-secrets-user'"),
    Breakage("an uncommented role id", "rbac", RBAC,
             "' // Monitoring Metrics Publisher", "'"),
    Breakage("a user role always granted", "rbac", RBAC,
             "= if (withUser) {\n  name: guid(keyVault.id,", "= {\n  name: guid(keyVault.id,"),
    Breakage("a role without its twin", "rbac", RBAC,
             "monitoringMetricsPublisher)\n  scope: applicationInsights\n  properties: {\n    roleDefinitionId: "
             "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)\n"
             "    principalId: userPrincipalId",
             "monitoringMetricsPublisher)\n  scope: keyVault\n  properties: {\n    roleDefinitionId: "
             "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)\n"
             "    principalId: userPrincipalId"),
    Breakage("a state table missing", "storage names", MAIN,
             "  'deliveries'\n", ""),
    Breakage("a container renamed", "storage names", DOCS,
             "  name: 'summaries'", "  name: 'summary'"),
    Breakage("a wrong partition key", "storage names", DOCS,
             "          '/id'", "          '/partitionKey'"),
    Breakage("summaries without TTL", "storage names", DOCS,
             "      defaultTtl: summaryTtlSeconds\n", ""),
    Breakage("the dashboard ORDER BY unindexed", "storage names", DOCS,
             "path: '/window_end/?'", "path: '/end/?'"),
    Breakage("an unused abbreviation", "abbreviations", ABBREVIATIONS,
             '"kv-",', '"kv-",\n  "networkVirtualNetworks": "vnet-",'),
    Breakage("a parameter main.bicep lacks", "parameter file", PARAMETERS,
             '"microshareUsername"', '"microshareUser"'),
    Breakage("a python service run by node", "azure.yaml", "azure.yaml",
             "language: python", "language: js"),
    Breakage("the windows hook renamed", "azure.yaml", "azure.yaml",
             "hooks/postprovision.ps1", "hooks/postprovision-win.ps1"),
    Breakage("a client id written locally", "hooks", SH,
             "LEASE_CONTAINER_PREFIX local-", 'COSMOS__clientId "$AZURE_CLIENT_ID" LEASE_CONTAINER_PREFIX local-'),
    Breakage("the password written locally", "hooks", SH,
             "MICROSHARE_PASSWORD ''", 'MICROSHARE_PASSWORD "$MICROSHARE_PASSWORD"'),
    Breakage("the webhook urls written locally", "hooks", PS1,
             "ALERT_WEBHOOK_URLS = ''", "ALERT_WEBHOOK_URLS = (Get-OrDefault 'ALERT_WEBHOOK_URLS' '[]')"),
    Breakage("the deployed consumer group shared", "hooks", SH,
             "EVENTHUB_CONSUMER_GROUP '$Default'", 'EVENTHUB_CONSUMER_GROUP "$EVENTHUB_CONSUMER_GROUP"'),
    Breakage("the deployed leases shared", "hooks", SH,
             "LEASE_CONTAINER_PREFIX local-", "LEASE_CONTAINER_PREFIX azure-"),
    Breakage("the hooks disagree", "hooks", PS1,
             "    WINDOW_SIZE = (Get-OrDefault 'WINDOW_SIZE' '10')\n", ""),
    Breakage("the alert rules not deployed", "alerts", MAIN,
             "module monitoringAlerts 'app/monitoring-alerts.bicep'", "module monitoringAlerts 'app/alerts.bicep'"),
    Breakage("failures read from traces", "alerts", f"{ALERT_QUERIES}/function-failures.kql",
             "requests\n| where success == false", "traces\n| where severityLevel >= 3"),
    Breakage("a dead-letter metric the app does not export", "alerts", f"{ALERT_QUERIES}/dead-letters.kql",
             '"sensorpulse_dead_letters_total"', '"sensorpulse_deadletters_total"'),
    Breakage("the lag measure not projected", "alerts", f"{ALERT_QUERIES}/summariser-lag.kql",
             "lag_seconds = lag_sum / readings", "lag = lag_sum / readings"),
    Breakage("the lag high for 5 minutes only", "alerts", ALERTS,
             "numberOfEvaluationPeriods: 2", "numberOfEvaluationPeriods: 1"),
    Breakage("throttling on the wrong status", "alerts", ALERTS,
             "          '429'", "          '503'"),
    Breakage("a rule that notifies no one", "alerts", ALERTS,
             "    actions: withEmail\n      ? [\n          {\n            actionGroupId: actionGroup.id\n          }\n"
             "        ]\n      : []\n", "    actions: []\n"),
    Breakage("the email written in", "alerts", ALERTS,
             "emailAddress: alertEmail", "emailAddress: 'oncall@example.com'"),
    Breakage("an action group without an email", "alerts", ALERTS,
             "var withEmail = !empty(alertEmail)", "var withEmail = true"),
    Breakage("a long action group short name", "alerts", ALERTS,
             "var actionGroupShortName = 'sensorpulse'", "var actionGroupShortName = 'sensorpulse-alerts'"),
    Breakage("the email as an output", "alerts", MAIN,
             "output TASKHUB_NAME string = taskHubName\n",
             "output TASKHUB_NAME string = taskHubName\noutput ALERT_RECIPIENT string = alertEmail\n"),
    Breakage("the alert email not from azd", "parameter file", PARAMETERS,
             "${AZURE_ALERT_EMAIL}", "${ALERT_EMAIL}"),
    Breakage("no results container", "imports", MAIN,
             "      importsContainerName\n      importResultsContainerName\n", "      importsContainerName\n"),
    Breakage("imported files kept for ever", "imports", MAIN,
             "      '${importsContainerName}': importsRetentionDays\n", ""),
    Breakage("the results deleted with the imports", "imports", STORAGE,
             "'${rule.key}/'", "'${rule.key}'"),
    Breakage("a public container", "imports", STORAGE,
             "publicAccess: 'None'", "publicAccess: 'Blob'"),
    Breakage("a topic of another kind", "imports", TOPIC,
             "topicType: 'Microsoft.Storage.StorageAccounts'", "topicType: 'Microsoft.Resources.ResourceGroups'"),
    Breakage("the topic on another account", "imports", MAIN,
             "    tags: tags\n    storageAccountName: storage.outputs.name\n",
             "    tags: tags\n    storageAccountName: 'stother'\n"),
    Breakage("the trigger reads the table endpoint", "imports", MAIN,
             "IMPORTS__blobServiceUri: storage.outputs.blobEndpoint",
             "IMPORTS__blobServiceUri: storage.outputs.tableEndpoint"),
    Breakage("the trigger under the system identity", "imports", MAIN,
             "  IMPORTS__credential: 'managedidentity'\n", ""),
    Breakage("no queue role for the poison queue", "imports", RBAC,
             "  storageQueueDataContributor\n  storageTableDataContributor\n]", "  storageTableDataContributor\n]"),
    Breakage("the topic name not an output", "outputs", MAIN,
             "output IMPORTS_SYSTEM_TOPIC_NAME string = importEvents.outputs.name", ""),
    Breakage("postdeploy not wired", "azure.yaml", "azure.yaml",
             "run: ./infra/hooks/postdeploy.sh", "run: ./infra/hooks/post-deploy.sh"),
    Breakage("the hook traced", "postdeploy", DEPLOY_SH,
             "set +x\nset -eu\n", "set -eux\n"),
    Breakage("the key echoed", "postdeploy", DEPLOY_SH,
             '    if [ -n "$key" ]; then\n        break',
             '    if [ -n "$key" ]; then\n        echo "postdeploy: found the key $key"\n        break'),
    Breakage("az output on", "postdeploy", DEPLOY_SH,
             "        --only-show-errors -o none 2>&1); then", "        --only-show-errors 2>&1); then"),
    Breakage("az errors printed as they are", "postdeploy", DEPLOY_SH,
             "printf '%s\\n' \"$error\" | redact >&2", "printf '%s\\n' \"$error\" >&2"),
    Breakage("az debug logging", "postdeploy", DEPLOY_SH,
             "--event-ttl 1440 \\\n", "--event-ttl 1440 --debug \\\n"),
    Breakage("another function subscribed", "postdeploy", DEPLOY_SH,
             "function_name=import_blob", "function_name=import_blobs"),
    Breakage("every container's blobs", "postdeploy", DEPLOY_SH,
             '"/blobServices/default/containers/$container/blobs/"', '"/blobServices/default/"'),
    Breakage("deletions too", "postdeploy", DEPLOY_PS1,
             "--included-event-types Microsoft.Storage.BlobCreated `",
             "--included-event-types Microsoft.Storage.BlobCreated Microsoft.Storage.BlobDeleted `"),
    Breakage("the key written out on Windows", "postdeploy", DEPLOY_PS1,
             "    if (-not [string]::IsNullOrWhiteSpace($key)) {\n",
             "    Write-Host \"postdeploy: key $key\"\n    if (-not [string]::IsNullOrWhiteSpace($key)) {\n"),
    Breakage("the URL bare for cmd.exe", "postdeploy", DEPLOY_PS1,
             "{ $endpoint = '\"' + $endpoint + '\"' }", "{ $endpoint = $endpoint }"),
]
# fmt: on


def _copy(tmp_path: Path, breakage: Breakage | None = None) -> Path:
    """A copy of infra/ and azure.yaml under tmp_path, with the breakage applied."""
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    shutil.copy2(ROOT / "azure.yaml", tmp_path / "azure.yaml")
    if breakage is not None:
        target = tmp_path / breakage.file
        text = target.read_text(encoding="utf-8")
        assert text.count(breakage.old) == 1, "a breakage changes exactly one place"
        target.write_text(text.replace(breakage.old, breakage.new), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
def test_each_rule_finds_a_breakage_planted_in_a_copy(breakage: Breakage, tmp_path: Path) -> None:
    assert RULES[breakage.rule](_copy(tmp_path, breakage)) != []


@pytest.mark.parametrize("hook", ["postprovision", "postdeploy"])
def test_a_hook_that_cannot_be_executed_is_found(hook: str, tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "infra" / "hooks" / f"{hook}.sh").chmod(0o644)
    assert azure_yaml_problems(root) == [f"{hook}.sh is not executable"]


def test_every_rule_has_a_planted_breakage() -> None:
    assert set(RULES) == {b.rule for b in BREAKAGES}


def test_the_sh_hook_writes_the_same_file_without_python() -> None:
    tools = {name: shutil.which(name) for name in ("dirname", "sed", "mv", "rm", "cmp", "cp")}
    if not all(tools.values()):
        pytest.skip("a tool the fallback needs is missing")
    hook = ROOT / "infra" / "hooks" / "postprovision.sh"
    with tempfile.TemporaryDirectory() as bin_dir:
        for name, tool in tools.items():
            os.symlink(str(tool), Path(bin_dir) / name)
        code, stderr, without_python = run_sh_hook(hook, AZD_ENVIRONMENT, path=bin_dir)
    assert code == 0, stderr
    assert without_python == run_sh_hook(hook, AZD_ENVIRONMENT)[2]


def test_the_sh_hook_keeps_a_developers_own_local_settings_as_a_backup(tmp_path: Path) -> None:
    hook = tmp_path / "infra" / "hooks" / "postprovision.sh"
    hook.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "infra" / "hooks" / "postprovision.sh", hook)
    own = '{"IsEncrypted": false, "Values": {"MY_SETTING": "mine"}}\n'
    (tmp_path / "local.settings.json").write_text(own, encoding="utf-8")
    env = {"PATH": os.environ["PATH"], **AZD_ENVIRONMENT}
    done = subprocess.run(["/bin/sh", str(hook)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "local.settings.json.bak").read_text(encoding="utf-8") == own
    assert "MY_SETTING" not in (tmp_path / "local.settings.json").read_text(encoding="utf-8")
    done = subprocess.run(["/bin/sh", str(hook)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "kept the previous" not in done.stdout  # an unchanged file is not backed up again
    assert (tmp_path / "local.settings.json.bak").read_text(encoding="utf-8") == own


def test_the_sh_hook_stops_before_writing_when_azd_has_not_provisioned() -> None:
    environment = {k: v for k, v in AZD_ENVIRONMENT.items() if k != "COSMOS_ENDPOINT"}
    code, stderr, values = run_sh_hook(ROOT / "infra" / "hooks" / "postprovision.sh", environment)
    assert code != 0
    assert "COSMOS_ENDPOINT" in stderr
    assert values == {}
