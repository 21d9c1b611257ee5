"""Rules the infrastructure for `azd up` keeps, read as text from a repository root: infra/ (Bicep, the parameter
file, the hooks) and azure.yaml. Each rule returns the problems it finds; an empty list means the rule holds.

tests/unit/test_infra_bicep.py runs every rule on this repository and on copies broken in one place."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from shared.ops.app_insights import sample_names
from shared.ops.metrics import PipelineMetrics
from shared.storage import names
from tests.infra_bicep import (
    ROOT,
    bicep_app_settings,
    bicep_files,
    modules,
    outputs,
    params,
    resources,
    strip_comments,
)

# Properties each declared (not `existing`) resource of a type must set, exactly as written.
REQUIRED_PROPERTIES = {
    "Microsoft.DocumentDB/databaseAccounts": ["disableLocalAuth: true", "disableKeyBasedMetadataWriteAccess: true"],
    "Microsoft.EventHub/namespaces": ["disableLocalAuth: true", "minimumTlsVersion: '1.2'"],
    "Microsoft.Insights/components": ["DisableLocalAuth: true"],
    "Microsoft.Storage/storageAccounts": [
        "allowSharedKeyAccess: false",
        "allowBlobPublicAccess: false",
        "minimumTlsVersion: 'TLS1_2'",
        "supportsHttpsTrafficOnly: true",
    ],
    "Microsoft.KeyVault/vaults": ["enableRbacAuthorization: true", "enableSoftDelete: true"],
    "Microsoft.Web/serverfarms": ["name: 'FC1'", "tier: 'FlexConsumption'", "reserved: true"],
    "Microsoft.Web/sites": [
        "kind: 'functionapp,linux'",
        "httpsOnly: true",
        "keyVaultReferenceIdentity: identityId",
        "minTlsVersion: '1.2'",
        "ftpsState: 'Disabled'",
        "type: 'UserAssignedIdentity'",
        "userAssignedIdentityResourceId: identityId",
    ],
}

ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "2b629674-e913-4c01-ae53-ef4638d8f975": "Azure Event Hubs Data Sender",
    "a638d3c7-ab3a-418d-83e6-5f17a39d4fde": "Azure Event Hubs Data Receiver",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "00000000-0000-0000-0000-000000000002": "Cosmos DB Built-in Data Contributor",
}

OUTPUTS = {
    "AZURE_LOCATION", "AZURE_TENANT_ID", "RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_FUNCTION_APP_URL",
    "AZURE_CLIENT_ID", "COSMOS_ENDPOINT", "COSMOS_DATABASE_NAME", "EVENTHUB_NAMESPACE", "EVENTHUB_NAME",
    "EVENTHUB_CONSUMER_GROUP", "STATE_TABLE_SERVICE_URI", "KEY_VAULT_NAME", "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "TASKHUB_NAME", "IMPORTS_BLOB_SERVICE_URI", "IMPORTS_QUEUE_SERVICE_URI", "IMPORTS_SYSTEM_TOPIC_NAME",
}  # fmt: skip

KEY_MATERIAL = re.compile(
    r"listKeys|listConnectionStrings|AccountKey=|SharedAccessKey|DefaultEndpointsProtocol=|Endpoint=sb://"
    r"|AccountEndpoint=|InstrumentationKey|primaryMasterKey|primaryKey",
    re.IGNORECASE,
)
# Webhook URLs count as secrets: Slack, Teams and relay URLs carry their token in the URL.
SECRET_NAMES = re.compile(r"password|secret|apikey|token|webhookurl", re.IGNORECASE)
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
SECRET_SETTINGS = {"MICROSHARE_PASSWORD", "MICROSHARE_API_KEY", "ALERT_WEBHOOK_URLS"}
SECRET_PARAMS = ("microsharePassword", "microshareApiKey", "alertWebhookUrls")
# Secrets the app parses whatever happens: stored with this value when the parameter is empty, so that their
# reference always resolves (an unresolved one reaches the app as the reference text itself).
ALWAYS_STORED = {"alertWebhookUrls": "'[]'"}

# What azd hands the postprovision hook: the outputs, and whatever else is in the environment.
AZD_ENVIRONMENT = {
    "COSMOS_ENDPOINT": "https://cosmos-abc.documents.azure.com:443/",
    "COSMOS_DATABASE_NAME": "sensorpulse",
    "EVENTHUB_NAMESPACE": "evhns-abc.servicebus.windows.net",
    "EVENTHUB_NAME": "telemetry",
    "EVENTHUB_CONSUMER_GROUP": "summariser",
    "STATE_TABLE_SERVICE_URI": "https://stabc.table.core.windows.net/",
    "TASKHUB_NAME": "sensorpulse",
    "IMPORTS_BLOB_SERVICE_URI": "https://stabc.blob.core.windows.net/",
    "IMPORTS_QUEUE_SERVICE_URI": "https://stabc.queue.core.windows.net/",
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "MICROSHARE_PASSWORD": "never-written-password",  # pragma: allowlist secret
    "MICROSHARE_API_KEY": "never-written-api-key",  # pragma: allowlist secret
    "ALERT_WEBHOOK_URLS": '["https://hooks.example/never-written-token"]',  # pragma: allowlist secret
    "MICROSHARE_IDENTITY": 'quote " and back\\slash',
}


def _infra(root: Path) -> Path:
    return root / "infra"


def _text_files(root: Path) -> list[Path]:
    infra = _infra(root)
    return [*bicep_files(infra), *infra.rglob("*.json"), *(infra / "hooks").iterdir(), root / "azure.yaml"]


def _has_line(body: str, line: str) -> bool:
    return re.search(rf"^\s*{re.escape(line)}\s*$", body, re.MULTILINE) is not None


def hardening_problems(root: Path) -> list[str]:
    """Local (key) auth off, TLS 1.2, RBAC-only vault, Flex Consumption: the properties of REQUIRED_PROPERTIES."""
    problems = []
    declared = [r for r in resources(_infra(root)) if not r.existing]
    for type_, lines in REQUIRED_PROPERTIES.items():
        of_type = [r for r in declared if r.type == type_]
        if not of_type:
            problems.append(f"no {type_} is declared")
        problems += [
            f"{r.path.name}: {r.symbol} lacks {line}" for r in of_type for line in lines if not _has_line(r.body, line)
        ]
    problems += [
        f"{r.path.name}: {r.symbol} turns purge protection off"
        for r in declared
        if "enablePurgeProtection: false" in r.body
    ]
    return problems


def key_problems(root: Path) -> list[str]:
    """Nothing reads a key, builds a key-based connection string or names an instrumentation key."""
    return [
        f"{path.name}: {match.group()}"
        for path in _text_files(root)
        for match in KEY_MATERIAL.finditer(path.read_text(encoding="utf-8"))
    ]


def secret_literal_problems(root: Path) -> list[str]:
    """No key-like literal, and no secret parameter with a default value (in Bicep or the parameter file)."""
    problems = []
    for path in _text_files(root):
        text = path.read_text(encoding="utf-8")
        for run in re.findall(r"[A-Za-z0-9+/]{32,}={0,2}", text):
            if all(re.search(c, run) for c in ("[0-9]", "[a-z]", "[A-Z]")) or re.fullmatch(r"[0-9a-fA-F]{32,}", run):
                problems.append(f"{path.name}: a key-like literal {run[:8]}...")
        for name, default in re.findall(r"^param\s+(\w+)\s+string\s*=\s*'([^']*)'", text, re.MULTILINE):
            if SECRET_NAMES.search(name) and default:
                problems.append(f"{path.name}: {name} has a literal default")
        for name, default in re.findall(r"\$\{(\w+)=([^}]*)\}", text):
            if SECRET_NAMES.search(name.replace("_", "")) and default:
                problems.append(f"{path.name}: {name} has a literal default")
    return problems


def secure_param_problems(root: Path) -> list[str]:
    """Secret parameters are @secure(), those of SECRET_PARAMS exist, and no output exposes one."""
    main = params(_infra(root) / "main.bicep")
    problems = [f"main.bicep has no {name}" for name in SECRET_PARAMS if name not in main]
    for path in bicep_files(_infra(root)):
        for param in params(path).values():
            if SECRET_NAMES.search(param.name) and not param.has_decorator("secure"):
                problems.append(f"{path.name}: {param.name} is not @secure()")
    secure = {p.name for p in main.values() if p.has_decorator("secure")}
    for name, value in outputs(_infra(root) / "main.bicep").items():
        problems += [f"output {name} exposes {s}" for s in secure if re.search(rf"\b{s}\b", value)]
    return problems


def key_vault_reference_problems(root: Path) -> list[str]:
    """The secret settings reach the app as Key Vault references only, no empty secret is stored, and those of
    ALWAYS_STORED are stored even when their parameter is empty."""
    settings = bicep_app_settings(_infra(root))
    referenced = {name for name, value in settings.items() if KEY_VAULT_REFERENCE in value}
    problems = [f"{name} is not a Key Vault reference" for name in sorted(SECRET_SETTINGS - referenced)]
    problems += [f"{name} is an unexpected Key Vault reference" for name in sorted(referenced - SECRET_SETTINGS)]
    occurrences = sum(path.read_text(encoding="utf-8").count(KEY_VAULT_REFERENCE) for path in bicep_files(_infra(root)))
    if occurrences != len(referenced):
        problems.append(f"{KEY_VAULT_REFERENCE} appears {occurrences} times, outside the app settings too")
    for resource in resources(_infra(root)):
        if resource.type == "Microsoft.KeyVault/vaults/secrets" and "if (!empty(" not in resource.body:
            problems.append(f"{resource.symbol} would store an empty secret")
    main = strip_comments((_infra(root) / "main.bicep").read_text(encoding="utf-8"))
    for param, when_empty in ALWAYS_STORED.items():
        stored = rf"^\s*'\$\{{\w+\}}':\s*empty\({param}\)\s*\?\s*{re.escape(when_empty)}\s*:\s*{param}\s*$"
        if not re.search(stored, main, re.MULTILINE):
            problems.append(f"{param} is not stored as {when_empty} when empty: its reference would not resolve")
    return problems


# The alert rules on the pipeline (infra/app/monitoring-alerts.bicep) and the exported metric samples they read:
# the names shared.ops.app_insights gives the instruments of shared.ops.metrics, so renaming one breaks the rule.
ALERTS_MODULE = Path("app") / "monitoring-alerts.bicep"
_METRICS = PipelineMetrics()
DEAD_LETTER_SAMPLE = f"{next(iter(_METRICS.dead_letters.describe())).name}_total"
LAG_SAMPLES = frozenset({f"{_METRICS.lag.name}_sum", f"{_METRICS.lag.name}_count"})
SCHEDULED_QUERY_RULES = "Microsoft.Insights/scheduledQueryRules"
METRIC_ALERTS = "Microsoft.Insights/metricAlerts"
ACTION_GROUPS = "Microsoft.Insights/actionGroups"
# Rule symbol -> (type, lines its body holds, metric samples its query names, text its query holds).
ALERT_RULES: dict[str, tuple[str, tuple[str, ...], frozenset[str], tuple[str, ...]]] = {
    "functionFailures": (
        SCHEDULED_QUERY_RULES,
        ("windowSize: 'PT5M'", "timeAggregation: 'Count'", "operator: 'GreaterThan'", "threshold: 0"),
        frozenset(),
        ("requests\n", "| where success == false"),
    ),
    "deadLetters": (
        SCHEDULED_QUERY_RULES,
        ("windowSize: 'PT5M'", "timeAggregation: 'Total'", "operator: 'GreaterThan'", "threshold: 0"),
        frozenset({DEAD_LETTER_SAMPLE}),
        ("customMetrics\n",),
    ),
    "summariserLag": (
        SCHEDULED_QUERY_RULES,
        (
            "windowSize: 'PT5M'",  # two periods of 5 minutes, both failing: high for 10 minutes
            "numberOfEvaluationPeriods: 2",
            "minFailingPeriodsToAlert: 2",
            "operator: 'GreaterThan'",
            "threshold: summariserLagThresholdSeconds",
        ),
        LAG_SAMPLES,
        ("customMetrics\n",),
    ),
    "cosmosThrottling": (
        METRIC_ALERTS,
        (
            "location: 'global'",
            "windowSize: 'PT5M'",
            "metricNamespace: 'Microsoft.DocumentDB/databaseAccounts'",
            "metricName: 'TotalRequests'",
            "name: 'StatusCode'",
            "'429'",
            "timeAggregation: 'Count'",
            "operator: 'GreaterThan'",
            "threshold: 0",
        ),
        frozenset(),
        (),
    ),
}
UNSAFE_OUTPUT = re.compile(r"key|secret|connectionstring|password|token|email", re.IGNORECASE)
EMAIL_LITERAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _query_columns(query: str) -> set[str]:
    """The columns of the query's last `| project`: `name = expression` or a bare `name`."""
    projects = [line for line in query.splitlines() if line.lstrip().startswith("| project ")]
    if not projects:
        return set()
    items = projects[-1].split("| project ", 1)[1].split(",")
    return {item.split("=", 1)[0].strip() for item in items}


def _actions_reach(text: str, body: str, group: str) -> bool:
    """The rule's actions name the action group, directly or through a `var` (read to its first blank line)."""
    if f"{group}.id" in body:
        return True
    named = re.search(r"^\s*actions:\s*(\w+)\s*$", body, re.MULTILINE)
    if named is None:
        return False
    var = re.search(rf"^var {named.group(1)} = (.*?)^\s*$", text, re.MULTILINE | re.DOTALL)
    return var is not None and f"{group}.id" in var.group(1)


def alert_problems(root: Path) -> list[str]:
    """The pipeline's alert rules: main.bicep deploys the module; function failures, dead letters, summariser lag
    and Cosmos DB throttling each have a rule reading the right table or metric (the dead-letter and lag samples
    the app really exports); the one action group mails the alertEmail parameter (set from AZURE_ALERT_EMAIL),
    exists only when it is set and is every rule's action; no output holds a key, a secret or the address."""
    infra = _infra(root)
    main, path = infra / "main.bicep", infra / ALERTS_MODULE
    problems = [] if path.resolve() in modules(main).values() else [f"main.bicep does not deploy {ALERTS_MODULE}"]
    if not path.is_file():
        return [*problems, f"{ALERTS_MODULE} does not exist"]
    text = strip_comments(path.read_text(encoding="utf-8"))
    declared = {r.symbol: r for r in resources(path)}
    existing = {r.type: r.symbol for r in declared.values() if r.existing}
    groups = [r for r in declared.values() if r.type == ACTION_GROUPS and not r.existing]
    if len(groups) != 1:
        return [*problems, f"{ALERTS_MODULE} declares {len(groups)} action groups, not one"]
    (group,) = groups
    exported = set(sample_names(_METRICS))
    for symbol, (type_, lines, samples, query_text) in ALERT_RULES.items():
        rule = declared.get(symbol)
        if rule is None or rule.type != type_:
            problems.append(f"no {type_} {symbol}")
            continue
        problems += [f"{symbol} lacks {line}" for line in lines if not _has_line(rule.body, line)]
        if not _has_line(rule.body, "tags: tags"):
            problems.append(f"{symbol} is not tagged")
        if not _actions_reach(text, rule.body, group.symbol):
            problems.append(f"{symbol} does not notify the action group")
        watched = "Microsoft.DocumentDB/databaseAccounts" if type_ == METRIC_ALERTS else "Microsoft.Insights/components"
        scope = existing.get(watched)
        if scope is None or f"{scope}.id" not in rule.body:
            problems.append(f"{symbol} is not scoped to the existing {watched}")
        if type_ != SCHEDULED_QUERY_RULES:
            continue
        loaded = re.search(r"^\s*query: loadTextContent\('([^']+)'\)\s*$", rule.body, re.MULTILINE)
        query_file = path.parent / loaded.group(1) if loaded else None
        if query_file is None or not query_file.is_file():
            problems.append(f"{symbol}: its query is not a file loaded with loadTextContent")
            continue
        query = query_file.read_text(encoding="utf-8")
        problems += [f"{symbol}: the query lacks {t!r}" for t in query_text if t not in query]
        named = set(re.findall(r'"(sensorpulse_\w+)"', query))
        if named != samples:
            problems.append(f"{symbol}: the query names {sorted(named)}, not {sorted(samples)}")
        problems += [f"{symbol}: the app exports no {name}" for name in sorted(named - exported)]
        wanted = {"timestamp", *re.findall(r"^\s*(?:metricMeasureColumn|name): '(\w+)'", rule.body, re.MULTILINE)}
        missing = wanted - _query_columns(query)
        problems += [f"{symbol}: the query does not project {name}" for name in sorted(missing)]
    # The action group: the address comes from the parameter, and without one there is no group.
    module_params = params(path)
    email = module_params.get("alertEmail")
    if email is None or email.default != "''":
        problems.append("the module's alertEmail is not a parameter defaulting to ''")
    if not _has_line(group.body, "emailAddress: alertEmail"):
        problems.append("the action group's email is not the alertEmail parameter")
    if not _has_line(group.body, "location: 'global'"):
        problems.append("the action group is not global")
    condition = re.search(r"=\s*if\s*\((.*?)\)\s*\{", group.body)
    guard = condition.group(1).strip() if condition else ""
    guard_var = re.search(rf"^var {re.escape(guard)} = (.+)$", text, re.MULTILINE) if guard else None
    if "!empty(alertEmail)" not in (guard_var.group(1) if guard_var else guard):
        problems.append("the action group is created even without alertEmail")
    written = re.search(r"^\s*groupShortName: (.+?)\s*$", group.body, re.MULTILINE)
    value = written.group(1) if written else ""
    literal = re.search(rf"^var {value} = '([^']*)'$", text, re.MULTILINE) if re.fullmatch(r"\w+", value) else None
    short_name = literal.group(1) if literal else value.strip("'")
    if not 1 <= len(short_name) <= 12 or "${" in short_name:
        problems.append(f"the action group's short name {short_name!r} is not 1-12 characters")
    main_params = params(main)
    if main_params.get("alertEmail") is None or main_params["alertEmail"].default != "''":
        problems.append("main.bicep has no alertEmail parameter defaulting to ''")
    if not re.search(r"^\s*alertEmail: alertEmail\s*$", strip_comments(main.read_text(encoding="utf-8")), re.M):
        problems.append("main.bicep does not pass alertEmail to the module")
    # No address in the templates, and no output that could hold a secret or the address.
    for file in [*bicep_files(infra), *infra.glob("*.json")]:
        if EMAIL_LITERAL.search(file.read_text(encoding="utf-8")):
            problems.append(f"{file.name}: an email address literal")
        if file.suffix != ".bicep":
            continue
        for name, value in outputs(file).items():
            if UNSAFE_OUTPUT.search(f"{name} {value}") and file.resolve() == path.resolve():
                problems.append(f"{file.name}: output {name} may hold a key, secret or address")
            if re.search(r"\balertEmail\b|emailAddress", value):
                problems.append(f"{file.name}: output {name} exposes the alert email")
    return problems


def _readme_versions(root: Path) -> set[tuple[str, str]]:
    row = re.compile(r"^\|\s*`(Microsoft\.[\w./]+)`\s*\|\s*`([^`]+)`\s*\|", re.MULTILINE)
    return set(row.findall((_infra(root) / "README.md").read_text(encoding="utf-8")))


def api_version_problems(root: Path, checked: set[tuple[str, str]]) -> list[str]:
    """Every resource has a stable API version, and the (type, version) pairs in use are exactly `checked` and
    the table in infra/README.md."""
    found = resources(_infra(root))
    problems = [
        f"{r.path.name}:{r.line} {r.symbol} has no stable API version ({r.api_version})"
        for r in found
        if r.api_version is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.api_version)
    ]
    used = {(r.type, r.api_version) for r in found if r.api_version}
    problems += [f"not in the checked table: {pair}" for pair in sorted(used - checked)]
    problems += [f"checked but unused: {pair}" for pair in sorted(checked - used)]
    readme = _readme_versions(root)
    problems += [f"README table disagrees: {pair}" for pair in sorted(readme ^ checked)]
    return problems


def runtime_problems(root: Path) -> list[str]:
    """The function app runs Python at the version pyproject.toml requires; no setting Flex Consumption refuses."""
    wanted = re.search(r'requires-python\s*=\s*">=(\d+\.\d+)', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert wanted is not None
    sites = [r for r in resources(_infra(root)) if r.type == "Microsoft.Web/sites" and not r.existing]
    problems = [] if sites else ["no function app is declared"]
    for site in sites:
        runtime = re.search(r"runtime:\s*\{([^}]*)\}", site.body)
        block = runtime.group(1) if runtime else ""
        problems += [
            f"{site.symbol}: runtime lacks {line}"
            for line in ("name: 'python'", f"version: '{wanted.group(1)}'")
            if not _has_line(block, line)
        ]
    settings = bicep_app_settings(_infra(root))
    problems += [
        f"{name} is set; Flex Consumption refuses it"
        for name in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION")
        if name in settings
    ]
    return problems


def _resolve(main: Path, expression: str) -> str:
    """The value expression behind `module.outputs.name`, looked up in the module file."""
    match = re.fullmatch(r"(\w+)\.outputs\.(\w+)", expression)
    if match is None or match.group(1) not in modules(main):
        return expression
    return outputs(modules(main)[match.group(1)]).get(match.group(2), "")


def output_problems(root: Path) -> list[str]:
    """The outputs azd needs, in UPPER_SNAKE; Application Insights as its connection string, not its name."""
    main = _infra(root) / "main.bicep"
    found = outputs(main)
    problems = [f"output {name} is not UPPER_SNAKE" for name in found if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name)]
    problems += [f"output {name} is missing" for name in sorted(OUTPUTS - set(found))]
    for name in ("APPLICATIONINSIGHTS_CONNECTION_STRING",):
        if not _resolve(main, found.get(name, "")).endswith(".properties.ConnectionString"):
            problems.append(f"{name} is not the component's connection string")
    settings = bicep_app_settings(_infra(root))
    if not _resolve(main, settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")).endswith(
        ".properties.ConnectionString"
    ):
        problems.append("the APPLICATIONINSIGHTS_CONNECTION_STRING setting is not the component's connection string")
    if not _resolve(main, found.get("AZURE_FUNCTION_APP_URL", "")).startswith("'https://${"):
        problems.append("AZURE_FUNCTION_APP_URL is not an https URL")
    return problems


def app_setting_problems(root: Path) -> list[str]:
    """Numbers become strings; every `__credential` is the managed identity."""
    main = params(_infra(root) / "main.bicep")
    problems = []
    for name, value in bicep_app_settings(_infra(root)).items():
        numbers = [p for p in main.values() if p.type == "int" and re.search(rf"\b{p.name}\b", value)]
        problems += [
            f"{name}: {p.name} is a number; pass string({p.name})" for p in numbers if value != f"string({p.name})"
        ]
        if name.endswith("__credential") and value != "'managedidentity'":
            problems.append(f"{name} is not 'managedidentity'")
    return problems


def rbac_problems(root: Path) -> list[str]:
    """Named and commented role ids, guid() assignment names, and the user's roles as twins of the app's."""
    path = _infra(root) / "app" / "rbac.bicep"
    text = path.read_text(encoding="utf-8")
    problems = []
    for var, guid, comment in re.findall(r"^var (\w+) = '([0-9a-f-]{36})'(.*)$", text, re.MULTILINE):
        if guid not in ROLES or comment.strip() != f"// {ROLES.get(guid)}":
            problems.append(f"role id {var} is not commented with its role name")
        if len(re.findall(rf"\b{var}\b", text)) < 2:
            problems.append(f"role {var} is declared but never assigned")
    problems += [f"role {name} is not declared" for guid, name in ROLES.items() if f"'{guid}'" not in text]
    assignments = [r for r in resources(path) if r.type.endswith(("/roleAssignments", "/sqlRoleAssignments"))]
    problems += [
        f"{r.symbol}: name is not guid(scope, principal, role)"
        for r in assignments
        if not re.search(r"^\s*name: guid\(", r.body, re.MULTILINE)
    ]
    users = [r for r in assignments if "userPrincipalId" in r.body]
    problems += [f"{r.symbol}: granted even when no user is given" for r in users if "if (withUser)" not in r.body]
    if not re.search(r"^var withUser = !empty\(userPrincipalId\)$", text, re.MULTILINE):
        problems.append("user roles are not skipped for an empty principal id")
    scopes = {"app": set[str](), "user": set[str]()}
    for r in assignments:
        scope = re.search(r"^\s*(?:scope|parent): (\w+)", r.body, re.MULTILINE)
        scopes["user" if r in users else "app"].add(scope.group(1) if scope else "?")
    if scopes["app"] != scopes["user"]:
        problems.append(f"the user's roles are not twins of the app's: {scopes}")
    return problems


def _queries() -> dict[str, set[tuple[str, str | None]]]:
    """Container -> (ORDER BY field, equality field) of every latest() query in the app code."""
    call = re.compile(r"\.latest\(\s*([A-Z_]+)\s*,\s*[^,]+,\s*\"(\w+)\"\s*,\s*[^,)]+(?:,\s*equals=\{\"(\w+)\")?")
    found: dict[str, set[tuple[str, str | None]]] = {}
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "blueprints").rglob("*.py")]:
        for constant, order_by, equals in call.findall(path.read_text(encoding="utf-8")):
            found.setdefault(getattr(names, constant), set()).add((order_by, equals or None))
    return found


def storage_name_problems(root: Path) -> list[str]:
    """Tables, containers, partition keys and TTLs as in shared/storage/names.py; the app's queries indexed."""
    main = (_infra(root) / "main.bicep").read_text(encoding="utf-8")
    tables = re.search(r"^var stateTables = \[(.*?)^\]", main, re.DOTALL | re.MULTILINE)
    declared = set(re.findall(r"'(\w+)'", tables.group(1))) if tables else set()
    wanted = {value for name, value in vars(names).items() if name.endswith("_TABLE")}
    problems = (
        [f"tables differ from shared/storage/names.py: {sorted(declared ^ wanted)}"] if declared != wanted else []
    )
    containers = {
        match.group(1): r
        for r in resources(_infra(root))
        if r.type.endswith("/containers") and "DocumentDB" in r.type
        for match in [re.search(r"^  name: '(\w+)'", r.body, re.MULTILINE)]
        if match
    }
    if set(containers) != set(names.PARTITION_KEY_PATHS):
        problems.append(f"containers {sorted(containers)} differ from {sorted(names.PARTITION_KEY_PATHS)}")
    for name, resource in containers.items():
        if f"'{names.PARTITION_KEY_PATHS.get(name)}'" not in resource.body:
            problems.append(f"{name}: partition key is not {names.PARTITION_KEY_PATHS.get(name)}")
        has_ttl = "defaultTtl:" in resource.body
        if has_ttl != (name != names.LEASES):
            problems.append(f"{name}: a default TTL {'must not' if name == names.LEASES else 'must'} be set")
        for order_by, equals in _queries().get(name, set()):
            fields = [f for f in ("sensor_id", equals, order_by) if f]
            problems += [f"{name}: /{f}/? is not indexed" for f in fields if f"'/{f}/?'" not in resource.body]
            # latest() orders by one property: its range index serves the ORDER BY (a multi-property ORDER BY would
            # need a composite index, and the Cosmos stand-in refuses one without it, as Cosmos DB does).
    return problems


def abbreviation_problems(root: Path) -> list[str]:
    """abbreviations.json holds exactly the abbreviations main.bicep uses."""
    defined = set(json.loads((_infra(root) / "abbreviations.json").read_text(encoding="utf-8")))
    used = set(re.findall(r"\babbrs\.(\w+)", (_infra(root) / "main.bicep").read_text(encoding="utf-8")))
    return [f"abbreviation {name} is used but not defined" for name in sorted(used - defined)] + [
        f"abbreviation {name} is defined but not used" for name in sorted(defined - used)
    ]


def parameter_file_problems(root: Path) -> list[str]:
    """main.parameters.json sets only parameters main.bicep has, from the azd environment."""
    raw = (_infra(root) / "main.parameters.json").read_text(encoding="utf-8")
    # azd substitutes ${NAME} and ${NAME=default} from the environment before reading the JSON.
    given = json.loads(re.sub(r"\$\{\w+(?:=([^}]*))?\}", lambda m: m.group(1) or "", raw))["parameters"]
    declared = params(_infra(root) / "main.bicep")
    problems = [f"{name} is not a parameter of main.bicep" for name in sorted(set(given) - set(declared))]
    problems += [
        f"{name} has no default and no value" for name, p in declared.items() if p.default is None and name not in given
    ]
    written = json.loads(raw)["parameters"]  # the file is valid JSON before substitution too
    for name, variable in (
        ("environmentName", "AZURE_ENV_NAME"),
        ("location", "AZURE_LOCATION"),
        ("principalId", "AZURE_PRINCIPAL_ID"),
        ("alertEmail", "AZURE_ALERT_EMAIL"),
    ):
        if written.get(name, {}).get("value") != f"${{{variable}}}":
            problems.append(f"{name} does not come from ${{{variable}}}")
    return problems


def _yaml(text: str) -> dict[str, object]:
    """The nested mappings of a YAML file made of `key: value` and `key:` lines only (azure.yaml's shape)."""
    top: dict[str, object] = {}
    stack: list[tuple[int, dict[str, object]]] = [(-1, top)]
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, colon, value = raw.strip().partition(":")
        assert colon, f"not a mapping line: {raw!r}"
        while stack[-1][0] >= indent:
            stack.pop()
        if value.strip():
            stack[-1][1][key] = value.strip().strip("'\"")
        else:
            child: dict[str, object] = {}
            stack[-1][1][key] = child
            stack.append((indent, child))
    return top


def _at(mapping: dict[str, object], *keys: str) -> object:
    value: object = mapping
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def azure_yaml_problems(root: Path) -> list[str]:
    """The azd project: service api (Python on Functions) and the postprovision and postdeploy hooks, which exist."""
    config = _yaml((root / "azure.yaml").read_text(encoding="utf-8"))
    wanted = {
        ("name",): "sensor-pulse",
        ("services", "api", "project"): ".",
        ("services", "api", "language"): "python",
        ("services", "api", "host"): "function",
        ("hooks", "postprovision", "posix", "shell"): "sh",
        ("hooks", "postprovision", "posix", "run"): "./infra/hooks/postprovision.sh",
        ("hooks", "postprovision", "windows", "shell"): "pwsh",
        ("hooks", "postprovision", "windows", "run"): "./infra/hooks/postprovision.ps1",
        ("hooks", "postdeploy", "posix", "shell"): "sh",
        ("hooks", "postdeploy", "posix", "run"): "./infra/hooks/postdeploy.sh",
        ("hooks", "postdeploy", "windows", "shell"): "pwsh",
        ("hooks", "postdeploy", "windows", "run"): "./infra/hooks/postdeploy.ps1",
    }
    problems = [
        f"azure.yaml {'.'.join(k)} is {_at(config, *k)!r}, not {v!r}" for k, v in wanted.items() if _at(config, *k) != v
    ]
    for hook in ("postprovision", "postdeploy"):
        for key in (("hooks", hook, "posix", "run"), ("hooks", hook, "windows", "run")):
            script = root / str(_at(config, *key))
            if not script.is_file():
                problems.append(f"{script.name} does not exist")
        sh = root / "infra" / "hooks" / f"{hook}.sh"
        if sh.is_file() and not os.access(sh, os.X_OK):
            problems.append(f"{hook}.sh is not executable")
    return problems


def run_sh_hook(hook: Path, environment: dict[str, str], path: str | None = None) -> tuple[int, str, dict[str, str]]:
    """Runs the hook from a scratch checkout; returns its exit code, stderr and the Values it wrote."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "infra" / "hooks" / hook.name
        copy.parent.mkdir(parents=True)
        shutil.copy2(hook, copy)
        env = {"PATH": path if path is not None else os.environ["PATH"], **environment}
        done = subprocess.run(["/bin/sh", str(copy)], env=env, capture_output=True, text=True, timeout=60)
        written = Path(scratch) / "local.settings.json"
        values: dict[str, str] = json.loads(written.read_text(encoding="utf-8"))["Values"] if written.exists() else {}
        return done.returncode, done.stderr, values


def _ps1_values(text: str) -> dict[str, str]:
    block = re.search(r"^\$values = \[ordered\]@\{\n(.*?)^\}", text, re.DOTALL | re.MULTILINE)
    return dict(re.findall(r"^\s+(\w+) = (.+)$", block.group(1), re.MULTILINE)) if block else {}


def hook_problems(root: Path) -> list[str]:
    """The sh hook (run) and the PowerShell hook (read) write the same identity-based local settings, no secret."""
    hooks = root / "infra" / "hooks"
    sh = (hooks / "postprovision.sh").read_text(encoding="utf-8")
    problems = (
        []
        if sh.startswith("#!/bin/sh\n") and "\nset -eu\n" in sh
        else ["postprovision.sh is not POSIX sh with set -eu"]
    )
    code, stderr, values = run_sh_hook(hooks / "postprovision.sh", AZD_ENVIRONMENT)
    if code != 0:
        return [*problems, f"postprovision.sh failed: {stderr}"]
    forbidden = [n for n in values if n.endswith(("__clientId", "__credential")) or n == "AZURE_CLIENT_ID"]
    problems += [f"local.settings.json sets {n}: the developer's login would not be used" for n in forbidden]
    wanted = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "COSMOS__accountEndpoint": AZD_ENVIRONMENT["COSMOS_ENDPOINT"],
        "EVENTHUB__fullyQualifiedNamespace": AZD_ENVIRONMENT["EVENTHUB_NAMESPACE"],
        "STATE__tableServiceUri": AZD_ENVIRONMENT["STATE_TABLE_SERVICE_URI"],
        "IMPORTS__blobServiceUri": AZD_ENVIRONMENT["IMPORTS_BLOB_SERVICE_URI"],
        "IMPORTS__queueServiceUri": AZD_ENVIRONMENT["IMPORTS_QUEUE_SERVICE_URI"],
        "MICROSHARE_IDENTITY": AZD_ENVIRONMENT["MICROSHARE_IDENTITY"],
        "MICROSHARE_PASSWORD": "",
        "MICROSHARE_API_KEY": "",
        "ALERT_WEBHOOK_URLS": "",
    }
    problems += [f"{k} is {values.get(k)!r}, not {v!r}" for k, v in wanted.items() if values.get(k) != v]
    if values.get("EVENTHUB_CONSUMER_GROUP") in ("", AZD_ENVIRONMENT["EVENTHUB_CONSUMER_GROUP"]):
        problems.append("the local host would share the deployed app's consumer group")
    deployed_prefix = params(root / "infra" / "main.bicep")["leaseContainerPrefix"].default
    if f"'{values.get('LEASE_CONTAINER_PREFIX')}'" == deployed_prefix:
        problems.append("the local host would share the deployed app's change-feed leases")
    written = json.dumps(values)
    problems += [f"{name} was written" for name in SECRET_SETTINGS if AZD_ENVIRONMENT[name] in written]
    ps1 = _ps1_values((hooks / "postprovision.ps1").read_text(encoding="utf-8"))
    if set(ps1) != set(values):
        problems.append(f"the two hooks write different settings: {sorted(set(ps1) ^ set(values))}")
    problems += [
        f"postprovision.ps1 writes {name} = {ps1.get(name)}" for name in SECRET_SETTINGS if ps1.get(name) != "''"
    ]
    return problems
