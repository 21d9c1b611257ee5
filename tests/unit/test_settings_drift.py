"""Settings drift: what the code and bindings read, what Azure is given (Bicep) and what a developer starts from
(local.settings.sample.json) must be the same set of names. A setting added to the code but not to the
infrastructure would fail only after a deployment; a setting left in the infrastructure after the code
stopped reading it misleads whoever configures it."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import shared.settings
from shared.storage.azure.clients import AZURE_CLIENT_ID, ENDPOINT_SUFFIXES, IMPORTS
from tests.component.app_functions import app_functions
from tests.infra_bicep import bicep_app_settings

ROOT = Path(__file__).resolve().parents[2]
APP_CODE = [
    ROOT / "function_app.py",
    *sorted((ROOT / "shared").rglob("*.py")),
    *sorted((ROOT / "blueprints").rglob("*.py")),
]
SAMPLE = ROOT / "local.settings.sample.json"
_EXPRESSION = re.compile(r"%([^%]+)%")

# Read by the Functions host or the platform, not by our code; why each is set.
HOST_SETTINGS = {
    "AzureWebJobsDisableHomepage": "the dashboard serves / instead of the host's default page",
    # Also read by the app (shared.ops.app_insights): unset locally, so nothing is exported and nothing imported.
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host and the app send telemetry to Application Insights",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Application Insights ingestion with the managed identity",
}
HOST_CONNECTIONS = {"AzureWebJobsStorage": ("blobServiceUri", "queueServiceUri", "tableServiceUri")}
# Connections of blob triggers (the bulk import's `import_blob`). The host's blob extension reads them too: it writes a
# blob that keeps failing to a poison queue of the same account, so identity-based they need the queue endpoint beside
# the blob endpoint our clients use, and `__credential` for the user-assigned identity.
BLOB_TRIGGER_CONNECTIONS = {IMPORTS: ("blobServiceUri", "queueServiceUri")}
# Only where the app runs outside Azure.
LOCAL_ONLY = {
    "FUNCTIONS_WORKER_RUNTIME": "func start needs it; Flex Consumption refuses it (the runtime is in the site config)",
    shared.settings.EMBEDDED_DATA_DIR: "where devhost keeps its SQLite file; devhost sets it itself",
}
# Only in Azure.
AZURE_ONLY = {AZURE_CLIENT_ID: "the user-assigned identity; locally the developer's login is used"}


@cache
def plain_settings() -> frozenset[str]:
    """Every plain app setting the code names: the UPPER_SNAKE constants of shared.settings whose value is the
    setting's name (the module says every setting is named there)."""
    return frozenset(
        value
        for name, value in vars(shared.settings).items()
        if name.isupper() and isinstance(value, str) and value == name
    )


@cache
def binding_metadata() -> list[dict[str, Any]]:
    return [
        binding
        for function in app_functions().values()
        for binding in json.loads(function.get_function_json())["bindings"]
    ]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@cache
def expression_settings() -> frozenset[str]:
    """Settings named by %NAME% in binding metadata and host.json."""
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    texts = [*_strings(binding_metadata()), *_strings(host)]
    return frozenset(name for text in texts for name in _EXPRESSION.findall(text))


@cache
def binding_connections() -> frozenset[str]:
    return frozenset(str(b["connection"]) for b in binding_metadata() if b.get("connection"))


@cache
def blob_trigger_connections() -> frozenset[str]:
    return frozenset(str(b["connection"]) for b in binding_metadata() if b.get("type") == "blobTrigger")


def connection_forms(name: str) -> set[str]:
    """The setting names a connection may use: the emulator connection string and the identity-based parts.
    `__credential` is read by the host's extensions; our own clients need only the endpoint and client id."""
    suffixes = HOST_CONNECTIONS.get(name) or BLOB_TRIGGER_CONNECTIONS.get(name) or (ENDPOINT_SUFFIXES[name],)
    forms = {name, f"{name}__clientId", *(f"{name}__{suffix}" for suffix in suffixes)}
    if name in binding_connections() or name in HOST_CONNECTIONS or name in BLOB_TRIGGER_CONNECTIONS:
        forms.add(f"{name}__credential")
    return forms


def connections() -> set[str]:
    return {*ENDPOINT_SUFFIXES, *binding_connections(), *HOST_CONNECTIONS, *BLOB_TRIGGER_CONNECTIONS}


def known_names() -> set[str]:
    names = set(plain_settings()) | set(expression_settings()) | set(HOST_SETTINGS)
    names |= set(LOCAL_ONLY) | set(AZURE_ONLY)
    for connection in connections():
        names |= connection_forms(connection)
    return names


@cache
def azure_settings() -> dict[str, str]:
    return bicep_app_settings(ROOT / "infra")


@cache
def sample_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]
    return values


def test_every_setting_named_in_shared_settings_is_read_by_the_app() -> None:
    # A constant that nothing reads would make the other tests demand a setting nobody uses.
    sources = {path: path.read_text(encoding="utf-8") for path in APP_CODE}
    sources[ROOT / "host.json"] = (ROOT / "host.json").read_text(encoding="utf-8")
    settings_module = Path(shared.settings.__file__).resolve()
    unread = []
    for name in sorted(plain_settings()):
        used = any(
            (f"%{name}%" in text) or (path != settings_module and re.search(rf"\b{name}\b", text))
            for path, text in sources.items()
        )
        in_settings_module = sources[settings_module].count(name) > 2  # defined once, then used by from_env
        if not used and not in_settings_module:
            unread.append(name)
    assert unread == []


def test_the_app_reads_settings_only_through_named_constants() -> None:
    # env.get("LITERAL") would escape the drift checks: every read must go through a shared.settings name.
    literal_reads = []
    for path in APP_CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "getenv")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value.isupper()
            ):
                literal_reads.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.args[0].value}")
    assert literal_reads == []


def test_every_blob_trigger_connection_is_known_to_need_the_queue_endpoint() -> None:
    # Without NAME__queueServiceUri in Azure the blob extension cannot start the trigger: add the connection above.
    assert sorted(blob_trigger_connections() - set(BLOB_TRIGGER_CONNECTIONS)) == []


def test_bindings_and_host_json_name_only_settings_listed_in_shared_settings() -> None:
    assert expression_settings() <= plain_settings(), "add the setting's name to shared/settings.py"


@pytest.mark.parametrize("where", ["azure", "sample"])
def test_nothing_is_configured_that_nothing_reads(where: str) -> None:
    configured = azure_settings() if where == "azure" else sample_settings()
    assert sorted(set(configured) - known_names()) == []


def test_azure_gets_every_plain_setting_the_code_and_bindings_read() -> None:
    wanted = (plain_settings() | expression_settings() | set(HOST_SETTINGS) | set(AZURE_ONLY)) - set(LOCAL_ONLY)
    assert sorted(wanted - set(azure_settings())) == []
    assert sorted(set(LOCAL_ONLY) & set(azure_settings())) == []


def test_the_sample_has_every_plain_setting_the_code_and_bindings_read() -> None:
    wanted = (plain_settings() | expression_settings() | {"FUNCTIONS_WORKER_RUNTIME"}) - set(AZURE_ONLY)
    assert sorted(wanted - set(sample_settings())) == []


@pytest.mark.parametrize("connection", sorted({*ENDPOINT_SUFFIXES, "AzureWebJobsStorage"}))
def test_azure_connects_by_identity_and_never_by_connection_string(connection: str) -> None:
    settings = azure_settings()
    assert connection not in settings, f"{connection} would be a connection string; Azure uses the identity"
    expected = connection_forms(connection) - {connection}
    assert sorted(expected - set(settings)) == []
    if f"{connection}__credential" in settings:
        assert settings[f"{connection}__credential"] == "'managedidentity'"


@pytest.mark.parametrize("connection", sorted({*ENDPOINT_SUFFIXES, "AzureWebJobsStorage"}))
def test_the_sample_configures_every_connection(connection: str) -> None:
    assert connection_forms(connection) & set(sample_settings())


def test_the_sample_holds_no_secret_but_the_published_emulator_keys() -> None:
    # The Cosmos DB emulator's key is published and the same on every machine; nothing else may look like a key.
    emulator_key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
    for name, value in sample_settings().items():
        cleaned = value.replace(emulator_key, "")
        assert not re.search(r"[A-Za-z0-9+/]{32,}={0,2}", cleaned), name
        if "PASSWORD" in name or "API_KEY" in name:
            assert value == "", f"{name} must stay empty in the sample"
        if name == shared.settings.ALERT_WEBHOOK_URLS:
            assert value == "[]", f"{name} must name no webhook in the sample"


def test_secrets_reach_azure_only_as_key_vault_references() -> None:
    settings = azure_settings()
    for name in (
        shared.settings.MICROSHARE_PASSWORD,
        shared.settings.MICROSHARE_API_KEY,
        shared.settings.ALERT_WEBHOOK_URLS,
    ):
        assert "@Microsoft.KeyVault(" in settings[name]
