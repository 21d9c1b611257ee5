"""The operators' KQL queries (docs/queries/*.kql) and the queries of the alert rules (infra/app/alerts/*.kql) parse
and bind against the Application Insights tables, checked with Microsoft's Kusto language library (npm
@kusto/language-service-next) by tests/tools/kql_check.mjs: an unknown column, table or function is an error, like a
syntax error. Broken queries planted in a temp folder show
that the checker does report what it should. Node runs once for every file (a module fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TypedDict, cast

import pytest

REPO = Path(__file__).resolve().parents[2]
QUERIES = REPO / "docs" / "queries"
CHECKER = REPO / "tests" / "tools" / "kql_check.mjs"
KUSTO_PACKAGE = REPO / "node_modules" / "@kusto" / "language-service-next"
QUERY_FILES = sorted(QUERIES.glob("*.kql"))
# Run by Azure Monitor (infra/app/monitoring-alerts.bicep loads them); tests/infra_rules.py checks what they read.
ALERT_QUERY_FILES = sorted((REPO / "infra" / "app" / "alerts").glob("*.kql"))
REQUIRED = {
    "throughput-per-minute.kql",
    "lag-percentiles.kql",
    "dead-letters-by-reason.kql",
    "forwarder-runs.kql",
    "cosmos-ru-per-reading.kql",
}

# name -> (query text, the diagnostic code the checker must report). Each is wrong in exactly one way.
PLANTED: dict[str, tuple[str, str]] = {
    "missing-operator.kql": ('customMetrics\n| where name == "sensorpulse_dead_letters_total"\n|\n', "KS176"),
    "misspelled-column.kql": ("customMetrics\n| summarize sum(valueSun) by name\n", "KS142"),
    "unknown-table.kql": ("customMetric\n| take 10\n", "KS204"),
    "unknown-function.kql": ("traces\n| extend level = severity_name(severityLevel)\n", "KS211"),
    "type-mismatch.kql": ("requests\n| extend code = resultCode + 1\n", "KS106"),
    "two-queries.kql": ("// two queries in one file\ntraces\n| take 1\n\nrequests\n| take 1\n", "SP001"),
}


class Diagnostic(TypedDict):
    severity: str
    code: str
    message: str
    line: int
    column: int
    start: int
    length: int


Report = dict[str, list[Diagnostic]]


def _errors(diagnostics: list[Diagnostic]) -> list[str]:
    return [f"{d['line']}:{d['column']} {d['code']} {d['message']}" for d in diagnostics if d["severity"] == "Error"]


def _real_query_with_typo(tmp: Path) -> Path:
    """A shipped query with one column misspelled: the schema binds inside real queries, not just toy ones."""
    text = (QUERIES / "throughput-per-minute.kql").read_text(encoding="utf-8")
    assert "sum(valueSum)" in text
    path = tmp / "throughput-with-typo.kql"
    path.write_text(text.replace("sum(valueSum)", "sum(valueSumm)"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted_kql")
    for name, (text, _) in PLANTED.items():
        (folder / name).write_text(text, encoding="utf-8")
    _real_query_with_typo(folder)
    return folder


@pytest.fixture(scope="module")
def report(planted_dir: Path) -> Report:
    if not KUSTO_PACKAGE.is_dir():
        pytest.skip(f"{KUSTO_PACKAGE.relative_to(REPO)} is missing: run `npm ci` (make test does)")
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    files = [*QUERY_FILES, *ALERT_QUERY_FILES, *sorted(planted_dir.glob("*.kql"))]
    done = subprocess.run(
        [node, str(CHECKER), *(str(path) for path in files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return cast(Report, json.loads(done.stdout))


def test_the_required_queries_exist() -> None:
    assert {path.name for path in QUERY_FILES} >= REQUIRED


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda path: path.name)
def test_query_parses_and_binds(report: Report, path: Path) -> None:
    assert str(path) in report, f"the checker skipped {path.name}"
    errors = _errors(report[str(path)])
    assert not errors, f"{path.name}:\n" + "\n".join(errors)


def test_the_alert_rules_have_queries() -> None:
    assert ALERT_QUERY_FILES, "infra/app/alerts holds no query"


@pytest.mark.parametrize("path", ALERT_QUERY_FILES, ids=lambda path: path.name)
def test_alert_query_parses_and_binds(report: Report, path: Path) -> None:
    assert str(path) in report, f"the checker skipped {path.name}"
    errors = _errors(report[str(path)])
    assert not errors, f"{path.name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_checker_reports_a_planted_error(report: Report, planted_dir: Path, name: str) -> None:
    expected_code = PLANTED[name][1]
    errors = [d for d in report[str(planted_dir / name)] if d["severity"] == "Error"]
    assert expected_code in {d["code"] for d in errors}, errors


def test_checker_reports_a_typo_in_a_real_query_where_it_is(report: Report, planted_dir: Path) -> None:
    path = planted_dir / "throughput-with-typo.kql"
    errors = [d for d in report[str(path)] if d["severity"] == "Error"]
    assert [d["code"] for d in errors] == ["KS142"], errors
    (typo,) = errors
    assert "valueSumm" in typo["message"]
    line = path.read_text(encoding="utf-8").splitlines()[typo["line"] - 1]
    assert line[typo["column"] - 1 :].startswith("valueSumm")


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda path: path.name)
def test_query_begins_with_a_comment_that_says_how_to_run_it(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("//"), f"{path.name} must begin with a // comment"
    header = "\n".join(line for line in lines if line.startswith("//"))
    assert "Application Insights > Logs" in header
    assert f"--analytics-query @docs/queries/{path.name}" in header


def test_readme_lists_every_query() -> None:
    readme = (QUERIES / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in QUERY_FILES if f"]({path.name})" not in readme]
    assert not missing, f"docs/queries/README.md does not link {missing}"
