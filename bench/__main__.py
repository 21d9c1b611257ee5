"""python -m bench <name> [flag ...]: run one benchmark and print its result as ONE JSON line on stdout.

Diagnostics go to stderr. Each bench module is imported only when it is chosen: the dashboard bench must set
the storage settings before anything imports `shared.app`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import traceback
from typing import Any

from bench.common import machine

BENCHES: dict[str, str] = {
    "summariser": "summariser throughput on embedded SQLite, against the query-per-sensor reference",
    "dashboard": "chart render times and PNG sizes, PNG chart endpoint times, 50 polling viewers against devhost "
    "(CPU), page ready in Chromium",
    "coldstart": "time to `import function_app` in a fresh interpreter",
    "freshness": "reading written -> visible in GET /api/sensors, through a devhost subprocess",
    "state_roundtrip": "window state read + If-Match write on Azurite (needs `npm ci`)",
    "forwarder": "Microshare stand-in -> embedded hub: 100,000 records, batch fill, dedup state over a week",
    "backfill": "Durable backfill under devhost: 3 x 30 windows, and history size for 1,000 windows",
    "fleet": "1,000 series at 5 s through devhost: page in Chromium, CPU and chart renders with 1, 5, 20 viewers",
    "ingest": "POST /api/readings in batches of 100 through devhost: readings/s, latency, summariser catch-up",
    "import": "a 1,000,000-row gzip CSV through POST /api/imports on devhost: rows/s, peak RSS, summaries caught up",
}
# Benches whose module is not named after them (`import` is a Python keyword).
MODULES: dict[str, str] = {"import": "bulk_import"}

# Flags a bench takes after its name; each is passed to its run() as a keyword argument set to True
# (--render-only as render_only=True).
FLAGS: dict[str, dict[str, str]] = {
    "dashboard": {"--render-only": "only the chart renderer, in-process: seconds, no devhost or browser"},
}


def usage() -> str:
    lines = ["usage: python -m bench <name> [flag ...]", "", "benchmarks:"]
    for name, about in BENCHES.items():
        lines.append(f"  {name:<16} {about}")
        lines += [f"    {flag:<14} {what}" for flag, what in FLAGS.get(name, {}).items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES or any(flag not in FLAGS.get(argv[0], {}) for flag in argv[1:]):
        print(usage(), file=sys.stderr)
        return 2
    name = argv[0]
    options = {flag.removeprefix("--").replace("-", "_"): True for flag in argv[1:]}
    module = importlib.import_module(f"bench.{MODULES.get(name, name)}")
    result: dict[str, Any]
    code = 0
    # Anything a library prints while the bench runs goes to stderr, so stdout holds only the result line.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = module.run(**options)
        except Exception as failure:
            traceback.print_exc(file=sys.stderr)
            result = {"bench": name, "error": f"{type(failure).__name__}: {failure}", "meets_target": False}
            code = 1
    result.setdefault("machine", machine())
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
