"""`make secrets`: scan every file git knows for secrets; a finding that .secrets.baseline has not reviewed fails.

detect-secrets' own pre-commit hook rewrites the baseline whenever a listed line moves and fails the run for that;
this check only reads the baseline, so a fresh clone always gets the same answer. A finding counts as reviewed
when the baseline lists it (same file, same hashed value, same type) with `is_secret: false`; line numbers do not
matter. Nothing is verified over the network, and no secret value is printed.

After reviewing a new false positive (a published emulator key, a fake test value), record it:

    .venv/bin/detect-secrets scan --no-verify --baseline .secrets.baseline
    .venv/bin/detect-secrets audit .secrets.baseline      # answer "n" (not a secret) for each reviewed entry

or mark a test literal at its source with a `pragma: allowlist secret` comment on its line.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path

from detect_secrets.core import baseline
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
BASELINE = ".secrets.baseline"
# Verification sends a found credential to its provider's API: never from here.
_VERIFICATION_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"


def repository_files(root: Path) -> list[str]:
    """Tracked files and new files that .gitignore does not ignore, relative to root, as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = sorted({name for name in listed.split("\0") if name and name != BASELINE})
    return [name for name in names if (root / name).is_file() and not (root / name).is_symlink()]


def load_reviewed(root: Path) -> SecretsCollection:
    """The baseline's findings; its plugin and filter settings become the scan's, so every run scans alike."""
    path = root / BASELINE
    reviewed = baseline.load(baseline.load_from_file(str(path)), str(path))
    get_settings().disable_filters(_VERIFICATION_FILTER)
    return reviewed


def scan(root: Path, files: list[str]) -> SecretsCollection:
    """Findings named as the baseline names them: relative to root (detect-secrets compares file names too)."""
    found = SecretsCollection()
    with contextlib.chdir(root):
        found.scan_files(*files)
    return found


def check(root: Path) -> int:
    """0 when every finding is reviewed as not a secret; 1 otherwise, naming each file, line and kind."""
    reviewed = load_reviewed(root)
    files = repository_files(root)
    found = scan(root, files)
    new = [(name, secret) for name, secret in found - reviewed]
    unreviewed = [(name, secret) for name, secret in reviewed if secret.is_secret is not False]
    stale = [(name, secret) for name, secret in reviewed - found]
    for name, secret in new:
        print(f"{name}:{secret.line_number}: {secret.type} (not in {BASELINE})", file=sys.stderr)
    for name, secret in unreviewed:
        print(f"{name}:{secret.line_number}: {secret.type} is in {BASELINE} but not reviewed", file=sys.stderr)
    if stale:
        print(f"note: {len(stale)} entries of {BASELINE} are no longer found (refresh it with detect-secrets scan)")
    if new or unreviewed:
        print(
            f"secrets: {len(new)} new and {len(unreviewed)} unreviewed finding(s) in {len(files)} files. Move a real "
            f"secret out of the repository (app settings, Key Vault); see {Path(__file__).name} for false positives.",
            file=sys.stderr,
        )
        return 1
    print(f"secrets: {len(files)} files scanned, {sum(1 for _ in found)} reviewed findings, nothing new")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.secrets_scan", description="Fail on any secret .secrets.baseline has not reviewed."
    )
    parser.add_argument("--root", type=Path, default=REPO, help="the repository (default: this checkout)")
    args = parser.parse_args(argv)
    return check(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
