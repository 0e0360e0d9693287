"""Prometheus exposition of the suite's counters (prometheus-client).

Protocol code counts with `ctx.events.inc("<component>.<event>")` and knows nothing of
Prometheus; this collector turns each counter into
`mailsuite_events_total{component="smtp", event="received"}` and adds the gauges a scrape
should see right now (event-loop lag, open connections), and the loop watchdog's stalls.
With several worker processes, a scrape shows the host: the worker that serves it asks the
supervisor, which adds up every worker's `figures`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Figures = dict[str, Any]


def figures(ctx: Any) -> Figures:
    """What one server process has to show, as plain JSON data: its counters, its loop lag
    and its watchdog's stalls. A supervisor adds its workers' up with `merged`."""
    watchdog = ctx.lag
    longest = watchdog.worst_stall if watchdog is not None else None
    return {
        "counters": ctx.events.snapshot(),
        "lag": watchdog.last if watchdog is not None else 0.0,
        "stalls": (
            [[p, c, n] for (p, c), n in sorted(watchdog.stalls.items())] if watchdog else []
        ),
        "stalled_seconds": watchdog.stalled_seconds if watchdog is not None else 0.0,
        "worst_stall": longest.seconds if longest else 0.0,
    }


def merged(parts: list[Figures]) -> Figures:
    """The host's figures from each worker's: counters, stalls and stalled time add up, the
    lag and the worst stall are the worst worker's."""
    counters: Counter[str] = Counter()
    stalls: Counter[tuple[str, str]] = Counter()
    for part in parts:
        counters.update(part["counters"])
        for protocol, command, count in part["stalls"]:
            stalls[(protocol, command)] += count
    return {
        "counters": dict(counters),
        "lag": max((p["lag"] for p in parts), default=0.0),
        "stalls": [[p, c, n] for (p, c), n in sorted(stalls.items())],
        "stalled_seconds": sum(p["stalled_seconds"] for p in parts),
        "worst_stall": max((p["worst_stall"] for p in parts), default=0.0),
    }


class _SuiteCollector:
    def __init__(self, figures: Figures) -> None:
        self.figures = figures

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
        for name, value in sorted(self.figures["counters"].items()):
            component, _, event = name.partition(".")
            if event.startswith("open."):
                gauges.add_metric([component, event.removeprefix("open.")], value)
            else:
                events.add_metric([component, event or "total"], value)
        yield events
        yield gauges
        lag = GaugeMetricFamily(
            "mailsuite_event_loop_lag_seconds",
            "How late the event loop last woke up (the latest worker's worst).",
        )
        lag.add_metric([], self.figures["lag"])
        yield lag
        yield from _stall_metrics(self.figures)


def _stall_metrics(figures: Figures) -> Iterator[Metric]:
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
    for protocol, command, count in figures["stalls"]:
        stalls.add_metric([protocol, command], count)
    seconds.add_metric([], figures["stalled_seconds"])
    worst.add_metric([], figures["worst_stall"])
    yield stalls
    yield seconds
    yield worst


def render(ctx: Any) -> bytes:
    """This process's figures in the exposition format."""
    return render_figures(figures(ctx))


def render_figures(data: Figures) -> bytes:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_SuiteCollector(data))  # type: ignore[arg-type]
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
