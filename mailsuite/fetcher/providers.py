"""Server settings of well-known mail providers, so the wizard can fill them in.

Each provider's own help pages publish these; they are suggestions the user can change in
step 2 ("konfiguracja zaawansowana"). An unknown domain gets the common
imap.<domain> / pop3.<domain> guess with implicit TLS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: str


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    domains: tuple[str, ...]
    imap: Server
    pop3: Server

    def server(self, protocol: str) -> Server:
        return self.imap if protocol == "imap" else self.pop3


def _p(key: str, name: str, domains: tuple[str, ...], imap: str, pop3: str) -> Provider:
    return Provider(key, name, domains, Server(imap, 993, "tls"), Server(pop3, 995, "tls"))


PROVIDERS: tuple[Provider, ...] = (
    _p("gmail", "Gmail", ("gmail.com", "googlemail.com"), "imap.gmail.com", "pop.gmail.com"),
    _p(
        "outlook",
        "Outlook.com",
        ("outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.pl", "hotmail.pl"),
        "outlook.office365.com",
        "outlook.office365.com",
    ),
    _p(
        "yahoo",
        "Yahoo",
        ("yahoo.com", "yahoo.pl", "ymail.com", "rocketmail.com"),
        "imap.mail.yahoo.com",
        "pop.mail.yahoo.com",
    ),
    _p("aol", "AOL", ("aol.com", "aim.com"), "imap.aol.com", "pop.aol.com"),
    _p(
        "onet",
        "Onet",
        ("onet.pl", "op.pl", "onet.eu", "vp.pl", "poczta.onet.pl", "spoko.pl", "autograf.pl"),
        "imap.poczta.onet.pl",
        "pop3.poczta.onet.pl",
    ),
    _p("wp", "WP", ("wp.pl",), "imap.wp.pl", "pop3.wp.pl"),
    _p(
        "interia",
        "Interia",
        ("interia.pl", "interia.eu", "interia.com", "poczta.fm", "1gb.pl", "vip.interia.pl"),
        "poczta.interia.pl",
        "poczta.interia.pl",
    ),
    _p("o2", "o2", ("o2.pl", "tlen.pl", "go2.pl", "prokonto.pl"), "poczta.o2.pl", "poczta.o2.pl"),
)


def by_key(key: str) -> Provider | None:
    key = key.strip().lower()
    return next((p for p in PROVIDERS if key in (p.key, p.name.lower())), None)


def by_address(address: str) -> Provider | None:
    domain = address.rpartition("@")[2].strip().lower()
    return next((p for p in PROVIDERS if domain in p.domains), None)


def suggest(address: str, protocol: str = "imap", label: str = "") -> Server:
    """Settings for `address`: its provider's (by domain, else by the label the user typed),
    else the imap.<domain> / pop3.<domain> guess."""
    provider = by_address(address) or (by_key(label) if label else None)
    if provider is not None:
        return provider.server(protocol)
    domain = address.rpartition("@")[2].strip().lower() or "example.com"
    if protocol == "imap":
        return Server(f"imap.{domain}", 993, "tls")
    return Server(f"pop3.{domain}", 995, "tls")


DEFAULT_PORTS = {("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "plain"): 143}
DEFAULT_PORTS.update({("pop3", "tls"): 995, ("pop3", "starttls"): 110, ("pop3", "plain"): 110})
