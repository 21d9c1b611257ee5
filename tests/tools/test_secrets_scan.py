"""`make secrets` on a small git repository of its own: reviewed findings pass wherever their lines move, a new
secret fails (tracked or not yet added) and is named by file, line and kind, never shown."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.secrets_scan import BASELINE, check

REPO = Path(__file__).resolve().parents[2]
# Built at run time, so no file of this repository holds something shaped like an AWS key.
FAKE_AWS_KEY = "AKIA" + "Z7QW3RTY5UIOP2AS"
# The Cosmos DB emulator's published key: the kind of finding the baseline records as reviewed.
EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTq"  # pragma: allowlist secret
    "obD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="  # pragma: allowlist secret
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the scan lists files with git")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _reviewed_baseline(repo: Path) -> None:
    """A baseline as `detect-secrets scan --no-verify` writes it, every finding then audited as not a secret."""
    scanned = subprocess.run(
        [str(Path(sys.executable).parent / "detect-secrets"), "scan", "--no-verify"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    document = json.loads(scanned)
    for findings in document["results"].values():
        for finding in findings:
            finding["is_secret"] = False
    (repo / BASELINE).write_text(json.dumps(document, indent=2) + "\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "settings.json").write_text(json.dumps({"COSMOS": f"AccountKey={EMULATOR_KEY}"}, indent=2) + "\n")
    (tmp_path / "app.py").write_text('"""An app."""\n\nNAME = "sensor-pulse"\n')
    _git(tmp_path, "add", "settings.json", "app.py")
    _reviewed_baseline(tmp_path)
    return tmp_path


def test_reviewed_findings_pass_and_still_pass_when_their_lines_move(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = (repo / BASELINE).read_text()
    assert '"is_secret": false' in baseline  # the emulator key was found and is recorded as reviewed
    assert check(repo) == 0
    (repo / "settings.json").write_text("\n\n\n" + (repo / "settings.json").read_text())
    assert check(repo) == 0
    assert (repo / BASELINE).read_text() == baseline  # the check never rewrites the baseline
    assert "nothing new" in capsys.readouterr().out


@pytest.mark.parametrize("tracked", [True, False], ids=["tracked", "not-yet-added"])
def test_a_new_secret_fails_the_scan_until_it_is_removed(
    repo: Path, capsys: pytest.CaptureFixture[str], tracked: bool
) -> None:
    scratch = repo / "scratch.py"
    scratch.write_text(f'"""Scratch."""\n\nREGION = "eu-west-1"\nACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    if tracked:
        _git(repo, "add", "scratch.py")
    assert check(repo) == 1
    report = capsys.readouterr()
    assert "scratch.py:4: AWS Access Key" in report.err
    assert FAKE_AWS_KEY not in report.out + report.err
    scratch.write_text('"""Scratch."""\n\nREGION = "eu-west-1"\n')
    assert check(repo) == 0


def test_a_baseline_entry_nobody_reviewed_fails(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads((repo / BASELINE).read_text())
    for findings in document["results"].values():
        for finding in findings:
            del finding["is_secret"]
    (repo / BASELINE).write_text(json.dumps(document))
    assert check(repo) == 1
    assert (
        "settings.json:2: Azure Storage Account access key is in .secrets.baseline but not reviewed"
        in capsys.readouterr().err
    )


def test_the_repository_baseline_holds_only_reviewed_entries() -> None:
    document = json.loads((REPO / BASELINE).read_text())
    entries = [finding for findings in document["results"].values() for finding in findings]
    assert entries and all(finding["is_secret"] is False for finding in entries)
    # Verification would send a found credential to its provider: the baseline's scans never verify.
    filters = {entry["path"] for entry in document["filters_used"]}
    assert not any("verification" in path for path in filters)
