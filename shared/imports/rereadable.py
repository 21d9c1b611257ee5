"""A content stream read forward once whose most recent bytes can be read again.

A chunk's reader reads blocks ahead of its last row; the next chunk starts at that row's end, a little before where
the reads stopped. For a gzip file, which cannot seek back without decompressing from its start again, the importer
reads several chunks from one stream and steps back into these kept bytes between them.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

KEEP_BYTES = 4 * 1024 * 1024  # more than a chunk reader reads ahead (a block of at most 1 MiB, and a partial row)


class Rereadable(io.RawIOBase):
    def __init__(self, content: BinaryIO, offset: int) -> None:
        super().__init__()
        self._content = content
        self._offset = offset  # the offset in the content of the next byte this stream gives
        self._kept = bytearray()  # the content's bytes from _kept_start on, as read from it
        self._kept_start = offset

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        kept_end = self._kept_start + len(self._kept)
        if self._offset < kept_end:
            start = self._offset - self._kept_start
            count = min(len(target), kept_end - self._offset)
            target[:count] = self._kept[start : start + count]
        else:
            data = self._content.read(len(target))
            count = len(data)
            target[:count] = data
            self._kept += data
            surplus = len(self._kept) - KEEP_BYTES
            if surplus > 0:
                del self._kept[:surplus]
                self._kept_start += surplus
        self._offset += count
        return count

    def rewind_to(self, offset: int) -> None:
        """Give the content from `offset` on next: a place already read and still kept."""
        if not self._kept_start <= offset <= self._offset:
            raise ValueError(f"offset {offset} is not among the kept bytes")
        self._offset = offset

    def close(self) -> None:
        self._content.close()
        super().close()
