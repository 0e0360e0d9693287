"""`serve` with two worker processes: shared listeners, host-wide limits and figures,
restarts, signals, and what must run once per host.

Every test runs a real `mailsuite serve` with `workers: 2` (a supervisor and two workers);
which worker served a connection is read from `mailsuite status`, which lists each worker's
pid and open connections.
"""

from __future__ import annotations

import imaplib
import json
import os
import poplib
import signal
import smtplib
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import DEFAULT_PASSWORD, Suite
from tests.test_smtp_queue import queue_files, sink, submit  # noqa: F401

TWO = {"workers": 2}


def status(suite: Suite) -> dict[str, Any]:
    result = suite.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def wait(predicate: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    return predicate()


def greeted(port: int) -> socket.socket:
    """An IMAP connection that has had its greeting (so a worker has counted it)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert conn.recv(200).startswith(b"* ")
    return conn


def open_on_both(suite: Suite, port: int, tries: int = 5) -> list[socket.socket]:
    """Connections, opened in bursts until both workers hold some (the kernel gives each
    to whichever worker accepts first, so one burst may land on one worker only)."""
    held: list[socket.socket] = []
    with ThreadPoolExecutor(10) as pool:
        for _ in range(tries):
            held += pool.map(lambda _: greeted(port), range(10))
            if all(w["open_connections"] for w in status(suite)["workers"]):
                return held
    raise AssertionError(f"connections never reached both workers: {status(suite)['workers']}")


@pytest.fixture
def two(suite_factory: Any) -> Iterator[Suite]:
    suite = suite_factory(TWO)
    suite.add_user("ala@example.test")
    yield suite


def test_both_workers_accept_and_status_adds_them_up(two: Suite) -> None:
    report = status(two)
    pids = [w["pid"] for w in report["workers"]]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert report["pid"] == two.proc.pid  # type: ignore[union-attr]
    held = open_on_both(two, two.port("imap"))
    report = status(two)
    opened = [w["open_connections"] for w in report["workers"]]
    assert all(opened) and sum(opened) == len(held)
    # the counters are the sum of both workers'
    assert report["counters"]["imap.connections"] == len(held)
    assert report["counters"]["imap.open.connections"] == len(held)
    with urllib.request.urlopen(f"http://127.0.0.1:{two.port('web')}/metrics", timeout=10) as page:
        text = page.read().decode()
    assert f'mailsuite_current{{component="imap",what="connections"}} {len(held)}.0' in text
    for conn in held:
        conn.close()
    text = two.cli("status").stdout
    assert "w0" in text and "w1" in text and f"pid {pids[1]}" in text


def test_per_address_limit_holds_across_workers(suite_factory: Any) -> None:
    """`limits.connections_per_ip` counts the address's connections on every worker."""
    suite = suite_factory({**TWO, "limits": {"connections_per_ip": 12}})
    held = open_on_both(suite, suite.port("imap"), tries=1)[:12]
    assert len(held) == 10
    held += [greeted(suite.port("imap")), greeted(suite.port("imap"))]
    assert all(w["open_connections"] for w in status(suite)["workers"])
    for _ in range(6):  # whichever worker takes it, the thirteenth is refused
        with socket.create_connection(("127.0.0.1", suite.port("imap")), timeout=10) as extra:
            assert extra.recv(200) == b"* BYE Too many connections from your address\r\n"
    held.pop().close()
    assert wait(lambda: sum(w["open_connections"] for w in status(suite)["workers"]) == 11)
    greeted(suite.port("imap")).close()  # a place is free again


def test_per_account_limit_holds_across_workers(suite_factory: Any) -> None:
    """`imap.max_connections_per_user` counts the account's sessions on every worker."""
    suite = suite_factory({**TWO, "imap": {"max_connections_per_user": 4}})
    suite.add_user("ala@example.test")
    sessions: list[imaplib.IMAP4] = []
    while len(sessions) < 4:
        client = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
        assert client.login("ala@example.test", DEFAULT_PASSWORD)[0] == "OK"
        sessions.append(client)
        if len(sessions) == 4 and not all(w["open_connections"] for w in status(suite)["workers"]):
            sessions.pop(0).logout()  # until the four are on both workers
            assert suite.log().count("login ok") < 40, "every session went to one worker"
    for _ in range(6):  # whichever worker takes it, a fifth session is refused
        extra = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
        with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\]"):
            extra.login("ala@example.test", DEFAULT_PASSWORD)
        extra.logout()
    sessions.pop().logout()
    assert wait(lambda: sum(w["open_connections"] for w in status(suite)["workers"]) == 3)
    again = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    assert again.login("ala@example.test", DEFAULT_PASSWORD)[0] == "OK"  # a place again
    for client in [*sessions, again]:
        client.logout()


def test_a_pop3_maildrop_is_locked_for_every_worker(two: Suite) -> None:
    """RFC 1939 4: one session holds the maildrop; a second session for it is refused
    (RFC 2449 8.1.2 IN-USE) on whichever worker it reaches."""
    holder = poplib.POP3("127.0.0.1", two.port("pop3"), timeout=10)
    holder.user("ala@example.test")
    holder.pass_(DEFAULT_PASSWORD)
    refused: list[poplib.POP3] = []
    while not all(w["open_connections"] for w in status(two)["workers"]):
        assert len(refused) < 40, "every POP3 connection went to one worker"
        other = poplib.POP3("127.0.0.1", two.port("pop3"), timeout=10)
        other.user("ala@example.test")
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            other.pass_(DEFAULT_PASSWORD)
        refused.append(other)
    holder.quit()
    for other in refused:  # the maildrop is free for a session on either worker
        other.user("ala@example.test")
        assert other.pass_(DEFAULT_PASSWORD).startswith(b"+OK")
        other.quit()


def test_a_killed_worker_is_restarted_and_the_other_keeps_serving(two: Suite) -> None:
    before = status(two)["workers"]
    victim = before[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    # while it is down and being replaced, every login is served
    for _ in range(20):
        with imaplib.IMAP4("127.0.0.1", two.port("imap"), timeout=10) as client:
            assert client.login("ala@example.test", DEFAULT_PASSWORD)[0] == "OK"
    after = wait(lambda: [w for w in status(two)["workers"] if w["restarts"] == 1])
    assert after and after[0]["slot"] == 1 and after[0]["pid"] != victim, status(two)
    assert status(two)["workers"][0]["pid"] == before[0]["pid"]
    assert f"worker 1 (pid {victim}) was killed by signal 9" in two.log()
    held = open_on_both(two, two.port("imap"))  # the new worker accepts too
    for conn in held:
        conn.close()


def test_sigterm_stops_every_worker_and_sighup_reloads_each(two: Suite) -> None:
    pids = [w["pid"] for w in status(two)["workers"]]
    assert two.proc is not None
    two.proc.send_signal(signal.SIGHUP)
    assert wait(lambda: two.log().count("reloaded ") == 2), two.log()
    assert "w0 serve    reloaded" in two.log() and "w1 serve    reloaded" in two.log()
    started = time.monotonic()
    assert two.stop() == 0
    assert time.monotonic() - started < 8
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "Traceback" not in two.log()
    assert not (two.tmp / "var" / "control.sock").exists()


def test_workers_stop_when_the_supervisor_is_killed(two: Suite) -> None:
    """A supervisor killed with SIGKILL cannot stop its workers: they notice it is gone
    (their link to it is closed) and stop themselves, so no orphan keeps the ports."""
    pids = [w["pid"] for w in status(two)["workers"]]
    two.kill()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert wait(lambda: all(gone(pid) for pid in pids), timeout=15), two.log()
    assert two.log().count("the supervisor is gone; stopping") == 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", two.port("imap")), timeout=5)


def test_idle_on_one_worker_sees_a_delivery_made_by_the_other(two: Suite) -> None:
    """A message delivered by SMTP reaches IDLE sessions on both workers within a second."""
    watchers = []
    with ThreadPoolExecutor(10) as pool:
        for _ in range(5):
            watchers += pool.map(lambda _: _idling(two), range(6))
            if all(w["open_connections"] for w in status(two)["workers"]):
                break
    assert all(w["open_connections"] for w in status(two)["workers"])
    with smtplib.SMTP("127.0.0.1", two.port("smtp"), timeout=10) as client:
        client.sendmail("x@remote.test", ["ala@example.test"], b"Subject: push\r\n\r\nhi\r\n")
    sent = time.monotonic()
    late = []
    with ThreadPoolExecutor(len(watchers)) as pool:
        for seen in pool.map(_wait_exists, watchers):
            late.append(seen - sent)
    assert max(late) < 1.0, sorted(late)


def _idling(suite: Suite) -> tuple[socket.socket, Any]:
    conn = socket.create_connection(("127.0.0.1", suite.port("imap")), timeout=10)
    reader = conn.makefile("rb")
    reader.readline()
    conn.sendall(b"a LOGIN ala@example.test " + DEFAULT_PASSWORD.encode() + b"\r\n")
    while not reader.readline().startswith(b"a OK"):
        pass
    conn.sendall(b"b SELECT INBOX\r\n")
    while not reader.readline().startswith(b"b OK"):
        pass
    conn.sendall(b"c IDLE\r\n")
    assert reader.readline().startswith(b"+")
    return conn, reader


def _wait_exists(watcher: tuple[socket.socket, Any]) -> float:
    conn, reader = watcher
    while True:
        line = reader.readline()
        assert line, "connection closed"
        if line.endswith(b"EXISTS\r\n"):
            seen = time.monotonic()
            conn.close()
            return seen


def test_the_queue_runs_once_per_host(suite_factory: Any, sink: Any) -> None:  # noqa: F811
    """Only the first worker runs the outbound queue: with two workers, each queued message
    is sent once, whichever worker took it in."""
    handler, port = sink
    suite = suite_factory({**TWO, "smtp": {"relay_host": f"127.0.0.1:{port}"}})
    suite.add_user("ala@example.test")
    sent = 0
    while sent < 6 or not all(_took_smtp(w) for w in status(suite)["workers"]):
        assert sent < 40, "every submission went to one worker"
        submit(suite, [f"bob{sent}@remote.test"])
        sent += 1
    assert wait(lambda: len(handler.received) >= sent)
    assert wait(lambda: queue_files(suite) == [])
    time.sleep(3)  # longer than a queue scan: nothing is sent a second time
    assert sorted(r[1][0] for r in handler.received) == sorted(
        f"bob{n}@remote.test" for n in range(sent)
    )
    assert status(suite)["queue"] == {"delivering": 0, "queued": 0}


def _took_smtp(worker: dict[str, Any]) -> bool:
    return bool(worker["counters"].get("smtp.connections"))
