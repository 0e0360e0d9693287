"""The outbound queue against real SMTP sinks: retries, bounces, restarts, DKIM, the CLI.

Each sink is an aiosmtpd server in the test process; `smtp.relay_host` points the suite at it
(MX lookups cannot leave this machine). Retry delays are set to a fraction of a second so
backoff is observed without long waits.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.test_smtp import messages, unverified, wait_for_messages

PASSWORD = "Secret123"


@dataclass
class Sink:
    """Refuses the first `refuse` transactions with `reply`, then accepts and records them."""

    refuse: int = 0
    reply: str = "451 4.3.0 try again later"
    attempts: list[float] = field(default_factory=list)
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.attempts.append(time.monotonic())
        envelope.mail_from = address
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if len(self.attempts) <= self.refuse:
                return self.reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def relay_suite(suite_factory, port: int, **smtp: Any):  # type: ignore[no-untyped-def]
    settings = {"relay_host": f"127.0.0.1:{port}", "retry_initial": 0.4, "retry_max": 1.0}
    settings.update(smtp)
    suite = suite_factory({"smtp": settings})
    suite.add_user("ala@example.test")
    return suite


def submit(suite, rcpts: list[str], body: bytes = b"", sender: str = "ala@example.test") -> None:  # type: ignore[no-untyped-def]
    data = f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: out\r\n\r\n".encode() + (
        body or b"hello\r\n"
    )
    with smtplib.SMTP("127.0.0.1", suite.port("submission")) as client:
        client.starttls(context=unverified())
        client.login(sender, PASSWORD)
        assert client.sendmail(sender, rcpts, data) == {}


def wait(predicate, timeout: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def queue_files(suite) -> list[Path]:  # type: ignore[no-untyped-def]
    return sorted((Path(suite.config["paths"]["spool"]) / "queue").glob("*"))


def test_temporary_refusals_are_retried_with_backoff(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    """Refused twice with 451, the message goes out on the third try, after growing delays."""
    handler, port = sink
    handler.refuse = 2
    suite = relay_suite(suite_factory, port)
    submit(suite, ["bob@remote.test", "eve@remote.test", "joe@remote.test"])
    assert wait(lambda: handler.received)
    assert len(handler.attempts) == 3
    first, second = (b - a for a, b in zip(handler.attempts, handler.attempts[1:], strict=False))
    assert first >= 0.35 and second >= 0.75
    [(sender, rcpts, data)] = handler.received
    # One transaction for every recipient at the domain.
    assert sender == "ala@example.test"
    assert sorted(rcpts) == ["bob@remote.test", "eve@remote.test", "joe@remote.test"]
    assert b"Subject: out" in data
    assert wait(lambda: queue_files(suite) == [])


def test_permanent_refusal_bounces_to_the_sender(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.refuse = 10**6
    handler.reply = "550 5.1.1 no such mailbox here"
    suite = relay_suite(suite_factory, port)
    submit(suite, ["ghost@remote.test"])
    [path] = wait_for_messages(suite, "ala@example.test", 1)
    report = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Return-Path"] == "<>"
    text, status, headers = report.get_payload()
    assert "ghost@remote.test" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    fields = status.as_string()
    assert "Final-Recipient: rfc822; ghost@remote.test" in fields
    assert "Action: failed" in fields and "Status: 5.1.1" in fields
    assert headers.get_content_type() == "text/rfc822-headers"
    assert "Subject: out" in headers.get_payload()
    assert handler.received == []
    assert wait(lambda: queue_files(suite) == [])


def test_expiry_bounces_after_the_queue_lifetime(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.refuse = 10**6
    suite = relay_suite(suite_factory, port, queue_lifetime=2)
    submit(suite, ["later@remote.test"])
    [path] = wait_for_messages(suite, "ala@example.test", 1)
    report = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    fields = report.get_payload()[1].as_string()
    assert "Status: 4.3.0" in fields and "Action: failed" in fields
    assert len(handler.attempts) >= 2
    assert wait(lambda: queue_files(suite) == [])


def test_queued_mail_survives_a_restart(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.refuse = 10**6
    suite = relay_suite(suite_factory, port, retry_initial=0.2, retry_max=0.5)
    submit(suite, ["bob@remote.test"])
    assert wait(lambda: len(handler.attempts) >= 1)
    suite.kill()
    assert len([p for p in queue_files(suite) if p.suffix == ".json"]) == 1
    handler.refuse = 0
    handler.attempts.clear()
    suite.start()
    assert wait(lambda: handler.received)
    assert [r for _, r, _ in handler.received] == [["bob@remote.test"]]
    assert wait(lambda: queue_files(suite) == [])


def test_queue_cli_list_show_flush_delete(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    handler.refuse = 10**6
    suite = relay_suite(suite_factory, port, retry_initial=3600, retry_max=3600)
    submit(suite, ["one@remote.test"])
    submit(suite, ["two@remote.test"])
    assert wait(lambda: len(handler.attempts) >= 2)
    listing = suite.cli("queue", "list")
    assert listing.returncode == 0
    assert "one@remote.test" in listing.stdout and "two@remote.test" in listing.stdout
    assert "451 4.3.0" in listing.stdout
    ids = sorted(p.stem for p in queue_files(suite) if p.suffix == ".json")
    shown = suite.cli("queue", "show", ids[0])
    assert "recipient: <one@remote.test> pending" in shown.stdout
    assert "Subject: out" in shown.stdout
    assert suite.cli("queue", "show", "NOSUCHID").returncode == 1

    handler.refuse = 0
    assert "1 message(s) scheduled" in suite.cli("queue", "flush", ids[0]).stdout
    assert wait(lambda: len(handler.received) == 1)
    assert [r for _, r, _ in handler.received] == [["one@remote.test"]]

    deleted = suite.cli("queue", "delete", ids[1])
    assert deleted.returncode == 0 and "deleted 1" in deleted.stdout
    assert suite.cli("queue", "list").stdout.strip() == "the queue is empty"
    time.sleep(2.5)
    assert len(handler.received) == 1


def test_outbound_mail_is_dkim_signed(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    suite = relay_suite(suite_factory, port)
    keygen = suite.cli("dkim", "keygen", "example.test")
    assert keygen.returncode == 0, keygen.stderr
    record = keygen.stdout.splitlines()[-1]
    assert record.startswith("mail._domainkey.example.test. IN TXT")
    txt = "".join(part for part in record.split('"')[1::2])
    assert txt.startswith("v=DKIM1; k=rsa; p=")
    again = suite.cli("dkim", "keygen", "example.test")
    assert again.returncode == 1 and "already exists" in again.stderr
    submit(suite, ["bob@remote.test"])
    assert wait(lambda: handler.received)
    data = handler.received[0][2]
    assert data.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.test."
        return txt.encode()

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"hello", b"jello"), dnsfunc=dns)


def test_local_recipients_skip_the_queue(suite_factory, sink) -> None:  # type: ignore[no-untyped-def]
    handler, port = sink
    suite = relay_suite(suite_factory, port)
    suite.add_user("ola@example.test")
    submit(suite, ["ola@example.test", "bob@remote.test"])
    assert len(wait_for_messages(suite, "ola@example.test", 1)) == 1
    assert wait(lambda: handler.received)
    assert handler.received[0][1] == ["bob@remote.test"]
    assert messages(suite, "ala@example.test") == []


class TinyDNS:
    """A loopback DNS server for the MX path: MX and A answers from a table (dnspython)."""

    def __init__(self, records: dict[tuple[str, str], list[str]], nxdomain: set[str]) -> None:
        self.records = records
        self.nxdomain = nxdomain
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            if name in self.nxdomain:
                response.set_rcode(dns.rcode.NXDOMAIN)
            for value in self.records.get((name, rdtype), []):
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, value))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_mx_path_with_dns_on_loopback(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """MX lookup through smtp.nameservers: one transaction per domain; null MX bounces."""
    mx_ip = "127.88.0.1"
    handler = Sink()
    controller = Controller(handler, hostname=mx_ip, port=25)
    controller.start()
    resolver = TinyDNS(
        {
            ("remote.test.", "MX"): ["20 backup.remote.test.", "10 mx.remote.test."],
            ("mx.remote.test.", "A"): [mx_ip],
            ("backup.remote.test.", "A"): ["127.88.0.2"],
            ("nomail.test.", "MX"): ["0 ."],
        },
        nxdomain={"gone.test."},
    )
    try:
        suite = suite_factory(
            {"smtp": {"nameservers": [f"127.0.0.1:{resolver.port}"], "retry_initial": 0.3}}
        )
        suite.add_user("ala@example.test")
        submit(suite, ["bob@remote.test", "carol@remote.test"])
        assert wait(lambda: handler.received)
        [(_, rcpts, _)] = handler.received
        assert sorted(rcpts) == ["bob@remote.test", "carol@remote.test"]
        submit(suite, ["x@nomail.test"])
        submit(suite, ["y@gone.test"])
        bounces = wait_for_messages(suite, "ala@example.test", 2)
        texts = b"".join(p.read_bytes() for p in bounces)
        assert b"Final-Recipient: rfc822; x@nomail.test" in texts
        assert b"null MX" in texts
        assert b"Final-Recipient: rfc822; y@gone.test" in texts
        assert wait(lambda: queue_files(suite) == [])
    finally:
        resolver.close()
        controller.stop()


def test_relay_host_with_auth(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """smtp.relay_username/password log in to the smarthost before sending."""
    handler = Sink()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (b"relay-user", b"relay-secret")
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        suite = relay_suite(
            suite_factory, port, relay_username="relay-user", relay_password="relay-secret"
        )
        submit(suite, ["bob@remote.test"])
        assert wait(lambda: handler.received)
        assert logins[-1] == (b"relay-user", b"relay-secret")
        assert "relay-secret" not in suite.log()
    finally:
        controller.stop()
