"""What `serve` can start: a `listen:` key's server, and services without a socket.

Each entry names the service (its key in `ctx.services` and in `mailsuite status`) and gives
the "module:function" that starts it; the module is imported only when the service is
started, after the Twisted reactor is installed. Services never look each other up here:
serve hands them typed handles on the Context (`ctx.fetcher`). The functions' contract is in
docs/internals.md.
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

BACKGROUND: dict[str, str] = {
    "queue": "mailsuite.smtp.queue:start_queue",
    "fetcher": "mailsuite.fetcher.service:start_fetcher",
}
