"""Prometheus metrics of the gateway, kept as plain counters until someone scrapes them.

Events are counted in dictionaries (no prometheus_client import and next to no memory on the
event path); ``prometheus_client`` is imported at the first scrape, which builds the metric
families from those counters and from the live kernel registry, in a ``CollectorRegistry`` of
this plugin's own (never the process-global one).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import Any, Iterator

from eg_core import Event, __version__
from eg_core.web import APIHandler
from eg_core.config import finite_number

# seconds; a launch takes ~1 s locally and up to minutes on a cluster (image pulls, YARN queues)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
EXECUTION_STATES = ("starting", "idle", "busy", "restarting", "dead")


class Histogram:
    """Counts per bucket (not cumulative), a sum and a count."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, int]]:
        total, out = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts):
            total += count
            out.append((bound, total))
        return out


def _number(value: Any) -> float | None:
    try:
        number = finite_number(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


class Metrics:
    """What the gateway has done (counters) plus, at scrape time, what it holds now (gauges)."""

    def __init__(self) -> None:
        self.gateway: Any = None
        self.events: Counter = Counter()  # (event, kernelspec)
        self.launches: Counter = Counter()  # (kernelspec, resource_manager)
        self.failures: Counter = Counter()  # (kernelspec, resource_manager, phase)
        self.culls: Counter = Counter()  # (kernelspec,)
        self.pool_hits: Counter = Counter()  # (kernelspec,)
        self.pool_misses: Counter = Counter()  # (kernelspec,)
        self.pool_refill_seconds: dict[tuple, Histogram] = {}  # (kernelspec,)
        self.launch_seconds: dict[tuple, Histogram] = {}  # (kernelspec, resource_manager)
        self.phase_seconds: dict[tuple, Histogram] = {}  # (kernelspec, phase)
        self._registry: Any = None

    # -- the event path ------------------------------------------------------------------------

    def observe(self, kernel: Any, event: str, details: dict[str, Any]) -> None:
        spec, rm = kernel.kernel_name, kernel.resource_manager
        self.events[(event, spec)] += 1
        if event == Event.LAUNCHED:
            self.launches[(spec, rm)] += 1
            duration = _number(details.get("duration"))
            if duration is not None:
                self._histogram(self.launch_seconds, (spec, rm)).observe(duration)
                if details.get("pooled"):
                    self._histogram(self.pool_refill_seconds, (spec,)).observe(duration)
            for phase, seconds in (details.get("phases") or {}).items():
                seconds = _number(seconds)
                if seconds is not None:
                    self._histogram(self.phase_seconds, (spec, str(phase))).observe(seconds)
        elif event == Event.LAUNCH_FAILED:
            self.failures[(spec, rm, str(details.get("phase") or "unknown"))] += 1
        elif event == Event.CULLED:
            self.culls[(spec,)] += 1
        elif event == "pool_claimed":
            self.pool_hits[(spec,)] += 1
        elif event == "pool_miss":
            self.pool_misses[(spec,)] += 1

    @staticmethod
    def _histogram(table: dict[tuple, Histogram], key: tuple) -> Histogram:
        hist = table.get(key)
        if hist is None:
            hist = table[key] = Histogram()
        return hist

    # -- the scrape path -----------------------------------------------------------------------

    def registry(self) -> Any:
        if self._registry is None:
            from prometheus_client import CollectorRegistry, ProcessCollector

            registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=registry)
            registry.register(_Collector(self))
            self._registry = registry
        return self._registry

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry()), content_type

    def families(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        info = GaugeMetricFamily("eg_build_info", "The eg gateway's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

        kernels = GaugeMetricFamily(
            "eg_kernels", "Kernels held by the gateway, by kernelspec, resource manager and execution state.",
            labels=["kernelspec", "resource_manager", "execution_state"],
        )
        connections = GaugeMetricFamily(
            "eg_websocket_connections", "Open websocket connections to kernels, by kernelspec.", labels=["kernelspec"]
        )
        gateway = self.gateway
        held = gateway.kernels() if gateway is not None else []
        by_state: Counter = Counter({(spec, rm, state): 0 for spec, rm in self.launches for state in EXECUTION_STATES})
        by_spec: Counter = Counter({spec: 0 for spec, _ in self.launches})
        for kernel in held:
            for state in EXECUTION_STATES:
                by_state.setdefault((kernel.kernel_name, kernel.resource_manager, state), 0)
            by_state[(kernel.kernel_name, kernel.resource_manager, kernel.execution_state)] += 1
            by_spec[kernel.kernel_name] += kernel.connections
        for labels, value in sorted(by_state.items()):
            kernels.add_metric(list(labels), value)
        for spec, value in sorted(by_spec.items()):
            connections.add_metric([spec], value)
        yield kernels
        yield connections
        pooled = GaugeMetricFamily(
            "eg_pool_kernels", "Kernels waiting in a warm pool (not in eg_kernels), by kernelspec.", labels=["kernelspec"]
        )
        waiting: Counter = Counter({spec: 0 for (spec,) in (*self.pool_hits, *self.pool_misses, *self.pool_refill_seconds)})
        for kernel in gateway.pooled_kernels() if gateway is not None else []:
            waiting[kernel.kernel_name] += 1
        for spec, value in sorted(waiting.items()):
            pooled.add_metric([spec], value)
        yield pooled
        pending = GaugeMetricFamily("eg_kernels_launching", "Kernel launches in progress.")
        pending.add_metric([], gateway.launching if gateway is not None else 0)
        yield pending

        yield _counter(CounterMetricFamily, "eg_kernel_launches", "Kernels launched (first launches, not restarts).",
                       ["kernelspec", "resource_manager"], self.launches)
        yield _counter(CounterMetricFamily, "eg_kernel_launch_failures", "Kernel launches that failed, by failed phase.",
                       ["kernelspec", "resource_manager", "phase"], self.failures)
        yield _counter(CounterMetricFamily, "eg_kernel_culls", "Kernels shut down by the idle culler.",
                       ["kernelspec"], self.culls)
        yield _counter(CounterMetricFamily, "eg_pool_hits", "Kernel requests served by a waiting warm-pool kernel.",
                       ["kernelspec"], self.pool_hits)
        yield _counter(CounterMetricFamily, "eg_pool_misses", "Kernel requests for a pooled kernelspec that started a kernel "
                       "(pool empty, or the request needs what only a launch applies).", ["kernelspec"], self.pool_misses)
        yield _counter(CounterMetricFamily, "eg_kernel_events", "Kernel lifecycle events, by event.",
                       ["event", "kernelspec"], self.events)

        relayed = CounterMetricFamily(
            "eg_messages_relayed", "Kernel messages relayed between websockets and kernels.", labels=["direction"]
        )
        counts = gateway.messages_relayed if gateway is not None else {"from_kernel": 0, "to_kernel": 0}
        relayed.add_metric(["from_kernel"], counts["from_kernel"])
        relayed.add_metric(["to_kernel"], counts["to_kernel"])
        yield relayed

        yield _histogram(HistogramMetricFamily, "eg_kernel_launch_duration_seconds",
                         "Seconds from launch request to kernel_info reply.", ["kernelspec", "resource_manager"],
                         self.launch_seconds)
        yield _histogram(HistogramMetricFamily, "eg_kernel_launch_phase_duration_seconds",
                         "Seconds each launch phase took (before_launch, launch_process, confirm_startup, "
                         "connection_info, kernel_info).", ["kernelspec", "phase"], self.phase_seconds)
        yield _histogram(HistogramMetricFamily, "eg_pool_refill_duration_seconds",
                         "Seconds a warm pool's launch took (launch to kernel_info reply).", ["kernelspec"],
                         self.pool_refill_seconds)


def _counter(cls: Any, name: str, doc: str, labels: list[str], counts: Counter) -> Any:
    family = cls(name, doc, labels=labels)
    for key, value in sorted(counts.items()):
        family.add_metric(list(key), value)
    return family


def _histogram(cls: Any, name: str, doc: str, labels: list[str], table: dict[tuple, Histogram]) -> Any:
    family = cls(name, doc, labels=labels)
    for key, hist in sorted(table.items()):
        family.add_metric(list(key), hist.buckets(), hist.sum)
    return family


class _Collector:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self.metrics.families()


METRICS = Metrics()


class MetricsHandler(APIHandler):
    """``GET /metrics``: Prometheus text (or OpenMetrics) exposition; the gateway's token applies
    (scrapers send ``Authorization: Bearer <token>``)."""

    def get(self) -> None:
        body, content_type = METRICS.exposition(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.finish(body)
