"""A busy directory holds up nobody else: no request calls the directory on the event loop.

The directory is SQLite and may wait up to its busy timeout (a second) for another process's
write lock. Every directory call a request makes runs in an I/O thread, so while the CLI or a
second process holds the lock, a request that must write answers its protocol's temporary
failure within about that second, a read goes on (WAL readers never wait), and every other
session keeps its pace.

The servers here run through a small wrapper around `mailsuite serve` that watches the
directory: a query made on the loop's thread from protocol or web code is written to the
log (each test asserts there is none), and while a flag file exists every query outside the
login pool fails as a busy database does, so each protocol's answer to a directory that
cannot answer is tested on the real server.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import poplib
import re
import smtplib
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailsuite.smtp import replies
from mailsuite.urls import ACCOUNT_PATH, CHANGE_PASSWORD_PATH, RESET_PATH

from .conftest import Suite
from .test_imap_server import Raw as ImapRaw
from .test_sasl import imap_auth, plain, pop3_auth
from .test_sasl import smtp_auth as smtp_auth_response
from .test_throttle import (
    PASSWORD,
    NoopProbe,
    Web,
    new_user,
    smtp_auth,
    timed,
    wait_for_mail,
    write_locked,
)

CODE_PATH = ACCOUNT_PATH + "/kod"
TERMS_PATH = ACCOUNT_PATH + "/regulamin"
LOGOUT_PATH = ACCOUNT_PATH + "/wyloguj"
EXTERNAL_PATH = ACCOUNT_PATH + "/zewnetrzne"

WEB_UNAVAILABLE = 503
IMAP_UNAVAILABLE = b"NO [UNAVAILABLE]"
POP3_TEMPORARY = b"-ERR [SYS/TEMP]"
SMTP_AUTH_TEMPORARY = 454
BUSY_ANSWER = 1.5  # seconds: the directory's busy timeout and the request around it
NOOP_LIMIT = 0.05  # what another session may wait for a NOOP meanwhile
# A loop that waits for the lock is held for the busy timeout, a second. On a machine shared
# with other work the scheduler alone delays a process by up to a tenth of that (an idle
# Python process oversleeps by 70 ms there), so a few round trips and stalls that short are
# the machine's; anything this long is ours.
HELD = 0.25
STALL = re.compile(r"event loop stalled for (\d+) ms")
ON_THE_LOOP = "DIRECTORY ON THE LOOP"

# Starts `mailsuite serve` with the directory watched (see the module docstring). argv[1] is
# the flag file; the rest is the command line of `mailsuite`.
_WRAPPER = f"""
import sys, threading
from pathlib import Path
from mailsuite.directory import Directory, DirectoryUnavailable

flag = Path(sys.argv.pop(1))
SERVER_CODE = ("/mailsuite/web/", "/mailsuite/smtp/", "/mailsuite/imap/", "/mailsuite/pop3/",
               "/mailsuite/sasl.py", "/mailsuite/accounts.py", "/mailsuite/fetcher/accounts.py")

def watch():
    thread = threading.current_thread()
    if thread is threading.main_thread():  # the loop's thread
        frame = sys._getframe(2)
        while frame is not None:
            if any(part in frame.f_code.co_filename for part in SERVER_CODE):
                where = f"{{frame.f_code.co_filename}}:{{frame.f_lineno}}"
                print("{ON_THE_LOOP}", where, file=sys.stderr, flush=True)
                break
            frame = frame.f_back
    if flag.exists() and not thread.name.startswith("auth-db"):
        raise DirectoryUnavailable("the directory database is busy; try again shortly")

rows, transaction = Directory._rows, Directory.transaction

def watched_rows(self, *args, **kwargs):
    watch()
    return rows(self, *args, **kwargs)

def watched_transaction(self):
    watch()
    return transaction(self)

Directory._rows = watched_rows
Directory.transaction = watched_transaction
sys.argv[0] = "mailsuite"
from mailsuite.cli import main
main()
"""


class WatchedSuite(Suite):
    """The real server, started through the wrapper that watches its directory."""

    def __init__(self, tmp: Path, overrides: dict[str, Any] | None = None) -> None:
        super().__init__(tmp, overrides)
        self.flag = tmp / "directory-busy"

    def command(self) -> list[str]:
        return [sys.executable, "-c", _WRAPPER, str(self.flag)]

    @contextmanager
    def unanswering(self) -> Iterator[None]:
        """Every directory query outside the login pool fails as a busy database does."""
        self.flag.touch()
        try:
            yield
        finally:
            self.flag.unlink()

    def assert_loop_untouched(self) -> None:
        """No request queried the directory on the loop's thread, and the watchdog saw the
        loop held for no longer than the machine alone holds it (`HELD`); shorter stalls are
        printed."""
        lines = self.log().splitlines()
        assert not [ln for ln in lines if ON_THE_LOOP in ln]
        stalls = [(int(m.group(1)), ln) for ln in lines if (m := STALL.search(ln))]
        assert not [ln for ms, ln in stalls if ms >= HELD * 1000]
        for _, line in stalls:
            print("short stall:", line)


@pytest.fixture
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Make watched suites (`watched(overrides)`); each is killed at the end of the test."""
    made: list[WatchedSuite] = []

    def make(overrides: dict[str, Any] | None = None) -> WatchedSuite:
        suite = WatchedSuite(tmp_path_factory.mktemp("watched"), overrides)
        made.append(suite)
        return suite.start()  # type: ignore[return-value]

    yield make
    for suite in made:
        suite.close()


def assert_kept_pace(samples: list[float], report: str) -> None:
    """Nine NOOPs in ten answered within NOOP_LIMIT, and none held as long as `HELD`."""
    ordered = sorted(samples)
    assert ordered[int(len(ordered) * 0.9)] < NOOP_LIMIT and ordered[-1] < HELD, report


def code_in(mail: bytes) -> str:
    message = email.message_from_bytes(mail, policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"autoryzacyjny: (\d{6})", body.get_content())
    assert found, body.get_content()
    return found.group(1)


async def code_step(suite: Suite, site: Web, address: str, contact: str) -> str:
    """Type the password of `address`; the code it e-mails to `contact`."""
    assert await site.post(ACCOUNT_PATH, {"konto": address, "haslo": PASSWORD}) == 200
    mails = wait_for_mail(suite, contact, 1)
    assert mails, "no code was e-mailed"
    return code_in(mails[-1])


class SmtpNoops:
    """Another SMTP session that sends NOOP every `interval` in a thread of its own and keeps
    each round trip."""

    def __init__(self, suite: Suite, interval: float = 0.1) -> None:
        self.port = suite.port("smtp")
        self.interval = interval
        self.samples: list[float] = []
        self.stop = threading.Event()

    def _run(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.ehlo()
            while not self.stop.wait(self.interval):
                began = time.perf_counter()
                assert client.noop()[0] == 250
                self.samples.append(time.perf_counter() - began)

    @contextmanager
    def running(self) -> Iterator[SmtpNoops]:
        thread = threading.Thread(target=self._run)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join(10)
        assert self.samples, "no SMTP NOOP was answered"

    def report(self) -> str:
        median = statistics.median(self.samples) * 1000
        return (
            f"SMTP NOOP median {median:.1f} ms, max {max(self.samples) * 1000:.1f} ms "
            f"over {len(self.samples)} NOOPs"
        )


# -- another process holds the write lock ----------------------------------------------------


def test_web_writes_answer_503_within_a_second_and_imap_sessions_keep_their_pace(
    watched,  # type: ignore[no-untyped-def]
) -> None:
    """While another process holds the directory's write lock, the code step, the terms,
    logging out, the password change and a reset request each answer 503 within the busy
    timeout, a logged-in IMAP session's NOOP sent every 100 ms keeps answering within 50 ms
    (`assert_kept_pace`), and once the lock is gone the same steps work."""
    suite = watched()
    contact_a, contact_b = new_user(suite), new_user(suite)
    coder = new_user(suite, contact=contact_a)  # will type the code during the lock
    signed_in = new_user(suite, contact=contact_b)  # past the code, at the terms
    changer = new_user(suite)
    database = Path(suite.config["paths"]["database"])
    probe = NoopProbe(suite, new_user(suite))

    async def scenario() -> dict[str, tuple[int, float]]:
        a, b, c = Web(suite.port("web")), Web(suite.port("web")), Web(suite.port("web"))
        try:
            code_b = await code_step(suite, b, signed_in, contact_b)
            assert await b.post(CODE_PATH, {"kod": code_b}) == 200  # the terms page
            code_a = await code_step(suite, a, coder, contact_a)
            change = {
                "konto": changer,
                "aktualne": PASSWORD,
                "nowe": "Zmienione2025",
                "powtorzone": "Zmienione2025",
            }
            steps: list[tuple[str, Web, str, dict[str, str], str | None]] = [
                ("code", a, CODE_PATH, {"kod": code_a}, None),
                ("terms", b, TERMS_PATH, {"akceptuje": "tak"}, ACCOUNT_PATH),
                ("change", c, CHANGE_PASSWORD_PATH, change, None),
                ("reset", c, RESET_PATH, {"konto": changer}, None),
                ("logout", b, LOGOUT_PATH, {}, ACCOUNT_PATH),
            ]
            busy: dict[str, tuple[int, float]] = {}
            with probe.running(), write_locked(database):
                for name, site, path, fields, form in steps:
                    began = time.monotonic()
                    status = await site.post(path, fields, form)
                    busy[name] = status, time.monotonic() - began
            # Nothing was written, so each step works once the lock is gone: the code is
            # still the live one, the session is still signed in.
            after = {
                name: await site.post(path, fields, form)
                for name, site, path, fields, form in steps
            }
            assert after == dict.fromkeys(after, 200), after
            return busy
        finally:
            for site in (a, b, c):
                await site.close()

    busy = asyncio.run(scenario())
    print(probe.report())
    for name, (status, took) in busy.items():
        assert status == WEB_UNAVAILABLE, (name, status)
        assert took < BUSY_ANSWER, (name, took)
    assert_kept_pace(probe.samples, probe.report())
    imap = ImapRaw(suite.port("imap"))
    imap.login(changer, "Zmienione2025")
    imap.close()
    suite.assert_loop_untouched()


def test_mail_flows_during_a_lock_and_other_sessions_keep_their_pace(
    watched,  # type: ignore[no-untyped-def]
) -> None:
    """While another process holds the write lock, RCPT for a local user is answered within
    the busy timeout and never with a 5xx (reading needs no lock: it is accepted), a
    submission's sender, recipients and From are checked and the message accepted, a new
    AUTH gets 454, and other SMTP and IMAP sessions' NOOPs answer within 50 ms."""
    suite = watched()
    sender, recipient = new_user(suite), new_user(suite)
    database = Path(suite.config["paths"]["database"])
    probe = NoopProbe(suite, new_user(suite))
    noops = SmtpNoops(suite)
    mx = smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10)
    mx.ehlo()
    submission = smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10)
    submission.ehlo()
    submission.login(sender, PASSWORD)
    message = f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: busy\r\n\r\nbody\r\n"
    try:
        with probe.running(), noops.running(), write_locked(database):
            assert mx.mail("someone@elsewhere.example")[0] == 250
            (code, _), took = timed(mx.rcpt, recipient)
            assert code < 500 and took < BUSY_ANSWER, (code, took)
            assert code == 250  # WAL: a read does not wait for the writer
            assert mx.data(b"Subject: from afar\r\n\r\nhello\r\n")[0] == 250
            (code, _), took = timed(submission.mail, sender)
            assert code == 250 and took < BUSY_ANSWER, (code, took)
            assert submission.rcpt(recipient)[0] == 250
            assert submission.data(message.encode())[0] == 250
            code, took = timed(smtp_auth, suite, sender, PASSWORD)
            assert code == SMTP_AUTH_TEMPORARY and took < BUSY_ANSWER, (code, took)
    finally:
        mx.quit()
        submission.quit()
    print(probe.report(), "|", noops.report())
    assert_kept_pace(probe.samples, probe.report())
    assert_kept_pace(noops.samples, noops.report())
    assert len(wait_for_mail(suite, recipient, 2)) == 2
    assert smtp_auth(suite, sender, PASSWORD) == 235
    suite.assert_loop_untouched()


# -- a directory that cannot answer at all ---------------------------------------------------


def test_a_directory_that_cannot_answer_gets_each_protocols_temporary_failure(
    watched,  # type: ignore[no-untyped-def]
) -> None:
    """When the directory cannot answer even reads (the login pool excepted, so a password
    still proves who is asking), RCPT, MAIL and the end of DATA get 451 4.3.0, AUTH with an
    authzid 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], a web page 503: never a
    5xx, a refusal or a traceback to the client. Afterwards all of them work."""
    suite = watched({"web": {"login_code": False}})
    sender, recipient = new_user(suite), new_user(suite)
    authzid = plain(sender, authcid=sender)

    async def web_session() -> tuple[Web, int]:
        site = Web(suite.port("web"))
        return site, await site.post(ACCOUNT_PATH, {"konto": sender, "haslo": PASSWORD})

    async def account_page(site: Web) -> int:
        async with site.session.get(site.base + ACCOUNT_PATH) as response:
            return response.status

    loop = asyncio.new_event_loop()
    site, status = loop.run_until_complete(web_session())
    assert status == 200
    mx = smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10)
    mx.ehlo()
    submission = smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10)
    submission.ehlo()
    submission.login(sender, PASSWORD)
    ending = smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10)
    ending.ehlo()
    ending.login(sender, PASSWORD)
    assert ending.mail(sender)[0] == 250 and ending.rcpt(recipient)[0] == 250
    busy = replies.DIRECTORY_BUSY.encode()
    try:
        with suite.unanswering():
            assert mx.mail("someone@elsewhere.example")[0] == 250
            for address in (recipient, "postmaster", f"postmaster@{suite.config['domains'][0]}"):
                (code, text), took = timed(mx.rcpt, address)
                assert f"{code} ".encode() + text == busy and took < BUSY_ANSWER, address
            code, text = submission.mail(sender)
            assert f"{code} ".encode() + text == busy
            code, text = ending.data(b"From: <" + sender.encode() + b">\r\n\r\nbody\r\n")
            assert f"{code} ".encode() + text == busy
            code, text = smtp_auth_response(suite, authzid)
            assert text == replies.AUTH_UNAVAILABLE, text
            assert imap_auth(suite, authzid).startswith(IMAP_UNAVAILABLE)
            assert pop3_auth(suite, authzid).startswith(POP3_TEMPORARY)
            assert loop.run_until_complete(account_page(site)) == WEB_UNAVAILABLE
        assert mx.rcpt(recipient)[0] == 250
        assert submission.mail(sender)[0] == 250
        assert smtp_auth_response(suite, authzid)[0] == 235
        assert imap_auth(suite, authzid).startswith(b"OK ")
        assert pop3_auth(suite, authzid).startswith(b"+OK")
        assert loop.run_until_complete(account_page(site)) == 200
    finally:
        for client in (mx, submission, ending):
            client.close()
        loop.run_until_complete(site.close())
        loop.close()
    suite.assert_loop_untouched()


# -- every request once, watched --------------------------------------------------------------


def test_no_page_or_command_calls_the_directory_on_the_loop(
    watched,  # type: ignore[no-untyped-def]
) -> None:
    """Each web page and each directory-reading command of SMTP, IMAP and POP3, once: none of
    them queries the directory on the loop's thread."""
    suite = watched({"web": {"external_accounts": True}})
    contact = new_user(suite)
    address = new_user(suite, contact=contact)
    suite.directory.add_alias(f"alias-{address}", address)

    async def pages() -> list[int]:
        site = Web(suite.port("web"))
        try:
            code = await code_step(suite, site, address, contact)
            statuses = [
                await site.post(CODE_PATH, {"kod": code}),
                await site.post(TERMS_PATH, {"akceptuje": "tak"}, ACCOUNT_PATH),
            ]
            for path in (ACCOUNT_PATH, EXTERNAL_PATH, EXTERNAL_PATH + "/dodaj",
                         EXTERNAL_PATH + "/1/edytuj", ACCOUNT_PATH + "/poczta.mobileconfig",
                         "/aktywuj/no-such-link"):  # fmt: skip
                async with site.session.get(site.base + path) as response:
                    statuses.append(response.status)
            wizard = {"dostawca": "Poczta", "nazwa": "Ja", "email": "ja@elsewhere.example"}
            statuses.append(await site.post(EXTERNAL_PATH + "/dodaj", wizard))
            statuses.append(await site.post(RESET_PATH, {"konto": address}))
            statuses.append(await site.post(LOGOUT_PATH, {}, ACCOUNT_PATH))
            return statuses
        finally:
            await site.close()

    assert asyncio.run(pages()) == [200, 200, 200, 200, 200, 200, 200, 404, 400, 200, 200]
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10) as client:
        client.ehlo()
        client.login(address, PASSWORD)
        assert client.mail(f"alias-{address}")[0] == 250
        assert client.rcpt(contact)[0] == 250
        assert client.rcpt("postmaster")[0] == 250
        assert client.data(f"From: <{address}>\r\n\r\nbody\r\n".encode())[0] == 250
    assert smtp_auth_response(suite, plain(address, authcid=address))[0] == 235
    assert imap_auth(suite, plain(address, authcid=address)).startswith(b"OK ")
    assert pop3_auth(suite, plain(address, authcid=address)).startswith(b"+OK")
    client = poplib.POP3("127.0.0.1", suite.port("pop3"), timeout=10)
    client.user(address)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()
    suite.assert_loop_untouched()
