"""Why a remote mailbox could not be read, in words a user understands.

Every failure of `RemoteIMAP` and `RemotePOP3` is one of these four, so callers (the fetcher,
the web wizard, the importer) can tell "the server is unreachable" from "the password is
wrong" without looking at library exceptions. The message never contains the password.
"""

from __future__ import annotations


class RemoteError(Exception):
    """A remote mailbox could not be read; `str(exc)` is fit to show the user."""

    kind = "error"


class ConnectError(RemoteError):
    """No connection: unknown host, refused, unreachable or timed out."""

    kind = "connect"


class TLSError(RemoteError):
    """TLS failed: the certificate is not trusted or does not match, or the server offers no
    STARTTLS."""

    kind = "tls"


class LoginError(RemoteError):
    """The server refused the user name or password."""

    kind = "login"


class ProtocolError(RemoteError):
    """The server answered something we could not use, or refused a command."""

    kind = "protocol"


class MessageGone(ProtocolError):
    """The message was removed on the server after it was listed."""
