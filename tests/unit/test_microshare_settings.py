"""Microshare settings: off when unset, clear errors that never show a value, secrets out of repr."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.settings import MicroshareSettings, SettingsError, parse_data_context

SECRET = "s3cr3t-pa55word"  # pragma: allowlist secret
FULL = {
    "MICROSHARE_USERNAME": "api@example.org",
    "MICROSHARE_PASSWORD": SECRET,
    "MICROSHARE_API_KEY": "key-0f9a8b7c",  # pragma: allowlist secret
    "MICROSHARE_CLUSTER_ID": "cluster-1",
    "MICROSHARE_PEOPLE_COUNTER_VIEW_ID": "pc-view",
    "MICROSHARE_SNAPSHOT_VIEW_ID": "snap-view",
    "MICROSHARE_DATA_CONTEXT": '["people"]',
}


def test_forwarding_is_off_without_a_user_name() -> None:
    assert MicroshareSettings.from_env({}) is None
    assert MicroshareSettings.from_env({"MICROSHARE_USERNAME": "  "}) is None


def test_defaults_follow_the_documented_api() -> None:
    settings = MicroshareSettings.from_env(FULL)
    assert settings is not None
    assert settings.page_size == 999
    assert settings.overlap == timedelta(hours=1)
    assert settings.dedup_retention == timedelta(hours=72)
    assert settings.data_context == '["people"]'
    assert settings.identity is None and settings.location_prefix is None


def test_secrets_never_appear_in_repr() -> None:
    settings = MicroshareSettings.from_env(FULL)
    assert SECRET not in repr(settings)
    assert "key-0f9a8b7c" not in repr(settings)


@pytest.mark.parametrize("missing", ["MICROSHARE_PASSWORD", "MICROSHARE_API_KEY", "MICROSHARE_CLUSTER_ID"])
def test_a_missing_required_setting_is_named(missing: str) -> None:
    env = {k: v for k, v in FULL.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        MicroshareSettings.from_env(env)


def test_plain_http_is_allowed_only_for_a_local_stand_in() -> None:
    assert MicroshareSettings.from_env({**FULL, "MICROSHARE_API_URL": "http://127.0.0.1:8123/"}) is not None
    with pytest.raises(SettingsError, match="MICROSHARE_API_URL must use https"):
        MicroshareSettings.from_env({**FULL, "MICROSHARE_API_URL": "http://api.example.org"})


def test_the_dedup_retention_must_outlast_the_overlap() -> None:
    with pytest.raises(SettingsError, match="MICROSHARE_DEDUP_RETENTION_HOURS"):
        MicroshareSettings.from_env(
            {**FULL, "MICROSHARE_OVERLAP_MINUTES": "180", "MICROSHARE_DEDUP_RETENTION_HOURS": "2"}
        )


@pytest.mark.parametrize(
    ("raw", "sent"),
    [("people", '["people"]'), ('["people"]', '["people"]'), (' ["a", "b"] ', '["a", "b"]')],
)
def test_the_data_context_is_always_sent_as_a_json_array_string(raw: str, sent: str) -> None:
    assert parse_data_context(raw) == sent


@pytest.mark.parametrize("raw", ["[people]", "", "[]", '[""]', "[1]", 'people"'])
def test_a_data_context_that_would_silently_match_nothing_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="MICROSHARE_DATA_CONTEXT"):
        parse_data_context(raw)
