"""IMAP QUOTA (RFC 9208): the responses for GETQUOTA and GETQUOTAROOT.

Every folder of an account is under one quota root, named "" (RFC 9208: a root name is
implementation-defined). Its one resource is STORAGE, in units of 1024 octets (RFC 9208 5.1),
from `mailsuite.quota`, which reads the store's running totals; the MESSAGE resource is not
offered, since no message-count limit is enforced (RFC 9208 5.2). Builds response bytes only:
no I/O, no store access.
"""

from __future__ import annotations

from mailsuite.imap import render
from mailsuite.quota import Usage

ROOT = ""
OVERQUOTA = "OVERQUOTA"  # RFC 9208 4.3.1 response code; STORAGE is the one resource (5.1)


def kib(octets: int) -> int:
    """Octets in units of 1024, rounded up so that a mailbox with any mail is never 0 and
    usage never reads below the limit that refused a message."""
    return -(-octets // 1024)


def quota_line(current: Usage) -> bytes:
    """``* QUOTA "" (STORAGE used limit)``; with no limit the resource list is empty, which
    RFC 9208 4.2.1 and 7 quota-list allows ("(" [quota-resource ...] ")")."""
    resources = b""
    if current.limit is not None:
        # RFC 9208 5.1: STORAGE usage and limit in units of 1024 octets; the limit rounded
        # down, since a limit the client reads must not let it expect room there is not
        resources = b"STORAGE %d %d" % (kib(current.octets), current.limit // 1024)
    return b"* QUOTA " + render.string(ROOT) + b" (" + resources + b")\r\n"


def quotaroot_line(mailbox: str, utf8: bool = False) -> bytes:
    """RFC 9208 4.2.2: ``* QUOTAROOT mailbox root``; every mailbox has the one root; the
    name in UTF-8 once UTF8=ACCEPT is enabled (RFC 6855 3)."""
    name = render.astring_mailbox(mailbox, utf8)
    return b"* QUOTAROOT " + name + b" " + render.string(ROOT) + b"\r\n"
