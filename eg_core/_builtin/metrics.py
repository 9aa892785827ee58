"""The ``metrics`` plugin: ``GET /metrics`` in Prometheus' text format (token required).

A builtin policy written exactly as a third-party one: thin hook implementations over
:mod:`eg_core._builtin._metrics`. Series (all prefixed ``eg_``):

- gauges, computed at scrape time: ``kernels{kernelspec,resource_manager,execution_state}``,
  ``websocket_connections{kernelspec}``, ``kernels_launching``, ``build_info{version}``,
  ``pool_kernels{kernelspec}`` (waiting in a warm pool);
- counters: ``kernel_launches_total{kernelspec,resource_manager}``,
  ``kernel_launch_failures_total{kernelspec,resource_manager,phase}``,
  ``kernel_culls_total{kernelspec}``, ``pool_hits_total{kernelspec}``, ``pool_misses_total{kernelspec}``, ``kernel_events_total{event,kernelspec}``,
  ``messages_relayed_total{direction}``;
- histograms: ``kernel_launch_duration_seconds{kernelspec,resource_manager}``,
  ``kernel_launch_phase_duration_seconds{kernelspec,phase}``, ``pool_refill_duration_seconds{kernelspec}``;
- and prometheus_client's ``process_*`` series (RSS, CPU, open file descriptors).

Scrape with ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` setting)::

    scrape_configs:
      - job_name: eg
        authorization: {credentials: <the gateway's token>}
        static_configs: [{targets: ["gateway:8888"]}]
"""

from __future__ import annotations

from eg_core import hookimpl

from ._metrics import METRICS, MetricsHandler


@hookimpl
def eg_web_handlers():
    return [(r"metrics", MetricsHandler)]


@hookimpl
def eg_startup(gateway):
    METRICS.gateway = gateway


@hookimpl
def eg_kernel_event(kernel, event, details):
    METRICS.observe(kernel, event, details)


@hookimpl
def eg_shutdown(gateway):
    if METRICS.gateway is gateway:
        METRICS.gateway = None
