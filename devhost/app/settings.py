"""App settings as `func start` sees them: local.settings.json Values, and %NAME% binding expressions."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

_EXPRESSION = re.compile(r"%([^%]+)%")


class AppSettingError(RuntimeError):
    """A binding names a setting that is not set; the host refuses to index the function."""


def find_settings_file(app_dir: Path) -> Path | None:
    """local.settings.json when present; else the committed sample, so a fresh checkout runs as-is."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        candidate = app_dir / name
        if candidate.is_file():
            return candidate
    return None


def read_values(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as bad:
        raise AppSettingError(f"{path.name} is not valid JSON (line {bad.lineno})") from None
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise AppSettingError(f"{path.name}: Values must be an object")
    return {str(k): str(v) for k, v in values.items()}


def apply_values(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> None:
    """Set each value unless the environment already has it (a variable set by hand wins)."""
    target = os.environ if environ is None else environ
    for name, value in values.items():
        target.setdefault(name, value)


def resolve(value: Any, environ: Mapping[str, str], function_name: str) -> Any:
    """Replace %NAME% in strings (recursively in lists and dicts) with the app setting's value."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise AppSettingError(f"function {function_name}: app setting {name} is not set")
            return environ[name]

        return _EXPRESSION.sub(lookup, value)
    if isinstance(value, list):
        return [resolve(v, environ, function_name) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, environ, function_name) for k, v in value.items()}
    return value


def is_disabled(function_name: str, environ: Mapping[str, str]) -> bool:
    """The host's own switch: app setting `AzureWebJobs.<name>.Disabled` = true."""
    return environ.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")
