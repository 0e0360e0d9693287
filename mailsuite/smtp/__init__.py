"""SMTP: the MX for our domains, submission for our users, and the outbound queue.

aiosmtpd speaks the protocol on the shared loop (`server`); our policy sits in its hooks
(`handler`). Accepted mail goes through one path (`outgoing.dispatch`): local recipients into
the store, remote ones into the durable spool (`spool`), which the queue runner (`queue`)
delivers with retries, DKIM signatures (`signing`) and bounces (`dsn`). This package never
touches Maildirs itself; it calls the store.
"""
