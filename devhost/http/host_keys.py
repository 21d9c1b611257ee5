"""Access keys for `devhost --require-keys`, enforced as the Functions host in Azure enforces them.

Three keys, as `az functionapp keys list` shows them: the master key (admin routes, POST /admin/functions/{name},
and anything else), the `default` function key (routes with authLevel function) and the Durable extension's
system key (the /runtime/webhooks/durabletask API, whose management URLs carry it as `code=`). They are random,
kept in <data-dir>/host-keys.json, created with mode 0600 on the first start and reused afterwards, so a user or
a test can read them there. DEVHOST_MASTER_KEY and DEVHOST_FUNCTION_KEY override the file's values (for scripts).
No key is ever printed or logged: only the file's path is.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from devhost.app.function_index import AppIndexError

KEYS_FILE = "host-keys.json"
MASTER_KEY_VARIABLE = "DEVHOST_MASTER_KEY"
FUNCTION_KEY_VARIABLE = "DEVHOST_FUNCTION_KEY"
DEFAULT_FUNCTION_KEY = "default"
DURABLE_SYSTEM_KEY = "durabletask_extension"
BLOBS_SYSTEM_KEY = "blobs_extension"  # Event Grid's blob webhook (runtime/webhooks/blobs); files made before it lack it
KEY_HEADER = "x-functions-key"
KEY_PARAMETER = "code"
_KEY_BYTES = 32


class HostKeysError(RuntimeError):
    """The keys cannot be used; the message names the file or variable, never a key."""


class AccessLevel(StrEnum):
    """Who may call a route: an HTTP trigger's authLevel, plus the extensions' system level."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"
    SYSTEM = "system"
    ADMIN = "admin"

    @classmethod
    def of_trigger(cls, trigger: Mapping[str, Any]) -> AccessLevel:
        """An httpTrigger binding's authLevel (any case); the host's default is function."""
        level = str(trigger.get("authLevel") or cls.FUNCTION).lower()
        if level not in (cls.ANONYMOUS, cls.FUNCTION, cls.ADMIN):
            raise AppIndexError(f"authLevel {level!r} is not anonymous, function or admin")
        return cls(level)


def _matches(presented: str, key: str) -> bool:
    return hmac.compare_digest(presented.encode(), key.encode())


def _valid_key(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isprintable() and " " not in value and bool(value)


@dataclass(frozen=True, slots=True)
class HostKeys:
    path: Path
    master: str = field(repr=False)
    function_keys: Mapping[str, str] = field(repr=False)
    system_keys: Mapping[str, str] = field(repr=False)
    overridden: tuple[str, ...] = ()  # the environment variables that replaced a key from the file

    @property
    def durable(self) -> str:
        """The key the Durable extension's management URLs carry."""
        return self.system_keys[DURABLE_SYSTEM_KEY]

    def allows(self, level: AccessLevel, presented: str | None) -> bool:
        """Whether a request presenting this key (None: none) may call a route of this level."""
        if level is AccessLevel.ANONYMOUS:
            return True
        if not presented:
            return False
        # Every candidate is compared, so the time taken does not tell which key came close.
        candidates = [self.master]
        if level is AccessLevel.FUNCTION:
            candidates += self.function_keys.values()
        elif level is AccessLevel.SYSTEM:
            candidates += self.system_keys.values()
        return any([_matches(presented, key) for key in candidates])

    @classmethod
    def load_or_create(cls, data_dir: Path, environ: Mapping[str, str]) -> HostKeys:
        """The keys in data_dir/host-keys.json (created on first use), with the environment's overrides."""
        path = data_dir / KEYS_FILE
        document = _read(path) if path.exists() else _create(path)
        master, function_keys, system_keys = _parse(document, path)
        overridden: list[str] = []
        for variable in (MASTER_KEY_VARIABLE, FUNCTION_KEY_VARIABLE):
            value = environ.get(variable, "").strip()
            if not value:
                continue
            if not _valid_key(value):
                raise HostKeysError(f"{variable} must be printable ASCII without spaces")
            overridden.append(variable)
            if variable == MASTER_KEY_VARIABLE:
                master = value
            else:
                function_keys = {**function_keys, DEFAULT_FUNCTION_KEY: value}
        return cls(path, master, function_keys, system_keys, tuple(overridden))


def _new_document() -> dict[str, Any]:
    return {
        "masterKey": secrets.token_urlsafe(_KEY_BYTES),
        "functionKeys": {DEFAULT_FUNCTION_KEY: secrets.token_urlsafe(_KEY_BYTES)},
        "systemKeys": {
            DURABLE_SYSTEM_KEY: secrets.token_urlsafe(_KEY_BYTES),
            BLOBS_SYSTEM_KEY: secrets.token_urlsafe(_KEY_BYTES),
        },
    }


def _create(path: Path) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = _new_document()
    try:
        # Created 0600 from the start: there is no moment at which another user could read it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)  # another devhost on the same folder made it first
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            descriptor = -1
            json.dump(document, file, indent=2)
            file.write("\n")
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return document


def _read(path: Path) -> dict[str, Any]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise HostKeysError(f"{path} can be read by other users (mode {mode:04o}): chmod 600 it, or delete it")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        raise HostKeysError(f"{path} is not a JSON key file: delete it and devhost makes new keys") from None
    if not isinstance(document, dict):
        raise HostKeysError(f"{path} is not a JSON object: delete it and devhost makes new keys")
    return document


def _parse(document: Mapping[str, Any], path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    master = document.get("masterKey")
    function_keys = document.get("functionKeys")
    system_keys = document.get("systemKeys")
    problems = []
    if not _valid_key(master):
        problems.append("masterKey")
    if not isinstance(function_keys, dict) or not function_keys or not all(map(_valid_key, function_keys.values())):
        problems.append("functionKeys")
    if not isinstance(system_keys, dict) or not _valid_key(system_keys.get(DURABLE_SYSTEM_KEY)):
        problems.append(f"systemKeys.{DURABLE_SYSTEM_KEY}")
    if problems:
        raise HostKeysError(f"{path}: {', '.join(problems)} missing or not a key: fix it, or delete the file")
    assert isinstance(master, str) and isinstance(function_keys, dict) and isinstance(system_keys, dict)
    return master, dict(function_keys), dict(system_keys)
