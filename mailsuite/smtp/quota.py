"""Quota at SMTP delivery: which reply a recipient gets when its mailbox cannot take a message.

SMTP has one reply to DATA for every recipient, so the answer per recipient is given at
RCPT, against the size the client declared with MAIL FROM SIZE= (RFC 1870), or one octet
when it declared none; DATA then checks the real size once more. The codes are those
Postfix and Dovecot send (RFC 3463 3.3, X.2.2 "mailbox full"):

- `452 4.2.2`: the mailbox is full now; the sending server keeps the message and tries again,
  and the user can make room (RFC 5321 4.5.3.1.10 gives 452 for this kind of temporary
  refusal).
- `552 5.2.2`: the message alone is larger than the whole quota and can never be delivered;
  552 is RFC 5321's "exceeded storage allocation".

This module decides and words; `handler` applies it, reading the directory and the store in
an I/O thread. The SMTP durability rule is untouched: 250 only after the durable write.
"""

from __future__ import annotations

from mailsuite import quota
from mailsuite.context import Context

MAILBOX_FULL = "452 4.2.2 {address}: mailbox full; try again later"
NEVER_FITS = "552 5.2.2 {address}: message is larger than the mailbox may hold"
ALL_FULL = "452 4.2.2 Mailbox full; try again later"
ALL_NEVER = "552 5.2.2 Message is larger than the mailbox may hold"


def declared_size(mail_options: list[str]) -> int:
    """The SIZE= a client declared with MAIL FROM (RFC 1870 4), else 1: any message has at
    least an octet, so a mailbox exactly at its limit is full."""
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return max(int(value), 1)
    return 1


def verdicts(ctx: Context, accounts: list[str], size: int) -> dict[str, quota.Verdict]:
    """Each account's verdict for a message of `size` octets. Blocking: an I/O thread."""
    settings, directory, store = ctx.settings, ctx.directory, ctx.store
    return {a: quota.check(settings, directory, store, a, size) for a in accounts}


def rcpt_refusal(address: str, found: dict[str, quota.Verdict]) -> str | None:
    """The RCPT reply when a mailbox behind `address` cannot take the message, else None.
    An alias is refused when any of its mailboxes is: accepting it would lose that copy."""
    if quota.Verdict.NEVER in found.values():
        return NEVER_FITS.format(address=address)
    if quota.Verdict.FULL in found.values():
        return MAILBOX_FULL.format(address=address)
    return None


def data_refusal(found: dict[str, quota.Verdict], remote: bool) -> str | None:
    """The DATA reply when no accepted recipient can take the message, else None.

    When only some cannot (the client declared no SIZE, or two messages raced), the message
    goes to every accepted recipient and those take the one message that passes their limit,
    as Dovecot's quota grace lets the last message through: refusing DATA would refuse the
    recipients that have room too, and their next message is refused at RCPT."""
    if remote or not found or quota.Verdict.FITS in found.values():
        return None
    if all(v is quota.Verdict.NEVER for v in found.values()):
        return ALL_NEVER
    return ALL_FULL
