"""ASP.NET-style route templates, as the Functions host matches HTTP trigger routes.

`api/plots/{sensor_id}.png`, `{id:int}`, `{name:alpha:maxlength(8)}`, optional `{page?}` in the last
segments, and a catch-all `{*rest}`. Literal text matches case-insensitively; parameter values are handed
to the function as matched. More specific templates win: literal segments before constrained parameters,
before plain ones, before optional ones, before catch-alls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

_PARAMETER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONSTRAINT = re.compile(r"^([a-z]+)(?:\((.*)\))?$")

# Sort ranks per segment: lower is tried first.
_LITERAL, _MIXED, _CONSTRAINED, _PLAIN, _OPTIONAL, _CATCH_ALL = range(6)


class RouteTemplateError(ValueError):
    """A route template the host would refuse to register."""


def _is_int(value: str, low: int, high: int) -> bool:
    try:
        number = int(value)
    except ValueError:
        return False
    return low <= number <= high


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _numbers(arguments: str, count: int, name: str) -> list[int]:
    parts = [part.strip() for part in arguments.split(",")] if arguments else []
    if len(parts) != count or not all(re.fullmatch(r"-?\d+", part) for part in parts):
        raise RouteTemplateError(f"constraint {name} takes {count} integer argument(s), got ({arguments})")
    return [int(part) for part in parts]


def _constraint(text: str) -> Callable[[str], bool]:
    match = _CONSTRAINT.match(text)
    if not match:
        raise RouteTemplateError(f"{text!r} is not a route constraint")
    name, arguments = match.group(1), match.group(2) or ""
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _is_int(v, -(2**31), 2**31 - 1),
        "long": lambda v: _is_int(v, -(2**63), 2**63 - 1),
        "bool": lambda v: v.lower() in ("true", "false"),
        "alpha": lambda v: v.isascii() and v.isalpha(),
        "decimal": _is_float,
        "double": _is_float,
        "float": _is_float,
        "guid": _is_guid,
        "datetime": _is_datetime,
    }
    if name in simple:
        if arguments:
            raise RouteTemplateError(f"constraint {name} takes no arguments")
        return simple[name]
    if name == "minlength":
        (low,) = _numbers(arguments, 1, name)
        return lambda v: len(v) >= low
    if name == "maxlength":
        (high,) = _numbers(arguments, 1, name)
        return lambda v: len(v) <= high
    if name == "length":
        bounds = _numbers(arguments, 2 if "," in arguments else 1, name)
        low, high = (bounds[0], bounds[-1])
        return lambda v: low <= len(v) <= high
    if name == "min":
        (floor,) = _numbers(arguments, 1, name)
        return lambda v: _is_int(v, floor, 2**63 - 1)
    if name == "max":
        (ceiling,) = _numbers(arguments, 1, name)
        return lambda v: _is_int(v, -(2**63), ceiling)
    if name == "range":
        low, high = _numbers(arguments, 2, name)
        return lambda v: _is_int(v, low, high)
    if name == "regex":
        try:
            pattern = re.compile(arguments, re.IGNORECASE)
        except re.error as bad:
            raise RouteTemplateError(f"regex constraint ({arguments}) does not compile: {bad}") from None
        return lambda v: pattern.search(v) is not None
    raise RouteTemplateError(f"unknown route constraint {name!r}")


def _split_constraints(body: str) -> list[str]:
    """`alpha:maxlength(8)` → [alpha, maxlength(8)]; colons inside parentheses (regex) stay put."""
    parts, depth, current = [], 0, ""
    for char in body:
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    parts.append(current)
    return parts


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    optional: bool
    catch_all: bool
    checks: tuple[Callable[[str], bool], ...]


def _parse_parameter(body: str, template: str) -> _Parameter:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    body = body.removesuffix("?")
    name, *constraints = _split_constraints(body)
    if "=" in name:
        raise RouteTemplateError(f"default values are not supported in {template!r}")
    if not _NAME.match(name):
        raise RouteTemplateError(f"{name!r} in {template!r} is not a parameter name")
    return _Parameter(name, optional, catch_all, tuple(_constraint(c) for c in constraints))


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    template: str
    pattern: re.Pattern[str]
    parameters: tuple[_Parameter, ...]
    sort_key: tuple[tuple[int, ...], int]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        text = template.strip("/")
        segments = text.split("/") if text else []
        pieces: list[str] = []
        parameters: list[_Parameter] = []
        ranks: list[int] = []
        literal_length = 0
        for position, segment in enumerate(segments):
            if not segment:
                raise RouteTemplateError(f"{template!r} has an empty segment")
            last = position == len(segments) - 1
            matches = list(_PARAMETER.finditer(segment))
            literals = _PARAMETER.split(segment)[::2]
            if any("{" in lit or "}" in lit for lit in literals):
                raise RouteTemplateError(f"unbalanced braces in {template!r}")
            segment_parameters = [_parse_parameter(m.group(1), template) for m in matches]
            if any(p.name in {q.name for q in parameters} for p in segment_parameters):
                raise RouteTemplateError(f"{template!r} uses a parameter name twice")
            if len(segment_parameters) > 1 and not all(literals[1:-1]):
                raise RouteTemplateError(f"two parameters in {segment!r} need a literal between them")
            for parameter in segment_parameters:
                if parameter.catch_all and not last:
                    raise RouteTemplateError(f"catch-all {{*{parameter.name}}} must be the last segment")
            regex = ""
            for index, literal in enumerate(literals):
                regex += re.escape(literal)
                literal_length += len(literal)
                if index < len(segment_parameters):
                    parameter = segment_parameters[index]
                    value = ".*" if parameter.catch_all else "[^/]+?" if len(literals) > 2 or literals[-1] else "[^/]+"
                    regex += f"(?P<{parameter.name}>{value})"
            parameters.extend(segment_parameters)
            whole = len(segment_parameters) == 1 and literals == ["", ""]
            only = segment_parameters[0] if whole else None
            if only is not None and (only.optional or only.catch_all):
                ranks.append(_CATCH_ALL if only.catch_all else _OPTIONAL)
                separator = "/" if pieces else ""
                pieces.append(f"(?:{separator}{regex})?")
                continue
            if any(p.optional for p in segment_parameters):
                raise RouteTemplateError(f"an optional parameter must fill its segment in {template!r}")
            if pieces and pieces[-1].endswith(")?"):
                raise RouteTemplateError(f"only the last segments of {template!r} can be optional")
            if not segment_parameters:
                ranks.append(_LITERAL)
            elif not whole:
                ranks.append(_MIXED)
            else:
                ranks.append(_CONSTRAINED if segment_parameters[0].checks else _PLAIN)
            pieces.append(("/" if pieces else "") + regex)
        pattern = re.compile("^" + "".join(pieces) + "$", re.IGNORECASE | re.DOTALL)
        return cls(template, pattern, tuple(parameters), (tuple(ranks) + (_CATCH_ALL + 1,), -literal_length))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (no leading or trailing slash), or None when it does not match."""
        found = self.pattern.match(path.strip("/"))
        if found is None:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found.group(parameter.name)
            if value is None or value == "":
                if not (parameter.optional or parameter.catch_all):
                    return None
                if value is None:
                    continue
            if not all(check(value) for check in parameter.checks):
                return None
            values[parameter.name] = value
        return values


def join_route(prefix: str, route: str) -> str:
    """host.json routePrefix + the function's route, as the host joins them ("" prefix = no prefix)."""
    return "/".join(part.strip("/") for part in (prefix, route) if part.strip("/"))
