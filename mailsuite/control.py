"""The running server's control socket (`mailsuite status` asks it what is going on) and the
event-loop watchdog that tells the admin when a command held the loop.

A Unix socket (mode 0600, so only the server's own user may ask) that answers one JSON
request per connection. The server side lives on the loop; the client side is a few blocking
lines for the CLI. The watchdog (`LoopLag`) runs in a thread of its own and reads only what
sessions declare with `running()`: protocol, verb and client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("mailsuite.loop")

MAX_REQUEST = 4096


Answer = dict[str, Any] | Awaitable[dict[str, Any]]


class ControlServer:
    """Serves `{"command": NAME}` with `{"ok": true, NAME: ...}`, the dict `commands[NAME]()`
    builds (or awaits: a supervisor asks its workers first)."""

    def __init__(self, path: Path, commands: dict[str, Callable[[], Answer]]) -> None:
        self.path = path
        self.commands = commands
        self.server: asyncio.AbstractServer | None = None
        self.address = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a server that was killed
        old = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                request = json.loads(line[:MAX_REQUEST] or b"{}")
            except ValueError:
                request = {}
            command = request.get("command") if isinstance(request, dict) else None
            answer = self.commands.get(command) if isinstance(command, str) else None
            if answer is not None:
                result = answer()
                if inspect.isawaitable(result):
                    result = await result
                reply: dict[str, Any] = {"ok": True, command: result}
            else:
                known = ", ".join(sorted(self.commands))
                reply = {"ok": False, "error": f"unknown command; try one of {known}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ask(path: Path, command: str = "status", timeout: float = 5) -> dict[str, Any]:
    """Ask a running server; raises OSError when none is listening at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


@dataclass
class Activity:
    """What one session is doing right now, for the watchdog to name a stall after.

    `command` is a protocol verb the session knows (or "unknown"), never its arguments, so
    nothing a client typed reaches the log or the metric labels.
    """

    protocol: str
    client: str
    command: str = "unknown"


@dataclass(frozen=True)
class Stall:
    """One time the loop was held longer than the threshold, and by what."""

    seconds: float
    protocol: str
    command: str
    client: str
    where: str  # innermost mailsuite frame of the loop thread while it was held

    def describe(self) -> str:
        if self.protocol == UNKNOWN:
            by = "code outside any session command"
        else:
            by = f"{self.protocol} {self.command} from {self.client or '-'}"
        return f"{by} (at {self.where})" if self.where else by


UNKNOWN = "unknown"
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class LoopLag:
    """How late the event loop runs what it is given, and a watchdog for when it is held.

    A thread, not a loop task (a blocked loop cannot report itself), posts a heartbeat to the
    loop every `heartbeat` seconds and waits for it to run. `last` is how late the latest one
    ran, `worst` the largest so far. When one is later than `threshold`, the loop was held:
    while it still is, the thread notes what is running (the `Activity` of the task on the
    loop, which sessions declare with `running()`, and the innermost mailsuite frame of the
    loop thread), and once the loop is back the stall is logged at WARNING and counted
    (`stalls`, `report()`, /metrics). A stall still going after a second is logged at once,
    and every ten seconds after, so one that never ends is seen too. C code that keeps the
    GIL holds this thread as well as the loop: such a stall shows as this thread waking long
    after it last ran while the loop thread spent that time on the CPU (its thread CPU
    clock), and is named after the command running or ended meanwhile. A machine so busy
    that the watchdog is not scheduled is not mistaken for a stall. The figure may be up to
    `heartbeat` short of the truth.
    """

    def __init__(self, threshold: float = 0.1, heartbeat: float = 0.02) -> None:
        self.threshold = threshold
        self.heartbeat = heartbeat
        self.last = 0.0
        self.worst = 0.0
        self.beats = 0  # heartbeats measured so far: a stall before the latest one is counted
        self.address = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._activities: dict[asyncio.Task[Any], Activity] = {}
        # the activity that ended last and when: C code keeping the GIL can end a command
        # before this thread runs again, and the stall is still that command's
        self._ended: tuple[Activity, float] | None = None
        self._lock = threading.Lock()
        self._stalls: Counter[tuple[str, str]] = Counter()
        self._stalled_seconds = 0.0
        self._worst_stall: Stall | None = None
        self._last_stall: Stall | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what sessions call, on the loop -----------------------------------------------------

    def enter(self, activity: Activity) -> Activity | None:
        """Make `activity` the current task's; returns the one it replaces (for `leave`)."""
        task = asyncio.current_task()
        if task is None:
            return None
        previous = self._activities.get(task)
        self._activities[task] = activity
        return previous

    def leave(self, previous: Activity | None) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        ending = self._activities.get(task)
        if ending is not None:
            self._ended = (ending, time.monotonic())
        if previous is None:
            self._activities.pop(task, None)
        else:
            self._activities[task] = previous

    # -- figures -----------------------------------------------------------------------------

    @property
    def stalls(self) -> dict[tuple[str, str], int]:
        """Stalls counted so far by (protocol, command)."""
        with self._lock:
            return dict(self._stalls)

    @property
    def stalled_seconds(self) -> float:
        with self._lock:
            return self._stalled_seconds

    @property
    def worst_stall(self) -> Stall | None:
        with self._lock:
            return self._worst_stall

    def report(self) -> dict[str, Any]:
        """The stall figures `mailsuite status` shows."""
        with self._lock:
            worst, last = self._worst_stall, self._last_stall
            return {
                "count": sum(self._stalls.values()),
                "worst_ms": round(worst.seconds * 1000, 1) if worst else 0.0,
                "worst_by": worst.describe() if worst else "-",
                "last_by": last.describe() if last else "-",
            }

    # -- the watchdog thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start watching the running loop (call on it)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Stop watching; the thread notices within a heartbeat."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(1.0)

    def _watch(self) -> None:
        loop = self._loop
        assert loop is not None
        ran = threading.Event()
        ran_at = [0.0]
        loop_cpu = _thread_cpu_clock(self._loop_thread)

        def beat() -> None:
            ran_at[0] = time.monotonic()
            ran.set()

        # The last moment this thread ran freely, and the loop thread's CPU time then.
        mark = (time.monotonic(), loop_cpu())
        while not self._stop.is_set():
            mark = self._held_gil(mark, loop_cpu)
            posted = mark[0]
            seen: Stall | None = None
            ran.clear()
            try:
                loop.call_soon_threadsafe(beat)
            except RuntimeError:
                return  # the loop is closed
            next_alarm = 1.0
            while not ran.wait(0.01):
                if self._stop.is_set():
                    return
                late = time.monotonic() - posted
                if seen is None and late >= self.threshold / 2:
                    seen = self._sample()
                if seen is not None and late >= next_alarm:
                    log.warning(
                        "event loop blocked for %.1f s so far by %s; still blocked",
                        late,
                        seen.describe(),
                    )
                    next_alarm = next_alarm + 10 if next_alarm >= 10 else 10.0
            # Measured on the loop's side: how long the heartbeat waited to run. A delay of
            # this thread before it posted (the OS running something else) is not counted.
            late = max(0.0, ran_at[0] - posted)
            self.last = late
            self.worst = max(self.worst, late)
            if late > self.threshold:
                self._record(late, seen or self._sample(since=posted))
                mark = (time.monotonic(), loop_cpu())
            self.beats += 1
            self._stop.wait(self.heartbeat)

    def _held_gil(
        self, mark: tuple[float, float], loop_cpu: Callable[[], float]
    ) -> tuple[float, float]:
        """Count a stall by C code that kept the GIL while this thread could not run.

        Such code holds this thread as well as the loop, so no heartbeat is late: what shows
        is that this thread woke long after `mark` while the loop thread spent that time on
        the CPU. (When the whole process was merely not scheduled, the loop thread's CPU time
        hardly grew, and nothing is counted.) Returns the new mark.
        """
        now, cpu = time.monotonic(), loop_cpu()
        held, busy = now - mark[0], cpu - mark[1]
        # On a loaded machine the loop thread gets only part of a core while it holds the
        # GIL, so half the threshold of CPU time is proof enough; the stall is the wall time.
        if held > self.threshold and busy > self.threshold / 2:
            self.worst = max(self.worst, held)
            self._record(held, self._sample(since=mark[0]))
        return now, cpu

    def _sample(self, since: float | None = None) -> Stall:
        """What the loop thread is running now (called from the watchdog thread), or, when
        nothing is, the command that ended after `since`."""
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        activity = self._activities.get(task) if task is not None else None
        ended = self._ended
        if activity is None and since is not None and ended is not None and ended[1] >= since:
            activity = ended[0]
        frame = sys._current_frames().get(self._loop_thread)
        return Stall(
            0.0,
            activity.protocol if activity else UNKNOWN,
            activity.command if activity else UNKNOWN,
            activity.client if activity else "",
            _where(frame),
        )

    def _record(self, seconds: float, seen: Stall) -> None:
        stall = Stall(seconds, seen.protocol, seen.command, seen.client, seen.where)
        with self._lock:
            self._stalls[(stall.protocol, stall.command)] += 1
            self._stalled_seconds += seconds
            if self._worst_stall is None or seconds > self._worst_stall.seconds:
                self._worst_stall = stall
            self._last_stall = stall
        log.warning("event loop stalled for %d ms by %s", round(seconds * 1000), stall.describe())


def _thread_cpu_clock(thread_id: int) -> Callable[[], float]:
    """The CPU time of another thread, where the platform tells it (Linux does); elsewhere
    a clock that never moves, so GIL stalls go uncounted rather than guessed."""
    try:
        clock = time.pthread_getcpuclockid(thread_id)
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return lambda: 0.0
    return lambda: time.clock_gettime(clock)


def _where(frame: FrameType | None) -> str:
    """The innermost frame of our own code in a stack, as `path:line in function`."""
    innermost = frame
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_PACKAGE_DIR):
            rel = "mailsuite" + path[len(_PACKAGE_DIR) :]
            return f"{rel}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    if innermost is None:
        return ""
    return f"{Path(innermost.f_code.co_filename).name}:{innermost.f_lineno}"


def running(lag: LoopLag | None, protocol: str, client: str | None) -> _Running:
    """``with running(ctx.lag, "imap", ip) as doing: ...`` declares, for the loop watchdog,
    which session command the current task is running; set `doing.command` once the verb is
    known. Costs a dictionary update; does nothing when no watchdog runs (`lag` is None)."""
    return _Running(lag, protocol, client)


class _Running:
    __slots__ = ("_lag", "_previous", "activity")

    def __init__(self, lag: LoopLag | None, protocol: str, client: str | None) -> None:
        self._lag = lag
        self._previous: Activity | None = None
        self.activity = Activity(protocol, client or "")

    def __enter__(self) -> Activity:
        if self._lag is not None:
            self._previous = self._lag.enter(self.activity)
        return self.activity

    def __exit__(self, *exc: object) -> None:
        if self._lag is not None:
            self._lag.leave(self._previous)
