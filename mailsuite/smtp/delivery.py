"""One delivery attempt to a remote server: MX lookup (dnspython) and an SMTP client.

The SMTP client is the standard library's `smtplib`, run in the queue's worker threads; it
speaks ESMTP, STARTTLS, AUTH, SIZE and SMTPUTF8 and dot-stuffs the data. Results are sorted
into delivered, temporary (retry later) and permanent (bounce) per recipient.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

SMTP_PORT = 25


@dataclass(frozen=True)
class Outcome:
    kind: str  # "sent", "temporary", "permanent"
    text: str
    remote_mta: str = ""


class LookupFailure(Exception):
    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


def _resolver(nameservers: list[str]) -> dns.asyncresolver.Resolver:
    if not nameservers:
        return dns.asyncresolver.Resolver()
    resolver = dns.asyncresolver.Resolver(configure=False)
    ips: list[str] = []
    for server in nameservers:
        host, sep, port = server.rpartition(":")
        if sep and port.isdigit() and host.count(":") == 0:
            ips.append(host)
            resolver.port = int(port)
        else:
            ips.append(server)
    resolver.nameservers = ips
    resolver.lifetime = 20.0
    return resolver


async def mx_hosts(domain: str, nameservers: list[str]) -> list[str]:
    """Mail exchangers of `domain`, best first.

    RFC 5321 5.1: without MX records the domain itself is the exchanger. RFC 7505: a single
    MX of "." means the domain accepts no mail, a permanent failure.
    """
    resolver = _resolver(nameservers)
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        raise LookupFailure(f"domain {domain} does not exist", permanent=True) from None
    except dns.resolver.NoAnswer:
        return [domain]
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise LookupFailure(f"DNS lookup of {domain} failed: {exc}", permanent=False) from None
    records = sorted(answer, key=lambda r: r.preference)
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in records]
    if hosts in ([""], ["."]) or (len(records) == 1 and records[0].exchange.to_text() == "."):
        raise LookupFailure(f"{domain} accepts no mail (null MX)", permanent=True)
    return [h for h in hosts if h and h != "."]


async def addresses(host: str, nameservers: list[str]) -> list[str]:
    """IPv4 then IPv6 addresses of an exchanger, looked up with the same resolvers as MX."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    resolver = _resolver(nameservers)
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(host, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except (dns.exception.Timeout, dns.resolver.NoNameservers):
            continue
        found.extend(r.to_text() for r in answer)
    return found


def _outcome(code: int, message: bytes | str, mta: str) -> Outcome:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    kind = "permanent" if 500 <= code < 600 else "temporary"
    return Outcome(kind, f"{code} {text}".strip(), mta)


def _opportunistic_tls() -> ssl.SSLContext:
    # RFC 7435: opportunistic TLS encrypts without insisting on a verifiable certificate,
    # which most MX hosts do not present; refusing them would lose mail, not protect it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def send(
    hosts: list[tuple[str, int]],
    *,
    helo: str,
    sender: str,
    recipients: list[str],
    data: bytes,
    smtputf8: bool,
    timeout: float,
    username: str | None = None,
    password: str | None = None,
) -> dict[str, Outcome]:
    """Try each host in turn until one answers; one transaction for all `recipients`.

    Blocking: runs in a worker thread. Connection failures move on to the next host; once a
    server has answered, its verdict stands.
    """
    last = "no mail exchanger could be reached"
    for host, port in hosts:
        mta = host
        try:
            with smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout) as client:
                client.ehlo()
                if client.has_extn("starttls"):
                    client.starttls(context=_opportunistic_tls())
                    client.ehlo()
                if username and password:
                    client.login(username, password)
                options: list[str] = []
                if smtputf8:
                    if not client.has_extn("smtputf8"):
                        # RFC 6531 3.5: no downgrade; the message cannot be sent there.
                        text = "554 5.6.7 the receiving server does not support SMTPUTF8"
                        return {r: Outcome("permanent", text, mta) for r in recipients}
                    options.append("SMTPUTF8")
                if client.has_extn("size"):
                    options.append(f"SIZE={len(data)}")  # RFC 1870
                if client.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")
                refused = client.sendmail(sender, recipients, data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            return {r: _outcome(c, m, mta) for r, (c, m) in exc.recipients.items()}
        except smtplib.SMTPResponseException as exc:
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                last = f"{host}: {exc}"
                continue
            return {r: _outcome(exc.smtp_code, exc.smtp_error, mta) for r in recipients}
        except (OSError, smtplib.SMTPException) as exc:
            last = f"{host}:{port}: {exc or type(exc).__name__}"
            continue
        out = {r: Outcome("sent", "250 accepted", mta) for r in recipients}
        for rcpt, (code, message) in refused.items():
            out[rcpt] = _outcome(code, message, mta)
        return out
    return {r: Outcome("temporary", last) for r in recipients}
