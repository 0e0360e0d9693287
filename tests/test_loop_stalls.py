"""One request never stalls everyone: hostile LIST patterns are answered at once while other
sessions keep their pace, and every time something does hold the event loop past 100 ms the
watchdog logs it, at WARNING, with the protocol and command that did, and counts it in
/metrics and `mailsuite status`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import statistics
import textwrap
import threading
import time
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from mailsuite import metrics
from mailsuite.control import LoopLag, running
from tests.test_clients import fetch
from tests.test_imap_server import PASSWORD, Raw, reply
from tests.test_pop3 import Raw as Pop3Raw

_users = count(1)

STARS = "*" * 3000
HOSTILE_LISTS = [
    f'LIST "" "{STARS}x"',
    f'LIST "" "{"%" * 3000}x"',
    f'LIST "{STARS}" "{STARS}x"',  # RFC 3501 6.3.8: the reference is part of the match
    f'LSUB "" "{"*%" * 1500}x"',
    f'LIST "" "{"*" * 50}x"',
]


@pytest.fixture
def user(suite) -> str:
    address = f"stall{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    return address


def logged_in(suite, address: str, *, timeout: float = 10) -> Raw:
    c = Raw(suite.port("imap"))
    c.sock.settimeout(timeout)
    c.login(address, PASSWORD)
    return c


# --- LIST patterns on the real server -------------------------------------------------------


@pytest.mark.parametrize("command", HOSTILE_LISTS, ids=lambda c: f"{c[:12]}…{len(c)}")
def test_a_hostile_list_pattern_is_answered_at_once(suite, user, command) -> None:
    """Thousands of wildcards, in the pattern or the reference, are answered within a
    second, listing only folders whose names end in "x"."""
    c = logged_in(suite, user, timeout=5)
    c.ok("CREATE Work/Fax")
    c.ok("SUBSCRIBE Work/Fax")
    started = time.monotonic()
    lines = c.cmd(command)
    elapsed = time.monotonic() - started
    assert reply(lines).startswith(b"OK"), lines
    assert elapsed < 1.0
    names = [ln.rsplit(b" ", 1)[1] for ln in lines[:-1]]
    assert names == ([] if command.startswith('LIST "" "%') else [b'"Work/Fax"\r\n']), lines
    c.close()


def test_hostile_patterns_list_what_plain_ones_do(suite, user) -> None:
    """Fifty stars and a folder name list the same folders as one star does."""
    c = logged_in(suite, user)
    c.ok("CREATE Work/Tax")
    c.ok("CREATE Fax")
    hostile = c.cmd('LIST "" "' + "*" * 50 + 'x"')[:-1]
    plain = c.cmd('LIST "" "*x"')[:-1]
    assert hostile == plain
    assert [ln.rsplit(b" ", 1)[1] for ln in plain] == [b'"Fax"\r\n', b'"Work/Tax"\r\n']
    per_level = c.cmd('LIST "Work/" "' + "%" * 40 + '"')[:-1]
    assert per_level == [b'* LIST (\\HasNoChildren) "/" "Work/Tax"\r\n']
    c.close()


def test_a_pattern_too_long_to_match_any_folder_is_refused(suite, user) -> None:
    """A pattern longer than 1,000 characters once its runs of wildcards are merged (no
    folder name can be that long) gets BAD [LIMIT] saying so, and the session goes on."""
    c = logged_in(suite, user)
    pattern = "a*" * 600
    c.send(b't1 LIST "" {%d}\r\n' % len(pattern))
    assert c.line().startswith(b"+ ")
    c.send(pattern.encode() + b"\r\n")
    lines = c.until(b"t1")
    assert lines[-1].startswith(b"t1 BAD [LIMIT] LIST pattern too long"), lines
    c.ok("NOOP")
    c.close()


# --- the stall test -------------------------------------------------------------------------


def test_other_sessions_keep_their_pace_while_one_sends_hostile_lists(suite_factory) -> None:
    """While one session sends the 3,000-star LIST (and its % and long-reference variants)
    back to back for three seconds, another logged-in session's NOOP, sent every 100 ms,
    answers within 50 ms every time."""
    s = suite_factory()
    s.add_user("attacker@example.test", PASSWORD)
    s.add_user("bystander@example.test", PASSWORD)
    attacker = logged_in(s, "attacker@example.test", timeout=2)
    bystander = logged_in(s, "bystander@example.test", timeout=1)
    bystander.ok("SELECT INBOX")
    stop = threading.Event()
    answered: list[tuple[bytes, float]] = []
    failures: list[BaseException] = []

    def attack() -> None:
        try:
            while not stop.is_set():
                for command in HOSTILE_LISTS[:4]:
                    started = time.monotonic()
                    lines = attacker.cmd(command)
                    answered.append((reply(lines)[:2], time.monotonic() - started))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=attack, daemon=True)
    thread.start()
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 3.0
        tick = time.monotonic()
        while time.monotonic() < deadline:
            started = time.monotonic()
            lines = bystander.cmd("NOOP")
            latencies.append(time.monotonic() - started)
            assert reply(lines).startswith(b"OK"), lines
            tick += 0.1
            time.sleep(max(0.0, tick - time.monotonic()))
    finally:
        stop.set()
        thread.join(5)
    ms = sorted(x * 1000 for x in latencies)
    list_ms = sorted(t * 1000 for _, t in answered)
    print(
        f"\nNOOP every 100 ms during hostile LISTs: n={len(ms)}, median {statistics.median(ms):.1f}"
        f" ms, p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms, max {ms[-1]:.1f} ms; hostile LISTs"
        f" answered: {len(list_ms)}, median {statistics.median(list_ms):.1f} ms,"
        f" max {list_ms[-1]:.1f} ms"
    )
    assert not failures, failures
    assert len(latencies) >= 25
    assert max(latencies) < 0.050, ms
    assert len(answered) >= 20 and all(kind == b"OK" for kind, _ in answered)
    report = json.loads(s.cli("status", "--json").stdout)
    assert report["loop_stalls"]["count"] == 0, report["loop_stalls"]


# --- the watchdog on the real server --------------------------------------------------------

# Loaded by the server's interpreter before anything else (Python's `sitecustomize` hook):
# makes one harmless command of each protocol hold the loop for 300 ms, as a defect would.
_STALLING_COMMANDS = textwrap.dedent(
    """
    import importlib.abc, importlib.machinery, sys, time

    def _stalling(method):
        async def run(*args, **kwargs):
            time.sleep(0.3)
            return await method(*args, **kwargs)
        run.__dict__.update(getattr(method, "__dict__", {}))
        return run

    def _imap(module):
        handler, states = module.Session.HANDLERS["ID"]
        module.Session.HANDLERS["ID"] = (_stalling(handler), states)

    def _pop3(module):
        module.Session.capa = _stalling(module.Session.capa)

    def _smtp(module):
        module.Server.smtp_NOOP = _stalling(module.Server.smtp_NOOP)

    PATCHES = {
        "mailsuite.imap.session": _imap,
        "mailsuite.pop3.session": _pop3,
        "mailsuite.smtp.server": _smtp,
    }

    class _Patcher(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in PATCHES:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                PATCHES[name](module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Patcher())
    """
)


def test_every_stall_is_logged_and_counted_with_its_protocol_and_command(
    suite_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that holds the loop for 300 ms, on IMAP, POP3 and SMTP alike, is logged at
    WARNING naming the protocol, the command and the client, counted in /metrics by
    protocol and command, and shown by `mailsuite status`; the sessions go on."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_STALLING_COMMANDS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(inject), os.environ["PYTHONPATH"]]))
    s = suite_factory()

    imap = Raw(s.port("imap"))
    assert reply(imap.cmd("ID NIL")).startswith(b"OK")
    pop3 = Pop3Raw(s.port("pop3"))
    assert pop3.cmd("CAPA").startswith(b"+OK")
    pop3.multi()
    import smtplib

    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        assert smtp.noop()[0] == 250
    assert reply(imap.cmd("NOOP")).startswith(b"OK")  # not stalled: not counted

    deadline = time.monotonic() + 5
    while True:
        lines = [ln for ln in s.log().splitlines() if "event loop stalled" in ln]
        if len(lines) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 3, s.log()
    for line, (protocol, command) in zip(
        lines, [("imap", "ID"), ("pop3", "CAPA"), ("smtp", "NOOP")], strict=True
    ):
        assert " WARNING " in line or " WARN" in line, line
        assert f"by {protocol} {command} from 127.0.0.1" in line, line
        held = int(line.split("stalled for ")[1].split(" ms")[0])
        assert 200 <= held < 1000, line

    status, body, _ = fetch(s, "/metrics")
    assert status == 200
    text = body.decode()
    for protocol, command in [("imap", "ID"), ("pop3", "CAPA"), ("smtp", "NOOP")]:
        assert (
            f'mailsuite_event_loop_stalls_total{{command="{command}",protocol="{protocol}"}} 1.0'
            in text
        ), text
    worst = float(re.search(r"^mailsuite_event_loop_worst_stall_seconds (\S+)$", text, re.M)[1])
    assert 0.2 <= worst < 1.0

    report = json.loads(s.cli("status", "--json").stdout)["loop_stalls"]
    assert report["count"] == 3
    assert report["worst_ms"] >= 200
    shown = s.cli("status").stdout
    assert "loop_stalls:" in shown and "count" in shown, shown
    assert "Traceback" not in s.log()
    imap.close()
    pop3.close()


# --- the watchdog in-process ----------------------------------------------------------------


async def _watched(lag: LoopLag, seconds: float, protocol: str, command: str) -> None:
    with running(lag, protocol, "192.0.2.7") as doing:
        doing.command = command
        await asyncio.sleep(0)
        time.sleep(seconds)  # noqa: ASYNC251 - the defect the watchdog is there to catch


async def _settle(lag: LoopLag) -> None:
    """Wait until the watchdog has measured two heartbeats from now, so whatever held the
    loop before has been judged (a busy machine may delay the watchdog thread)."""
    target = lag.beats + 2
    deadline = time.monotonic() + 5
    while lag.beats < target and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread counts)
        await asyncio.sleep(lag.heartbeat)


async def test_a_stall_is_named_after_the_command_of_the_task_that_held_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Of two sessions, the one whose command blocks is named, though the other started
    its command later; short hiccups under the threshold are not counted."""
    lag = LoopLag()
    lag.start()
    caplog.set_level(logging.WARNING, "mailsuite.loop")
    try:
        await _settle(lag)
        other = asyncio.ensure_future(_idle_command(lag))
        await asyncio.sleep(0)
        await _watched(lag, 0.25, "imap", "LIST")
        await _watched(lag, 0.02, "pop3", "RETR")
        await _settle(lag)
        other.cancel()
    finally:
        await lag.close()
    assert lag.stalls == {("imap", "LIST"): 1}
    assert lag.worst_stall is not None and 0.2 <= lag.worst_stall.seconds < 0.5
    [record] = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "by imap LIST from 192.0.2.7" in message
    assert "test_loop_stalls.py" in message  # where the loop thread was held
    assert lag.report()["count"] == 1 and lag.report()["worst_by"].startswith("imap LIST")


async def _idle_command(lag: LoopLag) -> None:
    with running(lag, "pop3", "198.51.100.1") as doing:
        doing.command = "NOOP"
        await asyncio.sleep(10)


async def test_a_stall_outside_any_command_is_counted_as_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that is no session's command is still caught and counted, by where the
    loop was held."""
    lag = LoopLag()
    lag.start()
    caplog.set_level(logging.WARNING, "mailsuite.loop")
    try:
        await _settle(lag)
        asyncio.get_running_loop().call_soon(time.sleep, 0.2)
        await asyncio.sleep(0.3)
    finally:
        await lag.close()
    assert lag.stalls == {("unknown", "unknown"): 1}
    assert any("outside any session command" in r.getMessage() for r in caplog.records)


def _backtracking_input(at_least: float) -> str:
    """A subject for `_BACKTRACKING` that takes `re` (C code keeping the GIL) that long."""
    n = 14
    while True:
        subject = "a" * n
        started = time.perf_counter()
        _BACKTRACKING.match(subject)
        if time.perf_counter() - started >= at_least / 2:
            return "a" * (n + 1)  # each "a" doubles the time
        n += 1


_BACKTRACKING = re.compile(r"(a*)*b")


async def test_a_stall_in_c_code_holding_the_gil_is_caught_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A backtracking regex (as LIST once built from user input) keeps the GIL, so the
    watchdog thread cannot run while it does; the stall is still measured from when the
    heartbeat was due and named after the command that ran it."""
    subject = _backtracking_input(0.3)
    lag = LoopLag()
    lag.start()
    caplog.set_level(logging.WARNING, "mailsuite.loop")
    try:
        await _settle(lag)
        with running(lag, "imap", "192.0.2.8") as doing:
            doing.command = "LIST"
            started = time.monotonic()
            _BACKTRACKING.match(subject)
            held = time.monotonic() - started
        await _settle(lag)
    finally:
        await lag.close()
    assert held >= 0.2
    assert lag.stalls == {("imap", "LIST"): 1}
    stall = lag.worst_stall
    assert stall is not None and held - 0.05 <= stall.seconds <= held + 0.05
    assert any("by imap LIST from 192.0.2.8" in r.getMessage() for r in caplog.records)


async def test_a_stall_that_goes_on_is_reported_while_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A command that holds the loop for more than a second is logged while it still
    does, so one that never ends is seen too."""
    lag = LoopLag()
    lag.start()
    caplog.set_level(logging.WARNING, "mailsuite.loop")
    seen_during: list[str] = []

    def watch_log() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not seen_during:
            seen_during.extend(r.getMessage() for r in caplog.records if "still" in r.getMessage())
            time.sleep(0.02)

    try:
        await _settle(lag)
        watcher = threading.Thread(target=watch_log)
        watcher.start()
        await _watched(lag, 1.3, "smtp", "DATA")
        watcher.join()
        await _settle(lag)
    finally:
        await lag.close()
    assert seen_during and "so far by smtp DATA from 192.0.2.7" in seen_during[0]
    assert lag.stalls == {("smtp", "DATA"): 1}


async def test_activities_are_per_task_and_released() -> None:
    """A finished command leaves nothing behind, and nested declarations restore the
    outer one."""
    lag = LoopLag()
    with running(lag, "imap", "192.0.2.1") as outer:
        outer.command = "IDLE"
        with running(lag, "imap", "192.0.2.1") as inner:
            inner.command = "FETCH"
            assert lag._activities[asyncio.current_task()] is inner  # type: ignore[index]
        assert lag._activities[asyncio.current_task()] is outer  # type: ignore[index]
    assert lag._activities == {}
    with running(None, "imap", None) as doing:  # no watchdog (in-process servers)
        doing.command = "NOOP"


def test_metrics_show_stalls_by_protocol_and_command() -> None:
    """/metrics carries a counter per protocol and command, the stalled time and the
    longest stall."""
    lag = LoopLag()
    lag._record(0.25, _stall("imap", "LIST"))
    lag._record(0.15, _stall("imap", "LIST"))
    lag._record(0.5, _stall("smtp", "DATA"))

    class Ctx:
        pass

    ctx: Any = Ctx()
    ctx.lag = lag
    ctx.events = type("E", (), {"snapshot": staticmethod(dict)})()
    text = metrics.render(ctx).decode()
    assert 'mailsuite_event_loop_stalls_total{command="LIST",protocol="imap"} 2.0' in text
    assert 'mailsuite_event_loop_stalls_total{command="DATA",protocol="smtp"} 1.0' in text
    assert "mailsuite_event_loop_stalled_seconds_total 0.9" in text
    assert "mailsuite_event_loop_worst_stall_seconds 0.5" in text


def _stall(protocol: str, command: str) -> Any:
    from mailsuite.control import Stall

    return Stall(0.0, protocol, command, "192.0.2.9", "")
