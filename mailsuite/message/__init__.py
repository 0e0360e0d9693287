"""Reading header values as written: RFC 5322 lexical tokens, address lists and MIME parameters.

Every function here works on the raw bytes of one header value and returns raw bytes: nothing
is decoded (RFC 2047 words and RFC 2231 percent-escapes stay as written) and nothing is
re-serialised. That is what IMAP ENVELOPE and BODYSTRUCTURE must show (RFC 3501 7.4.2), and
what a reader that must agree with them (SEARCH, submission checks) has to see.

The readers recover from broken input the way Dovecot does, so that a mail client sees the
same structure whichever of the two servers it asks. Python's `email` package serves a
different purpose (decoded, normalised values) and drops what IMAP must keep: group
markers, source routes, parameters as written.

Modules: `lexer` (CFWS, atoms, quoted strings, phrases, domains, MIME tokens), `addresses`
(address lists with groups and routes), `mime` (Content-Type and its parameters, RFC 2045
and RFC 2231), and `words`, the one exception to "as written": values decoded to text for
the readers that compare text (SEARCH, SORT, the full-text index), so that they agree. No
I/O; imports no protocol code.
"""
