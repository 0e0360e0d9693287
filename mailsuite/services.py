"""What `serve` can start: a `listen:` key's server, and services without a socket.

Each entry is "module:function"; the module is imported only when its listener is configured,
after the Twisted reactor is installed. The functions' contract is in docs/internals.md.
"""

from __future__ import annotations

LISTENERS: dict[str, str] = {
    "imap": "mailsuite.imap.server:start_imap",
    "imaps": "mailsuite.imap.server:start_imaps",
    "pop3": "mailsuite.pop3.server:start_pop3",
    "pop3s": "mailsuite.pop3.server:start_pop3s",
    "smtp": "mailsuite.smtp.server:start_mx",
    "submission": "mailsuite.smtp.server:start_submission",
    "submissions": "mailsuite.smtp.server:start_submissions",
    "web": "mailsuite.web.app:start_web",
}

BACKGROUND: list[str] = [
    "mailsuite.smtp.queue:start_queue",
    "mailsuite.fetcher.service:start_fetcher",
]
