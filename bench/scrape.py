"""Mean time per request at each layer, from the gateway's and the worker's own histograms."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

UPLOAD_ROUTE = "/v1/audio/transcriptions"
# layer -> (which process's /metrics, histogram, the label that selects our requests)
HISTOGRAMS = {
    "gateway_request_s": ("gateway", "pyparrot_http_request_duration_seconds", "route"),
    "bus_roundtrip_s": ("gateway", "pyparrot_bus_roundtrip_seconds", "component"),
    "worker_job_s": ("worker", "pyparrot_job_duration_seconds", "component"),
}
LABELS = {"route": UPLOAD_ROUTE, "component": "stt"}
Totals = dict[str, tuple[float, float]]  # layer -> (sum of seconds, count)
T = TypeVar("T")


@dataclass(frozen=True)
class Layers:
    """Mean seconds per request at each layer over a measured window."""

    gateway_request_s: float
    bus_roundtrip_s: float
    worker_job_s: float


def _totals(text: str, name: str, labels: dict[str, str]) -> tuple[float, float]:
    """(sum, count) of histogram ``name`` over the samples matching ``labels``."""
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name == f"{name}_sum":
                total += sample.value
            elif sample.name == f"{name}_count":
                count += sample.value
    return total, count


def scrape(urls: dict[str, str]) -> Totals:
    """Current totals of every layer; ``urls`` maps "gateway"/"worker" to a /metrics URL."""
    pages = {name: httpx.get(url, timeout=10).text for name, url in urls.items()}
    return {
        key: _totals(pages[page], metric, {label: LABELS[label]})
        for key, (page, metric, label) in HISTOGRAMS.items()
    }


def layers(before: Totals, after: Totals) -> Layers:
    """Mean per request of each layer between two scrapes."""
    means = {}
    for key in HISTOGRAMS:
        total = after[key][0] - before[key][0]
        count = after[key][1] - before[key][1]
        means[key] = total / count if count else float("nan")
    return Layers(**means)


class LayerProbe:
    """Scrapes the layers around each call of a path, outside its timed region."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.calls: list[Layers] = []

    def wrap(self, path: Callable[[], T]) -> Callable[[], T]:
        """``path``, recording the layers of each call in ``calls``."""

        def probed() -> T:
            before = scrape(self.urls)
            result = path()
            self.calls.append(layers(before, scrape(self.urls)))
            return result

        return probed

    def mean(self) -> Layers:
        """Mean of each layer over the recorded calls."""
        n = len(self.calls)
        return Layers(
            gateway_request_s=sum(c.gateway_request_s for c in self.calls) / n,
            bus_roundtrip_s=sum(c.bus_roundtrip_s for c in self.calls) / n,
            worker_job_s=sum(c.worker_job_s for c in self.calls) / n,
        )
