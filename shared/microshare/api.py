"""The Microshare API's names and limits, as its documentation gives them: shared by the client and the stand-in.

Record shapes the forwarder relies on (the stand-in serves exactly these):

- people-counter record (one per device and 15-minute interval), in `objs[]` of a dashboard-view answer:
  {"id": "...", "_id": "...", "recType": PEOPLE_COUNTER,
   "data": {"time": "2025-06-09T10:15:00.000Z",
            "change": {"in": 3, "out": 1, "count": 2, "traffic": 4},
            "daily_total": {"in": 40, "out": 31, "count": 9, "traffic": 71},
            "current": 12,
            "device": {"id": "pc-0001", "battery": 3.6, "alerts": []},
            "meta": {"device": ["Building A", "Floor 2", "Zone 3", "Spot 1"],
                     "iot": {"rssi": -81, "snr": 7.5, "fport": 20}}}}
- hourly-snapshot answer (one per location query): `objs[]` of
  {"data": {"location": "Building A", "line": [{"time": "2025-06-09T10:00:00.000Z", "current": 42}, ...]}}
- device cluster, from GET /device/{recType}/{clusterId}?details=true: {"meta": {...}, "objs": [cluster]} with
  cluster = {"id": ..., "owner": {"org": "..."},
             "data": {"devices": [{"id": "...", "meta": {"location": ["Building A", ...]}, "status": "..."}]}}
- token, from POST /oauth2/token: {"access_token", "expires_in" (seconds), "refresh_token", "token_type"}.
"""

from __future__ import annotations

PEOPLE_COUNTER = "io.microshare.peoplecounter.unpacked.event.agg"
HOURLY_SNAPSHOT = "io.microshare.lake.snapshot.hourly"
DEVICE_CLUSTER = "io.microshare.peoplecounter.packed"  # the cluster recType whose devices name the locations

TOKEN_PATH = "/oauth2/token"
# The trailing slash matters: without it the API answers 403.
DASHBOARD_VIEW_PATH = "/share/io.microshare.fm.master.agg/"
DEVICE_PATH = "/device/{rec_type}/{cluster_id}"

FIELD_PARAMETERS = tuple(f"field{n}" for n in range(1, 7))  # all six must be sent, or the API answers 503
MAX_PAGE_SIZE = 999
TIME_FORMAT_EXAMPLE = "2025-06-09T00:00:00.000Z"  # from/to: ISO 8601 UTC with milliseconds
