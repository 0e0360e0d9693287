"""What mail clients are told names each protocol's own host (seed 000: incoming mail moves to
pop3.<domain>, outgoing stays where it was): autoconfig, Autodiscover, the account page, the
Apple profile and the DNS records all come from one list of endpoints."""

from __future__ import annotations

import plistlib
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsuite.clientconfig import dns_records

from .test_clients import AD, AD_REQUEST
from .test_web import CONTACT, Site, open_site, sign_in

HOSTS = {
    "client_host": "mail.example.test",
    "pop3": {"client_host": "pop3.example.test"},
    "imap": {"client_host": "imap.example.test"},
}
# The account page's table, one row per server: service, host, port, security.
ROW = re.compile(r"<tr><th scope=\"row\">([^<]+)</th><td[^>]*>([^<]+)</td><td[^>]*>(\d+)</td>")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = await open_site(tmp_path, HOSTS)
    yield s
    await s.client.close()
    s.ctx.io_pool.shutdown()
    s.ctx.directory.close()


async def test_autoconfig_and_autodiscover_name_each_protocols_host(site: Site) -> None:
    response = await site.client.get("/mail/config-v1.1.xml?emailaddress=ala%40example.test")
    root = ET.fromstring(await response.text())
    hosts = {
        (s.get("type"), s.findtext("port")): s.findtext("hostname")
        for s in root.iter()
        if s.tag in ("incomingServer", "outgoingServer")
    }
    assert hosts == {
        ("imap", "993"): "imap.example.test",
        ("pop3", "995"): "pop3.example.test",
        ("smtp", "587"): "mail.example.test",
    }
    response = await site.client.post(
        "/autodiscover/autodiscover.xml", data=AD_REQUEST.format(email="ala@example.test")
    )
    root = ET.fromstring(await response.text())
    servers = {
        p.findtext(f"{AD}Type"): p.findtext(f"{AD}Server") for p in root.iter(f"{AD}Protocol")
    }
    assert servers == {
        "IMAP": "imap.example.test",
        "POP3": "pop3.example.test",
        "SMTP": "mail.example.test",
    }


async def test_account_page_and_apple_profile_name_each_protocols_host(site: Site) -> None:
    site.add("jan@example.test", "Jablko123", temporary=False, contact=CONTACT)
    code = await sign_in(site, "jan@example.test", "Jablko123")
    await site.post("/konto/kod", {"kod": code})
    _, html = await site.post("/konto/regulamin", {"akceptuje": "tak"}, form="/konto")
    rows = {(port, host) for _, host, port in ROW.findall(html)}
    assert rows == {
        ("993", "imap.example.test"),
        ("995", "pop3.example.test"),
        ("587", "mail.example.test"),
    }
    response = await site.client.get("/konto/poczta.mobileconfig")
    mail = plistlib.loads(await response.read())["PayloadContent"][0]
    assert mail["IncomingMailServerHostName"] == "imap.example.test"  # IMAP is preferred
    assert mail["OutgoingMailServerHostName"] == "mail.example.test"


async def test_dns_srv_records_point_at_each_protocols_host(site: Site) -> None:
    records = dns_records(site.ctx.settings, "example.test", None)
    assert "_pop3s._tcp\t3600\tIN\tSRV\t0 1 995 pop3.example.test." in records
    assert "_imaps._tcp\t3600\tIN\tSRV\t0 1 993 imap.example.test." in records
    assert "_submission._tcp\t3600\tIN\tSRV\t0 1 587 mail.example.test." in records


def test_seed_000_moves_incoming_mail_only() -> None:
    """The bank's example config: POP3 at pop3.<domain>, SMTP still at the mail host."""
    from mailsuite.clientconfig import endpoints
    from mailsuite.config import load_config

    root = Path(__file__).resolve().parent.parent
    settings = load_config(root / "config" / "examples" / "seed-000-bank.yaml", check_files=False)
    hosts = {(e.kind, e.host) for e in endpoints(settings)}
    assert hosts == {
        ("pop3", "pop3.klienci.example.pl"),
        ("imap", "mail.klienci.example.pl"),
        ("smtp", "mail.klienci.example.pl"),
    }
