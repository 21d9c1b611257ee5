"""Reads the Bicep templates under infra/ as text: resources, parameters, outputs, modules and the app settings.

The Bicep compiler cannot be installed here, so tests read the templates instead; these readers rely only on the
shape every template keeps: one declaration per statement, `output` values on one line, and the app settings as a
single `var appSettings = {` block with one `NAME: value` per line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"

APP_SETTINGS_START = "var appSettings = {"

_RESOURCE = re.compile(r"^[ \t]*resource\s+(\w+)\s+'([^'@]+)(?:@([^']*))?'\s+(existing\s+)?=", re.MULTILINE)
_CONDITION = re.compile(r"\s*if\b")
_MODULE = re.compile(r"^module\s+(\w+)\s+'([^']+)'", re.MULTILINE)
_OUTPUT = re.compile(r"^output\s+(\w+)\s+(\w+)\s*=\s*(.+?)\s*$", re.MULTILINE)
_PARAM = re.compile(r"^param\s+(\w+)\s+([\w\[\]]+)(?:\s*=\s*(.+?))?\s*$")
_SETTING = re.compile(r"^\s+('[^']*'|[A-Za-z_]\w*)\s*:\s*(.+?)\s*$")
_OPEN, _CLOSE = "{[(", "}])"


def bicep_files(path: Path) -> list[Path]:
    """The .bicep file itself, or every .bicep file under a folder."""
    return [path] if path.is_file() else sorted(path.rglob("*.bicep"))


def _scan(text: str, keep_strings: bool) -> str:
    """The text with comments (and, unless keep_strings, the contents of string literals) blanked to spaces.

    Line breaks and offsets are kept, so a match in the result points at the same place in the original. The code
    inside a string's ${...} interpolation is kept either way."""
    out = list(text)
    # Each entry is the mode to return to: "string" when inside ${...} of a string.
    stack: list[str] = []
    depth: list[int] = []
    mode = "code"
    i = 0
    while i < len(text):
        char, pair = text[i], text[i : i + 2]
        if mode == "code":
            if pair == "//":
                end = text.find("\n", i)
                end = len(text) if end == -1 else end
                out[i:end] = " " * (end - i)
                i = end
                continue
            if pair == "/*":
                end = text.find("*/", i + 2)
                end = len(text) if end == -1 else end + 2
                out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
                i = end
                continue
            if char == "'":
                mode = "string"
            elif char == "{" and depth:
                depth[-1] += 1
            elif char == "}" and depth:
                if depth[-1] == 0:
                    depth.pop()
                    mode = stack.pop()
                else:
                    depth[-1] -= 1
            i += 1
            continue
        # Inside a string literal.
        if char == "\\":  # an escape: \' \\ \$ \n \r \t
            if not keep_strings:
                out[i : i + 2] = "  "
            i += 2
        elif pair == "${":
            stack.append("string")
            depth.append(0)
            mode = "code"
            i += 2
        elif char == "'":
            mode = "code"
            i += 1
        else:
            if not keep_strings and char != "\n":
                out[i] = " "
            i += 1
    return "".join(out)


def strip_comments(text: str) -> str:
    """The text with // and /* */ comments blanked out; strings are kept as they are."""
    return _scan(text, keep_strings=True)


def code_only(text: str) -> str:
    """The text with comments and the contents of string literals blanked out (interpolated code kept)."""
    return _scan(text, keep_strings=False)


def _block_end(code: str, start: int) -> int:
    """Offset just past the bracketed block that opens at or after `start` (brackets counted in code only)."""
    depth = 0
    for i in range(start, len(code)):
        if code[i] in _OPEN:
            depth += 1
        elif code[i] in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced brackets after offset {start}")


@dataclass(frozen=True, slots=True)
class BicepResource:
    path: Path
    symbol: str
    type: str
    api_version: str | None
    existing: bool
    line: int
    body: str  # the declaration's text from `resource` to its closing bracket, comments blanked


def resources(path: Path) -> list[BicepResource]:
    """Every `resource` declaration in a file or under a folder, new and `existing` alike."""
    found = []
    for file in bicep_files(path):
        text = strip_comments(file.read_text(encoding="utf-8"))
        code = code_only(text)
        for match in _RESOURCE.finditer(code):
            # The type sits inside a string literal, blanked in `code`: read it from the same place in `text`.
            literal = _RESOURCE.match(text, match.start())
            if literal is None:
                raise ValueError(f"{file}: cannot read the resource at offset {match.start()}")
            symbol, type_, version, existing = literal.groups()
            start = match.end()
            condition = _CONDITION.match(code, start)
            if condition:  # `= if (...) {`: the body is the block after the condition
                start = _block_end(code, condition.end())
            end = _block_end(code, start)
            line = text[: match.start()].count("\n") + 1
            body = text[match.start() : end]
            found.append(BicepResource(file, symbol, type_, version, bool(existing), line, body))
    return found


@dataclass(frozen=True, slots=True)
class BicepParam:
    name: str
    type: str
    default: str | None
    decorators: tuple[str, ...]

    def has_decorator(self, name: str) -> bool:
        return any(d == f"@{name}" or d.startswith(f"@{name}(") for d in self.decorators)


def params(path: Path) -> dict[str, BicepParam]:
    """The parameters of one file, with the decorators written above each."""
    text = strip_comments(path.read_text(encoding="utf-8"))
    code = code_only(text)
    found: dict[str, BicepParam] = {}
    pending: list[str] = []
    offset = 0
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("@"):
            # A decorator may span lines (@allowed([...]), @metadata({...})): read to its closing bracket.
            end = _block_end(code, offset) if any(c in _OPEN for c in code[offset : offset + len(line)]) else 0
            decorator = text[offset:end] if end else line
            pending.append(decorator.strip())
            span = decorator.count("\n") + 1
            offset += sum(len(lines[j]) + 1 for j in range(i, i + span))
            i += span
            continue
        match = _PARAM.match(line)
        if match:
            name, type_, default = match.groups()
            found[name] = BicepParam(name, type_, default, tuple(pending))
            pending = []
        elif line.strip():
            pending = []
        offset += len(line) + 1
        i += 1
    return found


def outputs(path: Path) -> dict[str, str]:
    """Output name -> its value expression, for one file."""
    text = strip_comments(path.read_text(encoding="utf-8"))
    return {name: value for name, _type, value in _OUTPUT.findall(text)}


def modules(path: Path) -> dict[str, Path]:
    """Module symbol -> the file it deploys, for one file."""
    text = strip_comments(path.read_text(encoding="utf-8"))
    return {symbol: (path.parent / target).resolve() for symbol, target in _MODULE.findall(text)}


def module_body(path: Path, symbol: str) -> str:
    """The text of one `module` declaration of a file, from `module` to its closing bracket, comments blanked."""
    text = strip_comments(path.read_text(encoding="utf-8"))
    match = re.search(rf"^module\s+{re.escape(symbol)}\s+'[^']+'\s*=", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"{path}: no module {symbol}")
    return text[match.start() : _block_end(code_only(text), match.end())]


def app_settings_block(path: Path) -> tuple[Path, list[str]]:
    """The file holding the one `var appSettings = {` block under `path`, and the lines inside the block."""
    blocks = []
    for file in bicep_files(path):
        lines = file.read_text(encoding="utf-8").split("\n")
        for start, line in enumerate(lines):
            if line.strip() != APP_SETTINGS_START:
                continue
            indent = line[: len(line) - len(line.lstrip())]
            for end in range(start + 1, len(lines)):
                if lines[end].rstrip() == f"{indent}}}":
                    blocks.append((file, lines[start + 1 : end]))
                    break
            else:
                raise ValueError(f"{file}:{start + 1}: the app settings block has no closing line")
    if len(blocks) != 1:
        raise ValueError(f"expected one '{APP_SETTINGS_START}' block under {path}, found {len(blocks)}")
    return blocks[0]


def bicep_app_settings(path: Path) -> dict[str, str]:
    """App setting name -> the raw Bicep value expression (e.g. "'managedidentity'", "string(sensorCount)"), read
    from the single `var appSettings = {` block of a .bicep file or of the files under a folder."""
    file, lines = app_settings_block(path)
    settings: dict[str, str] = {}
    for line in lines:
        code = strip_comments(line)
        if not code.strip():
            continue
        match = _SETTING.match(code)
        if match is None or match.group(2).endswith(("{", "[")):
            raise ValueError(f"{file}: not one 'NAME: value' per line in the app settings: {line.strip()!r}")
        name, value = match.group(1).strip("'"), match.group(2)
        if name in settings:
            raise ValueError(f"{file}: app setting {name} is set twice")
        settings[name] = value
    return settings
