"""Microshare forwarding: the people-counter timer (every 15 minutes) and the hourly-snapshot timer.

Both share one forwarding routine (shared.forwarding.Forwarder) and keep their own watermark and delivery
records, keyed by recType. Timer triggers run on one instance at a time (the host holds a lease), and a
missed schedule is made up on start (use_monitor)."""

import logging

import azure.functions as func

from shared.microshare_api import HOURLY_SNAPSHOT, PEOPLE_COUNTER
from shared.services import get_forwarder

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated

PEOPLE_COUNTER_SCHEDULE = "0 */15 * * * *"
SNAPSHOT_SCHEDULE = "0 0 * * * *"


def _forward(rec_type: str) -> None:
    forwarder = get_forwarder()
    if forwarder is None:
        logger.info("Microshare forwarding is off: MICROSHARE_USERNAME is not set", extra={"recType": rec_type})
        return
    forwarder.run(rec_type)


@bp.function_name("forward_people_counter")
@bp.timer_trigger(arg_name="timer", schedule=PEOPLE_COUNTER_SCHEDULE, run_on_startup=False, use_monitor=True)
def forward_people_counter(timer: func.TimerRequest) -> None:
    _forward(PEOPLE_COUNTER)


@bp.function_name("forward_hourly_snapshot")
@bp.timer_trigger(arg_name="timer", schedule=SNAPSHOT_SCHEDULE, run_on_startup=False, use_monitor=True)
def forward_hourly_snapshot(timer: func.TimerRequest) -> None:
    _forward(HOURLY_SNAPSHOT)
