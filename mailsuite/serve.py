"""`mailsuite serve`: every service on one asyncio loop, in one process or in each worker.

Listening sockets are bound here (`bind_listeners`) and handed to each service's start
function, which adopts them: with `workers` above 1, the supervisor (`mailsuite.workers`)
binds them once and every worker process accepts from the same sockets.

Twisted's asyncio reactor is installed inside the running loop before any protocol module is
imported (they import the reactor at import time), and started without its signal handlers
so that this module owns SIGTERM, SIGINT and SIGHUP. `reactor.stop()` would stop the asyncio
loop under our feet, so shutdown closes each service itself: stop accepting, let in-flight
work finish within the grace period, then leave.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mailsuite import metrics
from mailsuite.auth import Authenticator
from mailsuite.config import ConfigError, Settings, load_config
from mailsuite.context import Context, Running, StartupError
from mailsuite.control import ControlServer, LoopLag
from mailsuite.directory import Directory
from mailsuite.events import Events
from mailsuite.netlimits import Connections, HostCounts
from mailsuite.passwords import Hasher
from mailsuite.services import BACKGROUND, LISTENERS
from mailsuite.store import Store
from mailsuite.tls import TLSMaterial
from mailsuite.workers import WorkerLink, WorkerRole, WorkerSpec

log = logging.getLogger("mailsuite.serve")

SHUTDOWN_GRACE = 4.0
BACKLOG = 511  # connections the kernel queues per listener before the workers accept them


def _install_reactor(loop: asyncio.AbstractEventLoop) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install(loop)
    from twisted.internet import reactor

    reactor.startRunning(installSignalHandlers=False)  # type: ignore[attr-defined]


def _entry(spec: str):  # type: ignore[no-untyped-def]
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def build_context(
    settings: Settings, config_path: Path, loop: asyncio.AbstractEventLoop
) -> Context:
    directory = Directory(settings.paths.database, settings.domains)
    events = Events()
    # /metrics: mailsuite_events_total{component="store", event="message_reads"}
    store = Store(
        settings.paths.maildirs, count_reads=lambda n: events.inc("store.message_reads", n)
    )
    store.attach_loop(loop)
    hasher = Hasher(settings.accounts.bcrypt_rounds, settings.accounts.auth_workers)
    return Context(
        settings=settings,
        config_path=config_path,
        directory=directory,
        store=store,
        auth=Authenticator(settings, directory, hasher, events),
        tls=TLSMaterial.for_settings(settings),
        loop=loop,
        io_pool=ThreadPoolExecutor(max_workers=16, thread_name_prefix="io"),
        events=events,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 for an IPv6 literal, else IPv4)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_listeners(settings: Settings) -> dict[str, socket.socket]:
    """A listening socket for every configured listener this version serves, by its key.

    StartupError names the listener that could not be bound; the ones bound are closed.
    """
    bound: dict[str, socket.socket] = {}
    try:
        for key, where in settings.listen:
            if where is None:
                continue
            if key not in LISTENERS:
                log.warning("listen.%s is set but this version has no %s server; skipped", key, key)
                continue
            host, port = where
            try:
                bound[key] = bind(host, port)
            except OSError as exc:
                raise StartupError(
                    f"listen.{key}: cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from None
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return bound


async def start_services(
    ctx: Context, sockets: dict[str, socket.socket] | None = None, *, host_services: bool = True
) -> dict[str, Running]:
    """Start every configured listener on its socket (bound now unless `sockets` has them),
    then, with `host_services`, the background services a host runs once (the outbound
    queue, the fetcher): of several workers, only the first runs them.

    On failure, what was started is closed again and StartupError says which listener failed.
    """
    sockets = bind_listeners(ctx.settings) if sockets is None else dict(sockets)
    started: dict[str, Running] = {}
    try:
        for key, where in ctx.settings.listen:
            sock = sockets.pop(key, None)
            if where is None or sock is None:
                continue
            try:
                running = await _entry(LISTENERS[key])(ctx, sock)
            except OSError as exc:
                raise StartupError(
                    f"listen.{key}: cannot listen on {where[0]}:{where[1]}: {exc.strerror or exc}"
                ) from None
            started[key] = running
            log.info("%s listening on %s:%s", key, *(running.address or where))
        for name, spec in BACKGROUND.items() if host_services else ():
            started[name] = await _entry(spec)(ctx)
            _hand_over(ctx, started[name])
    except BaseException:
        ctx.fetcher = None  # the handles given out above go with their services
        for sock in sockets.values():
            sock.close()
        await stop_services(started)
        raise
    return started


def _hand_over(ctx: Context, service: Running) -> None:
    """Give the other services their typed handle on a background service that has one."""
    from mailsuite.fetcher.service import FetcherService

    if isinstance(service, FetcherService):
        ctx.fetcher = service


def release_context(ctx: Context) -> None:
    """Once its services are closed, the Context lets go of the handles and of the state its
    packages kept (spools, locks, shared listings), so nothing of it outlives this server."""
    ctx.fetcher = None
    ctx.release_parts()


async def stop_services(started: dict[str, Running]) -> None:
    async def close(name: str, service: Running) -> None:
        try:
            await service.close()
        except Exception:
            log.exception("%s did not close cleanly", name)

    tasks = [asyncio.ensure_future(close(n, s)) for n, s in reversed(started.items())]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("%d service(s) did not stop within %.0f s", len(pending), SHUTDOWN_GRACE)


def listener_addresses(started: dict[str, Running]) -> dict[str, list[object]]:
    """Where each listener is bound, by its key."""
    return {name: list(s.address) for name, s in started.items() if s.address is not None}


def write_ready(path: Path, data: dict[str, object]) -> None:
    """Tell a supervisor (or a test) where each listener is bound, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def reload(ctx: Context) -> None:
    """SIGHUP: take a new config, certificates and directory without dropping connections.

    An invalid config is reported and the running one kept. Listener addresses and paths
    cannot move under open sockets; a change there is logged as needing a restart.
    """
    try:
        new = load_config(ctx.config_path)
    except ConfigError as exc:
        log.error("reload refused, keeping the running config:\n%s", exc.report())
        return
    for key, value in new.listen:
        if value != getattr(ctx.settings.listen, key):
            log.warning("listen.%s changed; it takes effect at the next restart", key)
    if new.paths != ctx.settings.paths:
        log.warning("paths changed; they take effect at the next restart")
        new = new.model_copy(update={"paths": ctx.settings.paths})
    ctx.settings = new
    ctx.auth.settings = new
    ctx.directory.domains = list(new.domains)
    try:
        ctx.tls.reload()
    except (OSError, ValueError) as exc:
        log.error("certificate reload failed, keeping the old one: %s", exc)
    for service in ctx.services.values():
        hook = getattr(service, "reload", None)
        if hook is not None:
            hook(new)
    log.info("reloaded %s", ctx.config_path)


def status(ctx: Context, started: float) -> dict[str, object]:
    """What `mailsuite status` shows: listeners, uptime, counters and each service's own."""
    lag = ctx.lag
    report: dict[str, object] = {
        "pid": os.getpid(),
        "uptime": round(time.monotonic() - started, 1),
        "hostname": ctx.settings.hostname,
        "listeners": {
            name: list(s.address) for name, s in ctx.services.items() if s.address is not None
        },
        "loop_lag_ms": {"last": round(lag.last * 1000, 2), "worst": round(lag.worst * 1000, 2)},
        "loop_stalls": lag.report(),  # every stall over 100 ms, by what held the loop
        "counters": ctx.events.snapshot(),
    }
    for name, service in ctx.services.items():
        extra = getattr(service, "status", None)
        if callable(extra):
            report[name] = extra()
    return report


async def serve(
    settings: Settings,
    config_path: Path,
    ready_file: Path | None = None,
    spec: WorkerSpec | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then shut down within the grace period; SIGHUP reloads.

    With `spec`, this process is one of the supervisor's workers: it adopts the sockets the
    supervisor bound, counts connections in the host's table, runs the once-per-host services
    only if it is the first worker, and answers the supervisor over its link instead of
    serving the control socket; it stops when the supervisor goes away.
    """
    loop = asyncio.get_running_loop()
    _install_reactor(loop)
    ctx = build_context(settings, config_path, loop)
    ctx.lag = LoopLag()
    started_at = time.monotonic()
    sockets = None
    if spec is not None:
        ctx.worker = WorkerRole(spec.slot, spec.count, settings.paths.control_socket)
        ctx.connections = Connections(HostCounts(spec.counts, spec.count, spec.slot))
        sockets = spec.sockets()
    commands = {"status": lambda: status(ctx, started_at), "metrics": lambda: metrics.figures(ctx)}
    stop = asyncio.Event()
    link = WorkerLink(spec.link, commands, stop.set) if spec is not None else None
    control = ControlServer(settings.paths.control_socket, commands) if spec is None else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload, ctx)
    try:
        ctx.services = await start_services(
            ctx, sockets, host_services=spec is None or spec.slot == 0
        )
        ctx.lag.start()
        ready = listener_addresses(ctx.services)
        if link is not None:
            await link.start(ready)
        if control is not None:
            await control.start()
        if ready_file is not None:
            write_ready(ready_file, {**ready, "pid": os.getpid()})
        log.info("mailsuite ready: %s for %s", settings.hostname, ", ".join(settings.domains))
        await stop.wait()
        log.info("shutting down")
        ctx.store.interrupt_scans()  # an index build would hold up the I/O pool's shutdown
        if control is not None:
            await control.close()
        await ctx.lag.close()
        await stop_services(ctx.services)
        ctx.connections.close()
    finally:
        if link is not None:
            link.close()
        release_context(ctx)
        from twisted.internet import reactor

        pool = getattr(reactor, "threadpool", None)
        if pool is not None:
            pool.stop()
        ctx.io_pool.shutdown(wait=True)
        ctx.auth.close()
        ctx.directory.close()
    log.info("stopped")
