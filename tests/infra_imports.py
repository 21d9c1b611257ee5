"""Rules of the bulk import's Azure side (issue 22), read from a repository root like those of tests/infra_rules.py:
the import containers, the Event Grid system topic, the IMPORTS connection and its roles. The hooks that subscribe
the blob trigger to the topic are tests/infra_postdeploy.py's."""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra_bicep import bicep_app_settings, module_body, modules, outputs, resources, strip_comments
from tests.infra_rules import ROLES, _has_line

# The bulk import (issue 22): a file written to `imports` starts the blob trigger `import_blob` (connection IMPORTS,
# Event Grid source) through the storage account's system topic; the results go to `imports-results`.
IMPORT_CONTAINERS = ("imports", "imports-results")
IMPORT_FUNCTION = "import_blob"
IMPORT_CONNECTION = "IMPORTS"
STORAGE_MODULE = Path("core") / "storage" / "storage-account.bicep"
SYSTEM_TOPICS = "Microsoft.EventGrid/systemTopics"
STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"
# The blob trigger reads the files (either role; Owner includes Contributor) and parks failing ones in a queue.
BLOB_TRIGGER_ROLES = {"Storage Blob Data Owner", "Storage Blob Data Contributor"}
QUEUE_ROLE = "Storage Queue Data Contributor"
STORAGE_BLOB_DATA_CONTRIBUTOR = {"ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor"}


def _string_vars(text: str) -> dict[str, str]:
    return dict(re.findall(r"^var (\w+) = '([^'$]*)'\s*$", text, re.MULTILINE))


def _module_of(main: Path, target: Path) -> str | None:
    return next((symbol for symbol, file in modules(main).items() if file == target.resolve()), None)


def _storage_role_names(rbac: Path) -> dict[str, set[str]]:
    """Principal ('app' or 'user') -> the names of the roles it is granted on the storage account."""
    text = strip_comments(rbac.read_text(encoding="utf-8"))
    guids = dict(re.findall(r"^var (\w+) = '([0-9a-f-]{36})'", text, re.MULTILINE))
    lists = {
        name: re.findall(r"\w+", items)
        for name, items in re.findall(r"^var (\w+) = \[(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    }
    granted: dict[str, set[str]] = {"app": set(), "user": set()}
    for r in resources(rbac):
        if r.existing or not re.search(r"^\s*scope: storageAccount\s*$", r.body, re.MULTILINE):
            continue
        principal = "user" if "principalId: userPrincipalId" in r.body else "app"
        loop = re.search(r"\bfor \w+ in (\w+)\s*:", r.body)
        direct = [var for var in re.findall(r"roleDefinitions', (\w+)\)", r.body) if var in guids]
        for var in [*(lists.get(loop.group(1), []) if loop else []), *direct]:
            granted[principal].add({**ROLES, **STORAGE_BLOB_DATA_CONTRIBUTOR}.get(guids.get(var, ""), var))
    return granted


def import_problems(root: Path) -> list[str]:
    """The bulk import's Azure side: the two private containers, old blobs deleted per container, the Event Grid
    system topic on the very account the IMPORTS connection points at, that connection identity-based with the app's
    identity, and the blob and queue roles its blob trigger needs, for the app and for the developer."""
    infra = root / "infra"
    main = infra / "main.bicep"
    text = strip_comments(main.read_text(encoding="utf-8"))
    strings = _string_vars(text)
    storage = _module_of(main, infra / STORAGE_MODULE)
    if storage is None:
        return [f"main.bicep does not deploy {STORAGE_MODULE}"]
    body = module_body(main, storage)
    listed = re.search(r"^\s*containers: \[(.*?)\]", body, re.MULTILINE | re.DOTALL)
    containers = (
        {strings.get(item, item.strip("'")) for item in re.findall(r"'[^']*'|\w+", listed.group(1))}
        if listed
        else set()
    )
    problems = [f"the container {name} is not created" for name in IMPORT_CONTAINERS if name not in containers]
    expiring = {strings.get(var, var) for var in re.findall(r"^\s*'\$\{(\w+)\}': \w+\s*$", body, re.MULTILINE)}
    problems += [f"old blobs of {name} are never deleted" for name in IMPORT_CONTAINERS if name not in expiring]
    account = {r.symbol: r for r in resources(infra / STORAGE_MODULE)}
    for r in account.values():
        if r.type.endswith("/blobServices/containers") and not _has_line(r.body, "publicAccess: 'None'"):
            problems.append(f"{r.symbol}: containers are not private")
        if r.type.endswith("/managementPolicies"):
            prefixes = re.findall(r"prefixMatch: \[\s*'([^']*)'", r.body)
            if not prefixes or not all(prefix.endswith("/") for prefix in prefixes):
                problems.append(f"{r.symbol}: a prefix without its trailing / also matches imports-results")
    # The system topic publishes the events of the storage module's account.
    topics = [r for r in resources(infra) if r.type == SYSTEM_TOPICS and not r.existing]
    if len(topics) != 1:
        return [*problems, f"{len(topics)} Event Grid system topics are declared, not one"]
    (topic,) = topics
    existing = [r.symbol for r in resources(topic.path) if r.existing and r.type == STORAGE_ACCOUNTS]
    if not _has_line(topic.body, "topicType: 'Microsoft.Storage.StorageAccounts'"):
        problems.append("the system topic is not a storage account's")
    if not existing or not _has_line(topic.body, f"source: {existing[0]}.id"):
        problems.append("the system topic's source is not the storage account")
    if not _has_line(topic.body, "location: location"):
        problems.append("the system topic is not in the account's region")
    events = _module_of(main, topic.path)
    if events is None:
        return [*problems, f"main.bicep does not deploy {topic.path.name}"]
    if not _has_line(module_body(main, events), f"storageAccountName: {storage}.outputs.name"):
        problems.append("the system topic is not on the account of the import containers")
    if outputs(main).get("IMPORTS_SYSTEM_TOPIC_NAME") != f"{events}.outputs.name":
        problems.append("IMPORTS_SYSTEM_TOPIC_NAME is not the system topic's name")
    # The connection: the same account's endpoints, the app's user-assigned identity.
    settings = bicep_app_settings(infra)
    wanted = {
        f"{IMPORT_CONNECTION}__blobServiceUri": f"{storage}.outputs.blobEndpoint",
        f"{IMPORT_CONNECTION}__queueServiceUri": f"{storage}.outputs.queueEndpoint",
        f"{IMPORT_CONNECTION}__credential": "'managedidentity'",
        f"{IMPORT_CONNECTION}__clientId": settings.get("AZURE_CLIENT_ID", "?"),
    }
    problems += [f"{k} is {settings.get(k)!r}, not {v!r}" for k, v in wanted.items() if settings.get(k) != v]
    for output, setting in (
        ("IMPORTS_BLOB_SERVICE_URI", "blobServiceUri"),
        ("IMPORTS_QUEUE_SERVICE_URI", "queueServiceUri"),
    ):
        if outputs(main).get(output) != wanted[f"{IMPORT_CONNECTION}__{setting}"]:
            problems.append(f"{output} is not the IMPORTS connection's {setting}")
    # The blob trigger reads and writes blobs and writes failing blobs to a queue, for the app and the developer alike.
    for principal, roles in _storage_role_names(infra / "app" / "rbac.bicep").items():
        if not roles & BLOB_TRIGGER_ROLES:
            problems.append(f"the {principal} may not read the imported files")
        if QUEUE_ROLE not in roles:
            problems.append(f"the {principal} lacks {QUEUE_ROLE}, which the blob trigger needs")
    return problems
