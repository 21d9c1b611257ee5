"""No HTTP route that changes state, and nothing under api/microshare/ or admin/, is anonymous; the anonymous
routes are the read-only dashboard routes listed here. Read from the app's own binding metadata, as the host reads
it, so a route added later is checked without touching this file."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from devhost.http.routes import join_route
from tests.component.app_functions import app_functions

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = frozenset({"GET", "HEAD"})
ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})
KEYED_PREFIXES = ("api/microshare/", "admin/")
# The dashboard: its page, its JSON and PNG reads, health, readiness (platform probes carry no key) and the API
# description. Nothing else may be anonymous: /api/metrics takes a function key.
ANONYMOUS_READS = frozenset(
    {
        "{ignored:maxlength(0)?}",
        "sensors/{sensor_id}",
        "api/sensors",
        "api/sensors/{sensor_id}",
        "api/sensors/{sensor_id}/summaries",
        "api/sensors/{sensor_id}/readings",
        "api/sensors/{sensor_id}/readings.csv",
        "api/sensors/{sensor_id}/summaries.csv",
        "api/plots/{sensor_id}.png",
        "api/devices",
        "api/health",
        "api/ready",
        "api/overview",
        "api/alerts",  # the dashboard banner reads it; sign-in (not a key) will guard it with the page
        "api/openapi.json",
    }
)


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str  # as declared
    path: str  # with host.json's routePrefix, as callers see it
    methods: frozenset[str]
    auth_level: str

    @property
    def changes_state(self) -> bool:
        return not self.methods <= READ_ONLY


@functools.cache
def http_functions() -> tuple[HttpFunction, ...]:
    """Every HTTP trigger of function_app.app, from `get_functions()` and each function's bindings JSON."""
    prefix = json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    found = []
    for name, function in app_functions().items():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] != "httpTrigger":
                continue
            route = binding.get("route") or name
            methods = frozenset(m.upper() for m in binding.get("methods") or ALL_METHODS)  # none listed: all
            # The host's default level, when none is given, is function.
            level = str(binding.get("authLevel") or "function").lower()
            found.append(HttpFunction(name, route, join_route(prefix, route), methods, level))
    return tuple(found)


def test_the_sweep_sees_the_apps_routes() -> None:
    names = {f.name for f in http_functions()}
    assert {"start_backfill", "backfill_status", "list_sensors", "dashboard_page"} <= names


def test_no_route_that_changes_state_is_anonymous() -> None:
    open_writes = [
        (f.name, sorted(f.methods))
        for f in http_functions()
        if f.changes_state and f.auth_level not in ("function", "admin")
    ]
    assert not open_writes, f"these take writes without a key: {open_writes}"


def test_microshare_and_admin_routes_take_a_key_whatever_their_method() -> None:
    keyed = [f for f in http_functions() if f.path.lower().startswith(KEYED_PREFIXES)]
    assert any(f.name == "backfill_status" for f in keyed)  # a GET among them: the rule is not about methods
    open_keyed = [(f.name, f.route) for f in keyed if f.auth_level not in ("function", "admin")]
    assert not open_keyed, f"these must take a function or admin key: {open_keyed}"


def test_the_only_anonymous_routes_are_the_dashboards_reads() -> None:
    anonymous = [f for f in http_functions() if f.auth_level == "anonymous"]
    assert anonymous, "the dashboard page is anonymous; finding none means the sweep read nothing"
    unexpected = [(f.name, f.route) for f in anonymous if f.route not in ANONYMOUS_READS]
    assert not unexpected, f"anonymous routes not on the dashboard's allow-list: {unexpected}"
    assert all(f.methods <= READ_ONLY for f in anonymous)


def test_every_level_is_one_the_host_knows() -> None:
    assert {f.auth_level for f in http_functions()} <= {"anonymous", "function", "admin"}
