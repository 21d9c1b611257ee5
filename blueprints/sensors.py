"""Sensors: the temperature simulator on a timer."""

from datetime import UTC, datetime

import azure.functions as func

from shared.app import services
from shared.ops.invocation import observed_function

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated


@bp.function_name("simulate_sensors")
@bp.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:02")
@bp.timer_trigger(arg_name="timer", schedule="%SIMULATOR_SCHEDULE%", run_on_startup=True, use_monitor=False)
@observed_function("simulate_sensors", trigger="timer")
def simulate_sensors(timer: func.TimerRequest, context: func.Context) -> None:
    """Emit every simulated reading due since the last run into `readings`."""
    app = services()
    app.simulator.simulate(app.settings.sensor_count, datetime.now(UTC))
