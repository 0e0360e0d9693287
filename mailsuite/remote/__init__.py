"""Read-only clients for remote mailboxes: IMAP and POP3 over the standard library.

Used by the fetcher (external accounts) and the importer (moving users from an old system).
Both classes are synchronous; run them in a worker thread, never on the event loop.

    from mailsuite.remote import RemoteIMAP, RemotePOP3, RemoteError

    with RemoteIMAP(host, port, security, user, password, timeout, verify=True) as imap:
        imap.folders()            # [(name, delimiter | None, flags)], names decoded from
                                  #   modified UTF-7 (RFC 3501 5.1.3)
        imap.examine(folder)      # (uidvalidity, uidnext | None, count), via EXAMINE
        imap.uids(folder)         # [uid, ...] ascending
        imap.sizes(folder)        # [(uid, size), ...] ascending
        imap.message_ids(folder, uids)  # {uid: (message_id or "", size)}
        imap.fetch(folder, uid)   # (bytes, flags, internal date as Unix time | None),
                                  #   via BODY.PEEK[] so \\Seen is never set

    with RemotePOP3(host, port, security, user, password, timeout, verify=True) as pop:
        pop.uidl()                # [(msgno, uid), ...]
        pop.sizes()               # {msgno: size}
        pop.retr(msgno)           # bytes with CRLF line ends

`security` is "tls" (TLS from the first byte, 993/995), "starttls" (STARTTLS or STLS before
login, 143/110) or "plain". Certificates are verified against the system's CAs with host
name checks; `verify=False` is the "accept self-signed" switch. `timeout` bounds every
network call (connect, TLS handshake, each command).

Read-only by construction: no method sends STORE, EXPUNGE, COPY, MOVE, APPEND or DELE, and
IMAP folders are only ever EXAMINEd. Sessions connect and log in on first use (or `open()`)
and end on `close()` or leaving the `with` block.

Every failure is one of four exceptions, each with a message fit for the user and never
containing the password: ConnectError (unknown host, refused, timed out, dropped, or the port
is served by another protocol or service), TLSError (untrusted or mismatched certificate, TLS
on a plain port or plain on a TLS port, no STARTTLS offered), LoginError (user name or
password refused), ProtocolError (a command refused or an unreadable answer; its subclass
MessageGone when `fetch` asks for a UID removed since it was listed). All derive from
RemoteError, whose `kind` is "connect", "tls", "login" or "protocol" and whose `reason` names
the failure exactly (`errors.REASONS`: "wrong_protocol", "tls_required", "cert_self_signed",
…) with `params` to word it in the user's language. No other exception leaves a session,
whatever the server sends.
"""

from mailsuite.remote.errors import (
    REASONS,
    ConnectError,
    LoginError,
    MessageGone,
    ProtocolError,
    RemoteError,
    TLSError,
)
from mailsuite.remote.imap import RemoteIMAP, decode_mutf7, encode_mutf7
from mailsuite.remote.pop3 import RemotePOP3
from mailsuite.remote.transport import SECURITIES

__all__ = [
    "REASONS",
    "SECURITIES",
    "ConnectError",
    "LoginError",
    "MessageGone",
    "ProtocolError",
    "RemoteError",
    "RemoteIMAP",
    "RemotePOP3",
    "TLSError",
    "decode_mutf7",
    "encode_mutf7",
]
