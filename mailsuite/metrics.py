"""Prometheus exposition of the suite's counters (prometheus-client).

Protocol code counts with `ctx.events.inc("<component>.<event>")` and knows nothing of
Prometheus; this collector turns each counter into
`mailsuite_events_total{component="smtp", event="received"}` and adds the gauges a scrape
should see right now (event-loop lag, open connections), and the loop watchdog's stalls.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _SuiteCollector:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "mailsuite_events",
            "What the suite did, by component and event.",
            labels=["component", "event"],
        )
        gauges = GaugeMetricFamily(
            "mailsuite_current",
            "Levels right now (open connections, queue size).",
            labels=["component", "what"],
        )
        for name, value in sorted(self.ctx.events.snapshot().items()):
            component, _, event = name.partition(".")
            if event.startswith("open."):
                gauges.add_metric([component, event.removeprefix("open.")], value)
            else:
                events.add_metric([component, event or "total"], value)
        yield events
        yield gauges
        lag = GaugeMetricFamily(
            "mailsuite_event_loop_lag_seconds", "How late the event loop last woke up."
        )
        watchdog = self.ctx.lag
        lag.add_metric([], watchdog.last if watchdog else 0.0)
        yield lag
        yield from _stall_metrics(watchdog)


def _stall_metrics(watchdog: Any) -> Iterator[Metric]:
    """What the loop watchdog (control.LoopLag) saw: every stall over its threshold, by the
    protocol and command that held the loop ("unknown" when no session command did)."""
    stalls = CounterMetricFamily(
        "mailsuite_event_loop_stalls",
        "Times one callback held the event loop past the watchdog threshold (100 ms).",
        labels=["protocol", "command"],
    )
    seconds = CounterMetricFamily(
        "mailsuite_event_loop_stalled_seconds", "Time the event loop spent held by stalls."
    )
    worst = GaugeMetricFamily(
        "mailsuite_event_loop_worst_stall_seconds", "The longest stall since the server started."
    )
    if watchdog is not None:
        for (protocol, command), count in sorted(watchdog.stalls.items()):
            stalls.add_metric([protocol, command], count)
        longest = watchdog.worst_stall
        seconds.add_metric([], watchdog.stalled_seconds)
        worst.add_metric([], longest.seconds if longest else 0.0)
    else:
        seconds.add_metric([], 0.0)
        worst.add_metric([], 0.0)
    yield stalls
    yield seconds
    yield worst


def render(ctx: Any) -> bytes:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_SuiteCollector(ctx))  # type: ignore[arg-type]
    return generate_latest(registry)


def allowed(remote: str | None, networks: list[str]) -> bool:
    """Whether a client may read /metrics (`web.metrics_allow`)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)
