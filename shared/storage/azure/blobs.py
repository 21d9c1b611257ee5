"""Blob store on Azure Blob Storage (or Azurite): the blob port over azure-storage-blob.

Writes are block blobs sent whole (up to 4 MiB) or as staged blocks committed at the end, two at a time, so a
reader sees the old version or the new one and a stream is never held whole in memory. Reads fetch 4 MiB per
request; every request after the first is pinned by the SDK to the ETag of the first, so a blob replaced during
a read raises BlobChanged rather than mixing two versions. Retries are the SDK's (clients.BLOBS_RETRY).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO, cast

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings, StorageStreamDownloader
from azure.storage.blob import BlobProperties as SdkBlobProperties

from shared.storage.ports import (
    DEFAULT_CONTENT_TYPE,
    BlobChanged,
    BlobNotFound,
    BlobProperties,
    StorageError,
    check_blob_name,
    check_container_name,
)

_PARALLEL_BLOCKS = 2
_READ_BYTES = 1024 * 1024  # how much of a caller's stream is taken at once; the SDK gathers it into blocks
_UNSATISFIABLE_RANGE = 416


class BlobStorageError(StorageError):
    """A Blob Storage call failed after the SDK's retries; the message has the status, never a key or URL."""


def _failure(action: str, container: str, name: str | None, error: Exception) -> StorageError:
    where = repr(container) if name is None else f"{name!r} of {container!r}"
    if isinstance(error, ResourceNotFoundError):
        return BlobNotFound(f"no blob {where}")
    status = getattr(error, "status_code", None)
    if isinstance(error, ResourceModifiedError) or status == 412:
        return BlobChanged(f"blob {where} is another version now (or gone)")
    return BlobStorageError(f"Blob Storage {action} of {where} failed (status {status}): {type(error).__name__}")


def _quoted(etag: str) -> str:
    """The ETag as the service's ETag header has it: a listing gives it without the quotes."""
    return etag if etag.startswith('"') else f'"{etag}"'


def _properties(raw: SdkBlobProperties) -> BlobProperties:
    content_type = raw.content_settings.content_type if raw.content_settings is not None else None
    return BlobProperties(str(raw.name), _quoted(str(raw.etag)), int(raw.size), raw.last_modified, content_type or None)


class _CountingReader:
    """A caller's stream or iterable as the read(n) the SDK takes, counting the bytes it hands over. It has no
    seek or tell, so the SDK stages it in blocks without asking for its length."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = b""
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        parts = [self._left] if self._left else []
        gathered = len(self._left)
        self._left = b""
        while size < 0 or gathered < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise TypeError(f"blob data pieces are bytes, not {type(piece).__name__}")
            parts.append(bytes(piece))
            gathered += len(piece)
        if 0 <= size < gathered:  # keep what the last piece holds beyond `size` for the next read
            last = parts[-1]
            cut = len(last) - (gathered - size)
            parts[-1], self._left = last[:cut], last[cut:]
        taken = b"".join(parts)
        self.count += len(taken)
        return taken


class _Source:
    """What put was given, as a body for each upload attempt: bytes and seekable streams can start again."""

    def __init__(self, data: bytes | BinaryIO | Iterable[bytes]) -> None:
        self._bytes: bytes | None = None
        self._stream: BinaryIO | None = None
        self._pieces: Iterable[bytes] | None = None
        self._start: int | None = None
        self._reader: _CountingReader | None = None
        if isinstance(data, str):
            raise TypeError("blob data is bytes, a binary stream or an iterable of bytes, not str")
        if isinstance(data, bytes | bytearray | memoryview):
            self._bytes = bytes(data)
        elif hasattr(data, "read"):
            self._stream = cast(BinaryIO, data)
            if hasattr(data, "seekable") and self._stream.seekable():
                self._start = self._stream.tell()
        else:
            self._pieces = data

    @property
    def can_restart(self) -> bool:
        return self._bytes is not None or self._start is not None

    def body(self) -> bytes | IO[bytes]:
        if self._bytes is not None:
            return self._bytes
        stream = self._stream
        if stream is not None:
            if self._reader is not None and self._start is not None:
                stream.seek(self._start)
            self._reader = _CountingReader(iter(lambda: stream.read(_READ_BYTES), b""))
        else:
            assert self._pieces is not None
            self._reader = _CountingReader(iter(self._pieces))
        return cast(IO[bytes], self._reader)  # the SDK only calls read(n) on it

    @property
    def size(self) -> int:
        if self._bytes is not None:
            return len(self._bytes)
        assert self._reader is not None
        return self._reader.count


class _ChunkStream(io.RawIOBase):
    """A download's chunks as a raw stream; a failure while fetching the next chunk is the port's error."""

    def __init__(self, chunks: Iterator[bytes], container: str, name: str) -> None:
        self._chunks = chunks
        self._container = container
        self._name = name
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            try:
                piece = next(self._chunks, None)
            except AzureError as error:
                raise _failure("read", self._container, self._name, error) from error
            if piece is None:
                return 0
            self._current = memoryview(piece)
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._current))
        target[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


class AzureBlobStore:
    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service
        self._containers: set[str] = set()  # seen to exist by this process

    def _blob(self, container: str, name: str) -> BlobClient:
        check_container_name(container)
        check_blob_name(name)
        return self._service.get_blob_client(container, name)

    def _ensure_container(self, container: str) -> None:
        """Creates the container unless this process saw it already: a stream cannot be sent twice, so its
        container must exist before the first block goes."""
        if container in self._containers:
            return
        with contextlib.suppress(ResourceExistsError):  # made by another writer meanwhile, or by infra
            self._service.create_container(container)
        self._containers.add(container)

    def put(
        self,
        container: str,
        name: str,
        data: bytes | BinaryIO | Iterable[bytes],
        content_type: str | None = None,
    ) -> BlobProperties:
        """Create or replace as a block blob; the container is created when missing."""
        blob = self._blob(container, name)
        content_type = DEFAULT_CONTENT_TYPE if content_type is None else content_type
        settings = ContentSettings(content_type=content_type)
        source = _Source(data)

        def upload() -> dict[str, Any]:
            return blob.upload_blob(
                source.body(), overwrite=True, max_concurrency=_PARALLEL_BLOCKS, content_settings=settings
            )

        try:
            self._ensure_container(container)
            try:
                written = upload()
            except ResourceNotFoundError:  # the container was deleted since this process saw it
                self._containers.discard(container)
                if not source.can_restart:
                    raise
                self._ensure_container(container)
                written = upload()
        except ResourceNotFoundError as error:
            raise BlobStorageError(
                f"container {container!r} was deleted while {name!r} was being written; write it again"
            ) from error
        except AzureError as error:
            raise _failure("write", container, name, error) from error
        return BlobProperties(name, _quoted(str(written["etag"])), source.size, written["last_modified"], content_type)

    def properties(self, container: str, name: str) -> BlobProperties | None:
        blob = self._blob(container, name)
        try:
            return _properties(blob.get_blob_properties())
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise _failure("read properties", container, name, error) from error

    def _check_version(self, container: str, name: str, etag: str | None) -> None:
        """BlobNotFound when the blob is absent, BlobChanged when it is not the version `etag` names."""
        found = self.properties(container, name)
        if found is None:
            raise BlobNotFound(f"no blob {name!r} of {container!r}")
        if etag is not None and found.etag != etag:
            raise BlobChanged(f"blob {name!r} of {container!r} changed since the version asked for")

    def _download(
        self, container: str, name: str, offset: int, length: int | None, etag: str | None
    ) -> StorageStreamDownloader[bytes] | None:
        """The download from `offset`, or None when the blob (the version `etag` names) ends before it."""
        if offset < 0:
            raise ValueError(f"offset {offset} is negative")
        blob = self._blob(container, name)
        pinned: dict[str, Any] = {}
        if etag is not None:
            pinned = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        # Without a range the SDK reads an empty blob; with one, the service answers 416 for it.
        start = None if offset == 0 and length is None else offset
        try:
            return blob.download_blob(offset=start, length=length, **pinned)
        except AzureError as error:
            if getattr(error, "status_code", None) != _UNSATISFIABLE_RANGE:
                raise _failure("read", container, name, error) from error
        self._check_version(container, name, etag)
        return None

    def open_read(self, container: str, name: str, offset: int = 0, etag: str | None = None) -> BinaryIO:
        """The blob from `offset`, fetched 4 MiB at a time as it is read."""
        download = self._download(container, name, offset, None, etag)
        if download is None:
            return io.BytesIO(b"")
        return io.BufferedReader(_ChunkStream(download.chunks(), container, name))

    def read_head(self, container: str, name: str, length: int, etag: str | None = None) -> bytes:
        if length < 0:
            raise ValueError(f"length {length} is negative")
        if length == 0:  # no range is empty: the properties answer for BlobNotFound and BlobChanged
            self._check_version(container, name, etag)
            return b""
        download = self._download(container, name, 0, length, etag)
        if download is None:
            return b""
        try:
            return download.readall()
        except AzureError as error:
            raise _failure("read", container, name, error) from error

    def list(self, container: str, prefix: str = "") -> list[BlobProperties]:
        check_container_name(container)
        client = self._service.get_container_client(container)
        try:
            found = [_properties(raw) for raw in client.list_blobs(name_starts_with=prefix or None)]
        except ResourceNotFoundError:
            return []
        except AzureError as error:
            raise _failure("list", container, None, error) from error
        return sorted(found, key=lambda blob: blob.name)  # by code point, whatever order the service keeps

    def delete(self, container: str, name: str) -> None:
        blob = self._blob(container, name)
        try:
            blob.delete_blob()
        except ResourceNotFoundError:
            return
        except AzureError as error:
            raise _failure("delete", container, name, error) from error

    def close(self) -> None:
        self._service.close()
