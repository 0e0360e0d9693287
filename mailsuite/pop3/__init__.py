"""POP3 (RFC 1939, RFC 2449, RFC 2595, RFC 5034) on the shared Maildir store.

`wire` holds the pure parts (command parsing, message framing), `maildrop` the snapshot a
session works on, `session` what each command means and `server` the Twisted listeners.
"""
