"""SMTP receiving and submission against the running suite, with smtplib and swaks."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from mailsuite.config import load_config
from mailsuite.serve import build_context
from mailsuite.smtp.outgoing import send_system_mail, spool_of

PASSWORD = "Secret123"
MSG = (
    b"From: Sender <someone@remote.test>\r\n"
    b"To: ala@example.test\r\n"
    b"Subject: byte-exact\r\n"
    b"Message-ID: <exact-1@remote.test>\r\n"
    b"\r\n"
    b"Line one\r\n"
    b"..a line that starts with a dot\r\n"
    b"\ttabbed   trailing spaces   \r\n"
)


def messages(suite, address: str) -> list[Path]:  # type: ignore[no-untyped-def]
    root = suite.maildir(address)
    return sorted(p for sub in ("new", "cur") for p in (root / sub).glob("*") if p.is_file())


def wait_for_messages(suite, address: str, count: int, timeout: float = 15) -> list[Path]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = messages(suite, address)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return messages(suite, address)


def strip_trace(data: bytes) -> bytes:
    """The message without the Return-Path and Received lines the server put on top."""
    assert data.startswith(b"Return-Path: <")
    lines = data.split(b"\r\n")
    index = 1
    assert lines[index].startswith(b"Received: from ")
    index += 1
    while lines[index].startswith(b"\t"):
        index += 1
    return b"\r\n".join(lines[index:])


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def users(suite):  # type: ignore[no-untyped-def]
    suite.add_user("ala@example.test")
    suite.add_user("ola@example.test")
    suite.add_user("temp@example.test", temporary=True)
    suite.directory.add_alias("kontakt@example.org", "ola@example.test")
    return suite


def test_local_delivery_is_byte_exact_with_trace_headers(users) -> None:  # type: ignore[no-untyped-def]
    """The stored file is Return-Path + Received + exactly the bytes the client sent."""
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        code, _ = client.ehlo("client.remote.test")
        assert code == 250
        refused = client.sendmail("someone@remote.test", ["ala@example.test"], MSG)
    assert refused == {}
    [path] = wait_for_messages(users, "ala@example.test", 1)
    data = path.read_bytes()
    assert data.startswith(
        b"Return-Path: <someone@remote.test>\r\nReceived: from client.remote.test"
    )
    assert b"by mail.example.test" in data
    assert strip_trace(data) == MSG


def test_ehlo_advertises_extensions(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        client.ehlo()
        for ext in (
            "size",
            "8bitmime",
            "smtputf8",
            "pipelining",
            "enhancedstatuscodes",
            "starttls",
        ):
            assert client.has_extn(ext), ext
        assert client.esmtp_features["size"] == str(25 * 1024**2)


def test_alias_delivers_to_its_account(users) -> None:  # type: ignore[no-untyped-def]
    before = len(messages(users, "ola@example.test"))
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        client.sendmail("x@remote.test", ["KONTAKT@example.org"], b"Subject: alias\r\n\r\nhi\r\n")
    assert len(wait_for_messages(users, "ola@example.test", before + 1)) == before + 1


def test_unknown_local_user_is_refused_at_rcpt(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        client.ehlo()
        client.mail("x@remote.test")
        code, reply = client.rcpt("nobody@example.test")
    assert (code, reply[:5]) == (550, b"5.1.1")


def test_relay_is_refused_without_auth(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        client.ehlo()
        client.mail("ala@example.test")
        code, reply = client.rcpt("victim@elsewhere.test")
    assert (code, reply[:5]) == (554, b"5.7.1")
    assert not list((Path(users.config["paths"]["spool"]) / "queue").glob("*.json"))


def test_submission_requires_auth(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.ehlo()
        code, reply = client.mail("ala@example.test")
    assert (code, reply[:5]) == (530, b"5.7.0")


def test_submission_delivers_locally_and_adds_missing_headers(users) -> None:  # type: ignore[no-untyped-def]
    before = len(messages(users, "ola@example.test"))
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.login("ala@example.test", PASSWORD)
        client.sendmail(
            "ala@example.test",
            ["ola@example.test"],
            b"From: Ala <ala@example.test>\r\nSubject: hi\r\n\r\nbody\r\n",
        )
    paths = wait_for_messages(users, "ola@example.test", before + 1)
    assert len(paths) == before + 1
    newest = max(paths, key=lambda p: p.stat().st_mtime_ns).read_bytes()
    assert b"with ESMTPSA" in newest
    assert b"\r\nDate: " in newest and b"\r\nMessage-ID: <" in newest


def test_wrong_envelope_sender_is_refused(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.login("ala@example.test", PASSWORD)
        code, reply = client.mail("ola@example.test")
        assert (code, reply[:5]) == (553, b"5.7.1")
        code, _ = client.mail("ala@example.test")
        assert code == 250


def test_wrong_from_header_is_refused(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.login("ala@example.test", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail(
                "ala@example.test",
                ["ola@example.test"],
                b"From: Boss <ceo@example.test>\r\nSubject: pay\r\n\r\nnow\r\n",
            )
    assert info.value.smtp_code == 553
    assert info.value.smtp_error.startswith(b"5.7.1")


def test_alias_is_an_allowed_sender(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP_SSL("127.0.0.1", users.port("submissions"), context=unverified()) as client:
        client.login("ola@example.test", PASSWORD)
        refused = client.sendmail(
            "kontakt@example.org",
            ["ala@example.test"],
            b"From: kontakt@example.org\r\nSubject: as alias\r\n\r\nok\r\n",
        )
    assert refused == {}


def test_wrong_password_and_temporary_password(users) -> None:  # type: ignore[no-untyped-def]
    """A temporary password is refused with a pointer to the page where it is changed."""
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login("ala@example.test", "not-the-password")
        assert wrong.value.smtp_code == 535
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as temp:
            client.login("temp@example.test", PASSWORD)
    assert temp.value.smtp_code == 535
    assert temp.value.smtp_error.startswith(b"5.7.8 ")
    assert b"/zmien-haslo" in temp.value.smtp_error


def test_auth_login_mechanism(users) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", users.port("submission")) as client:
        client.starttls(context=unverified())
        client.ehlo()
        client.user, client.password = "ala@example.test", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
    assert code == 235


def test_bare_lf_and_cr_are_normalised(users) -> None:  # type: ignore[no-untyped-def]
    before = len(messages(users, "ola@example.test"))
    body = b"Subject: endings\r\n\r\none\ntwo\rthree\r\n"
    with socket.create_connection(("127.0.0.1", users.port("smtp"))) as sock:
        replies = converse(
            sock,
            [
                b"EHLO t\r\n",
                b"MAIL FROM:<x@remote.test>\r\n",
                b"RCPT TO:<ola@example.test>\r\n",
                b"DATA\r\n",
                body + b".\r\n",
                b"QUIT\r\n",
            ],
        )
    assert any(r.startswith(b"250 2.0.0 OK: queued") for r in replies)
    newest = sorted(
        wait_for_messages(users, "ola@example.test", before + 1), key=lambda p: p.stat().st_mtime_ns
    )[-1]
    assert strip_trace(newest.read_bytes()) == b"Subject: endings\r\n\r\none\r\ntwo\r\nthree\r\n"


def converse(sock: socket.socket, commands: list[bytes]) -> list[bytes]:
    """Send each command after reading the previous reply; return every reply line."""
    sock.settimeout(10)
    reader = sock.makefile("rb")
    lines = [reader.readline()]
    for command in commands:
        sock.sendall(command)
        while True:
            line = reader.readline()
            if not line:
                return lines
            lines.append(line)
            if line[3:4] != b"-":
                break
    return lines


@pytest.mark.parametrize("ending", [b"\n.\r\n", b"\r.\n", b"\n.\n", b"\r.\r\n"])
def test_smtp_smuggling_stays_one_message(users, ending: bytes) -> None:  # type: ignore[no-untyped-def]
    """A fake end-of-data with bare CR/LF never starts a second, smuggled message."""
    users.add_user(f"smug{len(ending)}{ending.hex()}@example.test")
    target = f"smug{len(ending)}{ending.hex()}@example.test"
    payload = (
        b"Subject: outer\r\n\r\nfirst part"
        + ending
        + b"MAIL FROM:<admin@example.test>\r\n"
        + f"RCPT TO:<{target}>\r\n".encode()
        + b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
    )
    with socket.create_connection(("127.0.0.1", users.port("smtp"))) as sock:
        sock.settimeout(10)
        sock.sendall(
            b"EHLO t\r\nMAIL FROM:<x@remote.test>\r\n"
            + f"RCPT TO:<{target}>\r\n".encode()
            + b"DATA\r\n"
        )
        reader = sock.makefile("rb")
        while not reader.readline().startswith(b"354"):
            pass
        sock.sendall(payload)
        sock.sendall(b"QUIT\r\n")
        rest = reader.read()
    assert rest.count(b"250 2.0.0 OK: queued") == 1
    found = wait_for_messages(users, target, 1)
    time.sleep(0.2)
    assert len(messages(users, target)) == 1
    data = found[0].read_bytes()
    assert b"Subject: outer" in data and b"smuggled" in data


def test_swaks_submission_with_starttls_and_auth(users) -> None:  # type: ignore[no-untyped-def]
    before = len(messages(users, "ola@example.test"))
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{users.port('submission')}",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "ala@example.test",
            "--auth-password",
            PASSWORD,
            "--from",
            "ala@example.test",
            "--to",
            "ola@example.test",
            "--header",
            "From: ala@example.test",
            "--body",
            "sent by swaks",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 OK: queued" in result.stdout
    assert len(wait_for_messages(users, "ola@example.test", before + 1)) == before + 1
    assert PASSWORD not in users.log()


def test_swaks_to_mx(users) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{users.port('smtp')}",
            "--from",
            "x@remote.test",
            "--to",
            "nobody@example.test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "550 5.1.1" in result.stdout


def test_smtputf8_message_is_stored_unchanged(users) -> None:  # type: ignore[no-untyped-def]
    body = "Subject: Zażółć gęślą jaźń\r\nFrom: Łukasz <x@remote.test>\r\n\r\nżółw\r\n".encode()
    before = len(messages(users, "ala@example.test"))
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        client.ehlo()
        client.sendmail(
            "x@remote.test", ["ala@example.test"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    paths = wait_for_messages(users, "ala@example.test", before + 1)
    assert body in [strip_trace(p.read_bytes()) for p in paths]


@pytest.fixture(scope="module")
def strict(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A suite as in production: no plaintext AUTH even on loopback; small limits."""
    from tests.conftest import Suite

    s = Suite(
        tmp_path_factory.mktemp("strict"),
        {
            "tls": {"allow_plaintext_auth_on_loopback": False},
            "limits": {"message_size": "64K", "recipients": 3, "connections_per_ip": 3},
            "smtp": {"catch_all": {"example.org": "ala@example.test"}},
        },
    )
    s.start()
    s.add_user("ala@example.test")
    yield s
    s.close()


def test_auth_is_refused_before_starttls(strict) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", strict.port("submission")) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, reply = client.docmd("AUTH", "PLAIN AGFsYUBleGFtcGxlLnRlc3QAU2VjcmV0MTIz")
        assert (code, reply[:6]) == (538, b"5.7.11")
        client.starttls(context=unverified())
        client.ehlo()
        assert client.has_extn("auth")
        assert client.login("ala@example.test", PASSWORD)[0] == 235
    assert PASSWORD not in strict.log()
    assert "AGFsYUBleGFtcGxlLnRlc3QAU2VjcmV0MTIz" not in strict.log()


def test_size_limit_is_advertised_and_enforced(strict) -> None:  # type: ignore[no-untyped-def]
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 70
    with smtplib.SMTP("127.0.0.1", strict.port("smtp")) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == str(64 * 1024)
        code, reply = client.mail("x@remote.test", [f"SIZE={len(big)}"])
        assert code == 552 and reply.startswith(b"5.3.4")
    with smtplib.SMTP("127.0.0.1", strict.port("smtp")) as client:
        client.ehlo()
        client.esmtp_features.pop("size")
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("x@remote.test", ["ala@example.test"], big)
        assert info.value.smtp_code == 552
    assert messages(strict, "ala@example.test") == []


def test_recipients_per_transaction_are_limited(strict) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", strict.port("smtp")) as client:
        client.ehlo()
        client.mail("x@remote.test")
        codes = [client.rcpt("ala@example.test")[0] for _ in range(4)]
    assert codes == [250, 250, 250, 452]


def test_connections_per_ip_are_limited(strict) -> None:  # type: ignore[no-untyped-def]
    held = [smtplib.SMTP("127.0.0.1", strict.port("smtp")) for _ in range(3)]
    try:
        with socket.create_connection(("127.0.0.1", strict.port("smtp"))) as sock:
            sock.settimeout(10)
            greeting = sock.makefile("rb").readline()
        assert greeting.startswith(b"421 4.7.0")
    finally:
        for client in held:
            client.quit()
    time.sleep(0.2)
    with smtplib.SMTP("127.0.0.1", strict.port("smtp")) as client:
        assert client.noop()[0] == 250


def test_protocol_errors_get_replies(users) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", users.port("smtp"))) as sock:
        lines = converse(
            sock,
            [
                b"EHLO t\r\n",
                b"RCPT TO:<ala@example.test>\r\n",
                b"MAIL FROM:<bad\r\n",
                b"BOGUS\r\n",
                b"MAIL FROM:<\xff\xfe@remote.test>\r\n",
                b"DATA\r\n",
                b"MAIL FROM:<x@remote.test> FOO=BAR\r\n",
                b"MAIL FROM:<x@remote.test>\r\n",
                b"RCPT TO:<\xff\xfe@example.test>\r\n",
                b"QUIT\r\n",
            ],
        )
    codes = [line[:3] for line in lines if line[3:4] == b" "]
    assert codes == [
        *(b"220", b"250", b"503", b"501", b"500", b"501", b"503", b"555", b"250", b"501"),
        b"221",
    ]
    assert not any(b"Traceback" in line or b"Error: (" in line for line in lines)


def test_send_system_mail_local_and_remote(users) -> None:  # type: ignore[no-untyped-def]
    """The site's e-mails: local recipients get them in the Maildir, remote ones are spooled."""
    settings = load_config(users.config_path)

    async def send() -> None:
        ctx = build_context(settings, users.config_path, asyncio.get_running_loop())
        try:
            await send_system_mail(ctx, "ala@example.test", "Kod logowania: żółw", "Twój kod: 123")
            await send_system_mail(
                ctx, "someone@remote.test", "Witaj", "Tekst", html="<p>Tekst</p>"
            )
            queued = spool_of(ctx).entries()
            assert [e.recipients[0].address for e in queued] == ["someone@remote.test"]
            spool_of(ctx).remove(queued[0].id)
        finally:
            ctx.io_pool.shutdown()
            ctx.directory.close()

    before = len(messages(users, "ala@example.test"))
    asyncio.run(send())
    paths = wait_for_messages(users, "ala@example.test", before + 1)
    newest = max(paths, key=lambda p: p.stat().st_mtime_ns).read_bytes()
    assert b"From: postmaster@example.test" in newest
    parsed = email.message_from_bytes(newest, policy=email.policy.default)
    assert parsed["Subject"] == "Kod logowania: żółw"
    assert parsed.get_content().strip() == "Twój kod: 123"
    assert b"Message-ID: <" in newest and b"\r\nDate: " in newest


def test_failed_auth_is_throttled_through_the_shared_path(strict) -> None:  # type: ignore[no-untyped-def]
    """After throttle.max_failures_per_account failures even the right password waits."""
    strict.add_user("guess@example.test")
    codes = []
    for attempt in range(7):
        with smtplib.SMTP("127.0.0.1", strict.port("submission")) as client:
            client.starttls(context=unverified())
            client.ehlo()
            client.user = "guess@example.test"
            client.password = PASSWORD if attempt == 6 else f"wrong-{attempt}"
            try:
                # One mechanism per try: smtplib's login() would try PLAIN and then LOGIN.
                codes.append(client.auth("PLAIN", client.auth_plain)[0])
            except smtplib.SMTPAuthenticationError as exc:
                codes.append(exc.smtp_code)
    assert codes == [535] * 5 + [454, 454]


def test_catch_all_takes_unknown_local_parts_of_its_domain(strict) -> None:  # type: ignore[no-untyped-def]
    before = len(messages(strict, "ala@example.test"))
    with smtplib.SMTP("127.0.0.1", strict.port("smtp")) as client:
        client.ehlo()
        client.mail("x@remote.test")
        assert client.rcpt("anything@example.org")[0] == 250
        assert client.rcpt("nobody@example.test")[0] == 550
        assert client.data(b"Subject: catch-all\r\n\r\nhi\r\n")[0] == 250
    assert len(wait_for_messages(strict, "ala@example.test", before + 1)) == before + 1


def test_looping_message_is_refused(users) -> None:  # type: ignore[no-untyped-def]
    hops = b"".join(
        b"Received: from hop%d by hop%d; Mon, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i + 1)
        for i in range(100)
    )
    with smtplib.SMTP("127.0.0.1", users.port("smtp")) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail(
                "x@remote.test", ["ala@example.test"], hops + b"Subject: loop\r\n\r\nx\r\n"
            )
    assert info.value.smtp_code == 554 and info.value.smtp_error.startswith(b"5.4.6")
