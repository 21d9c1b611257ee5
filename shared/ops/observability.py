"""Called once by function_app.py: the app's log level (LOG_LEVEL) and, when its connection string is set,
Application Insights (shared.ops.app_insights)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.ops.app_insights import configure_monitoring
from shared.ops.log_context import APP_LOGGER
from shared.ops.metrics import PROCESS_METRICS
from shared.settings import log_level_from_env


def configure_observability(environ: Mapping[str, str]) -> None:
    logging.getLogger(APP_LOGGER).setLevel(log_level_from_env(environ))
    configure_monitoring(environ, PROCESS_METRICS)
