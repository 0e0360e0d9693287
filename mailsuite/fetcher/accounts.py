"""Adding, changing and removing external accounts: what the web wizard and the CLI share.

Saving first tests the connection and the login with the settings as given (unless the
caller says not to), so a user learns at once that the password is wrong or the server
unreachable; the password is stored only encrypted (mailsuite.secrets). Removing an account
never touches the remote server; the local folder stays unless the user asks otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailsuite.config import Settings
from mailsuite.directory import Directory
from mailsuite.directory import external as ext_db
from mailsuite.directory.external import ExternalAccount
from mailsuite.fetcher import providers
from mailsuite.fetcher.engine import Fetcher, delete_local_folders
from mailsuite.i18n import N_
from mailsuite.secrets import SecretBox
from mailsuite.store import Store

MAX_PASSWORD = 1024


@dataclass(frozen=True)
class ServerSettings:
    """Step 2 of the wizard ("konfiguracja zaawansowana")."""

    protocol: str
    host: str
    port: int
    security: str
    accept_self_signed: bool = False


def suggested(email: str, protocol: str = "imap", label: str = "") -> ServerSettings:
    server = providers.suggest(email, protocol, label)
    return ServerSettings(protocol, server.host, server.port, server.security)


def chosen_server(
    default: ServerSettings,
    *,
    protocol: str | None = None,
    host: str | None = None,
    port: int | None = None,
    security: str | None = None,
    accept_self_signed: bool = False,
) -> ServerSettings:
    """What the user gave, the rest from `default` (the provider's suggestion or the current
    settings). A port the user did not give follows a protocol or security that differs from
    the default's (995 for POP3 over TLS), since the default's port belongs to its own pair.
    """
    protocol = protocol or default.protocol
    security = security or default.security
    if port is None:
        same = (protocol, security) == (default.protocol, default.security)
        port = default.port if same else providers.DEFAULT_PORTS[(protocol, security)]
    return ServerSettings(protocol, host or default.host, port, security, accept_self_signed)


def switched(
    current: ServerSettings, protocol: str, *, email: str, label: str = ""
) -> ServerSettings:
    """The settings to show once the user picks `protocol` instead of `current.protocol`.

    A host that was the suggestion for the old protocol (imap.gmail.com) becomes the new
    protocol's suggestion with its port and security (pop.gmail.com, 995, TLS), so every
    provider's POP3 and IMAP presets can be reached; a host of the user's own stays, with the
    new protocol's usual port for its security. The old port never carries over: it belongs
    to the old protocol.
    """
    if protocol == current.protocol:
        return current
    old = suggested(email, current.protocol, label)
    if not current.host or current.host == old.host:
        new = suggested(email, protocol, label)
        return ServerSettings(
            protocol, new.host, new.port, new.security, current.accept_self_signed
        )
    port = providers.DEFAULT_PORTS[(protocol, current.security)]
    return ServerSettings(
        protocol, current.host, port, current.security, current.accept_self_signed
    )


def check_connection(fetcher: Fetcher, server: ServerSettings, login: str, password: str) -> int:
    """Connect and log in; returns the inbox's message count or raises RemoteError."""
    remote = fetcher.client(
        server.protocol,
        server.host,
        server.port,
        server.security,
        login,
        password,
        server.accept_self_signed,
    )
    return fetcher.test(remote)


def create(
    fetcher: Fetcher,
    owner: str,
    *,
    label: str,
    display_name: str,
    email: str,
    password: str,
    server: ServerSettings,
    login: str = "",
    test: bool = True,
) -> ExternalAccount:
    """Check the form, test the connection (RemoteError says why it failed), then store.

    The limit and the label are checked before the remote server is contacted, so a refused
    fifth account costs no connection.
    """
    directory, settings = fetcher.directory, fetcher.settings
    owner = directory.require_account(owner).address
    _check_password(password)
    ext_db.check_label(label)
    limit = settings.fetcher.max_accounts_per_user
    have = len(ext_db.list_external(directory, owner))
    if have >= limit:
        raise ext_db.LimitReached(
            f"you already have {have} external accounts; the limit is {limit}"
        )
    login = login.strip() or email.strip()
    if test:
        check_connection(fetcher, server, login, password)
    return ext_db.add_external(
        directory,
        owner,
        label=label,
        display_name=display_name,
        email=email,
        login=login,
        secret=fetcher.secrets.encrypt(password),
        protocol=server.protocol,
        host=server.host,
        port=server.port,
        security=server.security,
        accept_self_signed=server.accept_self_signed,
        limit=limit,
    )


def edit(
    fetcher: Fetcher,
    account: ExternalAccount,
    *,
    password: str | None = None,
    test: bool = True,
    **fields: Any,
) -> ExternalAccount:
    """Change settings (protocol included); with a new server, login or password the
    connection is tested first. A new label renames the local folders."""
    directory = fetcher.directory
    if password is not None:
        _check_password(password)
    if "label" in fields:
        fields["label"] = ext_db.check_label(fields["label"])
    merged = {
        k: fields.get(k, getattr(account, k))
        for k in ("protocol", "host", "port", "security", "accept_self_signed", "login")
    }
    changed = password is not None or any(merged[k] != getattr(account, k) for k in merged)
    if test and changed:
        server = ServerSettings(
            merged["protocol"],
            merged["host"],
            int(merged["port"]),
            merged["security"],
            bool(merged["accept_self_signed"]),
        )
        secret = password if password is not None else fetcher.secrets.decrypt(account.secret)
        check_connection(fetcher, server, merged["login"], secret)
    if password is not None:
        fields["secret"] = fetcher.secrets.encrypt(password)
    new_label = fields.get("label")
    if new_label and new_label != account.label:
        _rename_folders(fetcher.store, directory, account, new_label)
    return ext_db.update_external(directory, account.id, **fields)


def remove(fetcher: Fetcher, account: ExternalAccount, *, delete_folder: bool) -> int:
    """Forget the account; nothing on the remote server changes. Returns how many local
    folders were deleted (0 when they stay)."""
    ext_db.delete_external(fetcher.directory, account.id)
    if delete_folder:
        return delete_local_folders(fetcher.store, account.owner, account.label)
    return 0


def rotate_key(directory: Directory, settings: Settings) -> int:
    """A new encryption key; every stored password is re-encrypted. Returns how many."""
    box = SecretBox(settings.paths.secret_key)
    return box.rotate(lambda convert: ext_db.reencrypt_all(directory, convert))


def describe(directory: Directory, account: ExternalAccount) -> dict[str, Any]:
    """What the page and `external show` display (never the password)."""
    return {
        "label": account.label,
        "owner": account.owner,
        "display_name": account.display_name,
        "email": account.email,
        "login": account.login,
        "protocol": account.protocol,
        "host": account.host,
        "port": account.port,
        "security": account.security,
        "accept_self_signed": account.accept_self_signed,
        "messages": ext_db.copied_count(directory, account.id),
        "last_success": account.last_success,
        "last_error": account.last_error,
        "last_error_reason": account.last_error_reason,
        "last_error_params": account.last_error_params,
        "last_error_at": account.last_error_at,
        "last_attempt": account.last_attempt,
        "next_attempt": account.next_attempt,
        "failures": account.failures,
    }


def _check_password(password: str) -> None:
    if not password:
        raise ext_db.DirectoryError("the password is required", key=N_("dir.password.required"))
    if len(password) > MAX_PASSWORD:
        raise ext_db.DirectoryError("the password is too long", key=N_("dir.password.long"))


def _rename_folders(
    store: Store, directory: Directory, account: ExternalAccount, new_label: str
) -> None:
    mailbox = store.mailbox(account.owner)
    names = {f.name for f in mailbox.list_folders()}
    if account.label in names:
        mailbox.rename_folder(account.label, new_label)  # sub-folders move with it
    ext_db.relabel(directory, account.id, account.label, new_label)
