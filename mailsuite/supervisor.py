"""`serve` on every core: the supervisor of one worker process per core.

The supervisor binds every listening socket once, creates the host's connection table
(`netlimits.HostCounts`) and starts `workers` copies of `mailsuite serve --worker SPEC`, each
a fresh interpreter with its own asyncio loop and Twisted reactor that inherits the sockets
(`pass_fds`) and adopts them, so all workers accept from the same kernel queues: a client
goes to whichever worker takes it first, and a connection waiting in the queue when a worker
dies is taken by another. (SO_REUSEPORT would give each worker a queue of its own, spread by
a hash of the client's address and port whatever the workers' load, and the connections
queued on a worker that dies would be reset.) The store and the directory are files every
worker opens itself; their locks already serve several processes.

What a host does once runs in worker 0 only: the outbound queue runner and the fetcher's
scheduler (another worker's SMTP delivery or web "fetch now" is picked up at their next
scan, within seconds). The control socket is the supervisor's: `status` and `metrics` ask
every worker over its link (a socket pair, which also tells a worker its supervisor is gone)
and add the answers up. A worker that dies is started again, at once unless it keeps dying
early; SIGTERM or SIGINT stops all, SIGHUP is passed to each, and each reloads its config.

`workers: 1` runs no supervisor: `serve` is then the one server process, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsuite.config import ConfigError, Settings, load_config
from mailsuite.context import StartupError
from mailsuite.workers import WorkerSpec, worker_count

log = logging.getLogger("mailsuite.supervisor")

READY_TIMEOUT = 60.0  # seconds a worker may take to start its listeners
ASK_TIMEOUT = 5.0  # seconds a worker has to answer `status` or `metrics`
STOP_TIMEOUT = 10.0  # after SIGTERM, seconds before a worker that has not exited is killed
EARLY_DEATH = 10.0  # a worker that dies this soon after starting is restarted after a pause
MAX_PAUSE = 30.0


@dataclass
class Worker:
    """The supervisor's handle on one worker slot, across its restarts."""

    slot: int
    proc: asyncio.subprocess.Process | None = None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    started: float = 0.0
    restarts: int = 0
    early_deaths: int = 0
    listeners: dict[str, Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ask(self, command: str) -> dict[str, Any] | None:
        """The worker's answer to `command`, None if it does not answer in time."""
        async with self.lock:
            if self.writer is None or self.reader is None:
                return None
            try:
                self.writer.write(json.dumps({"command": command}).encode() + b"\n")
                await self.writer.drain()
                line = await asyncio.wait_for(self.reader.readline(), ASK_TIMEOUT)
                answer: dict[str, Any] = json.loads(line)[command]
                return answer
            except (TimeoutError, ConnectionError, ValueError, KeyError):
                # a late answer would be taken for the next question: drop the link
                self.drop_link()
                return None

    def drop_link(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Supervisor:
    """Starts, watches and stops the workers; serves the control socket for the host."""

    def __init__(
        self, settings: Settings, config_path: Path, ready_file: Path | None, count: int
    ) -> None:
        from mailsuite.netlimits import HostCounts

        self.settings = settings
        self.config_path = config_path
        self.ready_file = ready_file
        self.workers = [Worker(slot) for slot in range(count)]
        self.sockets: dict[str, socket.socket] = {}
        self.host = HostCounts.create(count)
        self.stopping = asyncio.Event()
        self.started = time.monotonic()
        self.watchers: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        from mailsuite.control import ControlServer
        from mailsuite.serve import bind_listeners, write_ready

        loop = asyncio.get_running_loop()
        self._prepare()
        self.sockets = bind_listeners(self.settings)
        control = ControlServer(
            self.settings.paths.control_socket, {"status": self.status, "metrics": self.metrics}
        )
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            starting = [asyncio.ensure_future(self._spawn(w)) for w in self.workers]
            results = await asyncio.gather(*starting, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            self.watchers = [asyncio.ensure_future(self._watch(w)) for w in self.workers]
            await control.start()
            if self.ready_file is not None:
                pids = {str(w.slot): w.proc.pid for w in self.workers if w.proc}
                write_ready(
                    self.ready_file,
                    {**self.workers[0].listeners, "pid": os.getpid(), "workers": pids},
                )
            log.info(
                "mailsuite ready: %s for %s, %d workers",
                self.settings.hostname,
                ", ".join(self.settings.domains),
                len(self.workers),
            )
            await self.stopping.wait()
            log.info("shutting down")
            await control.close()
        finally:
            for task in self.watchers:
                task.cancel()
            await self._stop_all()
            for sock in self.sockets.values():
                sock.close()
            self.host.close()
        log.info("stopped")

    def _prepare(self) -> None:
        """What the first start makes once, before workers would race to: the self-signed
        certificate, and the directory's tables."""
        from mailsuite.directory import Directory
        from mailsuite.tls import TLSMaterial

        TLSMaterial.for_settings(self.settings)
        Directory(self.settings.paths.database, self.settings.domains).close()

    async def _spawn(self, worker: Worker) -> None:
        """Start the worker of `worker`'s slot and wait until its listeners are up."""
        ours, theirs = socket.socketpair()
        spec = _spec(worker.slot, len(self.workers), self.sockets, self.host.fd, theirs)
        try:
            worker.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mailsuite",
                "serve",
                "--config",
                str(self.config_path),
                "--worker",
                spec.encode(),
                pass_fds=[*spec.listeners.values(), spec.counts, spec.link],
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        worker.started = time.monotonic()
        reader, writer = await asyncio.open_connection(sock=ours)
        try:
            line = await asyncio.wait_for(reader.readline(), READY_TIMEOUT)
            ready = json.loads(line)["ready"] if line else None
        except (TimeoutError, ValueError, KeyError):
            ready = None
        if ready is None:
            writer.close()
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()
            await worker.proc.wait()
            raise StartupError(f"worker {worker.slot} did not start (see its errors above)")
        worker.listeners = ready
        worker.reader, worker.writer = reader, writer  # questions may be asked from now on
        log.info("worker %d started, pid %d", worker.slot, worker.proc.pid)

    async def _watch(self, worker: Worker) -> None:
        """Start the slot's worker again whenever it dies, until serve stops."""
        while True:
            assert worker.proc is not None
            code = await worker.proc.wait()
            if self.stopping.is_set():
                return
            worker.drop_link()
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            lived = time.monotonic() - worker.started
            worker.early_deaths = worker.early_deaths + 1 if lived < EARLY_DEATH else 0
            pause = min(MAX_PAUSE, 0.5 * 2**worker.early_deaths) if worker.early_deaths else 0
            log.error(
                "worker %d (pid %d) %s; starting another in %.1f s",
                worker.slot,
                worker.proc.pid,
                how,
                pause,
            )
            self.host.forget(worker.slot)  # its connections died with it
            await asyncio.sleep(pause)
            while not self.stopping.is_set():
                try:
                    await self._spawn(worker)
                    break
                except (StartupError, OSError) as exc:
                    log.error("worker %d: %s; trying again in %.0f s", worker.slot, exc, MAX_PAUSE)
                    await asyncio.sleep(MAX_PAUSE)
            worker.restarts += 1

    async def _stop_all(self) -> None:
        running = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for worker in running:
            assert worker.proc is not None
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        for worker in running:
            assert worker.proc is not None
            try:
                await asyncio.wait_for(worker.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("worker %d did not stop in %.0f s; killed", worker.slot, STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
            worker.drop_link()

    def reload(self) -> None:
        """SIGHUP: every worker reloads its config; a changed `workers` needs a restart."""
        try:
            new = load_config(self.config_path)
            if worker_count(new) != len(self.workers):
                log.warning("workers changed; it takes effect at the next restart")
        except ConfigError:
            pass  # each worker reports the errors and keeps its running config
        for worker in self.workers:
            if worker.proc is not None and worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGHUP)

    async def _ask_all(self, command: str) -> list[dict[str, Any] | None]:
        return list(await asyncio.gather(*(w.ask(command) for w in self.workers)))

    async def metrics(self) -> dict[str, Any]:
        from mailsuite import metrics

        return metrics.merged([f for f in await self._ask_all("metrics") if f is not None])

    async def status(self) -> dict[str, Any]:
        """`mailsuite status` for the host: every worker's report added up, and a line each."""
        reports = await self._ask_all("status")
        open_counts = self.host.open_counts()
        merged = merge_status([r for r in reports if r is not None])
        merged.update(
            pid=os.getpid(),
            uptime=round(time.monotonic() - self.started, 1),
            hostname=self.settings.hostname,
            listeners=self.workers[0].listeners,
        )
        merged["workers"] = [
            {
                "slot": w.slot,
                "pid": w.proc.pid if w.proc else None,
                "answered": report is not None,
                "uptime": round(time.monotonic() - w.started, 1),
                "restarts": w.restarts,
                "open_connections": open_counts[w.slot],
                "loop_lag_ms": report["loop_lag_ms"]["last"] if report else None,
                "counters": report["counters"] if report else {},
            }
            for w, report in zip(self.workers, reports, strict=True)
        ]
        return merged


def _spec(
    slot: int, count: int, sockets: dict[str, socket.socket], counts: int, link: socket.socket
) -> WorkerSpec:
    return WorkerSpec(
        slot=slot,
        count=count,
        listeners={key: sock.fileno() for key, sock in sockets.items()},
        counts=counts,
        link=link.fileno(),
    )


def merge_status(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Workers' `status` reports as one: counters and stall counts add up, loop lag is the
    worst worker's, and a service's section (the queue, the fetcher: worker 0 only) is
    summed where it is a number and joined where it is a list."""
    counters: Counter[str] = Counter()
    sections: dict[str, dict[str, Any]] = {}
    lag = {"last": 0.0, "worst": 0.0}
    stalls: dict[str, Any] = {"count": 0, "worst_ms": 0.0, "worst_by": "-", "last_by": "-"}
    for report in reports:
        counters.update(report.get("counters", {}))
        for key in lag:
            lag[key] = max(lag[key], report["loop_lag_ms"][key])
        seen = report["loop_stalls"]
        stalls["count"] += seen["count"]
        if seen["worst_ms"] > stalls["worst_ms"]:
            stalls["worst_ms"], stalls["worst_by"] = seen["worst_ms"], seen["worst_by"]
        if seen["last_by"] != "-":
            stalls["last_by"] = seen["last_by"]
        for name, value in report.items():
            if isinstance(value, dict) and name not in _REPORT_KEYS:
                section = sections.setdefault(name, {})
                for key, item in value.items():
                    section[key] = _add(section.get(key), item)
    return {"loop_lag_ms": lag, "loop_stalls": stalls, "counters": dict(counters), **sections}


_REPORT_KEYS = {"listeners", "loop_lag_ms", "loop_stalls", "counters"}


def _add(total: Any, value: Any) -> Any:
    if total is None:
        return value
    if isinstance(total, list) and isinstance(value, list):
        return total + value
    if isinstance(total, int | float) and isinstance(value, int | float):
        return total + value
    return value


async def supervise(settings: Settings, config_path: Path, ready_file: Path | None) -> None:
    """Run `worker_count(settings)` workers until SIGTERM or SIGINT."""
    await Supervisor(settings, config_path, ready_file, worker_count(settings)).run()
