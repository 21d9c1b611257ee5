"""Timer schedules: six-field NCRONTAB and TimeSpan, as the Functions host reads them."""

from datetime import UTC, datetime, timedelta

import pytest

from devhost.triggers.schedule import ScheduleError, parse_schedule

START = datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)


def test_every_five_seconds_fires_on_multiples_of_five() -> None:
    schedule = parse_schedule("*/5 * * * * *")
    first = schedule.next_after(START)
    assert first == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert schedule.next_after(first) == first + timedelta(seconds=5)


def test_seconds_field_comes_first() -> None:
    schedule = parse_schedule("30 15 * * * *")  # at mm:15:30 every hour
    assert schedule.next_after(START) == datetime(2026, 3, 1, 12, 15, 30, tzinfo=UTC)
    assert schedule.typical_interval(START) == timedelta(hours=1)


def test_quarter_hourly_and_hourly_schedules() -> None:
    assert parse_schedule("0 */15 * * * *").next_after(START) == datetime(2026, 3, 1, 12, 15, tzinfo=UTC)
    assert parse_schedule("0 5 * * * *").next_after(START) == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


def test_day_of_week_field() -> None:
    # 2026-03-01 is a Sunday; "1" is Monday.
    schedule = parse_schedule("0 0 9 * * 1")
    assert schedule.next_after(START) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_timespan_schedule_counts_from_the_given_moment() -> None:
    schedule = parse_schedule("00:00:30")
    assert schedule.next_after(START) == START + timedelta(seconds=30)
    assert schedule.typical_interval(START) == timedelta(seconds=30)


def test_aware_non_utc_moment_is_answered_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = START.astimezone(ZoneInfo("Europe/Paris"))
    assert parse_schedule("*/5 * * * * *").next_after(local).tzinfo == UTC


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * * * *", "six"),
        ("", "empty"),
        ("61 * * * * *", "not a valid"),
        ("x * * * * *", "not a valid"),
        ("00:00:00", "positive"),
        ("1:2", "TimeSpan"),
    ],
)
def test_bad_schedules_say_why(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        parse_schedule(expression)
