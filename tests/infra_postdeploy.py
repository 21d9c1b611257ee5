"""Rules of the postdeploy hooks (infra/hooks/postdeploy.sh and .ps1), read from a repository root like those of
tests/infra_rules.py: they subscribe the bulk import's blob trigger to BlobCreated in `imports` with the app's
blobs_extension system key, and never let the key out. The sh hook is run against stand-ins for az, azd, curl and
sleep; both hooks are read as text."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.infra_bicep import outputs
from tests.infra_imports import IMPORT_CONNECTION, IMPORT_CONTAINERS, IMPORT_FUNCTION

# The postdeploy hook subscribes the import trigger to BlobCreated in `imports` with the app's blobs_extension key.
POSTDEPLOY_OUTPUTS = (
    "RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "AZURE_FUNCTION_APP_URL",
    "IMPORTS_SYSTEM_TOPIC_NAME",
)
POSTDEPLOY_ENVIRONMENT = {
    "RESOURCE_GROUP": "rg-pulse",
    "AZURE_FUNCTION_APP_NAME": "func-api-abc",
    "AZURE_FUNCTION_APP_URL": "https://func-api-abc-h7c3.westeurope-01.azurewebsites.net",
    "IMPORTS_SYSTEM_TOPIC_NAME": "egst-abc",
}
# On Windows the PowerShell hook wraps the URL in double quotes, for cmd.exe (which runs az.cmd).
WINDOWS_QUOTING = (
    r"^\s*if \(\[Environment\]::OSVersion\.Platform -eq 'Win32NT'\) "
    r"""\{ \$(\w+) = '"' \+ \$\1 \+ '"' \}\s*$"""
)
BLOBS_EXTENSION_KEY = "never/printed+blobs_extension-key=="  # pragma: allowlist secret
# The subscription's settings that each hook must pass to `az eventgrid system-topic event-subscription create`.
SUBSCRIPTION_ARGUMENTS = {
    "--endpoint-type": "webhook",
    "--included-event-types": "Microsoft.Storage.BlobCreated",
    "--subject-begins-with": f"/blobServices/default/containers/{IMPORT_CONTAINERS[0]}/blobs/",
    "--event-delivery-schema": "eventgridschema",
    "--max-delivery-attempts": "30",
    "--event-ttl": "1440",
}
_FAKE_AZ = """#!/bin/sh
# A stand-in for the Azure CLI: records each call, answers as the scenario says.
{ printf '%s\\037' "$@"; printf '\\n'; } >> "$FAKE_AZ_LOG"
case "$1 $2" in
    "account show") exit 0 ;;
    "functionapp keys")
        calls=$(grep -c '^functionapp.keys' "$FAKE_AZ_LOG")
        if [ "$calls" -ge "$FAKE_KEY_AFTER" ] && [ "$FAKE_KEY_AFTER" -gt 0 ]; then printf '%s\\n' '@KEY@'; fi
        exit 0 ;;
    "eventgrid system-topic")
        if [ -n "${FAKE_CREATE_FAILS:-}" ]; then
            for arg in "$@"; do
                case $arg in https://*) echo "ERROR: Webhook validation handshake failed for $arg" >&2 ;; esac
            done
            exit 1
        fi
        exit 0 ;;
esac
exit 2
"""


def run_postdeploy(
    hook: Path, environment: dict[str, str], key_after: int = 1, create_fails: bool = False, by_hand: bool = False
) -> tuple[int, str, list[list[str]], list[str]]:
    """Runs the sh hook from a scratch checkout against stand-ins for az, azd, curl and sleep, traced (`sh -x`) as a
    careless caller might. Returns its exit code, everything it printed, the az calls (arguments each) and the files
    left in the checkout or home that hold the key. `by_hand`: the values come from `azd env get-values`."""
    with tempfile.TemporaryDirectory() as scratch:
        root, bin_dir = Path(scratch) / "checkout", Path(scratch) / "bin"
        copy = root / "infra" / "hooks" / hook.name
        copy.parent.mkdir(parents=True)
        (root / "home").mkdir()
        bin_dir.mkdir()
        shutil.copy2(hook, copy)
        stubs = {
            "az": _FAKE_AZ.replace("@KEY@", BLOBS_EXTENSION_KEY),
            "azd": '#!/bin/sh\n[ "$1 $2" = "env get-values" ] && printf \'%s\\n\' "$FAKE_AZD_VALUES"\n',
            "curl": "#!/bin/sh\nexit 0\n",
            "sleep": "#!/bin/sh\nexit 0\n",
        }
        for name, text in stubs.items():
            (bin_dir / name).write_text(text, encoding="utf-8")
            (bin_dir / name).chmod(0o755)
        log = Path(scratch) / "az.log"
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(root / "home"),
            "FAKE_AZ_LOG": str(log),
            "FAKE_KEY_AFTER": str(key_after),
            "FAKE_AZD_VALUES": "\n".join(f'{k}="{v}"' for k, v in environment.items()) if by_hand else "",
            "POSTDEPLOY_WAIT_SECONDS": "30",
            "POSTDEPLOY_RETRY_SECONDS": "10",
            **({"FAKE_CREATE_FAILS": "1"} if create_fails else {}),
            **({} if by_hand else environment),
        }
        done = subprocess.run(
            ["/bin/sh", "-x", str(copy)], cwd=root, env=env, capture_output=True, text=True, timeout=60
        )
        calls = (
            [line.split("\x1f")[:-1] for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
        )
        leaked = [
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and BLOBS_EXTENSION_KEY in path.read_text(encoding="utf-8", errors="replace")
        ]
        return done.returncode, done.stdout + done.stderr, calls, leaked


def _logical_lines(text: str, continuation: str) -> list[str]:
    """The lines of a script with continued lines (ending in `continuation`) joined, comments dropped."""
    joined, lines = "", []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("#"):
            continue
        if line.endswith(continuation):
            joined += line[: -len(continuation)] + " "
            continue
        lines.append(joined + line)
        joined = ""
    return lines


def _assigned(line: str) -> str | None:
    """The variable a line assigns (`name=...`, `if name=$(...)` or `$name = ...`), if any."""
    match = re.match(r"^\s*(?:if\s+)?\$?(\w+)\s*=", line)
    return match.group(1) if match else None


def _uses(var: str, line: str) -> bool:
    return re.search(rf"\$\{{?{var}\b", line) is not None


def _secret_flow_problems(name: str, lines: list[str]) -> list[str]:
    """Where the key and the URL holding it may appear: the key in its assignment, emptiness checks, the URL and the
    redaction; the URL only as the `--endpoint` of `az eventgrid ... create` run with its output off and its errors
    captured; those errors only through the redaction. Nothing turns on az's request logging or a transcript."""
    problems = []
    sources = [line for line in lines if "systemKeys.blobs_extension" in line]
    key = _assigned(sources[0]) if len(sources) == 1 else None
    if key is None:
        return [f"{name}: the key is not read into one variable from az functionapp keys list"]
    urls = [line for line in lines if "code=" in line and _uses(key, line)]
    url = _assigned(urls[0]) if len(urls) == 1 else None
    if url is None:
        return [f"{name}: the key is not put into one endpoint URL variable"]
    creates = [line for line in lines if "eventgrid system-topic event-subscription create" in line]
    if len(creates) != 1:
        return [f"{name}: not one az eventgrid system-topic event-subscription create"]
    (create,) = creates
    if not re.search(r"(?:-o|--output) none\b", create) or "--only-show-errors" not in create:
        problems.append(f"{name}: az create does not run with -o none --only-show-errors")
    if not re.search(rf"--endpoint \"?\$\{{?{url}\b", create):
        problems.append(f"{name}: the endpoint URL is not az create's --endpoint")
    errors = _assigned(create)
    if errors is None or "2>&1" not in create:
        problems.append(f"{name}: az create's errors are not captured")
    # Whole lines: the redaction's (sh, PowerShell) and an emptiness test of the key.
    redaction = (
        r"""\s*printf '%s\\n' "\$\w+" \| redact >&2\s*"""
        r"|\s*\[Console\]::Error\.WriteLine\(\(Hide-Key \$\w+ \$\w+\)\)\s*"
    )
    test = r"""\s*if \[ -[nz] "\$\{?\w+\}?" \]; then\s*|\s*if \(-not \[string\]::IsNullOrWhiteSpace\(\$\w+\)\) \{\s*"""

    def allowed(var: str, line: str) -> bool:
        if var == key:
            return (
                line in sources
                or line in urls
                or re.fullmatch(rf"\s*\$?{key}\s*=\s*''\s*|{test}|{redaction}", line) is not None
                or re.fullmatch(rf"\s*REDACT_SECRET=\${key} awk '\{{", line) is not None
            )
        if var == url:
            return line in urls or line == create or re.fullmatch(WINDOWS_QUOTING, line) is not None
        return line == create or re.fullmatch(redaction, line) is not None  # the captured errors

    for var in (key, url, errors or "\x00"):
        problems += [
            f"{name}: ${var} in {line.strip()!r}" for line in lines if _uses(var, line) and not allowed(var, line)
        ]
    for line in lines:
        if re.search(r"\baz\b.*--(?:debug|verbose)\b", line):
            problems.append(f"{name}: az --debug or --verbose logs the endpoint URL: {line.strip()!r}")
        if re.search(r"azd env set|\btee\b|Start-Transcript|Set-PSDebug", line):
            problems.append(f"{name}: {line.strip()!r} could write the key out")
    return problems


def _blob_triggers() -> dict[str, dict[str, str]]:
    """The app's blob triggers: function name -> the trigger's binding (path, connection, source)."""
    from tests.component.app_functions import app_functions

    return {
        name: binding
        for name, function in app_functions().items()
        for binding in json.loads(function.get_function_json())["bindings"]
        if binding.get("type") == "blobTrigger"
    }


def _arguments(call: list[str]) -> dict[str, str]:
    """`--flag value...` of one command line: each flag's words up to the next flag, joined by spaces."""
    found: dict[str, list[str]] = {}
    flag = None
    for arg in call:
        if re.fullmatch(r"--?[a-z][\w-]*", arg):
            flag = arg
            found[flag] = []
        elif flag is not None:
            found[flag].append(arg)
    return {flag: " ".join(words) for flag, words in found.items()}


def _substituted(line: str, text: str) -> str:
    """The line with the script's constants (`name=word` or `$name = 'word'`) put in, and quotes dropped."""
    constants = dict(re.findall(r"^\$?(\w+)\s*=\s*'?([\w.-]+)'?\s*(?:#.*)?$", text, re.MULTILINE))
    line = re.sub(r"\$\{?(\w+)\}?", lambda m: constants.get(m.group(1), m.group(0)), line)
    return line.replace('"', "").replace("'", "")


def postdeploy_problems(root: Path) -> list[str]:
    """The postdeploy hooks subscribe the trigger the app really has to BlobCreated in the import container, with the
    outputs main.bicep gives, and never let the blobs_extension key out: the sh hook is run against stand-ins for az
    (traced, with a slow app, with az failing, by hand), and both hooks are read as text."""
    hooks, main = root / "infra" / "hooks", root / "infra" / "main.bicep"
    texts = {name: (hooks / name).read_text(encoding="utf-8") for name in ("postdeploy.sh", "postdeploy.ps1")}
    sh, ps1 = texts["postdeploy.sh"], texts["postdeploy.ps1"]
    lines = {"postdeploy.sh": _logical_lines(sh, "\\"), "postdeploy.ps1": _logical_lines(ps1, "`")}
    problems = [] if sh.startswith("#!/bin/sh\n") and "\nset -eu\n" in sh else ["postdeploy.sh is not sh with set -eu"]
    # Never traced: tracing would print the key's assignments. `set +x` comes first, against `sh -x hook`.
    traced = [line for line in lines["postdeploy.sh"] if re.search(r"^\s*set\s+(?:-\w*x|-o\s+xtrace)", line)]
    untraced = next((i for i, line in enumerate(lines["postdeploy.sh"]) if line.strip() == "set +x"), None)
    if traced or untraced is None or untraced > 0 or sh.split("\n", 1)[0] != "#!/bin/sh":
        problems.append("postdeploy.sh may run traced: it must start with set +x and never set -x")
    for name, logical in lines.items():
        problems += _secret_flow_problems(name, logical)
        problems += [f"{name} does not read {output}" for output in POSTDEPLOY_OUTPUTS if output not in texts[name]]
        creates = [_substituted(line, texts[name]) for line in logical if "event-subscription create" in line]
        # The command's own words: from az to its redirections.
        words = re.sub(r"^.*?\baz eventgrid|\s*2>.*$", "", creates[0]).split() if creates else []
        given = _arguments(words)
        problems += [
            f"{name}: the subscription's {flag} is {given.get(flag)!r}, not {value!r}"
            for flag, value in SUBSCRIPTION_ARGUMENTS.items()
            if given.get(flag) != value
        ]
        urls = [_substituted(line, texts[name]) for line in logical if "code=" in line and "webhooks" in line]
        if not any(f"/runtime/webhooks/blobs?functionName=Host.Functions.{IMPORT_FUNCTION}&code=" in u for u in urls):
            problems.append(f"{name}: the webhook does not name Host.Functions.{IMPORT_FUNCTION}")
    # az is az.cmd on Windows: an unquoted & in an argument would end the command in cmd.exe, and run the rest.
    if not re.search(WINDOWS_QUOTING, ps1, re.MULTILINE):
        problems.append("postdeploy.ps1: the endpoint URL is not wrapped in double quotes for cmd.exe")
    problems += [f"main.bicep has no output {name}" for name in POSTDEPLOY_OUTPUTS if name not in outputs(main)]
    # The trigger the hooks subscribe is the app's (once the app has blob triggers).
    for function, binding in _blob_triggers().items():
        if function != IMPORT_FUNCTION or not str(binding.get("path", "")).startswith(f"{IMPORT_CONTAINERS[0]}/"):
            problems.append(f"the app's blob trigger {function} on {binding.get('path')} is not the one subscribed")
        if binding.get("connection") != IMPORT_CONNECTION or binding.get("source") != "EventGrid":
            problems.append(f"{function} is not on the Event Grid source of connection {IMPORT_CONNECTION}")
    return problems + _postdeploy_run_problems(hooks / "postdeploy.sh")


def _hide(text: str) -> str:
    """A problem never shows the key, even when a broken hook printed it."""
    return text.replace(BLOBS_EXTENSION_KEY, "<key>")


def _postdeploy_run_problems(hook: Path) -> list[str]:
    """The sh hook against stand-ins: the subscription it makes, the key never printed nor left in a file."""
    problems = []
    code, printed, calls, leaked = run_postdeploy(hook, POSTDEPLOY_ENVIRONMENT, key_after=3)
    creates = [_arguments(c) for c in calls if c[:4] == ["eventgrid", "system-topic", "event-subscription", "create"]]
    if code != 0 or len(creates) != 1:
        return [f"postdeploy.sh failed or did not subscribe once: {_hide(printed)[-400:]}"]
    (args,) = creates
    url = POSTDEPLOY_ENVIRONMENT["AZURE_FUNCTION_APP_URL"]
    wanted = {
        **SUBSCRIPTION_ARGUMENTS,
        "--resource-group": POSTDEPLOY_ENVIRONMENT["RESOURCE_GROUP"],
        "--system-topic-name": POSTDEPLOY_ENVIRONMENT["IMPORTS_SYSTEM_TOPIC_NAME"],
        "--endpoint": f"{url}/runtime/webhooks/blobs?functionName=Host.Functions.{IMPORT_FUNCTION}&code="
        + BLOBS_EXTENSION_KEY,
        "-o": "none",
        "--only-show-errors": "",
    }
    problems += [
        f"the subscription's {flag} is {_hide(args.get(flag, '(none)'))!r}, not {_hide(value)!r}"
        for flag, value in wanted.items()
        if args.get(flag) != value
    ]
    polls = [c for c in calls if c[:3] == ["functionapp", "keys", "list"]]
    if len(polls) != 3 or any(_arguments(c).get("--query") != "systemKeys.blobs_extension" for c in polls):
        problems.append("postdeploy.sh does not wait for the blobs_extension key, polling az functionapp keys list")
    if BLOBS_EXTENSION_KEY in printed:
        problems.append("postdeploy.sh printed the key (traced with sh -x)")
    problems += [f"postdeploy.sh left the key in {path}" for path in leaked]
    code, printed, calls, _ = run_postdeploy(hook, POSTDEPLOY_ENVIRONMENT, create_fails=True)
    if code == 0 or BLOBS_EXTENSION_KEY in printed or "<redacted>" not in printed:
        problems.append("a refused subscription is not reported, or its error shows the key")
    code, printed, calls, _ = run_postdeploy(hook, POSTDEPLOY_ENVIRONMENT, key_after=0)
    if code == 0 or "blobs_extension" not in printed or any(c[:2] == ["eventgrid", "system-topic"] for c in calls):
        problems.append("an app without the key is not reported as such, with nothing subscribed")
    code, printed, calls, _ = run_postdeploy(hook, POSTDEPLOY_ENVIRONMENT, by_hand=True)
    if code != 0 or not any(c[:2] == ["eventgrid", "system-topic"] for c in calls):
        problems.append(f"postdeploy.sh run by hand does not read azd env get-values: {_hide(printed)[-300:]}")
    return problems
