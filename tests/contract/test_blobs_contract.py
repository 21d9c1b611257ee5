"""The blob port's contract, run against every adapter (see conftest.py): the folder store of the embedded backend
and Blob Storage on Azurite."""

from __future__ import annotations

import hashlib
import io
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from shared.storage.ports import DEFAULT_CONTENT_TYPE, BlobChanged, BlobNotFound, BlobProperties, BlobStore
from tests.contract.conftest import Subject
from tests.waiting import wait_for

MIB = 1024 * 1024
BIG = 20 * MIB
PIECE = 64 * 1024
SEGMENT_RULE = "no empty, '.' or '..' segment between slashes"


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ from position to position, so a misplaced offset or a mixed version shows."""
    block = hashlib.sha256(str(seed).encode()).digest() * 8  # 256 bytes
    return (block * (size // len(block) + 1))[:size]


def generated(size: int, piece: int = PIECE) -> Iterator[bytes]:
    """`size` bytes in pieces, made as they are asked for: never the whole in memory."""
    block = pattern(piece)
    for start in range(0, size, piece):
        yield block[: min(piece, size - start)]


def read_all(store: BlobStore, container: str, name: str, offset: int = 0, etag: str | None = None) -> bytes:
    with store.open_read(container, name, offset=offset, etag=etag) as stream:
        return stream.read()


def test_bytes_round_trip_with_their_properties(blobs: Subject, container: str) -> None:
    data = b"sensor_id,timestamp,value\nsensor-01,2024-05-01T12:00:00Z,21.5\n"

    written = blobs.store.put(container, "upload.csv", data, content_type="text/csv")

    assert (written.name, written.size, written.content_type) == ("upload.csv", len(data), "text/csv")
    assert written.last_modified.utcoffset() == timedelta(0)
    assert blobs.store.properties(container, "upload.csv") == written
    assert read_all(blobs.store, container, "upload.csv") == data


def test_a_write_without_a_content_type_records_the_default(blobs: Subject, container: str) -> None:
    written = blobs.store.put(container, "plain", b"x")

    assert written.content_type == DEFAULT_CONTENT_TYPE
    stored = blobs.store.properties(container, "plain")
    assert stored is not None
    assert stored.content_type == DEFAULT_CONTENT_TYPE


def test_a_stream_is_written_from_where_it_stands(blobs: Subject, container: str) -> None:
    data = pattern(5 * MIB + 17)  # more than one 4 MiB block
    stream = io.BytesIO(data)
    stream.seek(17)

    written = blobs.store.put(container, "stream.bin", stream)

    assert written.size == len(data) - 17
    assert read_all(blobs.store, container, "stream.bin") == data[17:]


def test_an_empty_blob(blobs: Subject, container: str) -> None:
    written = blobs.store.put(container, "empty", b"")

    assert written.size == 0
    assert read_all(blobs.store, container, "empty") == b""
    assert blobs.store.read_head(container, "empty", 10) == b""
    assert [blob.name for blob in blobs.store.list(container)] == ["empty"]


def test_a_large_blob_from_a_generator_is_written_and_read_in_pieces(blobs: Subject, container: str) -> None:
    expected = hashlib.sha256()
    for piece in generated(BIG):
        expected.update(piece)

    tracemalloc.start()
    try:
        written = blobs.store.put(container, "big/readings.csv", generated(BIG))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < BIG, f"writing {BIG} bytes took {peak} bytes of memory at its peak: the blob was held whole"
    assert written.size == BIG
    found = hashlib.sha256()
    pieces = 0
    with blobs.store.open_read(container, "big/readings.csv", etag=written.etag) as stream:
        while piece := stream.read(MIB):
            assert len(piece) <= MIB
            found.update(piece)
            pieces += 1
    assert found.hexdigest() == expected.hexdigest()
    assert pieces >= BIG // MIB


def test_etag_changes_on_every_replace_and_is_stable_otherwise(blobs: Subject, container: str) -> None:
    first = blobs.store.put(container, "a.csv", b"same content")
    read_all(blobs.store, container, "a.csv")
    blobs.store.read_head(container, "a.csv", 4)
    blobs.store.put(container, "other.csv", b"another blob")

    again = blobs.store.properties(container, "a.csv")
    listed = {blob.name: blob for blob in blobs.store.list(container)}
    assert again is not None
    assert again.etag == first.etag == listed["a.csv"].etag

    etags = {first.etag}
    for _ in range(5):  # the same bytes again, quickly: a new version each time
        last = blobs.store.put(container, "a.csv", b"same content")
        etags.add(last.etag)
    assert len(etags) == 6
    current = blobs.store.properties(container, "a.csv")
    assert current is not None
    assert current.etag == last.etag


def test_open_read_from_an_offset(blobs: Subject, container: str) -> None:
    data = pattern(6 * MIB + 3)
    blobs.store.put(container, "offsets.bin", data)

    for offset in (0, 1, 4 * MIB, 4 * MIB + 1, len(data) - 1):
        assert read_all(blobs.store, container, "offsets.bin", offset=offset) == data[offset:], offset
    assert read_all(blobs.store, container, "offsets.bin", offset=len(data)) == b""
    assert read_all(blobs.store, container, "offsets.bin", offset=len(data) + 100) == b""
    with pytest.raises(ValueError, match="negative"):
        blobs.store.open_read(container, "offsets.bin", offset=-1)


def test_a_read_pinned_to_an_old_etag_raises_blob_changed(blobs: Subject, container: str) -> None:
    old = blobs.store.put(container, "pinned.csv", b"version 1")
    new = blobs.store.put(container, "pinned.csv", b"version 2")

    with pytest.raises(BlobChanged):
        blobs.store.open_read(container, "pinned.csv", etag=old.etag)
    with pytest.raises(BlobChanged):
        blobs.store.open_read(container, "pinned.csv", offset=9, etag=old.etag)  # at the end, still checked
    with pytest.raises(BlobChanged):
        blobs.store.read_head(container, "pinned.csv", 7, etag=old.etag)
    with pytest.raises(BlobChanged):
        blobs.store.read_head(container, "pinned.csv", 0, etag=old.etag)
    assert read_all(blobs.store, container, "pinned.csv", etag=new.etag) == b"version 2"
    assert blobs.store.read_head(container, "pinned.csv", 7, etag=new.etag) == b"version"


def test_a_read_never_mixes_two_versions(blobs: Subject, container: str) -> None:
    old, new = pattern(10 * MIB, seed=1), pattern(10 * MIB, seed=2)
    blobs.store.put(container, "replaced.bin", old)

    with blobs.store.open_read(container, "replaced.bin") as stream:
        head = stream.read(1)
        blobs.store.put(container, "replaced.bin", new)
        try:
            rest = stream.read()
        except BlobChanged:
            rest = None  # told that the blob changed under the read: the caller starts again

    assert head == old[:1]
    if rest is not None:
        assert head + rest == old
    assert read_all(blobs.store, container, "replaced.bin") == new


def test_read_head(blobs: Subject, container: str) -> None:
    blobs.store.put(container, "short.csv", b"abc")
    blobs.store.put(container, "long.csv", pattern(5 * MIB))

    assert blobs.store.read_head(container, "short.csv", 10) == b"abc"
    assert blobs.store.read_head(container, "short.csv", 2) == b"ab"
    assert blobs.store.read_head(container, "short.csv", 0) == b""
    assert blobs.store.read_head(container, "long.csv", 4 * MIB + 1) == pattern(4 * MIB + 1)
    with pytest.raises(ValueError, match="negative"):
        blobs.store.read_head(container, "short.csv", -1)


def test_list_by_prefix_in_name_order(blobs: Subject, container: str) -> None:
    other = f"{container}-other"
    names = ["b.csv", "2024/05/02.csv", "2024/05/01.csv", "2024/06/01.csv", "2024-summary.csv", "a.csv"]
    for name in names:
        blobs.store.put(container, name, name.encode())
    blobs.store.put(other, "2024/05/03.csv", b"elsewhere")

    listed = blobs.store.list(container)
    assert [blob.name for blob in listed] == sorted(names)
    assert [blob.size for blob in listed] == [len(name) for name in sorted(names)]
    assert listed == [blobs.store.properties(container, name) for name in sorted(names)]
    assert [blob.name for blob in blobs.store.list(container, "2024/05/")] == ["2024/05/01.csv", "2024/05/02.csv"]
    assert [blob.name for blob in blobs.store.list(container, "2024")] == [
        "2024-summary.csv",
        "2024/05/01.csv",
        "2024/05/02.csv",
        "2024/06/01.csv",
    ]
    assert [blob.name for blob in blobs.store.list(container, "2024/05/01")] == ["2024/05/01.csv"]
    assert blobs.store.list(container, "2025/") == []
    assert blobs.store.list(container, "../") == []
    assert [blob.name for blob in blobs.store.list(other)] == ["2024/05/03.csv"]


def test_list_of_a_missing_container_is_empty(blobs: Subject, container: str) -> None:
    assert blobs.store.list(container) == []
    assert blobs.store.list(container, "2024/") == []


def test_a_blob_being_written_is_not_seen_until_it_is_whole(blobs: Subject, container: str) -> None:
    blobs.store.put(container, "done.csv", b"finished")
    blobs.store.put(container, "replaced.csv", b"old version")
    halfway = {"new.csv": threading.Event(), "replaced.csv": threading.Event()}
    go_on = threading.Event()
    failures: list[BaseException] = []

    def slow(size: int, reached: threading.Event) -> Iterator[bytes]:
        yield from generated(5 * MIB)  # past the first block: the write is under way
        reached.set()
        if not go_on.wait(120):
            raise TimeoutError("the test never let the write finish")
        yield from generated(size - 5 * MIB)

    def write(name: str) -> None:
        try:
            blobs.store.put(container, name, slow(6 * MIB, halfway[name]))
        except BaseException as error:  # reported by the test below
            failures.append(error)

    writers = [threading.Thread(target=write, args=(name,)) for name in halfway]
    for writer in writers:
        writer.start()
    try:
        wait_for(lambda: all(event.is_set() for event in halfway.values()), 60, "both writes to be under way")
        listed = blobs.store.list(container)
        assert [(blob.name, blob.size) for blob in listed] == [("done.csv", 8), ("replaced.csv", 11)]
        assert blobs.store.properties(container, "new.csv") is None
        assert read_all(blobs.store, container, "replaced.csv") == b"old version"
    finally:
        go_on.set()
        for writer in writers:
            writer.join(120)
    assert failures == []
    assert [(blob.name, blob.size) for blob in blobs.store.list(container)] == [
        ("done.csv", 8),
        ("new.csv", 6 * MIB),
        ("replaced.csv", 6 * MIB),
    ]


def test_delete_is_idempotent(blobs: Subject, container: str) -> None:
    blobs.store.put(container, "2024/05/gone.csv", b"x")
    blobs.store.put(container, "2024/kept.csv", b"y")

    blobs.store.delete(container, "2024/05/gone.csv")
    blobs.store.delete(container, "2024/05/gone.csv")
    blobs.store.delete(container, "never-there.csv")
    blobs.store.delete(f"{container}-missing", "never-there.csv")

    assert blobs.store.properties(container, "2024/05/gone.csv") is None
    assert [blob.name for blob in blobs.store.list(container)] == ["2024/kept.csv"]
    with pytest.raises(BlobNotFound):
        blobs.store.open_read(container, "2024/05/gone.csv")
    blobs.store.put(container, "2024/05", b"a blob where a folder was")  # nothing of the folder is left
    assert read_all(blobs.store, container, "2024/05") == b"a blob where a folder was"


def test_missing_blob_or_container(blobs: Subject, container: str) -> None:
    blobs.store.put(container, "present.csv", b"x")
    missing_container = f"{container}-missing"

    for where, name in ((container, "absent.csv"), (missing_container, "present.csv"), (container, "present")):
        assert blobs.store.properties(where, name) is None
        with pytest.raises(BlobNotFound):
            blobs.store.open_read(where, name)
        with pytest.raises(BlobNotFound):
            blobs.store.open_read(where, name, offset=5)
        with pytest.raises(BlobNotFound):
            blobs.store.read_head(where, name, 10)
        with pytest.raises(BlobNotFound):
            blobs.store.read_head(where, name, 0)


def test_a_virtual_folder_is_not_a_blob(blobs: Subject, container: str) -> None:
    blobs.store.put(container, "2024/05/01.csv", b"x")

    assert blobs.store.properties(container, "2024/05") is None
    with pytest.raises(BlobNotFound):
        blobs.store.open_read(container, "2024/05")
    blobs.store.delete(container, "2024/05")
    assert [blob.name for blob in blobs.store.list(container)] == ["2024/05/01.csv"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../x", SEGMENT_RULE),
        ("a/../../x", SEGMENT_RULE),
        ("./x", SEGMENT_RULE),
        ("a/./b", SEGMENT_RULE),
        ("a//b", SEGMENT_RULE),
        ("/a", SEGMENT_RULE),
        ("a/", SEGMENT_RULE),
        ("", "1 to 1024 characters"),
        ("x" * 1025, "1 to 1024 characters"),
        ("a\\b", "backslash"),
        ("a\x00b", "control characters"),
        ("line\nbreak", "control characters"),
        ("del\x7f", "control characters"),
    ],
)
def test_invalid_blob_names_are_refused(blobs: Subject, container: str, name: str, rule: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: blobs.store.put(container, name, b"x"),
        lambda: blobs.store.properties(container, name),
        lambda: blobs.store.open_read(container, name),
        lambda: blobs.store.read_head(container, name, 1),
        lambda: blobs.store.delete(container, name),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rule):
            call()
    assert blobs.store.list(container) == []


@pytest.mark.parametrize("bad", ["Imports", "a", "ab", "a--b", "-ab", "ab-", "my_box", "a.b", "x" * 64, "", "abc\n"])
def test_invalid_container_names_are_refused(blobs: Subject, bad: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: blobs.store.put(bad, "x.csv", b"x"),
        lambda: blobs.store.properties(bad, "x.csv"),
        lambda: blobs.store.open_read(bad, "x.csv"),
        lambda: blobs.store.read_head(bad, "x.csv", 1),
        lambda: blobs.store.list(bad),
        lambda: blobs.store.delete(bad, "x.csv"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="3 to 63 lower-case letters, digits and single hyphens"):
            call()


def test_names_with_folders_and_unicode(blobs: Subject, container: str) -> None:
    names = [
        "2024/05/données d'été 🌡.csv",
        "Gebäude-Ä/Stockwerk 2/温度.jsonl",
        "with space & symbols (1)+=#%?.csv",
        ".hidden/.start",
        "/".join(["s" * 199] * 5) + "/" + "t" * 24,  # 1,024 characters
    ]
    assert len(names[-1]) == 1024
    for index, name in enumerate(names):
        written = blobs.store.put(container, name, f"content {index}".encode())
        assert written.name == name

    assert [blob.name for blob in blobs.store.list(container)] == sorted(names)
    assert [blob.name for blob in blobs.store.list(container, "Gebäude-Ä/")] == [names[1]]
    for index, name in enumerate(names):
        assert read_all(blobs.store, container, name) == f"content {index}".encode()
        stored = blobs.store.properties(container, name)
        assert isinstance(stored, BlobProperties)
        assert stored.name == name
    for name in names:
        blobs.store.delete(container, name)
    assert blobs.store.list(container) == []


def test_a_name_may_be_a_blob_and_a_folder_of_blobs(blobs: Subject, container: str) -> None:
    blobs.require("blob_beside_folder")
    blobs.store.put(container, "2024", b"a blob")
    blobs.store.put(container, "2024/05.csv", b"a blob in the folder of the same name")

    assert [blob.name for blob in blobs.store.list(container)] == ["2024", "2024/05.csv"]
