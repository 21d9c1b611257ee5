"""What the series tests share: readings written as the pipeline writes them (into `readings`, then summarised
one by one as the change feed would deliver them), GET requests as the host makes them, and a small HTML tree to
read a page as a browser would (the standard library's parser; text and attributes unescaped)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import azure.functions as func

from shared.app import services
from shared.readings.reading import format_timestamp
from shared.storage.names import READINGS
from tests.component.conftest import Handler

# Recent enough for a series to be "ok" and inside the downloads' default span (the last 24 hours).
T0 = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)


def at(second: int) -> str:
    """The stored time of a reading `second` seconds after T0."""
    return format_timestamp(T0 + timedelta(seconds=second))


def reading(
    sensor_id: str, second: int, value: float, metric: str = "temperature", unit: str = "°C", source: str = "rig"
) -> dict[str, Any]:
    return {
        "id": f"{sensor_id}-{metric}-{second:04d}",
        "sensor_id": sensor_id,
        "metric": metric,
        "value": value,
        "unit": unit,
        "timestamp": at(second),
        "source": source,
    }


def seed(
    sensor_id: str,
    seconds: Iterable[int],
    metric: str = "temperature",
    unit: str = "°C",
    source: str = "rig",
    base: float = 20.0,
) -> list[dict[str, Any]]:
    """Readings of value base + second, each written to `readings` and summarised on its own (a summary each)."""
    docs = [reading(sensor_id, s, base + s, metric, unit, source) for s in seconds]
    app = services()
    app.stores.documents.upsert_many(READINGS, docs)
    for doc in docs:
        outcome = app.summariser.apply([doc], source="test")
        assert not outcome.dead_lettered, outcome
    return docs


def get(
    handler: Handler, url: str, params: dict[str, str] | None = None, route_params: dict[str, str] | None = None
) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://localhost/{url}",
        headers={},
        params=params or {},
        route_params=route_params or {},
        body=b"",
    )
    return handler(request)


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str, **attrs: str) -> list[Element]:
        """Every element below this one with the tag and, for each keyword (class_ for class), a value containing
        the given word or equal to it."""
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if child.tag == tag and all(_has(child, name.rstrip("_"), value) for name, value in attrs.items()):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str, **attrs: str) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


def _has(element: Element, name: str, value: str) -> bool:
    actual = element.attrs.get(name.replace("_", "-"))
    if actual is None:
        return False
    return actual == value or (name == "class" and value in actual.split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def table_rows(table: Element) -> list[list[str]]:
    """The body rows of a table, each as the text of its cells."""
    return [[cell.text() for cell in row.all("td")] for row in table.one("tbody").all("tr")]
