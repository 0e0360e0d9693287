"""IMAP4rev1 server: grammar, rendering, search and sessions over the store."""
