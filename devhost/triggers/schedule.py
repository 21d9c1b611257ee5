"""Timer schedules as the Functions host reads them: six-field NCRONTAB or a TimeSpan.

NCRONTAB is `{second} {minute} {hour} {day} {month} {day-of-week}`; croniter parses it with the seconds
field first. A TimeSpan (`hh:mm:ss`) fires at that interval counted from when the host started it.
All times are UTC, as on a Functions app without WEBSITE_TIME_ZONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadCronError, croniter

from devhost.app.function_index import AppIndexError, parse_timespan


class ScheduleError(ValueError):
    """A schedule the host would refuse, with the reason."""


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    interval: timedelta | None  # set for a TimeSpan schedule

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime), in UTC."""
        moment = moment.astimezone(UTC)
        if self.interval is not None:
            return moment + self.interval
        following: datetime = croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)
        return following.astimezone(UTC)

    def typical_interval(self, around: datetime) -> timedelta:
        """Gap between two consecutive occurrences; the host uses it to pick use_monitor's default."""
        if self.interval is not None:
            return self.interval
        first = self.next_after(around)
        return self.next_after(first) - first


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    if not text:
        raise ScheduleError("the timer schedule is empty")
    fields = text.split()
    if len(fields) == 1 and ":" in text:
        try:
            interval = parse_timespan(text)
        except AppIndexError as bad:
            raise ScheduleError(str(bad)) from None
        if interval <= timedelta(0):
            raise ScheduleError(f"TimeSpan schedule {text!r} must be positive")
        return Schedule(text, interval)
    if len(fields) != 6:
        raise ScheduleError(
            f"{text!r} has {len(fields)} fields; an NCRONTAB schedule has six "
            "(second minute hour day month day-of-week), e.g. '*/5 * * * * *' for every 5 seconds"
        )
    normalised = " ".join(fields)
    try:
        croniter(normalised, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=True).get_next(datetime)
    except (CroniterBadCronError, ValueError, KeyError) as bad:
        raise ScheduleError(f"{text!r} is not a valid NCRONTAB expression: {bad}") from None
    return Schedule(normalised, None)
