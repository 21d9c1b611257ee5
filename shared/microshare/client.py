"""Microshare API client: the documented password grant, device-cluster discovery and paged dashboard views.

One `requests.Session` per process with urllib3's own retry policy (429 honouring Retry-After, 5xx, timeouts,
with exponential backoff). The access token lives in the state store, so every instance of the app shares one
token instead of each logging in. Nothing here logs a password, an API key or a token, and no error message
carries one: the token grant goes in a form body, never in a URL."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.microshare.api import (
    DASHBOARD_VIEW_PATH,
    DEVICE_PATH,
    FIELD_PARAMETERS,
    HOURLY_SNAPSHOT,
    PEOPLE_COUNTER,
    TOKEN_PATH,
)
from shared.ops.log_context import app_logger
from shared.readings.reading import format_timestamp
from shared.settings import MicroshareSettings
from shared.storage.names import MICROSHARE_TABLE
from shared.storage.ports import StateStore

logger = app_logger(__name__)

RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_SECONDS = 60.0  # a longer Retry-After would hold a worker past any timer's budget
TOKEN_REFRESH_MARGIN = timedelta(minutes=10)  # get a new token this long before the old one expires
MAX_PAGES = 10_000  # a guard against an answer whose paging never ends

# Each view is queried with all six fieldN parameters (one missing makes the API answer 503); the unused ones
# carry their own name as the placeholder, as Microshare's dashboards send them.
VIEW_FIELDS: dict[str, tuple[str, ...]] = {
    PEOPLE_COUNTER: ("change", "daily_total", "current", "device", "meta", "field6"),
    HOURLY_SNAPSHOT: ("line", "current", "field3", "field4", "field5", "field6"),
}


class MicroshareError(RuntimeError):
    """Microshare could not be read; the message names the call and status, never a credential."""


class MicroshareAuthError(MicroshareError):
    """The credentials were refused, or a fresh token was refused too."""


class MicroshareUnavailable(MicroshareError):
    """Microshare kept failing (5xx, 429, timeouts, broken answers) after the retries."""


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    total_pages: int
    total_count: int | None
    objs: list[Any]


class CappedRetry(Retry):
    """urllib3's Retry, with a server's Retry-After capped so one answer cannot park a worker for an hour."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


def default_retry(attempts: int = 4, backoff_factor: float = 0.5) -> Retry:
    return CappedRetry(
        total=attempts,
        connect=attempts,
        read=attempts,
        status=attempts,
        other=0,
        backoff_factor=backoff_factor,
        backoff_max=30.0,
        status_forcelist=RETRYABLE_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),  # the token grant is safe to repeat
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back, and _check names its status
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenCache:
    """The access token in the state store, shared by every instance; one entity per account."""

    def __init__(self, state: StateStore, settings: MicroshareSettings, clock: Callable[[], datetime]) -> None:
        self._state = state
        self._clock = clock
        account = f"{settings.auth_url}\n{settings.username}"
        self._row = hashlib.sha256(account.encode()).hexdigest()[:32]  # no user name in a table key

    def current(self) -> str | None:
        entity = self._state.get(MICROSHARE_TABLE, "token", self._row)
        if entity is None:
            return None
        token, expires = entity.properties.get("access_token"), entity.properties.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires, str):
            return None
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError:
            return None
        return token if expires_at - TOKEN_REFRESH_MARGIN > self._clock() else None

    def store(self, token: str, expires_at: datetime) -> None:
        self._state.upsert(
            MICROSHARE_TABLE, "token", self._row, {"access_token": token, "expires_at": expires_at.isoformat()}
        )

    def discard(self, token: str) -> None:
        entity = self._state.get(MICROSHARE_TABLE, "token", self._row)
        if entity is not None and entity.properties.get("access_token") == token:
            self._state.delete(MICROSHARE_TABLE, "token", self._row)


class MicroshareClient:
    def __init__(
        self,
        settings: MicroshareSettings,
        state: StateStore,
        retry: Retry | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._tokens = TokenCache(state, settings, clock)
        self._clock = clock
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry if retry is not None else default_retry())
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["Accept"] = "application/json"
        self._token: str | None = None
        self._token_lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # Authentication ------------------------------------------------------------------------------------------

    def _grant(self) -> str:
        settings = self._settings
        form = {
            "grant_type": "password",
            "username": settings.username,
            "password": settings.password,
            "client_id": settings.api_key,
            "scope": "ALL:ALL",
        }
        response = self._send("POST", settings.auth_url + TOKEN_PATH, "token request", data=form)
        if response.status_code in (400, 401, 403):
            raise MicroshareAuthError(f"Microshare refused the credentials (HTTP {response.status_code})")
        body = self._json(response, "token request")
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
            raise MicroshareAuthError("Microshare's token answer has no access_token or expires_in")
        self._tokens.store(token, self._clock() + timedelta(seconds=float(lifetime)))
        logger.info("obtained a Microshare access token valid for %d s", int(lifetime))
        return token

    def _bearer(self, renew: bool) -> str:
        with self._token_lock:
            if renew or self._token is None:
                self._token = None if renew else self._tokens.current()
                if self._token is None:
                    self._token = self._grant()
            return self._token

    def _discard(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None
        self._tokens.discard(token)

    # Requests ------------------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self._settings.timeout_seconds, **kwargs)
        except requests.Timeout:
            raise MicroshareUnavailable(f"Microshare {what} timed out after the retries") from None
        except requests.RequestException as error:
            # `from None` and only the type: a connection error's text can include the URL.
            raise MicroshareUnavailable(f"Microshare {what} failed: {type(error).__name__}") from None

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        if response.status_code in RETRYABLE_STATUSES:
            raise MicroshareUnavailable(f"Microshare {what} answered HTTP {response.status_code} after the retries")
        if response.status_code != 200:
            raise MicroshareError(f"Microshare {what} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise MicroshareUnavailable(f"Microshare {what} answered with malformed JSON") from None
        if not isinstance(body, dict):
            raise MicroshareUnavailable(f"Microshare {what} answered JSON that is not an object")
        return body

    def _get(self, path: str, params: Mapping[str, str | int], what: str) -> dict[str, Any]:
        """GET with the bearer token: one new token on a 401, one repeat of an answer that is not JSON."""
        renewed = repeated = False
        while True:
            token = self._bearer(renew=False)
            response = self._send(
                "GET",
                self._settings.api_url + path,
                what,
                params=dict(params),
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code == 401:
                self._discard(token)
                if renewed:
                    raise MicroshareAuthError(f"Microshare {what}: a fresh token was refused too (HTTP 401)")
                renewed = True
                logger.info("Microshare refused the access token; getting a new one")
                continue
            try:
                return self._json(response, what)
            except MicroshareUnavailable as broken:
                if repeated or "malformed" not in str(broken):
                    raise
                repeated = True

    # The API -------------------------------------------------------------------------------------------------

    def locations(self) -> list[str]:
        """The buildings (loc1) of the configured device cluster's devices, filtered by owner organisation and
        location prefix when those are set; sorted, each once."""
        settings = self._settings
        path = DEVICE_PATH.format(rec_type=settings.cluster_rec_type, cluster_id=settings.cluster_id)
        body = self._get(path, {"details": "true"}, "device cluster discovery")
        found: set[str] = set()
        for cluster in _list(body.get("objs")):
            owner = _dict(_dict(cluster).get("owner")).get("org")
            if settings.identity is not None and owner != settings.identity:
                continue
            for device in _list(_dict(_dict(cluster).get("data")).get("devices")):
                location = _list(_dict(_dict(device).get("meta")).get("location"))
                if location and isinstance(location[0], str) and location[0].strip():
                    found.add(location[0])
        if settings.location_prefix is not None:
            found = {loc for loc in found if loc.startswith(settings.location_prefix)}
        if not found:
            logger.warning("Microshare device cluster discovery found no locations (check identity and prefix)")
        return sorted(found)

    def view_pages(self, rec_type: str, location: str, start: datetime, end: datetime) -> Iterator[Page]:
        """Every page of one location's dashboard view over [start, end), fetched lazily. Stops at
        currentPage >= totalPages, and at an empty page (totalPages can promise pages that have no data)."""
        settings = self._settings
        view_id = settings.people_counter_view_id if rec_type == PEOPLE_COUNTER else settings.snapshot_view_id
        params: dict[str, str | int] = {
            "id": view_id,
            "recType": rec_type,
            "from": format_timestamp(start),
            "to": format_timestamp(end),
            "dataContext": settings.data_context,
            "loc1": location,
            "pageSize": settings.page_size,
        }
        params.update(zip(FIELD_PARAMETERS, VIEW_FIELDS[rec_type], strict=True))
        if rec_type == HOURLY_SNAPSHOT:
            params.update(category=settings.snapshot_category, metric=settings.snapshot_metric)
            if settings.identity is not None:
                params["ownerOrg"] = settings.identity
        for number in range(1, MAX_PAGES + 1):
            body = self._get(DASHBOARD_VIEW_PATH, {**params, "page": number}, f"{rec_type} page {number}")
            meta = _dict(body.get("meta"))
            objs = _list(body.get("objs"))
            total_pages = _int(meta.get("totalPages"), default=number)
            current = _int(meta.get("currentPage"), default=number)
            if not objs:
                return
            yield Page(number, total_pages, _int(meta.get("totalCount"), default=None), objs)
            if current >= total_pages:
                return
        logger.warning("stopped paging %s for a location after %d pages", rec_type, MAX_PAGES)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object, default: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
