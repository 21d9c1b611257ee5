"""What only the embedded backend's folder blob store promises: files a user places by hand are blobs, nothing half
written or of its own bookkeeping is ever listed, no name leads outside its folder, and what a filesystem cannot
hold is refused by name. The cases every blob store shares are in tests/contract/test_blobs_contract.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.storage.factory import open_embedded
from shared.storage.ports import BlobNotFound, StorageError
from shared.storage.sqlite.blobs import FolderBlobStore
from shared.storage.sqlite.database import SqliteDatabase

CONTAINER = "imports"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def store(root: Path) -> FolderBlobStore:
    return FolderBlobStore(root)


def test_the_embedded_backend_keeps_blobs_beside_its_database(database: SqliteDatabase) -> None:
    stores = open_embedded(database)

    stores.blobs.put(CONTAINER, "2024/05/readings.csv", b"a,b\n")

    assert (database.path.parent / "blobs" / CONTAINER / "2024" / "05" / "readings.csv").read_bytes() == b"a,b\n"


def test_a_file_moved_into_place_by_hand_is_a_blob(store: FolderBlobStore, root: Path, tmp_path: Path) -> None:
    store.put(CONTAINER, "existing.csv", b"x")
    dropped = tmp_path / "from-a-user.csv"
    dropped.write_bytes(b"sensor_id,value\ns-1,20.5\n")

    os.replace(dropped, root / CONTAINER / "from-a-user.csv")

    listed = {blob.name: blob for blob in store.list(CONTAINER)}
    assert sorted(listed) == ["existing.csv", "from-a-user.csv"]
    found = listed["from-a-user.csv"]
    assert found == store.properties(CONTAINER, "from-a-user.csv")
    assert (found.size, found.content_type) == (25, None)  # nothing recorded its type
    assert store.read_head(CONTAINER, "from-a-user.csv", 9, etag=found.etag) == b"sensor_id"

    replacement = tmp_path / "again.csv"
    replacement.write_bytes(b"sensor_id,value\ns-1,20.6\n")  # the same size
    os.replace(replacement, root / CONTAINER / "from-a-user.csv")
    again = store.properties(CONTAINER, "from-a-user.csv")
    assert again is not None
    assert again.etag != found.etag


def test_a_recorded_content_type_lasts_for_its_version_only(store: FolderBlobStore, root: Path) -> None:
    store.put(CONTAINER, "typed.csv", b"a,b\n", content_type="text/csv")

    reopened = FolderBlobStore(root)  # as after a restart
    stored = reopened.properties(CONTAINER, "typed.csv")
    assert stored is not None
    assert stored.content_type == "text/csv"

    (root / CONTAINER / "typed.csv").write_bytes(b"changed in place\n")
    changed = reopened.properties(CONTAINER, "typed.csv")
    assert changed is not None
    assert changed.etag != stored.etag
    assert changed.content_type is None


def test_leftovers_of_an_interrupted_write_are_never_blobs(store: FolderBlobStore, root: Path) -> None:
    store.put(CONTAINER, "whole.csv", b"x", content_type="text/csv")
    (root / ".tmp" / "put-interrupted").write_bytes(b"half a file")

    assert [blob.name for blob in store.list(CONTAINER)] == ["whole.csv"]
    for folder in (".tmp", ".meta"):
        with pytest.raises(ValueError, match="invalid container name"):
            store.list(folder)


def test_no_name_leads_outside_the_folder(store: FolderBlobStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not a blob")
    store.put(CONTAINER, "inside.csv", b"x")
    (root / CONTAINER / "linked").symlink_to(outside, target_is_directory=True)
    (root / "linkedbox").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StorageError, match="outside"):
        store.open_read(CONTAINER, "linked/secret.txt")
    with pytest.raises(StorageError, match="outside"):
        store.put(CONTAINER, "linked/new.txt", b"x")
    with pytest.raises(StorageError, match="outside"):
        store.list("linkedbox")
    assert [blob.name for blob in store.list(CONTAINER)] == ["inside.csv"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_link_to_a_file_is_not_a_blob(store: FolderBlobStore, root: Path) -> None:
    store.put(CONTAINER, "real.csv", b"x")
    (root / CONTAINER / "alias.csv").symlink_to(root / CONTAINER / "real.csv")

    assert store.properties(CONTAINER, "alias.csv") is None
    assert [blob.name for blob in store.list(CONTAINER)] == ["real.csv"]
    store.delete(CONTAINER, "alias.csv")
    assert (root / CONTAINER / "alias.csv").is_symlink()


def test_a_name_cannot_be_a_blob_and_a_folder_at_once(store: FolderBlobStore) -> None:
    store.put(CONTAINER, "2024", b"a blob")
    store.put(CONTAINER, "2025/05.csv", b"a blob in a folder")

    with pytest.raises(ValueError, match="cannot be a blob and a folder of blobs at once"):
        store.put(CONTAINER, "2024/05.csv", b"x")
    with pytest.raises(ValueError, match="cannot be a blob and a folder of blobs at once"):
        store.put(CONTAINER, "2025", b"x")

    assert [blob.name for blob in store.list(CONTAINER)] == ["2024", "2025/05.csv"]
    assert store.read_head(CONTAINER, "2024", 100) == b"a blob"
    assert os.listdir(store.root / ".tmp") == []  # the refused writes left nothing behind


def test_a_name_segment_longer_than_a_file_name_is_refused(store: FolderBlobStore) -> None:
    with pytest.raises(ValueError, match="at most 255 bytes"):
        store.put(CONTAINER, "é" * 128, b"x")  # 256 bytes of UTF-8
    store.put(CONTAINER, "é" * 127, b"x")
    with pytest.raises(BlobNotFound):
        store.open_read(CONTAINER, "e" * 255)
