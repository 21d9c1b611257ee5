"""Continuation tokens for paged entity queries: where the next page starts, bound to the table it pages.

A token is urlsafe base64 (unpadded) of compact JSON, e.g. {"t":"windows","after":["sensor-7","humidity"]}.
The adapter names the kind of position it keeps ("after" the last key returned, or the service's "next" key),
so a token only decodes for the table, and the kind of store, that issued it. It is opaque to callers and not
signed: a well-formed token that was edited can only move the cursor within the same table.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

import orjson

from shared.storage.ports import MAX_ENTITY_PAGE

Position = tuple[str | None, str | None]  # (partition key, row key)

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def check_page_limit(limit: int) -> None:
    """Raises ValueError unless 1 <= limit <= MAX_ENTITY_PAGE."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ENTITY_PAGE:
        raise ValueError(f"page limit must be an integer from 1 to {MAX_ENTITY_PAGE}")


def encode_continuation(table: str, kind: str, position: Sequence[str | None]) -> str:
    """The opaque token for `position` in `table`."""
    raw = orjson.dumps({"t": table, kind: list(position)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_continuation(token: str, table: str, kind: str) -> Position:
    """The position a token of ours holds; ValueError when it is garbled, edited out of shape, or issued for
    another table or by another kind of store. The message never repeats the token."""
    if not isinstance(token, str) or not _URLSAFE.fullmatch(token):
        raise ValueError("continuation is not one this store issued")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, orjson.JSONDecodeError) as error:
        raise ValueError("continuation is not one this store issued") from error
    if not isinstance(body, dict) or set(body) != {"t", kind}:
        raise ValueError("continuation is not one this store issued")
    if body["t"] != table:
        raise ValueError("continuation was issued for another table")
    position = body[kind]
    if (
        not isinstance(position, list)
        or len(position) != 2
        or not all(key is None or isinstance(key, str) for key in position)
    ):
        raise ValueError("continuation is not one this store issued")
    return position[0], position[1]
