"""Moving users from an old mail system: import since a date, bulk plans, status.

Sources (Maildir, mbox, a remote IMAP or POP3 account) are only ever read; copies go through
the store like any delivery, and what was copied is remembered in the directory so a second
run adds nothing.
"""
