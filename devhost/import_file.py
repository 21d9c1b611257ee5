"""`make import FILE=path`: upload one file of readings to a running devhost (POST /api/imports) and follow its
import until it ends, printing its progress and result.

    python -m devhost.import_file readings.csv [--port 7071] [--data-dir .devhost] [--name other.csv] [--no-wait]

With --require-keys the function key is read from <data-dir>/host-keys.json (it is never printed). Exits 0 when the
file is imported (bad rows are listed in its error report), 1 when it is refused or fails, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devhost.http.host_keys import DEFAULT_FUNCTION_KEY, KEYS_FILE
from shared.imports.records import FINAL_STATES

POLL_SECONDS = 1.0


def _function_key(data_dir: Path) -> str | None:
    path = data_dir / KEYS_FILE
    if not path.exists():
        return None
    keys = json.loads(path.read_text(encoding="utf-8")).get("functionKeys", {})
    key = keys.get(DEFAULT_FUNCTION_KEY)
    return key if isinstance(key, str) else None


def _request(url: str, key: str | None, data: Any = None, length: int | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if key is not None:
        request.add_header("x-functions-key", key)
    if length is not None:
        request.add_header("Content-Length", str(length))
        request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        body = refused.read()
        try:
            return refused.code, json.loads(body or b"{}")
        except ValueError:
            return refused.code, {"error": body.decode(errors="replace")[:300]}


def _line(status: dict[str, Any]) -> str:
    progress = status.get("progress") or {}
    percent = f" ({progress['percent']} %)" if isinstance(progress, dict) and "percent" in progress else ""
    return (
        f"{status.get('state')}{percent}: {status.get('rows', 0):,} rows, {status.get('imported', 0):,} imported, "
        f"{status.get('rejected', 0):,} rejected"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.import_file", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=Path(".devhost"))
    parser.add_argument("--name", help="the name in the imports container (default: the file's name)")
    parser.add_argument("--no-wait", action="store_true", help="upload, print the import's id and return")
    options = parser.parse_args(argv)
    path: Path = options.file
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    base = f"http://{options.host}:{options.port}"
    key = _function_key(options.data_dir)
    name = urllib.parse.quote(options.name or path.name)
    size = path.stat().st_size
    try:
        with path.open("rb") as body:
            status, answer = _request(f"{base}/api/imports?name={name}", key, body, size)
    except urllib.error.URLError as unreachable:
        print(f"devhost does not answer on {base} ({unreachable.reason}): start it with `make run`", file=sys.stderr)
        return 1
    if status != 202:
        print(f"upload refused ({status}): {answer.get('error')}", file=sys.stderr)
        return 1
    import_id = str(answer["id"])
    print(f"uploaded {answer['name']} ({size:,} bytes): import {import_id}")
    if options.no_wait:
        return 0
    url, shown = f"{base}/api/imports/{import_id}", ""
    while True:
        status, current = _request(url, key)
        if status != 200:
            print(f"the import's status could not be read ({status}): {current.get('error')}", file=sys.stderr)
            return 1
        line = _line(current)
        if line != shown:
            print(line, flush=True)
            shown = line
        if current.get("state") in FINAL_STATES:
            break
        time.sleep(POLL_SECONDS)
    if current.get("reason"):
        print(f"reason: {current['reason']}")
    if current.get("errors"):
        print(f"error report: imports-results/{current['errors']}")
    print(f"result: imports-results/{current.get('result')}")
    return 0 if current.get("state") == "imported" else 1


if __name__ == "__main__":
    sys.exit(main())
