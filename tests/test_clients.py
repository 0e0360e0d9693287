"""Mail clients configure themselves from what the running suite publishes.

The documents are consumed the way the clients do it: parse the XML, then connect to every
server it lists with the security it names, and log in.
"""

from __future__ import annotations

import imaplib
import plistlib
import poplib
import smtplib
import ssl
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import DEFAULT_PASSWORD, Suite
from .test_web import CONTACT, Site, open_site, sign_in

AD_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{email}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""
AD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def fetch(suite: Suite, path: str, data: bytes | None = None) -> tuple[int, bytes, str]:
    url = f"http://127.0.0.1:{suite.port('web')}{path}"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "text/xml"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def insecure() -> ssl.SSLContext:
    """The demo's certificate is self-signed: clients are told to accept it, as a user would."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def log_in(kind: str, security: str, host: str, port: int, user: str, password: str) -> None:
    """Connect and authenticate exactly as the document says; raises on any failure."""
    tls = insecure()
    if kind == "imap":
        if security == "SSL":
            client = imaplib.IMAP4_SSL(host, port, ssl_context=tls, timeout=10)
        else:
            client = imaplib.IMAP4(host, port, timeout=10)
            client.starttls(ssl_context=tls)
        client.login(user, password)
        client.logout()
    elif kind == "pop3":
        if security == "SSL":
            pop = poplib.POP3_SSL(host, port, context=tls, timeout=10)
        else:
            pop = poplib.POP3(host, port, timeout=10)
            pop.stls(context=tls)
        pop.user(user)
        pop.pass_(password)
        pop.quit()
    elif kind == "smtp":
        if security == "SSL":
            smtp = smtplib.SMTP_SSL(host, port, context=tls, timeout=10)
        else:
            smtp = smtplib.SMTP(host, port, timeout=10)
            smtp.starttls(context=tls)
        smtp.login(user, password)
        smtp.quit()
    else:
        raise AssertionError(f"unexpected server type {kind}")


@pytest.fixture(scope="module")
def clients_suite(suite: Suite) -> Suite:
    suite.add_user("thunder@example.test")
    return suite


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=thunder%40example.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/mail/config-v1.1.xml?emailaddress=thunder%40example.test",
        "/mail/config-v1.1.xml",
    ],
)
def test_thunderbird_autoconfig_lists_servers_that_work(clients_suite: Suite, path: str) -> None:
    status, body, ctype = fetch(clients_suite, path)
    assert status == 200 and "xml" in ctype
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    assert "example.test" in [d.text for d in provider.findall("domain")]
    servers = provider.findall("incomingServer") + provider.findall("outgoingServer")
    assert {s.get("type") for s in servers} == {"imap", "pop3", "smtp"}
    assert len(servers) == 6
    for server in servers:
        for required in ("hostname", "port", "socketType", "authentication", "username"):
            assert server.findtext(required), (required, ET.tostring(server))
        assert server.findtext("username") == "%EMAILADDRESS%"
        user = server.findtext("username").replace("%EMAILADDRESS%", "thunder@example.test")
        log_in(
            server.get("type"),
            server.findtext("socketType"),
            server.findtext("hostname"),
            int(server.findtext("port")),
            user,
            DEFAULT_PASSWORD,
        )


@pytest.mark.parametrize(
    "path",
    [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
        "/AUTODISCOVER/AUTODISCOVER.XML",
    ],
)
def test_outlook_autodiscover_answers_for_our_addresses(clients_suite: Suite, path: str) -> None:
    status, body, _ = fetch(
        clients_suite, path, AD_REQUEST.format(email="thunder@example.test").encode()
    )
    assert status == 200, body
    account = ET.fromstring(body).find(f"{AD}Response/{AD}Account")
    assert account is not None and account.findtext(f"{AD}Action") == "settings"
    protocols = account.findall(f"{AD}Protocol")
    assert {p.findtext(f"{AD}Type") for p in protocols} == {"IMAP", "POP3", "SMTP"}
    for p in protocols:
        assert p.findtext(f"{AD}LoginName") == "thunder@example.test"
        security = "SSL" if p.findtext(f"{AD}SSL") == "on" else "STARTTLS"
        log_in(
            p.findtext(f"{AD}Type").lower(),
            security,
            p.findtext(f"{AD}Server"),
            int(p.findtext(f"{AD}Port")),
            "thunder@example.test",
            DEFAULT_PASSWORD,
        )


def test_autodiscover_refuses_foreign_domains_and_garbage(clients_suite: Suite) -> None:
    status, body, _ = fetch(
        clients_suite,
        "/autodiscover/autodiscover.xml",
        AD_REQUEST.format(email="someone@elsewhere.test").encode(),
    )
    assert status == 404 and b"<ErrorCode>500</ErrorCode>" in body
    status, body, _ = fetch(clients_suite, "/autodiscover/autodiscover.xml", b"<not-xml")
    assert status == 400 and b"Invalid Request" in body


def test_metrics_for_allowed_addresses(clients_suite: Suite) -> None:
    s = clients_suite
    for kind, key in (("imap", "imaps"), ("pop3", "pop3s"), ("smtp", "submissions")):
        log_in(kind, "SSL", "127.0.0.1", s.port(key), "thunder@example.test", DEFAULT_PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        status, body, ctype = fetch(s, "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        text = body.decode()
        closed = all(
            f'mailsuite_current{{component="{p}",what="connections"}} 0.0' in text
            for p in ("imap", "pop3", "smtp")
        )
        if closed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert closed, text  # every connection opened above has been counted as closed again
    assert 'mailsuite_events_total{component="auth",event="login.imap.ok"}' in text
    assert "mailsuite_event_loop_lag_seconds" in text
    for protocol in ("imap", "pop3", "smtp"):
        assert f'mailsuite_events_total{{component="{protocol}",event="connections"}}' in text


def test_metrics_refused_elsewhere(suite_factory) -> None:  # type: ignore[no-untyped-def]
    s = suite_factory({"web": {"metrics_allow": ["10.0.0.0/8"]}})
    status, _, _ = fetch(s, "/metrics")
    assert status == 403


@pytest.fixture
async def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await open_site(tmp_path, {})
    yield s
    await s.client.close()
    s.ctx.io_pool.shutdown()
    s.ctx.directory.close()


async def test_apple_profile_for_the_signed_in_user(site: Site) -> None:
    response = await site.client.get("/konto/poczta.mobileconfig", allow_redirects=False)
    assert response.status == 303
    site.add("jablko@example.test", "Jablko123", temporary=False, contact=CONTACT, name="Jan")
    code = await sign_in(site, "jablko@example.test", "Jablko123")
    await site.post("/konto/kod", {"kod": code})
    _, html = await site.post("/konto/regulamin", {"akceptuje": "tak"}, form="/konto")
    assert 'href="/konto/poczta.mobileconfig"' in html
    response = await site.client.get("/konto/poczta.mobileconfig")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-apple-aspen-config"
    profile = plistlib.loads(await response.read())
    mail = profile["PayloadContent"][0]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAddress"] == "jablko@example.test"
    assert mail["IncomingMailServerUsername"] == "jablko@example.test"
    assert mail["EmailAccountName"] == "Jan"
    assert "Jablko123" not in str(profile)
