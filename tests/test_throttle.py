"""Login throttling against the real server: a busy directory, races, sprays and timing.

Every test starts `mailsuite serve` and talks to it with real clients from chosen loopback
addresses (all of 127.0.0.0/8 reaches the server), so "the attacker" and "the owner" are
different client networks exactly as they would be on the Internet.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import poplib
import re
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp

from mailsuite.passwords import hash_password_sync

from .conftest import Suite
from .test_imap_server import Raw

PASSWORD = "Secret123"
OWNER_IP = "127.0.0.1"
ATTACKER_IP = "127.0.0.66"
CONTACT = "kontakt@example.org"

IMAP_UNAVAILABLE = b"NO [UNAVAILABLE]"
IMAP_FAILED = b"NO [AUTHENTICATIONFAILED]"
POP3_TEMPORARY = b"-ERR [SYS/TEMP]"
SMTP_TEMPORARY = 454
WEB_UNAVAILABLE = 503

_users = count(1)


def new_user(suite: Suite, *, rounds: int = 4, contact: str | None = None) -> str:
    address = f"owner{next(_users)}@example.test"
    suite.directory.add_account(
        address, password_hash=hash_password_sync(PASSWORD, rounds), contact=contact
    )
    return address


# -- clients from a chosen source address --------------------------------------------------


class Imap:
    """One asyncio IMAP connection from `source`; `cmd` returns the tagged reply line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.tags = count(1)

    @classmethod
    async def open(cls, port: int, source: str = OWNER_IP) -> Imap:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        assert (await reader.readline()).startswith(b"* OK")
        return cls(reader, writer)

    async def cmd(self, text: str) -> bytes:
        tag = f"a{next(self.tags)}".encode()
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        await self.writer.drain()
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line.startswith(tag + b" "):
                return line[len(tag) + 1 :]

    async def login(self, user: str, password: str) -> bytes:
        return await self.cmd(f'LOGIN "{user}" "{password}"')

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


class Web:
    """The haslo site over HTTP from `source`, filling in forms as a browser does (CSRF)."""

    def __init__(self, port: int, source: str = OWNER_IP) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(source, 0)),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # the site is reached by IP
            timeout=aiohttp.ClientTimeout(total=10),
        )

    async def post(self, path: str, fields: dict[str, str], form: str | None = None) -> int:
        async with self.session.get(self.base + (form or path)) as response:
            page = await response.text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, page
        data = {"csrf": csrf.group(1), **fields}
        async with self.session.post(self.base + path, data=data) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self.session.close()


def smtp_auth(suite: Suite, user: str, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10) as client:
        client.ehlo()
        client.user, client.password = user, password
        try:
            return client.auth("PLAIN", client.auth_plain)[0]
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code


def pop3_pass(suite: Suite, user: str, password: str) -> bytes:
    client = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    try:
        client.user(user)
        return client.pass_(password)
    except poplib.error_proto as exc:
        return exc.args[0]
    finally:
        client.close()


def inbox(suite: Suite, address: str) -> list[bytes]:
    new = suite.maildir(address) / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []


def wait_for_mail(suite: Suite, address: str, n: int, timeout: float = 10) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while len(found := inbox(suite, address)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# -- the loop-lag probe --------------------------------------------------------------------


_PROBE = """
import json, select, socket, sys, time
port, user, password, interval = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
reader = sock.makefile("rb")
def command(tag, text):
    sock.sendall(tag + b" " + text + b"\\r\\n")
    while not (line := reader.readline()).startswith(tag + b" "):
        if not line:
            raise ConnectionError("closed")
    return line
reader.readline()
assert b" OK " in command(b"l", f'LOGIN "{user}" "{password}"'.encode())
print("ready", flush=True)
samples = []
while not select.select([sys.stdin], [], [], interval)[0]:
    began = time.perf_counter()
    assert b" OK " in command(b"n", b"NOOP")
    samples.append(time.perf_counter() - began)
print(json.dumps(samples), flush=True)
"""


class NoopProbe:
    """A logged-in IMAP session, in a process of its own so that the test's own work does not
    colour the figures, that sends NOOP every `interval` and keeps each round trip: what any
    other user of the server feels while something else goes on."""

    def __init__(self, suite: Suite, address: str, interval: float = 0.1) -> None:
        self.args = [str(suite.port("imap")), address, PASSWORD, str(interval)]
        self.samples: list[float] = []

    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def report(self) -> str:
        return (
            f"NOOP p99 {self.p99() * 1000:.1f} ms, median "
            f"{statistics.median(self.samples) * 1000:.1f} ms, max "
            f"{max(self.samples) * 1000:.1f} ms over {len(self.samples)} NOOPs"
        )

    @contextmanager
    def running(self) -> Iterator[NoopProbe]:
        child = subprocess.Popen(
            [sys.executable, "-c", _PROBE, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            yield self
        finally:
            out, _ = child.communicate(timeout=20)  # closing stdin ends the probe
        self.samples = json.loads(out)
        assert self.samples, "the probe took no samples"


# -- a busy directory ----------------------------------------------------------------------


@contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """Another process's write transaction on the directory, held for the block."""
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - began


def test_a_busy_directory_answers_try_later_within_a_second_and_nobody_else_waits(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """While another process holds the directory's write lock, every protocol's login answers
    its temporary failure within about a second, a POP3 greeting comes at once, and a session
    that is already logged in does not notice."""
    suite = suite_factory()
    address = new_user(suite, contact=CONTACT)
    database = Path(suite.config["paths"]["database"])
    probe = NoopProbe(suite, new_user(suite))
    with probe.running(), write_locked(database):
        imap = Raw(suite.port("imap"))
        reply, took = timed(imap.cmd, f'LOGIN "{address}" "{PASSWORD}"')
        assert reply[-1].split(b" ", 1)[1].startswith(IMAP_UNAVAILABLE), reply
        assert took < 2.0
        imap.close()

        began = time.monotonic()
        client = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
        assert client.getwelcome().startswith(b"+OK")
        assert time.monotonic() - began < 0.5
        client.user(address)
        try:
            client.pass_(PASSWORD)
            raise AssertionError("POP3 PASS succeeded against a locked directory")
        except poplib.error_proto as exc:
            assert exc.args[0].startswith(POP3_TEMPORARY), exc
        assert time.monotonic() - began < 2.5
        client.close()

        code, took = timed(smtp_auth, suite, address, PASSWORD)
        assert code == SMTP_TEMPORARY and took < 2.0

        async def web_login() -> int:
            site = Web(suite.port("web"))
            try:
                return await site.post("/konto", {"konto": address, "haslo": PASSWORD})
            finally:
                await site.close()

        status, took = timed(asyncio.run, web_login())
        assert status == WEB_UNAVAILABLE and took < 2.5
    assert max(probe.samples) < 0.25, sorted(probe.samples)[-5:]
    # Once the other process lets go, the same login works.
    imap = Raw(suite.port("imap"))
    imap.login(address, PASSWORD)
    imap.close()


# -- the race ------------------------------------------------------------------------------


def test_logins_sent_at_once_are_checked_no_more_often_than_the_limit(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """40 LOGINs to one account from one address at the same moment: no more passwords are
    checked than `throttle.max_failures_per_account`, the rest are told to try later."""
    suite = suite_factory({"accounts": {"bcrypt_rounds": 10}})
    address = new_user(suite, rounds=10)
    limit = 5

    async def race() -> list[bytes]:
        sessions = [await Imap.open(suite.port("imap")) for _ in range(40)]
        passwords = [f"wrong-{n}" for n in range(39)] + [PASSWORD]
        replies = await asyncio.gather(
            *(s.login(address, p) for s, p in zip(sessions, passwords, strict=True))
        )
        for s in sessions:
            await s.close()
        return list(replies)

    replies = asyncio.run(race())
    checked = [r for r in replies if r.startswith(IMAP_FAILED) or r.startswith(b"OK")]
    refused = [r for r in replies if r.startswith(IMAP_UNAVAILABLE)]
    assert len(checked) <= limit, replies
    assert len(checked) + len(refused) == 40, replies


# -- the owner and the attacker ------------------------------------------------------------


def test_a_spray_from_one_address_never_keeps_the_owner_out(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """1,000 wrong passwords from 127.0.0.66 refuse that address, even with the right password,
    while the owner's right password from 127.0.0.1 still opens IMAP, POP3, SMTP and the web
    at once. Prints the p99 round trip of another session's NOOP during the spray."""
    suite = suite_factory()
    suite.add_user(CONTACT)
    address = new_user(suite, contact=CONTACT)
    bystander = new_user(suite)
    probe = NoopProbe(suite, bystander, interval=0.02)

    async def spray() -> list[bytes]:
        async def one_connection(n: int) -> list[bytes]:
            imap = await Imap.open(suite.port("imap"), ATTACKER_IP)
            replies = [await imap.login(address, f"guess-{n}-{i}") for i in range(50)]
            await imap.close()
            return replies

        done = await asyncio.gather(*(one_connection(n) for n in range(20)))
        return [r for replies in done for r in replies]

    with probe.running():
        replies = asyncio.run(spray())
    print(f"\nloop lag during a 1,000-login spray from one address: {probe.report()}")
    assert len(replies) == 1000
    assert all(r.startswith((IMAP_FAILED, IMAP_UNAVAILABLE)) for r in replies)
    assert sum(r.startswith(IMAP_UNAVAILABLE) for r in replies) >= 990

    async def from_attacker() -> bytes:
        imap = await Imap.open(suite.port("imap"), ATTACKER_IP)
        try:
            return await imap.login(address, PASSWORD)
        finally:
            await imap.close()

    assert asyncio.run(from_attacker()).startswith(IMAP_UNAVAILABLE)

    began = time.monotonic()
    imap = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    assert imap.login(address, PASSWORD)[0] == "OK"
    imap.logout()
    assert pop3_pass(suite, address, PASSWORD).startswith(b"+OK")
    assert smtp_auth(suite, address, PASSWORD) == 235

    async def web_login() -> int:
        site = Web(suite.port("web"))
        try:
            return await site.post("/konto", {"konto": address, "haslo": PASSWORD})
        finally:
            await site.close()

    assert asyncio.run(web_login()) == 200
    assert time.monotonic() - began < 3.0


def test_wrong_web_codes_do_not_lock_the_mail_protocols(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """Five wrong e-mailed codes end that code, and only that: IMAP, POP3 and SMTP still take
    the right password."""
    suite = suite_factory()
    suite.add_user(CONTACT)
    address = new_user(suite, contact=CONTACT)

    async def wrong_codes() -> list[int]:
        site = Web(suite.port("web"))
        try:
            assert await site.post("/konto", {"konto": address, "haslo": PASSWORD}) == 200
            return [
                await site.post("/konto/kod", {"kod": f"{n:06d}"}, form="/konto/kod")
                for n in range(5)
            ]
        finally:
            await site.close()

    assert asyncio.run(wrong_codes()) == [403] * 5
    imap = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    assert imap.login(address, PASSWORD)[0] == "OK"
    imap.logout()
    assert pop3_pass(suite, address, PASSWORD).startswith(b"+OK")
    assert smtp_auth(suite, address, PASSWORD) == 235


async def ask_for_reset(suite: Suite, address: str, source: str) -> int:
    site = Web(suite.port("web"), source)
    try:
        return await site.post("/nie-pamietam-hasla", {"konto": address})
    finally:
        await site.close()


def test_reset_requests_from_elsewhere_never_refuse_the_owner(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """Anyone may ask for a reset in the owner's name until their own address is refused; the
    owner's request from a clean address is still answered and its e-mail sent."""
    suite = suite_factory()
    suite.add_user(CONTACT)
    address = new_user(suite, contact=CONTACT)

    async def scenario() -> tuple[list[int], int]:
        attacker = [await ask_for_reset(suite, address, ATTACKER_IP) for _ in range(4)]
        return attacker, await ask_for_reset(suite, address, OWNER_IP)

    attacker, owner = asyncio.run(scenario())
    assert attacker == [200, 200, 200, 429]
    assert owner == 200
    assert len(wait_for_mail(suite, CONTACT, 4)) == 4


def test_resets_asked_from_many_addresses_stop_mailing_with_the_same_answer(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """Requests from many addresses all get the same answer, but only
    `web.reset_mails_per_account` e-mails go out per window: the newest one mailed still
    holds a working temporary password, so the owner loses nothing."""
    suite = suite_factory({"web": {"reset_mails_per_account": 5}})
    suite.add_user(CONTACT)
    address = new_user(suite, contact=CONTACT)

    async def scenario() -> list[int]:
        return [await ask_for_reset(suite, address, f"127.0.2.{n}") for n in range(1, 9)]

    assert asyncio.run(scenario()) == [200] * 8
    mails = wait_for_mail(suite, CONTACT, 5)
    time.sleep(0.5)  # nothing more arrives
    assert len(inbox(suite, CONTACT)) == len(mails) == 5


# -- a spray across many addresses ---------------------------------------------------------


def _metric(text: str, event: str) -> float:
    found = re.search(
        r'^mailsuite_events_total\{component="auth",event="' + re.escape(event) + r'"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def test_a_spray_across_addresses_slows_every_failure_but_no_success(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """320 guesses at unknown accounts from 200 addresses exceed the global failure budget
    (`throttle.global_failures_per_minute`, 60 by default): later failures wait
    `throttle.global_delay` (1 s) before their answer, the owner's right password is answered
    at once, and /metrics counts the slowed failures. Prints the NOOP p99 of another session
    during the spray."""
    suite = suite_factory()
    address = new_user(suite)
    bystander = new_user(suite)
    probe = NoopProbe(suite, bystander, interval=0.02)

    async def guess(n: int) -> float:
        imap = await Imap.open(suite.port("imap"), f"127.0.1.{n % 200 + 1}")
        try:
            began = time.monotonic()
            assert (await imap.login(f"ghost{n}@example.test", "guess")).startswith(IMAP_FAILED)
            return time.monotonic() - began
        finally:
            await imap.close()

    async def owner() -> float:
        await asyncio.sleep(1.0)  # well inside the spray
        imap = await Imap.open(suite.port("imap"))
        try:
            began = time.monotonic()
            assert (await imap.login(address, PASSWORD)).startswith(b"OK")
            return time.monotonic() - began
        finally:
            await imap.close()

    async def spray() -> tuple[list[float], float]:
        gate = asyncio.Semaphore(40)

        async def limited(n: int) -> float:
            async with gate:
                return await guess(n)

        *guesses, own = await asyncio.gather(*(limited(n) for n in range(320)), owner())
        return guesses, own

    with probe.running():
        guesses, own = asyncio.run(spray())
    print(f"\nloop lag during a 320-guess spray from 200 addresses: {probe.report()}")
    slowed = [t for t in guesses if t >= 0.95]
    assert len(slowed) >= 320 - 60 - 40, sorted(guesses)[:50]
    assert own < 0.3
    with urlopen_metrics(suite) as text:
        assert _metric(text, "throttle.global") >= len(slowed)


@contextmanager
def urlopen_metrics(suite: Suite) -> Iterator[str]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{suite.port('web')}/metrics", timeout=10) as r:
        yield r.read().decode()


# -- timing --------------------------------------------------------------------------------


def test_unknown_login_and_wrong_password_take_the_same_time(
    suite_factory,  # type: ignore[no-untyped-def]
) -> None:
    """With accounts hashed at the configured cost, a login that names nobody costs the same
    bcrypt as a wrong password: their answers take the same time within 10 % (the median of
    the ratio within each pair, the two taken one after the other in alternating order so
    that the machine's changing load falls on both alike)."""
    rounds = 11
    suite = suite_factory(
        {
            "accounts": {"bcrypt_rounds": rounds},
            "throttle": {"max_failures_per_ip": 1000, "max_failures_per_account": 1000},
        }
    )
    address = new_user(suite, rounds=rounds)
    imap = Raw(suite.port("imap"))

    def answer(user: str) -> float:
        began = time.perf_counter()
        lines = imap.cmd(f'LOGIN "{user}" "not-the-password"')
        assert b"AUTHENTICATIONFAILED" in lines[-1]
        return time.perf_counter() - began

    pairs = []
    for n in range(30):
        if n % 2:
            wrong, unknown = answer(address), answer(f"nobody{n}@example.test")
        else:
            unknown, wrong = answer(f"nobody{n}@example.test"), answer(address)
        pairs.append((unknown, wrong))
    imap.close()
    ratio = statistics.median(u / w for u, w in pairs)
    unknown_ms = statistics.median(u for u, _ in pairs) * 1000
    wrong_ms = statistics.median(w for _, w in pairs) * 1000
    print(
        f"\nmedian unknown {unknown_ms:.1f} ms, wrong password {wrong_ms:.1f} ms, "
        f"median ratio {ratio:.3f}"
    )
    assert abs(ratio - 1) < 0.10
