"""The embedded backend's blob store: plain files on the filesystem beside its SQLite file (`<data dir>/blobs`).

A blob is the file `<root>/<container>/<name>`, a `/` in its name a sub-folder, so a user can also add one by
moving a file into place (a move, not a copy: a copy is seen while it is half written). A write goes to a
temporary file in `<root>/.tmp/`, is fsync'd and renamed over the blob: readers see the old version or the new
one, never a part, and an open stream keeps reading the version it opened. The ETag comes from the file's
inode, mtime (ns) and size; a replace is always a new file, and a write stamps its file with the current time to
the nanosecond, so a recycled inode cannot repeat an old ETag. The content type a write names is kept in
`<root>/.meta/` with the ETag it belongs to; a file placed by hand has none (None).

Two limits of a filesystem that Blob Storage does not have: a blob `a` and a blob `a/b` cannot both exist, and
a segment of a name holds at most 255 bytes of UTF-8 (both ValueError).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from shared.storage.ports import (
    DEFAULT_CONTENT_TYPE,
    BlobChanged,
    BlobNotFound,
    BlobProperties,
    StorageError,
    check_blob_name,
    check_container_name,
)

BLOBS_FOLDER = "blobs"  # beside the database file
MAX_SEGMENT_BYTES = 255  # a file name's limit on the usual filesystems
_TEMP = ".tmp"  # container names start with a letter or digit: these two are never a container
_META = ".meta"
_COPY_BYTES = 1024 * 1024
_PLACE_ATTEMPTS = 3


def etag_of(status: os.stat_result) -> str:
    """An ETag in Blob Storage's quoted `"0x..."` form for one version of a file."""
    identity = f"{status.st_ino}:{status.st_mtime_ns}:{status.st_size}".encode()
    return f'"0x{hashlib.blake2b(identity, digest_size=8).hexdigest().upper()}"'


def _pieces(data: bytes | BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif isinstance(data, str):
        raise TypeError("blob data is bytes, a binary stream or an iterable of bytes, not str")
    elif hasattr(data, "read"):
        while piece := data.read(_COPY_BYTES):
            yield piece
    else:
        for piece in data:
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise TypeError(f"blob data pieces are bytes, not {type(piece).__name__}")
            yield bytes(piece)


def _version(name: str, status: os.stat_result, content_type: str | None) -> BlobProperties:
    modified = datetime.fromtimestamp(status.st_mtime_ns / 1e9, UTC)
    return BlobProperties(name, etag_of(status), status.st_size, modified, content_type)


@contextlib.contextmanager
def _filesystem(action: str, container: str, name: str | None = None) -> Iterator[None]:
    """An OSError not handled where it happened (disk full, permissions) as the port's StorageError."""
    try:
        yield
    except OSError as error:
        where = repr(container) if name is None else f"{name!r} of {container!r}"
        raise StorageError(f"could not {action} blob {where}: {error.strerror or type(error).__name__}") from error


def _sync_folder(folder: Path) -> None:
    """Makes a rename in `folder` durable (POSIX; elsewhere the rename is what there is)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FolderBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._temp = self.root / _TEMP
        self._meta = self.root / _META

    def _path(self, container: str, name: str) -> Path:
        check_container_name(container)
        check_blob_name(name)
        for segment in name.split("/"):
            if len(segment.encode()) > MAX_SEGMENT_BYTES:
                raise ValueError(
                    f"invalid blob name {name!r}: a segment between slashes holds at most {MAX_SEGMENT_BYTES} bytes"
                    " of UTF-8 in the embedded store"
                )
        folder = self.root / container
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()) or not folder.resolve().is_relative_to(self.root):
            raise StorageError(f"blob {name!r} of {container!r} leads outside {self.root} (a symbolic link?)")
        return path

    def _meta_path(self, container: str, name: str) -> Path:
        return self._meta / container / hashlib.sha256(name.encode()).hexdigest()

    def _recorded_type(self, container: str, name: str, etag: str) -> str | None:
        try:
            record = json.loads(self._meta_path(container, name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("etag") != etag:
            return None  # written for another version: the file was replaced or placed by hand since
        content_type = record.get("content_type")
        return content_type if isinstance(content_type, str) else None

    def _describe(self, container: str, name: str, status: os.stat_result) -> BlobProperties:
        return _version(name, status, self._recorded_type(container, name, etag_of(status)))

    def _write_temp(self, pieces: Iterable[bytes]) -> tuple[Path, os.stat_result]:
        """The data in a new fsync'd file under `.tmp`, stamped with the time now (ns), and its status."""
        self._temp.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=self._temp, prefix="put-")
        temp = Path(temp_name)
        try:
            with os.fdopen(descriptor, "wb") as out:
                for piece in pieces:
                    out.write(piece)
                out.flush()
                now = time.time_ns()
                os.utime(temp, ns=(now, now))
                os.fsync(out.fileno())
                return temp, os.fstat(out.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _record_type(self, container: str, name: str, etag: str, content_type: str) -> None:
        record = json.dumps({"name": name, "etag": etag, "content_type": content_type}).encode()
        temp, _ = self._write_temp([record])
        target = self._meta_path(container, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)

    def _place(self, temp: Path, path: Path, container: str, name: str) -> None:
        for attempt in range(1, _PLACE_ATTEMPTS + 1):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, path)
                break
            except FileNotFoundError:  # a delete removed the emptied folder meanwhile: make it again
                if attempt == _PLACE_ATTEMPTS:
                    raise
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise ValueError(
                    f"blob {name!r} cannot be stored in {container!r} beside another blob: the embedded store keeps "
                    "blobs as files, so a name cannot be a blob and a folder of blobs at once ('a' and 'a/b')"
                ) from None
        _sync_folder(path.parent)

    def put(
        self,
        container: str,
        name: str,
        data: bytes | BinaryIO | Iterable[bytes],
        content_type: str | None = None,
    ) -> BlobProperties:
        """Create or replace, written to a temporary file first and renamed into place."""
        path = self._path(container, name)
        content_type = DEFAULT_CONTENT_TYPE if content_type is None else content_type
        with _filesystem("write", container, name):
            temp, status = self._write_temp(_pieces(data))
            try:
                written = _version(name, status, content_type)
                # Recorded first, for the version about to be placed: a reader never meets the new file without it.
                self._record_type(container, name, written.etag, content_type)
                self._place(temp, path, container, name)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return written

    def properties(self, container: str, name: str) -> BlobProperties | None:
        path = self._path(container, name)
        with _filesystem("read", container, name):
            try:
                status = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if not stat.S_ISREG(status.st_mode):
                return None  # a folder of blobs (or a link) is not a blob
            return self._describe(container, name, status)

    def open_read(self, container: str, name: str, offset: int = 0, etag: str | None = None) -> BinaryIO:
        """The open file from `offset`: it reads the version it opened to the end, whatever replaces it."""
        if offset < 0:
            raise ValueError(f"offset {offset} is negative")
        path = self._path(container, name)
        try:
            file = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(f"no blob {name!r} in container {container!r}") from None
        except OSError as error:
            raise StorageError(f"could not read blob {name!r} of {container!r}: {error.strerror}") from error
        try:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise BlobNotFound(f"no blob {name!r} in container {container!r}")
            if etag is not None and etag_of(status) != etag:
                raise BlobChanged(f"blob {name!r} of {container!r} is no longer version {etag}")
            file.seek(offset)
        except BaseException:
            file.close()
            raise
        return file

    def read_head(self, container: str, name: str, length: int, etag: str | None = None) -> bytes:
        if length < 0:
            raise ValueError(f"length {length} is negative")
        with self.open_read(container, name, etag=etag) as file:
            return file.read(length)

    def list(self, container: str, prefix: str = "") -> list[BlobProperties]:
        check_container_name(container)
        folder = self.root / container
        if not folder.resolve().is_relative_to(self.root):
            raise StorageError(f"container {container!r} leads outside {self.root} (a symbolic link?)")
        found: list[BlobProperties] = []
        # os.walk reports no error of its own (a missing container lists nothing); lstat and the records might.
        for directory, subfolders, files in os.walk(folder):
            relative = Path(directory).relative_to(folder).as_posix()
            base = "" if relative == "." else f"{relative}/"
            # Walk only the folders that can hold a match: those on the prefix's path, and those under it.
            subfolders[:] = [s for s in subfolders if _may_match(f"{base}{s}/", prefix)]
            for file_name in files:
                name = f"{base}{file_name}"
                if not name.startswith(prefix):
                    continue
                try:
                    check_blob_name(name)
                    status = os.lstat(Path(directory) / file_name)
                except (ValueError, FileNotFoundError):
                    continue  # a name no blob can have (placed by hand), or deleted since the folder was read
                if stat.S_ISREG(status.st_mode):
                    with _filesystem("list", container, name):
                        found.append(self._describe(container, name, status))
        return sorted(found, key=lambda blob: blob.name)

    def delete(self, container: str, name: str) -> None:
        path = self._path(container, name)
        try:
            status = os.lstat(path)
            if not stat.S_ISREG(status.st_mode):
                return
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as error:
            raise StorageError(f"could not delete blob {name!r} of {container!r}: {error.strerror}") from error
        if self._recorded_type(container, name, etag_of(status)) is not None:
            self._meta_path(container, name).unlink(missing_ok=True)
        # Emptied folders go too, or a later blob could not take their name; the container's own folder stays.
        container_folder = self.root / container
        for folder in path.parents:
            if folder == container_folder:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone already: the folders above stay too
                break


def _may_match(folder: str, prefix: str) -> bool:
    """Whether a folder (its relative path with a trailing slash) may hold a blob named with `prefix`."""
    return folder.startswith(prefix) or prefix.startswith(folder)
