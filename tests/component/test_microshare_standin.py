"""The Microshare stand-in, as a client sees it over HTTP: the normal paths and each failure mode it reproduces."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.standins.microshare.dataset import ClusterDevice, DeviceCluster, MicroshareDataset
from devhost.standins.microshare.server import Fault, MicroshareStandIn
from shared.microshare.api import (
    DASHBOARD_VIEW_PATH,
    DEVICE_CLUSTER,
    DEVICE_PATH,
    FIELD_PARAMETERS,
    HOURLY_SNAPSHOT,
    MAX_PAGE_SIZE,
    PEOPLE_COUNTER,
    TOKEN_PATH,
)

REPO = Path(__file__).resolve().parents[2]
START = datetime(2025, 6, 9, tzinfo=UTC)  # a Monday
END = datetime(2025, 6, 11, tzinfo=UTC)
DAY_ONE = ("2025-06-09T00:00:00.000Z", "2025-06-10T00:00:00.000Z")
USERNAME, PASSWORD, API_KEY = "demo@sensorpulse.local", "demo-password", "demo-api-key"
CLUSTER_ID = "sensor-pulse-cluster"
PER_BUILDING_PER_DAY = 4 * 96  # four devices, one record per 15 minutes
TIMEOUT = 10.0


class Api:
    """A bare-bones client of the stand-in: what a Microshare client sends, without any retry logic."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.view_path = DASHBOARD_VIEW_PATH
        self.timeout = TIMEOUT

    def token(self, overrides: Mapping[str, str] | None = None, *, in_query: bool = False) -> requests.Response:
        params = {"grant_type": "password", "username": USERNAME, "password": PASSWORD, "client_id": API_KEY}
        params = {**params, "scope": "ALL:ALL", **(overrides or {})}
        if in_query:
            return self.session.post(self.base_url + TOKEN_PATH, params=params, timeout=TIMEOUT)
        return self.session.post(self.base_url + TOKEN_PATH, data=params, timeout=TIMEOUT)

    def login(self) -> str:
        answer = self.token()
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def devices(self, token: str | None, cluster_id: str = CLUSTER_ID, details: bool = True) -> requests.Response:
        path = DEVICE_PATH.format(rec_type=DEVICE_CLUSTER, cluster_id=cluster_id)
        params = {"details": "true"} if details else {}
        return self.session.get(self.base_url + path, params=params, headers=_bearer(token), timeout=TIMEOUT)

    def view(self, token: str | None, **overrides: str | None) -> requests.Response:
        """A people-counter query for day one of Building A, as the client sends it, with `overrides`."""
        params: dict[str, str | None] = {
            "id": "pc-view",
            "recType": PEOPLE_COUNTER,
            "from": DAY_ONE[0],
            "to": DAY_ONE[1],
            "dataContext": '["people"]',
            "loc1": "Building A",
            **{name: name for name in FIELD_PARAMETERS},
            "page": "1",
            "pageSize": str(MAX_PAGE_SIZE),
        }
        params.update(overrides)
        sent = {name: value for name, value in params.items() if value is not None}
        return self.session.get(
            self.base_url + self.view_path, params=sent, headers=_bearer(token), timeout=self.timeout
        )

    def all_pages(self, token: str, **overrides: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(the records, each page's meta), fetching until currentPage >= totalPages."""
        records: list[dict[str, Any]] = []
        metas: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.view(token, **{**overrides, "page": str(page)})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            records.extend(body["objs"])
            metas.append(body["meta"])
            if body["meta"]["currentPage"] >= body["meta"]["totalPages"]:
                return records, metas
            page += 1


def _bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


OTHER_ORG_CLUSTER = DeviceCluster(
    "shared-with-us", "Another Tenant", (ClusterDevice("pc-x1", ("Elsewhere", "Floor 1", "Zone A", "Spot 1")),)
)


@pytest.fixture
def dataset() -> MicroshareDataset:
    return MicroshareDataset.synthetic(START, END, extra_clusters=(OTHER_ORG_CLUSTER,))


@pytest.fixture
def standin(dataset: MicroshareDataset) -> Iterator[MicroshareStandIn]:
    with MicroshareStandIn(dataset) as server:
        yield server


@pytest.fixture
def api(standin: MicroshareStandIn) -> Iterator[Api]:
    client = Api(standin.base_url)
    yield client
    client.session.close()


# --- authentication


@pytest.mark.parametrize("in_query", [False, True], ids=["form", "query"])
def test_the_password_grant_answers_a_bearer_token_that_opens_the_api(
    standin: MicroshareStandIn, api: Api, in_query: bool
) -> None:
    answer = api.token(in_query=in_query)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 172800
    assert api.view(body["access_token"]).status_code == 200
    assert standin.token_grants == 1


@pytest.mark.parametrize("wrong", ["password", "client_id", "username", "scope"])
def test_wrong_credentials_get_401_and_no_token(standin: MicroshareStandIn, api: Api, wrong: str) -> None:
    answer = api.token({wrong: "nope"})

    assert answer.status_code == 401
    assert "access_token" not in answer.json()
    assert standin.token_grants == 0


def test_data_calls_without_a_valid_bearer_token_get_401(api: Api) -> None:
    assert api.view(None).status_code == 401
    assert api.view("not-a-token").status_code == 401
    assert api.devices(None).status_code == 401
    assert api.view("not-a-token").headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_past_its_lifetime_gets_401_and_a_new_one_works(dataset: MicroshareDataset) -> None:
    clock = Clock()
    with MicroshareStandIn(dataset, token_lifetime_seconds=3600, clock=clock) as server:
        api = Api(server.base_url)
        token = api.login()
        clock.now += 3599
        assert api.view(token).status_code == 200

        clock.now += 1
        assert api.view(token).status_code == 401

        fresh = api.login()
        assert api.view(fresh).status_code == 200
        assert server.token_grants == 2
        api.session.close()


def test_revoked_tokens_get_401(standin: MicroshareStandIn, api: Api) -> None:
    token = api.login()
    standin.revoke_tokens()

    assert api.view(token).status_code == 401
    assert api.view(api.login()).status_code == 200


def test_the_request_log_shows_parameters_but_never_the_password_key_or_token(
    standin: MicroshareStandIn, api: Api
) -> None:
    token = api.login()
    api.view(token)

    logged = standin.requests
    assert [(entry.method, entry.path) for entry in logged] == [("POST", TOKEN_PATH), ("GET", DASHBOARD_VIEW_PATH)]
    assert logged[0].query["password"] == "***"
    assert logged[0].query["client_id"] == "***"
    assert logged[0].query["username"] == USERNAME
    assert all(name in logged[1].query for name in FIELD_PARAMETERS)
    assert json.loads(logged[1].query["dataContext"]) == ["people"]
    assert PASSWORD not in repr(logged) and API_KEY not in repr(logged) and token not in repr(logged)


# --- device clusters


def test_the_device_cluster_lists_the_devices_with_locations_and_other_owners_clusters(api: Api) -> None:
    answer = api.devices(api.login())

    assert answer.status_code == 200
    clusters = answer.json()["objs"]
    assert [(c["id"], c["owner"]["org"]) for c in clusters] == [
        (CLUSTER_ID, "Sensor Pulse Demo"),
        ("shared-with-us", "Another Tenant"),
    ]
    devices = clusters[0]["data"]["devices"]
    assert len(devices) == 12
    assert {device["meta"]["location"][0] for device in devices} == {"Building A", "Building B", "Building C"}
    assert all(len(device["meta"]["location"]) == 4 and device["status"] for device in devices)


def test_without_details_the_clusters_have_no_devices_and_an_unknown_cluster_is_404(api: Api) -> None:
    token = api.login()

    plain = api.devices(token, details=False)
    assert plain.status_code == 200
    assert all("devices" not in cluster["data"] for cluster in plain.json()["objs"])
    assert api.devices(token, cluster_id="no-such-cluster").status_code == 404


# --- dashboard view: the normal path


def test_a_day_of_one_building_comes_in_time_order_over_pages(api: Api) -> None:
    records, metas = api.all_pages(api.login(), pageSize="100")

    assert len(records) == PER_BUILDING_PER_DAY
    assert [meta["currentPage"] for meta in metas] == [1, 2, 3, 4]
    assert {(meta["totalPages"], meta["totalCount"], meta["source"]) for meta in metas} == {(4, 384, "db")}
    assert [meta["currentCount"] for meta in metas] == [100, 100, 100, 84]
    keys = [(record["data"]["time"], record["id"]) for record in records]
    assert keys == sorted(keys)
    assert len({record["id"] for record in records}) == len(records)
    assert all(DAY_ONE[0] <= record["data"]["time"] < DAY_ONE[1] for record in records)
    assert {record["data"]["meta"]["device"][0] for record in records} == {"Building A"}
    assert all(record["recType"] == PEOPLE_COUNTER and record["_id"] == record["id"] for record in records)


def test_per_page_is_the_same_as_page_size_and_a_page_past_the_end_is_empty(api: Api) -> None:
    token = api.login()

    answer = api.view(token, pageSize=None, perPage="300", page="5")

    assert answer.status_code == 200
    assert answer.json() == {
        "meta": {"totalPages": 2, "currentPage": 5, "totalCount": 384, "currentCount": 0, "source": "db"},
        "objs": [],
    }


def test_records_look_like_a_people_counter_day(api: Api) -> None:
    records, _ = api.all_pages(api.login(), to="2025-06-11T00:00:00.000Z")
    one_device = [record["data"] for record in records if record["data"]["device"]["id"] == "pc-0001"]

    assert len(one_device) == 2 * 96
    occupancy = 0
    for data in one_device:
        change, total = data["change"], data["daily_total"]
        assert min(change["in"], change["out"]) >= 0
        assert (change["count"], change["traffic"]) == (change["in"] - change["out"], change["in"] + change["out"])
        occupancy = max(0, occupancy + change["count"])
        assert data["current"] == occupancy
        if data["time"].endswith("T00:00:00.000Z"):  # the daily totals start again at midnight UTC
            assert (total["in"], total["out"]) == (change["in"], change["out"])
    by_hour = {data["time"][11:13]: data["daily_total"]["in"] for data in one_device[:96]}
    assert by_hour["06"] < by_hour["12"] < by_hour["23"]  # people arrive in office hours
    assert all(len(record["id"]) == 24 for record in records)
    again = MicroshareDataset.synthetic(START, END).query(PEOPLE_COUNTER, "Building A", START, END, 0, 999)[1]
    assert [record["id"] for record in again] == [record["id"] for record in records]


def test_the_hourly_snapshot_answers_one_object_with_the_lines_in_range(api: Api) -> None:
    answer = api.view(
        api.login(),
        id="snap-view",
        recType=HOURLY_SNAPSHOT,
        dataContext='["snapshot"]',
        category="space",
        metric="occupancy",
        ownerOrg="Sensor Pulse Demo",
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["meta"]["totalPages"] == 1
    [snapshot] = body["objs"]
    assert snapshot["data"]["location"] == "Building A"
    lines = snapshot["data"]["line"]
    assert [line["time"][11:13] for line in lines] == [f"{hour:02d}" for hour in range(24)]
    assert all(line["current"] >= 0 for line in lines) and any(line["current"] > 0 for line in lines)


def test_a_hundred_thousand_records_page_through_each_once() -> None:
    # How fast they page is `python -m bench forwarder`'s to measure (100,000 records from the stand-in).
    big = MicroshareDataset.synthetic(START, datetime(2025, 6, 24, tzinfo=UTC), ("Building A",), 70)
    with MicroshareStandIn(big) as server:
        api = Api(server.base_url)
        records, metas = api.all_pages(api.login(), to="2025-06-24T00:00:00.000Z")
        api.session.close()

    assert len(records) == 70 * 96 * 15 == metas[0]["totalCount"]
    assert len(metas) == metas[0]["totalPages"] == 101
    assert [meta["currentPage"] for meta in metas] == list(range(1, 102))
    assert len({record["id"] for record in records}) == len(records)


# --- dashboard view: the API's traps


def test_without_the_trailing_slash_the_view_answers_403(api: Api) -> None:
    token = api.login()
    api.view_path = DASHBOARD_VIEW_PATH.rstrip("/")

    assert api.view(token).status_code == 403


@pytest.mark.parametrize("missing", FIELD_PARAMETERS)
def test_a_missing_field_parameter_answers_503(api: Api, missing: str) -> None:
    assert api.view(api.login(), **{missing: None}).status_code == 503


@pytest.mark.parametrize("context", ["[people]", "people", None])
def test_a_data_context_that_is_not_a_json_array_silently_matches_nothing(api: Api, context: str | None) -> None:
    answer = api.view(api.login(), dataContext=context)

    assert answer.status_code == 200
    assert answer.json()["objs"] == []
    assert answer.json()["meta"]["totalCount"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"from": "2025-06-09T00:00:00Z"},
        {"to": "2025-06-10"},
        {"from": "2025-06-09 00:00:00.000"},
        {"to": "2025-02-30T00:00:00.000Z"},
        {"from": None},
        {"pageSize": str(MAX_PAGE_SIZE + 1)},
        {"page": "0"},
    ],
)
def test_bad_times_and_page_sizes_answer_400_with_a_reason(api: Api, overrides: dict[str, str | None]) -> None:
    answer = api.view(api.login(), **overrides)

    assert answer.status_code == 400
    assert answer.json()["reason"]


def test_an_unknown_view_id_is_404(api: Api) -> None:
    assert api.view(api.login(), id="no-such-view").status_code == 404


def test_inflated_total_pages_end_in_empty_pages(dataset: MicroshareDataset) -> None:
    with MicroshareStandIn(dataset, inflate_total_pages=2) as server:
        api = Api(server.base_url)
        records, metas = api.all_pages(api.login(), pageSize="200")
        api.session.close()

    assert len(records) == PER_BUILDING_PER_DAY
    assert [meta["currentCount"] for meta in metas] == [200, 184, 0, 0]
    assert {meta["totalPages"] for meta in metas} == {4}


def test_overlapping_pages_repeat_the_previous_pages_last_record(dataset: MicroshareDataset) -> None:
    with MicroshareStandIn(dataset, overlap_pages=True) as server:
        api = Api(server.base_url)
        token = api.login()
        first = api.view(token, pageSize="100").json()
        second = api.view(token, pageSize="100", page="2").json()
        past_end = api.view(token, pageSize="100", page="5").json()
        api.session.close()

    assert second["objs"][0] == first["objs"][-1]
    assert second["meta"]["currentCount"] == 101
    assert len({record["id"] for record in first["objs"] + second["objs"]}) == 200
    assert past_end["objs"] == []


def test_malformed_records_are_served_as_given(dataset: MicroshareDataset, api: Api) -> None:
    no_time = {"id": "no-time", "recType": PEOPLE_COUNTER, "data": {"meta": {"device": ["Building A"]}, "current": 1}}
    wrong_types = {
        "id": "wrong-types",
        "data": {"time": "2025-06-09T10:00:00.000Z", "current": "twelve", "meta": {"device": ["Building A"]}},
    }
    nowhere = {"id": "nowhere", "data": {"time": "not a time"}}
    dataset.add_records([no_time, wrong_types, nowhere])
    token = api.login()

    day_one, _ = api.all_pages(token)
    elsewhere_later = api.view(token, loc1="Building C", **{"from": "2030-01-01T00:00:00.000Z"})
    later = api.view(token, **{"from": "2030-01-01T00:00:00.000Z", "to": "2030-01-02T00:00:00.000Z"})

    assert len(day_one) == PER_BUILDING_PER_DAY + 3
    assert no_time in day_one and wrong_types in day_one and nowhere in day_one
    assert later.json()["objs"] == [no_time, nowhere]
    assert elsewhere_later.json()["objs"] == [nowhere]


# --- injected faults


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_an_injected_server_error_fires_once_then_the_view_answers(
    standin: MicroshareStandIn, api: Api, status: int
) -> None:
    token = api.login()
    standin.inject(Fault("view", status=status))

    failed = api.view(token)
    assert failed.status_code == status
    assert failed.json()["error"]
    assert api.view(token).status_code == 200


def test_429_carries_retry_after_and_fires_as_many_times_as_asked(standin: MicroshareStandIn, api: Api) -> None:
    token = api.login()
    standin.inject(Fault("view", status=429, retry_after_seconds=7, times=2))

    answers = [api.view(token) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"


def test_a_401_fault_on_page_two_hits_only_page_two(standin: MicroshareStandIn, api: Api) -> None:
    token = api.login()
    standin.inject(Fault("view", status=401, rec_type=PEOPLE_COUNTER, page=2))

    assert api.view(token, id="snap-view", recType=HOURLY_SNAPSHOT, page="2").status_code == 200
    assert api.view(token, pageSize="100").status_code == 200
    assert api.view(token, pageSize="100", page="2").status_code == 401
    assert api.view(token, pageSize="100", page="2").status_code == 200


def test_malformed_json_comes_with_status_200(standin: MicroshareStandIn, api: Api) -> None:
    token = api.login()
    standin.inject(Fault("view", malformed_json=True))

    answer = api.view(token)

    assert answer.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        answer.json()


def test_token_and_device_routes_take_faults_too(standin: MicroshareStandIn, api: Api) -> None:
    standin.inject(Fault("token", status=503))
    standin.inject(Fault("devices", status=500, rec_type=DEVICE_CLUSTER))

    assert api.token().status_code == 503
    token = api.login()
    assert api.devices(token).status_code == 500
    assert api.devices(token).status_code == 200


def test_a_slow_answer_outlasts_the_client_timeout_and_does_not_hold_up_stop(dataset: MicroshareDataset) -> None:
    held = 120.0  # the second answer's delay: a stop that waited for it would take about this long
    server = MicroshareStandIn(dataset)
    api = Api(server.start())
    token = api.login()
    server.inject(Fault("view", delay_seconds=0.3))
    server.inject(Fault("view", delay_seconds=held))

    started = time.perf_counter()
    assert api.view(token).status_code == 200  # slow but within the timeout: the normal answer
    assert time.perf_counter() - started >= 0.3  # it was delayed (a lower bound: a slow machine only adds)
    api.timeout = 0.5
    with pytest.raises(requests.Timeout):
        api.view(token)
    api.session.close()

    stopping = time.perf_counter()
    server.stop()
    # The held answer is cut short: the stop takes nothing like the rest of its delay, however slow the machine.
    assert time.perf_counter() - stopping < held / 4


def test_faults_that_cannot_happen_are_refused() -> None:
    with pytest.raises(ValueError):
        Fault("view", status=418)
    with pytest.raises(ValueError):
        Fault("nowhere", status=500)
    with pytest.raises(ValueError):
        Fault("view")


# --- as its own process, controlled over HTTP


def test_the_stand_in_runs_as_a_process_controlled_over_http() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost.standins.microshare.server", "--port", "0", "--locations", "2", "--days", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("Microshare stand-in: http://127.0.0.1:")
        base_url = line.removeprefix("Microshare stand-in: ")
        api = Api(base_url)
        admin = requests.Session()

        token = api.login()
        assert [d["meta"]["location"][0] for d in api.devices(token).json()["objs"][0]["data"]["devices"]] == [
            "Building A"
        ] * 4 + ["Building B"] * 4
        fault = admin.post(base_url + "/_standin/faults", json={"route": "view", "status": 429}, timeout=TIMEOUT)
        assert fault.status_code == 201
        assert api.view(token).status_code == 429
        record = {"id": "pushed", "data": {"time": "2031-01-01T00:00:00.000Z", "meta": {"device": ["Building A"]}}}
        assert admin.post(base_url + "/_standin/records", json=[record], timeout=TIMEOUT).status_code == 201
        later = api.view(token, **{"from": "2031-01-01T00:00:00.000Z", "to": "2031-01-02T00:00:00.000Z"})
        assert later.json()["objs"] == [record]

        logged = admin.get(base_url + "/_standin/requests", timeout=TIMEOUT).json()["requests"]
        assert [entry["path"] for entry in logged] == [
            TOKEN_PATH,
            DEVICE_PATH.format(rec_type=DEVICE_CLUSTER, cluster_id=CLUSTER_ID),
            DASHBOARD_VIEW_PATH,
            DASHBOARD_VIEW_PATH,
        ]
        assert logged[0]["query"]["password"] == "***"
        assert admin.post(base_url + "/_standin/reset", timeout=TIMEOUT).status_code == 200
        assert admin.get(base_url + "/_standin/requests", timeout=TIMEOUT).json()["requests"] == []
        bad = admin.post(base_url + "/_standin/faults", json={"route": "view", "status": 200}, timeout=TIMEOUT)
        assert bad.status_code == 400
        api.session.close()
        admin.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
