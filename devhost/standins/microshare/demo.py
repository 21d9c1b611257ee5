"""`make run MICROSHARE=demo`: the Microshare stand-in on a loopback port, and the forwarder pointed at it, so the
whole path (Microshare -> forwarder -> hub -> summariser -> dashboard) can be watched without an account."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta

from devhost.standins.microshare.dataset import MicroshareDataset
from devhost.standins.microshare.server import MicroshareStandIn

logger = logging.getLogger("devhost")

FORWARDERS = ("forward_people_counter", "forward_hourly_snapshot")
# The stand-in's own made-up account: it accepts these and nothing else.
_USERNAME = "demo@sensorpulse.local"
_PASSWORD = "demo-password"  # pragma: allowlist secret
_API_KEY = "demo-api-key"  # pragma: allowlist secret


def start_demo(environ: MutableMapping[str, str], now: datetime | None = None) -> MicroshareStandIn:
    """Start the stand-in with a day of history and a week ahead (records appear as their time passes, since the
    forwarder only asks up to now) and set the MICROSHARE_* settings to it, over anything configured."""
    moment = now or datetime.now(UTC)
    start = moment.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    dataset = MicroshareDataset.synthetic(start, start + timedelta(days=8))
    standin = MicroshareStandIn(dataset, username=_USERNAME, password=_PASSWORD, api_key=_API_KEY)
    base_url = standin.start()
    environ.update(standin.app_settings())
    logger.info("Microshare demo: stand-in at %s with %d buildings", base_url, len(dataset.locations()))
    return standin
