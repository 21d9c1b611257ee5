"""devhost's GET /api/metrics read back as samples, and sums over them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.devhost_process import DevhostProcess

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # (name, labels) -> value


def scrape(host: DevhostProcess) -> Samples:
    status, headers, body = host.get("/api/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, got), value in samples.items() if sample == name and wanted <= got)
