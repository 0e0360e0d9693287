"""Delivery status notifications (RFC 3464) for mail the queue could not deliver."""

from __future__ import annotations

import re
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from mailsuite.smtp.message import header_block, normalize_line_endings
from mailsuite.smtp.spool import Entry, Recipient

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def status_of(recipient: Recipient, default: str) -> str:
    """The enhanced status code in the remote reply, else `default` (RFC 3464 2.3.4)."""
    match = _STATUS.search(recipient.last_error)
    if match and match.group(1) != "2":
        return match.group(0)
    return default


def build(
    hostname: str, entry: Entry, failed: list[Recipient], original: bytes, *, expired: bool
) -> bytes:
    """A multipart/report bounce to the entry's sender, CRLF-normalised bytes."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    report["To"] = entry.sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = formatdate(localtime=True)
    report["Message-ID"] = make_msgid(domain=hostname)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 5.
    reason = (
        "could not be delivered before the retry period ran out"
        if expired
        else "was refused by the receiving server"
    )
    lines = [
        f"This is the mail system at {hostname}.",
        "",
        f"Your message could not be delivered to some recipients: it {reason}.",
        "",
    ]
    for rcpt in failed:
        lines.append(f"<{rcpt.address}>: {rcpt.last_error or 'no further detail'}")
    charset = Charset("utf-8")
    charset.body_encoding = QP
    report.attach(MIMEText("\n".join(lines) + "\n", "plain", charset))

    status = Message()
    status.set_type("message/delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {hostname}"
    per_message["X-Queue-ID"] = entry.id
    per_message["Arrival-Date"] = formatdate(entry.created, localtime=True)
    blocks = [per_message]
    for rcpt in failed:
        block = Message()
        block["Final-Recipient"] = f"rfc822; {rcpt.address}"
        block["Action"] = "failed"
        block["Status"] = status_of(rcpt, "4.4.7" if expired else "5.0.0")
        if rcpt.remote_mta:
            block["Remote-MTA"] = f"dns; {rcpt.remote_mta}"
        if rcpt.last_error:
            block["Diagnostic-Code"] = f"smtp; {rcpt.last_error[:900]}"
        blocks.append(block)
    status.set_payload(blocks)
    report.attach(status)

    headers = Message()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(header_block(original).decode("ascii", "replace"))
    report.attach(headers)
    return normalize_line_endings(report.as_bytes(policy=SMTP))
