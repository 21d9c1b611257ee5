"""A settings error names the setting and never shows its value: whatever lands in a setting (a password pasted into
the wrong one, a URL with credentials in it) stays out of the error, its traceback and so out of every log line."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Mapping

import pytest

import shared.settings as settings_module
from shared.settings import EVENTHUB_EXTRA_HUBS, EVENTHUB_NAME, SettingsError, parse_hub_targets

MARKER = "Zq7LeakCheck"
# Shapes a secret takes when it lands in a setting by mistake; each holds MARKER, so a partial echo shows too.
MISPLACED_VALUES = (
    f"pw-{MARKER}-&=+/%",
    f"https://api-user:{MARKER}@auth.example.invalid/?token={MARKER}",
    f"http://api-user:{MARKER}@10.1.2.3/",
    f'["{MARKER}"]',
    f'"{MARKER}"',
    f"{MARKER}" * 40,
)
VALID: dict[str, str] = {
    "STORAGE_BACKEND": "embedded",
    "MICROSHARE_USERNAME": "api@example.org",
    "MICROSHARE_PASSWORD": "unused-in-this-test",  # pragma: allowlist secret
    "MICROSHARE_API_KEY": "unused-in-this-test",  # pragma: allowlist secret
    "MICROSHARE_CLUSTER_ID": "cluster-1",
    "MICROSHARE_PEOPLE_COUNTER_VIEW_ID": "pc-view",
    "MICROSHARE_SNAPSHOT_VIEW_ID": "snap-view",
    "MICROSHARE_DATA_CONTEXT": '["people"]',
}

Parser = Callable[[Mapping[str, str]], object]


def _setting_names() -> list[str]:
    """Every setting name shared.settings declares (each lives there once, as NAME = "NAME")."""
    return [name for name, value in vars(settings_module).items() if name.isupper() and value == name]


def _parsers() -> dict[str, Parser]:
    """Every reader of settings: the classes' from_env, the module's *_from_env functions, the hub list."""
    found: dict[str, Parser] = {}
    for name, value in vars(settings_module).items():
        if getattr(value, "__module__", None) != settings_module.__name__:
            continue
        reader = getattr(value, "from_env", None)
        if inspect.isclass(value) and callable(reader):
            found[f"{name}.from_env"] = reader
        elif inspect.isfunction(value) and name.endswith("_from_env"):
            found[name] = value
    found["parse_hub_targets"] = lambda env: parse_hub_targets(
        env.get(EVENTHUB_NAME, "telemetry"), env.get(EVENTHUB_EXTRA_HUBS)
    )
    return found


def test_the_readers_and_names_are_found() -> None:
    """The sweep below covers what it claims to: both settings classes and the Microshare secrets among the names."""
    assert {"Settings.from_env", "MicroshareSettings.from_env"} <= set(_parsers())
    assert {"MICROSHARE_PASSWORD", "MICROSHARE_API_KEY", "MICROSHARE_AUTH_URL", "SENSOR_COUNT"} <= set(_setting_names())
    for parse in _parsers().values():
        parse(VALID)  # the starting point is valid: every error below comes from the one misplaced value


@pytest.mark.parametrize("name", _setting_names())
def test_an_error_about_a_setting_names_it_and_never_shows_its_value(name: str) -> None:
    refused = 0
    for value in MISPLACED_VALUES:
        for reader, parse in _parsers().items():
            try:
                parse({**VALID, name: value})
            except SettingsError as error:
                refused += 1
                shown = "".join(traceback.format_exception(error))  # what a log line with exc_info carries
                assert name in str(error), (reader, str(error))
                assert MARKER not in shown, (reader, shown)
    if name in ("MICROSHARE_AUTH_URL", "MICROSHARE_API_URL", "SENSOR_COUNT", "MICROSHARE_PAGE_SIZE"):
        assert refused, f"{name}: no misplaced value was refused, so nothing was checked"


def test_a_missing_secret_is_named_without_any_other_value() -> None:
    with pytest.raises(SettingsError) as error:
        settings_module.MicroshareSettings.from_env({**VALID, "MICROSHARE_PASSWORD": " "})
    assert "MICROSHARE_PASSWORD is not set" in str(error.value)
    assert VALID["MICROSHARE_USERNAME"] not in str(error.value)
