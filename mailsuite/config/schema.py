"""The one schema of mailsuite's settings.

Every field has a type, a default and a one-line description; the example YAML and
`mailsuite check-config` are driven from here. Unknown keys are errors everywhere
(`extra="forbid"`), so a misspelt key never silently falls back to a default.

Paths are relative to the folder that holds the config file; `loader.load_config` makes them
absolute before anyone else sees them.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# RFC 1123 2.1 labels; the last starts with a letter, so an IPv4 address is never a domain.
_MAIL_DOMAIN = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*[a-z]([a-z0-9-]{{0,61}}[a-z0-9])?$")


def is_mail_domain(domain: str) -> bool:
    """Whether `domain` (lower case) can be a mail domain: the one rule for `domains:` and
    for the addresses the directory accepts, so that whatever `check-config` passes, `user
    add` takes too. A single label (`intranet`) is allowed, as on a closed network."""
    return bool(_MAIL_DOMAIN.match(domain))


def _duration(value: Any) -> Any:
    """Accept `90`, `"90s"`, `"15m"`, `"72h"`, `"5d"`, `"1w"` and give seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 72h or 5d")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError("expected a duration such as 30s, 15m, 72h or 5d")


def _size(value: Any) -> Any:
    """Accept `1048576`, `"512K"`, `"25M"`, `"1G"` (powers of 1024) and give bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512K, 25M or 1G")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2)[:1].lower()]
    raise ValueError("expected a size such as 512K, 25M or 1G")


def parse_size(value: str) -> int:
    """A size written as in the config (`512K`, `25M`, `1G`, plain bytes), for the CLI;
    ValueError when it is none."""
    return int(_size(value))


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
Size = Annotated[int, BeforeValidator(_size), Field(ge=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


def _hostport(value: Any) -> Any:
    """`HOST:PORT` or `[v6]:PORT`; null disables the listener."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected HOST:PORT (for example 127.0.0.1:1143) or null")
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:1143)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    return (host, int(port))


HostPort = Annotated[tuple[str, int] | None, BeforeValidator(_hostport)]


def _workers(value: Any) -> Any:
    """`auto` or a number of processes (`workers`)."""
    if value == "auto" or (type(value) is int and 1 <= value <= 256):
        return value
    raise ValueError("expected auto (one process per core) or a number from 1 to 256")


class Listen(Section):
    """Where each service listens; null turns a service off. Port 0 picks a free port."""

    smtp: HostPort = Field(None, description="MX: mail from the internet for our domains (25).")
    submission: HostPort = Field(
        None, description="Submission for our users, STARTTLS then AUTH (587)."
    )
    submissions: HostPort = Field(None, description="Submission over implicit TLS (465).")
    imap: HostPort = Field(None, description="IMAP with STARTTLS (143).")
    imaps: HostPort = Field(None, description="IMAP over implicit TLS (993).")
    pop3: HostPort = Field(None, description="POP3 with STLS (110).")
    pop3s: HostPort = Field(None, description="POP3 over implicit TLS (995).")
    web: HostPort = Field(None, description="The haslo web site (443, or 8080 in the demo).")


class Paths(Section):
    """Files and folders; relative paths are resolved against the config file's folder."""

    maildirs: Path = Field(Path("../maildirs"), description="Root of every user's Maildir.")
    database: Path = Field(
        Path("../var/mailsuite.sqlite"), description="The SQLite directory database."
    )
    spool: Path = Field(Path("../var/spool"), description="The outbound queue's durable spool.")
    tls_cert: Path = Field(Path("../var/tls/cert.pem"), description="TLS certificate chain (PEM).")
    tls_key: Path = Field(Path("../var/tls/key.pem"), description="TLS private key (PEM).")
    secret_key: Path = Field(
        Path("../var/secret.key"),
        description="Key that encrypts external-account passwords at rest (created, mode 0600).",
    )
    dkim_keys: Path = Field(Path("../var/dkim"), description="Folder of DKIM private keys.")
    control_socket: Path = Field(
        Path("../var/control.sock"),
        description="Unix socket where `mailsuite status` asks the running server.",
    )


class Tls(Section):
    """TLS certificates and how strictly plaintext is refused."""

    self_signed: bool = Field(
        False,
        description="Generate a self-signed certificate for `hostname` on first start when "
        "the cert and key files are missing (the demo's setting). Off: they must exist.",
    )
    allow_plaintext_auth_on_loopback: bool = Field(
        False,
        description="Allow LOGIN/AUTH before TLS for clients on 127.0.0.0/8 and ::1. "
        "For the demo and tests only; never on a public server.",
    )


class PasswordPolicy(Section):
    """Rules new passwords must follow; each broken rule is named to the user."""

    min_length: int = Field(8, ge=1, le=72, description="Fewest characters.")
    max_length: int = Field(64, ge=1, le=72, description="Most characters (bcrypt reads 72 bytes).")
    require_letter: bool = Field(
        False, description="At least one letter of either case (seed 003: letters and digits)."
    )
    require_upper: bool = Field(False, description="At least one upper-case letter.")
    require_lower: bool = Field(False, description="At least one lower-case letter.")
    require_digit: bool = Field(False, description="At least one digit.")
    require_special: bool = Field(False, description="At least one special character (!@#$…).")
    forbid_special: bool = Field(False, description="Letters and digits only.")
    forbid_non_ascii: bool = Field(
        False, description="No letters outside ASCII (no Polish letters: ą, ę, ł…)."
    )
    forbid_login: bool = Field(True, description="Must not contain the login or address.")
    history: int = Field(0, ge=0, le=50, description="Refuse the last N passwords again.")


class Throttle(Section):
    """Login throttling shared by SMTP, IMAP, POP3 and the web site.

    Refusals are per client network, so an attacker elsewhere never keeps the owner out; an
    account attacked from many networks only answers its failures more slowly.
    """

    max_failures_per_ip: int = Field(
        10,
        ge=1,
        description="Failed logins from one client network (any account) within `window`; "
        "then that network is refused.",
    )
    max_failures_per_account: int = Field(
        5,
        ge=1,
        description="Failed logins for one account from one client network within `window`; "
        "then that network is refused for that account.",
    )
    window: Duration = Field(900, description="How far back failures count.")
    lockout: Duration = Field(900, description="How long logins are refused once over a limit.")
    ipv4_prefix: int = Field(
        32, ge=8, le=32, description="Prefix length of an IPv4 client network (32: each address)."
    )
    ipv6_prefix: int = Field(
        64, ge=16, le=128, description="Prefix length of an IPv6 client network."
    )
    account_delay: Duration = Field(
        0.1,
        description="Wait before the answer to an account's failed login once it has more than "
        "max_failures_per_account failures within `window` from all networks; doubles each time.",
    )
    account_delay_max: Duration = Field(2, description="The longest wait `account_delay` grows to.")
    global_failures_per_minute: int = Field(
        60,
        ge=1,
        description="Failed logins per minute across all accounts and networks before every "
        "failed login waits `global_delay`.",
    )
    global_delay: Duration = Field(
        1, description="Wait before each failure's answer while over the global budget."
    )
    prune_interval: Duration = Field(
        300, description="How often failures older than `window` are deleted (at a login)."
    )


class Limits(Section):
    """Sizes and counts; every one has a clear refusal."""

    message_size: Size = Field(
        25 * 1024**2, ge=1024, description="Largest message (SMTP SIZE, IMAP APPEND literal)."
    )
    line_length: int = Field(
        64 * 1024,
        ge=512,
        description="Longest IMAP or POP3 command line in bytes; RFC 2971 ID alone may "
        "need 31 KB, and Dovecot allows 64 KB.",
    )
    connections: int = Field(1000, ge=1, description="Open connections per service.")
    connections_per_ip: int = Field(50, ge=1, description="Open connections per client address.")
    recipients: int = Field(100, ge=1, description="Recipients of one SMTP transaction.")


class Accounts(Section):
    """Account lifecycle: temporary passwords, activation links, codes."""

    temporary_password_lifetime: Duration = Field(
        14 * 86400, description="A temporary password expires this long after it is issued."
    )
    activation_link_lifetime: Duration = Field(
        72 * 3600, description="How long an activation link works (the seed's 72 hours)."
    )
    login_code_lifetime: Duration = Field(600, description="How long an e-mailed code works.")
    login_code_attempts: int = Field(5, ge=1, description="Tries per e-mailed code.")
    login_digits: int = Field(
        0,
        ge=0,
        le=12,
        description="Give each account that `user add` or `user invite` creates a permanent "
        "login of this many random digits, usable beside the address everywhere and e-mailed "
        "once the password is set (seed 002: 6); 0: none (4 at least otherwise).",
    )
    quota: Size = Field(
        0,
        description="Most mail (message octets, all folders) an account may hold unless "
        "`user edit --quota` sets its own; 0: no limit. Enforced at SMTP delivery, APPEND, "
        "COPY and MOVE, reported by IMAP QUOTA (RFC 9208).",
    )
    bcrypt_rounds: int = Field(12, ge=4, le=16, description="bcrypt cost factor.")
    auth_workers: int = Field(
        4, ge=1, le=64, description="Threads that run bcrypt, so logins never block the loop."
    )
    credential_cache_lifetime: Duration = Field(
        300,
        description="After bcrypt accepts a password, the same password for the same account "
        "is accepted without bcrypt for this long (a keyed hash kept in memory only, void as "
        "soon as the password changes); 0: every login runs bcrypt.",
    )

    @field_validator("login_digits")
    @classmethod
    def _check_login_digits(cls, value: int) -> int:
        if 0 < value < 4:
            raise ValueError("use 0 (no generated logins) or 4 to 12 digits")
        return value


class SmtpSettings(Section):
    """SMTP receiving, submission and the outbound queue."""

    catch_all: dict[str, str] = Field(
        default_factory=dict,
        description="Per-domain catch-all: domain -> address that gets unknown local parts.",
    )
    relay_host: HostPort = Field(
        None, description="Send all outbound mail through this smarthost instead of MX lookup."
    )
    relay_username: str | None = Field(None, description="AUTH user for the relay host.")
    relay_password: str | None = Field(None, description="AUTH password for the relay host.")
    nameservers: list[str] = Field(
        default_factory=list, description="DNS resolvers for MX lookups (empty: the system's)."
    )
    queue_lifetime: Duration = Field(5 * 86400, description="Give up and bounce after this.")
    retry_initial: Duration = Field(300, description="First retry delay; doubles each time.")
    retry_max: Duration = Field(3 * 3600, description="Longest delay between retries.")
    delivery_workers: int = Field(8, ge=1, description="Outbound deliveries at once.")
    dkim_selector: str = Field("mail", description="DKIM selector for our domains' keys.")
    client_host: str | None = Field(
        None,
        description="Host name mail clients are told to send through (submission), where it "
        "differs from the top-level `client_host`.",
    )
    postmaster: str | None = Field(
        None,
        description="Account or alias that gets mail for <postmaster> and postmaster@ each of "
        "our domains unless an account or alias has that name (default: postmaster@ first "
        "domain; if that names nobody, the oldest account; check-config tells).",
    )
    refused_recipients_before_delay: int = Field(
        3,
        ge=0,
        description="Recipients one session may have refused (unknown, or relaying) before "
        "each further refusal waits.",
    )
    refused_recipient_delay: Duration = Field(
        1, description="The first such wait; it doubles with each further refusal."
    )
    refused_recipient_delay_max: Duration = Field(
        8, description="The longest wait `refused_recipient_delay` grows to."
    )
    refused_recipients_limit: int = Field(
        20,
        ge=1,
        description="Refused recipients after which the session is answered 421 and closed "
        "(as Postfix's smtpd_hard_error_limit).",
    )


class ImapSettings(Section):
    """IMAP sessions."""

    idle_timeout: Duration = Field(
        1800, description="Autologout after this long without a command."
    )
    max_connections_per_user: int = Field(20, ge=1, description="Open sessions per account.")
    client_host: str | None = Field(
        None,
        description="Host name mail clients are told for IMAP, where it differs from the "
        "top-level `client_host`.",
    )


class Pop3Settings(Section):
    """POP3 sessions."""

    idle_timeout: Duration = Field(600, description="Close after this long without a command.")
    client_host: str | None = Field(
        None,
        description="Host name mail clients are told for POP3, where it differs from the "
        "top-level `client_host` (seed 000: pop3.<domain> for incoming mail).",
    )


class WebSettings(Section):
    """The haslo web site."""

    base_url: str | None = Field(
        None,
        description="Public address of the site, as users see it (e.g. https://haslo.example.pl). "
        "Default: derived from `hostname` and `listen.web`.",
    )
    tls: bool = Field(True, description="Serve HTTPS with the suite's certificate.")
    terms: str | None = Field(
        None,
        description="One sentence of terms the user accepts on the account page's first visit, "
        "when there is no `site.terms_file` or `site.terms_url` (default: a sentence in the "
        "page's language).",
    )
    login_code: bool = Field(
        True,
        description="Ask for a 6-digit code e-mailed to the contact address after the password "
        "on the account page (seed 002); off: the password alone signs in.",
    )
    external_accounts: bool = Field(
        True,
        description="Show the external-accounts section on the account page (seed 001); the "
        "CLI and the fetcher are not affected.",
    )
    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Client networks allowed to read /metrics.",
    )
    mail_from: str | None = Field(
        None, description="Sender of the site's e-mails (default: postmaster@ first domain)."
    )
    session_lifetime: Duration = Field(
        1800, description="How long a sign-in to the account page lasts."
    )
    reset_max_per_ip: int = Field(
        5,
        ge=1,
        description="Forgotten-password requests from one client network within throttle.window.",
    )
    reset_max_per_account: int = Field(
        3,
        ge=1,
        description="Forgotten-password requests for one login from one client network within "
        "throttle.window.",
    )
    reset_mails_per_account: int = Field(
        10,
        ge=1,
        description="Reset e-mails sent for one account within throttle.window, whoever asks; "
        "later requests get the same answer and no e-mail.",
    )


class FetcherSettings(Section):
    """External accounts pulled into users' mailboxes."""

    interval: Duration = Field(300, description="Poll each external account this often.")
    max_accounts_per_user: int = Field(4, ge=0, description="External accounts per user.")
    concurrency: int = Field(4, ge=1, description="Accounts fetched at once.")
    timeout: Duration = Field(60, description="Timeout of every remote call.")


class Migration(Section):
    """Moving users from an old mail system (legacy logins)."""

    window_start: date | None = Field(None, description="First day legacy logins are accepted.")
    cutoff: date | None = Field(None, description="From this day legacy logins are refused.")


Language = Literal["pl", "en"]


class Site(Section):
    """Who runs the service and how it speaks: names, logo, help, terms, texts."""

    language: Language = Field(
        "pl",
        description="The site's language (pl or en): the web site's default and the language "
        "of e-mails and mail-client notices for accounts that have none of their own.",
    )
    name: str | None = Field(
        None,
        description="The web site's name in page titles and the header (default: Poczta, or "
        "Mail in English).",
    )
    organisation: str = Field(
        "", description="The organisation that runs the service, in the header and e-mails."
    )
    logo: str | None = Field(
        None,
        description="Logo in the page header: an image file (relative to the config's folder) "
        "or an https:// address.",
    )
    support: str = Field(
        "",
        description="How users reach help (e.g. a help line), at the foot of every page and "
        "e-mail.",
    )
    mail_sender_name: str | None = Field(
        None,
        description="Display name on the From line of the suite's e-mails (default: "
        "`organisation`, else the site's name).",
    )
    terms_file: Path | None = Field(
        None,
        description="Plain-text file of the organisation's terms, shown on the account page's "
        "first visit (paragraphs separated by blank lines).",
    )
    terms_url: str | None = Field(
        None, description="Address of the organisation's terms, linked from that page instead."
    )
    templates: Path = Field(
        Path("templates"),
        description="Folder of templates that replace the built-in ones: mail/NAME.txt for "
        "e-mails (subject and body), web/NAME.html for pages; a missing folder is fine.",
    )

    @field_validator("logo", "terms_url")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value and value.startswith("http://"):
            raise ValueError("use an https:// address (pages are served over HTTPS)")
        return value


class Settings(Section):
    """mailsuite's whole configuration (config/mailsuite.yaml)."""

    hostname: str = Field(description="This server's host name (HELO, certificates, links).")
    domains: list[str] = Field(min_length=1, description="Mail domains this server is MX for.")
    client_host: str | None = Field(
        None,
        description="Host name mail clients connect to, as published in autoconfig, "
        "Autodiscover, the account page, the Apple profile and SRV records (default: "
        "`hostname`); `imap`, `pop3` and `smtp` may each name their own.",
    )
    listen: Listen = Field(default_factory=Listen, description="Listener addresses.")
    workers: Annotated[int | Literal["auto"], BeforeValidator(_workers)] = Field(
        "auto",
        description="Server processes `serve` starts, all accepting on the same listeners: "
        "`auto` is one per core; 1 runs everything in one process, with no supervisor.",
    )
    paths: Paths = Field(default_factory=Paths, description="Files and folders.")
    tls: Tls = Field(default_factory=Tls, description="TLS.")
    password_policy: PasswordPolicy = Field(default_factory=PasswordPolicy, description="Rules.")
    throttle: Throttle = Field(default_factory=Throttle, description="Login throttling.")
    limits: Limits = Field(default_factory=Limits, description="Sizes and counts.")
    accounts: Accounts = Field(default_factory=Accounts, description="Account lifecycle.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP.")
    imap: ImapSettings = Field(default_factory=ImapSettings, description="IMAP.")
    pop3: Pop3Settings = Field(default_factory=Pop3Settings, description="POP3.")
    web: WebSettings = Field(default_factory=WebSettings, description="Web site.")
    site: Site = Field(default_factory=Site, description="The organisation and its words.")
    fetcher: FetcherSettings = Field(default_factory=FetcherSettings, description="Fetcher.")
    migration: Migration = Field(default_factory=Migration, description="Migration.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("hostname")
    @classmethod
    def _check_hostname(cls, value: str) -> str:
        if not _HOSTNAME.match(value.lower()):
            raise ValueError(f"{value!r} is not a valid host name")
        return value.lower()

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if not is_mail_domain(d.lower())]
        if bad:
            raise ValueError(f"not valid domain names: {', '.join(map(repr, bad))}")
        lowered = [d.lower() for d in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("a domain is listed twice")
        return lowered

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()
