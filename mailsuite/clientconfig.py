"""What mail clients need to configure themselves, derived from the settings.

Thunderbird reads Mozilla autoconfig (clientConfig v1.1), Outlook reads POX Autodiscover
(2006a), Apple devices install a `.mobileconfig` profile, and admins publish DNS records
(RFC 6186 SRV, MX, SPF, DKIM, DMARC). All four describe the same listeners, so they are all
built here from one list of `Endpoint`s, each with the host name clients are told for its
protocol (`client_host`); the web site only serves the documents. XML is built with
ElementTree so that every value is escaped.
"""

from __future__ import annotations

import ipaddress
import plistlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from mailsuite.config import Settings

MOZ_SOCKET = {"ssl": "SSL", "starttls": "STARTTLS", "plain": "plain"}
AUTODISCOVER_REQUEST_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
)
AUTODISCOVER_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AUTODISCOVER_OUTLOOK_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)


@dataclass(frozen=True)
class Endpoint:
    kind: str  # imap, pop3 or smtp
    host: str
    port: int
    security: str  # ssl, starttls

    @property
    def incoming(self) -> bool:
        return self.kind != "smtp"


_LISTENERS = (
    # listen key, protocol, security; preferred (implicit TLS) first, RFC 8314 3.
    ("imaps", "imap", "ssl"),
    ("imap", "imap", "starttls"),
    ("pop3s", "pop3", "ssl"),
    ("pop3", "pop3", "starttls"),
    ("submissions", "smtp", "ssl"),
    ("submission", "smtp", "starttls"),
)


def client_host(settings: Settings, kind: str | None = None) -> str:
    """The host name clients are told for `kind` (imap, pop3, smtp): that protocol's own
    `client_host` when set (seed 000 moves only incoming POP3 to pop3.<domain>), else the
    top-level one, else `hostname`. Without `kind`: the host of the web documents."""
    own = {
        "imap": settings.imap.client_host,
        "pop3": settings.pop3.client_host,
        "smtp": settings.smtp.client_host,
    }.get(kind or "")
    return own or settings.client_host or settings.hostname


def endpoints(settings: Settings, bound: Mapping[str, int] | None = None) -> list[Endpoint]:
    """The listeners users' clients connect to, in order of preference.

    `bound` gives the ports a running server actually listens on (port 0 in the config
    picks one at start); without it the configured ports are used.
    """
    found = []
    for key, kind, security in _LISTENERS:
        where = getattr(settings.listen, key)
        if where is None:
            continue
        port = (bound or {}).get(key) or where[1]
        if port:
            found.append(Endpoint(kind, client_host(settings, kind), port, security))
    return found


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = value
    return element


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def autoconfig_xml(
    settings: Settings, domain: str | None = None, bound: Mapping[str, int] | None = None
) -> str:
    """Mozilla autoconfig: the login is the full address (`%EMAILADDRESS%`), which
    Thunderbird fills in itself, so the document is the same with or without the
    `emailaddress` parameter."""
    domain = domain if domain in settings.domains else settings.domains[0]
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    for d in settings.domains:
        _text(provider, "domain", d)
    _text(provider, "displayName", f"{domain} mail")
    _text(provider, "displayShortName", domain)
    for ep in endpoints(settings, bound):
        tag = "incomingServer" if ep.incoming else "outgoingServer"
        server = ET.SubElement(provider, tag, type=ep.kind)
        _text(server, "hostname", ep.host)
        _text(server, "port", str(ep.port))
        _text(server, "socketType", MOZ_SOCKET[ep.security])
        _text(server, "authentication", "password-cleartext")
        _text(server, "username", "%EMAILADDRESS%")
    return _xml(root)


def parse_autodiscover_request(body: bytes) -> str | None:
    """The EMailAddress of a POX Autodiscover request, or None when there is none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rpartition("}")[2] == "EMailAddress" and element.text:
            return element.text.strip()
    return None


def autodiscover_xml(settings: Settings, email: str, bound: Mapping[str, int] | None = None) -> str:
    """POX Autodiscover answer with IMAP, POP3 and SMTP settings for `email`."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE_NS)
    response = ET.SubElement(root, "Response", xmlns=AUTODISCOVER_OUTLOOK_NS)
    account = ET.SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")
    kinds = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}
    seen: set[str] = set()
    for ep in endpoints(settings, bound):
        if ep.kind in seen:
            continue  # Outlook takes one entry per protocol: the preferred one.
        seen.add(ep.kind)
        protocol = ET.SubElement(account, "Protocol")
        _text(protocol, "Type", kinds[ep.kind])
        _text(protocol, "Server", ep.host)
        _text(protocol, "Port", str(ep.port))
        _text(protocol, "LoginName", email)
        _text(protocol, "DomainRequired", "off")
        _text(protocol, "SPA", "off")
        if ep.security == "ssl":
            _text(protocol, "SSL", "on")
        else:
            _text(protocol, "SSL", "off")
            _text(protocol, "Encryption", "TLS")
        _text(protocol, "AuthRequired", "on")
    return _xml(root)


def autodiscover_error_xml(code: str, message: str) -> str:
    """Autodiscover's own error form, used for addresses that are not ours."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE_NS)
    response = ET.SubElement(root, "Response")
    error = ET.SubElement(response, "Error", Time="00:00:00", Id="1")
    _text(error, "ErrorCode", code)
    _text(error, "Message", message)
    _text(error, "DebugData", "")
    return _xml(root)


def mobileconfig(
    settings: Settings, email: str, name: str, bound: Mapping[str, int] | None = None
) -> bytes:
    """An Apple configuration profile with one mail account (IMAP preferred over POP3).

    No password is embedded: the device asks for it, so the file is safe to download.
    """
    eps = endpoints(settings, bound)
    incoming = next((e for e in eps if e.incoming), None)
    outgoing = next((e for e in eps if not e.incoming), None)
    if incoming is None or outgoing is None:
        raise ValueError("no incoming or outgoing listener is configured")
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, settings.hostname)
    payload = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{settings.hostname}.mail.{email}",
        "PayloadUUID": str(uuid.uuid5(namespace, "mail:" + email)).upper(),
        "PayloadDisplayName": email,
        "EmailAccountDescription": email,
        "EmailAccountName": name or email,
        "EmailAccountType": "EmailTypeIMAP" if incoming.kind == "imap" else "EmailTypePOP",
        "EmailAddress": email,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": incoming.host,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": incoming.security == "ssl",
        "IncomingMailServerUsername": email,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": outgoing.host,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": outgoing.security == "ssl",
        "OutgoingMailServerUsername": email,
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadContent": [payload],
        "PayloadDisplayName": f"Poczta {email}",
        "PayloadIdentifier": f"{settings.hostname}.profile.{email}",
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(namespace, "profile:" + email)).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile)


def _target(name: str, fallback: str) -> str:
    """SRV and CNAME targets must be host names (RFC 2782), never an address literal."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return fallback


def dns_records(settings: Settings, domain: str, dkim_record: str | None) -> str:
    """The records to publish for `domain`, in zone-file syntax.

    `dkim_record` is the zone line of the domain's DKIM key, or None when no key has been
    generated yet (the output then says how to make one).
    """
    host = settings.hostname
    web = _target(client_host(settings), host)
    ttl = 3600
    lines = [
        f"; DNS records for {domain}, served by {host}",
        f"$ORIGIN {domain}.",
        f"@\t{ttl}\tIN\tMX\t10 {host}.",
        f'@\t{ttl}\tIN\tTXT\t"v=spf1 mx -all"',
        f'_dmarc\t{ttl}\tIN\tTXT\t"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"',
    ]
    if dkim_record:
        lines.append(dkim_record)
    else:
        lines.append(f"; no DKIM key yet: run `mailsuite dkim keygen {domain}`")
    # RFC 6186: SRV records for mail submission and access; "." target means not offered.
    srv = {
        "_submissions._tcp": ("submissions", "smtp"),
        "_submission._tcp": ("submission", "smtp"),
        "_imaps._tcp": ("imaps", "imap"),
        "_imap._tcp": ("imap", "imap"),
        "_pop3s._tcp": ("pop3s", "pop3"),
        "_pop3._tcp": ("pop3", "pop3"),
    }
    for name, (key, kind) in srv.items():
        where = getattr(settings.listen, key)
        if where is None:
            lines.append(f"{name}\t{ttl}\tIN\tSRV\t0 0 0 .")
        else:
            target = _target(client_host(settings, kind), host)
            lines.append(f"{name}\t{ttl}\tIN\tSRV\t0 1 {where[1]} {target}.")
    lines += [
        f"autoconfig\t{ttl}\tIN\tCNAME\t{web}.",
        f"autodiscover\t{ttl}\tIN\tCNAME\t{web}.",
    ]
    return "\n".join(lines) + "\n"
