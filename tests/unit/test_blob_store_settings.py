"""Blob Storage is optional: without an IMPORTS connection the app starts, and only a use of the blob store fails,
naming the setting to set; a malformed connection string names the setting, never its value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.settings import SettingsError
from shared.storage.azure.blobs import AzureBlobStore
from shared.storage.factory import blob_store
from shared.storage.ports import BlobStore

MARKER = "Zq7LeakCheck"

USES: list[Callable[[BlobStore], object]] = [
    lambda store: store.put("imports", "a.csv", b"x"),
    lambda store: store.properties("imports", "a.csv"),
    lambda store: store.open_read("imports", "a.csv"),
    lambda store: store.read_head("imports", "a.csv", 10),
    lambda store: store.list("imports"),
    lambda store: store.delete("imports", "a.csv"),
]


@pytest.mark.parametrize("use", USES)
def test_without_a_connection_every_use_names_the_setting(use: Callable[[BlobStore], object]) -> None:
    store = blob_store({"STATE": "UseDevelopmentStorage=true"})

    with pytest.raises(SettingsError, match="IMPORTS__blobServiceUri"):
        use(store)


@pytest.mark.parametrize(
    "env",
    [
        {"IMPORTS": "UseDevelopmentStorage=true"},
        {"IMPORTS__blobServiceUri": "https://account.blob.core.windows.net", "IMPORTS__clientId": "client-id"},
    ],
)
def test_a_configured_connection_gives_blob_storage(env: dict[str, str]) -> None:
    assert isinstance(blob_store(env), AzureBlobStore)


def test_a_malformed_connection_string_names_the_setting_only() -> None:
    with pytest.raises(SettingsError, match="IMPORTS") as raised:
        blob_store({"IMPORTS": f"not a connection string {MARKER}"})

    assert MARKER not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
