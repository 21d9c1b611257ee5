"""host.json as devhost reads it: the task hub name comes from an app setting, as the Durable extension allows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.app.host_config import HostConfig, HostConfigError

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path: Path, hub_name: str) -> Path:
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": hub_name}}}), encoding="utf-8"
    )
    return tmp_path


def test_the_apps_task_hub_is_named_by_the_taskhub_name_setting() -> None:
    config = HostConfig.load(ROOT, {"TASKHUB_NAME": "sensorpulsedev"})
    assert config.durable.hub_name == "sensorpulsedev"
    assert config.route_prefix == ""


def test_a_missing_task_hub_setting_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(HostConfigError, match="TASKHUB_NAME is not set"):
        HostConfig.load(_app(tmp_path, "%TASKHUB_NAME%"), {})


@pytest.mark.parametrize("name", ["ab", "sensor-pulse", "1hub", "x" * 46])
def test_a_task_hub_name_the_storage_provider_would_refuse_stops_start_up(tmp_path: Path, name: str) -> None:
    with pytest.raises(HostConfigError, match="3-45 letters and digits"):
        HostConfig.load(_app(tmp_path, "%HUB%"), {"HUB": name})
