"""Odd MIME and odd addresses: the structure, sections, BODYSTRUCTURE and ENVELOPE they get.

Each expectation is what Dovecot answers for the same message (checked against a running
Dovecot by tests/test_imap_parity.py over tests/corpus/) unless its comment names the RFC
rule that decides it.
"""

from __future__ import annotations

import pytest

from mailsuite.imap.message import parse, section_bytes
from mailsuite.imap.render import body_structure, envelope
from tests import imapdata

HEAD = b"From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
PLAIN = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nplain text\r\n"
HTML = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n"
PLAIN_BS = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'
HTML_BS = b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 13 1 NIL NIL NIL NIL)'
EMPTY_BS = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'


def multipart(body: bytes, ctype: bytes = b'multipart/mixed; boundary="B"') -> bytes:
    return HEAD + b"Content-Type: " + ctype + b"\r\n\r\n" + body


def single(ctype: bytes, body: bytes = b"body\r\n", extra: bytes = b"") -> bytes:
    return HEAD + b"Content-Type: " + ctype + b"\r\n" + extra + b"\r\n" + body


# --- MIME structure -------------------------------------------------------------------------


def test_a_boundary_folded_inside_its_quotes_is_unfolded():
    """RFC 5322 2.2.3: unfolding removes the line break, so the boundary is "foo bar"."""
    msg = multipart(
        b"--foo bar\r\n" + PLAIN + b"\r\n--foo bar\r\n" + HTML + b"\r\n--foo bar--\r\n",
        b'multipart/mixed; boundary="foo\r\n bar"',
    )
    root = parse(msg)
    assert section_bytes(root, (1,), None, ()) == b"plain text\r\n"
    assert section_bytes(root, (2,), None, ()) == b"<p>html</p>\r\n"
    assert body_structure(root, True) == (
        b"(" + PLAIN_BS + HTML_BS + b' "MIXED" ("BOUNDARY" "foo bar") NIL NIL NIL)'
    )


def test_two_delimiters_in_a_row_enclose_an_empty_part():
    """RFC 2046 5.1.1: the line break before a delimiter belongs to it, so between two
    delimiter lines there is an empty body part; no delimiter shows up in a MIME header."""
    root = parse(multipart(b"--B\r\n--B\r\n" + PLAIN + b"\r\n--B\r\n" + HTML + b"\r\n--B--\r\n"))
    assert [section_bytes(root, (n,), "MIME", ()) for n in (1, 2, 3)] == [
        b"",
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n",
    ]
    assert section_bytes(root, (1,), None, ()) == b""
    assert body_structure(root, True).startswith(b"(" + EMPTY_BS + PLAIN_BS + HTML_BS)


def test_an_inner_multipart_reusing_its_parents_boundary_hides_nothing_after_it():
    root = parse(
        multipart(
            b"--B\r\n" + PLAIN + b"\r\n--B\r\n"
            b'Content-Type: multipart/alternative; boundary="B"\r\n\r\n'
            b"--B\r\n" + PLAIN + b"\r\n--B--\r\n"
            b"--B\r\n" + HTML + b"\r\n--B--\r\n"
        )
    )
    assert len(root.children) == 3
    assert section_bytes(root, (2, 1), None, ()) == b"plain text\r\n"
    assert section_bytes(root, (3,), None, ()) == b"<p>html</p>\r\n"


@pytest.mark.parametrize(
    "body, lines",
    [
        (b"one\r\ntwo\r\n", 2),
        (b"one\r\ntwo", 1),  # a last line without a line ending is not a line
        (b"only", 0),
        (b"", 0),
        (b"\r\n\r\n", 2),
    ],
)
def test_text_line_counts_are_the_line_breaks(body, lines):
    bs = body_structure(parse(single(b"text/plain", body)), True)
    assert bs == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d %d NIL NIL NIL NIL)'
        % (len(body), lines)
    )


def test_an_empty_multipart_shows_an_empty_text_part_with_every_field():
    """RFC 3501 7.4.2 needs one body in a multipart; the placeholder is a complete text part."""
    for body in (b"", b"no delimiter here\r\n", b"preamble\r\n--B--\r\n"):
        root = parse(multipart(body))
        assert body_structure(root, True) == (
            b"(" + EMPTY_BS + b' "MIXED" ("BOUNDARY" "B") NIL NIL NIL)'
        )
        assert body_structure(root, False) == (
            b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0) "MIXED")'
        )


# --- parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype, params",
    [
        (b"text/plain; charset=utf-8;", b'("CHARSET" "utf-8")'),  # no empty "" "" pair
        (b"text/plain ;", b'("CHARSET" "us-ascii")'),
        # a parameter without "=" cannot be read: reading stops there, as in Dovecot
        (b"text/plain; format; charset=utf-8", b'("CHARSET" "us-ascii")'),
        (b"text/plain; charset=utf-8; format", b'("CHARSET" "utf-8")'),
        (b"text/plain; charset=; format=flowed", b'("CHARSET" "" "FORMAT" "flowed")'),
        (
            b"text/plain; charset=utf-8 junk; format=flowed",
            b'("CHARSET" "utf-8" "FORMAT" "flowed")',
        ),
        (
            b'text/plain; name="a very long\r\n name.txt"',
            b'("NAME" "a very long name.txt" "CHARSET" "us-ascii")',
        ),
        (b"text/plain (comment); charset=us-ascii (ascii)", b'("CHARSET" "us-ascii")'),
        (b'text/plain; charset="utf-8', b'("CHARSET" "us-ascii")'),  # unterminated quote
    ],
)
def test_content_type_parameters_as_dovecot_reads_them(ctype, params):
    bs = body_structure(parse(single(ctype)), True)
    assert bs.startswith(b'("TEXT" "PLAIN" ' + params + b" NIL NIL"), bs


def test_a_folded_filename_loses_its_line_break():
    msg = single(
        b"application/pdf",
        b"JVBERi0xLjQK\r\n",
        b'Content-Disposition: attachment; filename="a very long\r\n name.pdf"\r\n',
    )
    assert b'("ATTACHMENT" ("FILENAME" "a very long name.pdf"))' in body_structure(parse(msg), True)


def test_raw_utf8_parameter_values_stay_utf8():
    """RFC 6532 3.2: UTF-8 in a header is kept; as 8-bit text it goes out as a literal."""
    name = "Zażółć.txt".encode()
    bs = body_structure(parse(single(b'text/plain; name="' + name + b'"')), True)
    assert b'("NAME" {%d}\r\n%s "CHARSET" "us-ascii")' % (len(name), name) in bs
    assert "\ufffd".encode() not in bs


@pytest.mark.parametrize(
    "ctype, params",
    [
        # RFC 2231 values are shown as written, continuations joined (as Dovecot does)
        (b"application/x; name*=utf-8''%C5%BC.bin", b'("NAME*" "utf-8\'\'%C5%BC.bin")'),
        (b'application/x; name*0="a-"; name*1="b"', b'("NAME" "a-b")'),
        (b"application/x; name*1=two; name*0=one-", b'("NAME" "one-two")'),
        (b"application/x; name*0*=utf-8''%41; name*1=%B", b'("NAME*" "utf-8\'\'%41%25B")'),
        (b'application/x; name*0="a"; name*2="c"', b'("NAME*0" "a" "NAME*2" "c")'),
        (
            b"application/x; name=plain; name*=utf-8''enc",
            b'("NAME" "plain" "NAME*" "utf-8\'\'enc")',
        ),
    ],
)
def test_rfc2231_parameters(ctype, params):
    assert body_structure(parse(single(ctype)), True).startswith(
        b'("APPLICATION" "X" ' + params + b" NIL NIL"
    )


@pytest.mark.parametrize(
    "ctype, start",
    [
        (b"text", b'("TEXT" "" ("CHARSET" "us-ascii") NIL NIL "7BIT" 6 1 '),
        (b"this is not a type", b'("" "" NIL NIL NIL "7BIT" 6 NIL'),
        (b"text/plain foo; charset=utf-8", b'("" "" NIL NIL NIL "7BIT" 6 NIL'),
    ],
)
def test_broken_content_types_are_shown_as_far_as_they_go(ctype, start):
    assert body_structure(parse(single(ctype)), True).startswith(start)


def test_content_fields_count_only_in_a_mime_entity():
    """RFC 2045 4: without MIME-Version (or Content-Type) the Content-* fields mean nothing."""
    msg = (
        b"From: a@example.org\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <x@y>\r\n\r\nAAAA\r\n"
    )
    assert body_structure(parse(msg), True) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 6 1 NIL NIL NIL NIL)'
    )


# --- delimiters that end a header ---------------------------------------------------------


def test_a_delimiter_ends_a_header_without_blank_line_and_takes_its_line_break():
    root = parse(multipart(b"--B\r\nContent-Type: text/plain\r\n--B\r\n" + HTML + b"\r\n--B--\r\n"))
    assert section_bytes(root, (1,), "MIME", ()) == b"Content-Type: text/plain"
    assert section_bytes(root, (1,), None, ()) == b""
    assert section_bytes(root, (2,), None, ()) == b"<p>html</p>\r\n"


def test_a_blank_line_right_before_a_parent_delimiter_is_the_delimiters():
    root = parse(multipart(b"--B\r\nX-Part: one\r\n\r\n--B--\r\n"))
    assert section_bytes(root, (1,), "MIME", ()) == b"X-Part: one\r\n"


def test_delimiters_need_only_start_with_the_boundary():
    """RFC 2046 5.1.1: "it is sufficient that the boundary appear in its entirety"."""
    root = parse(multipart(b"--B\r\n" + PLAIN + b"\r\n--Bxyz\r\nnot a header\r\n--B--\r\n"))
    assert len(root.children) == 2
    assert section_bytes(root, (2,), "MIME", ()) == b"not a header"


def test_the_longest_matching_boundary_wins():
    root = parse(
        multipart(
            b'--BB\r\nContent-Type: multipart/alternative; boundary="B"\r\n\r\n'
            b"--B\r\n" + PLAIN + b"\r\n--B--\r\n--BB\r\n" + HTML + b"\r\n--BB--\r\n",
            b'multipart/mixed; boundary="BB"',
        )
    )
    assert [len(root.children), len(root.children[0].children)] == [2, 1]
    assert section_bytes(root, (2,), None, ()) == b"<p>html</p>\r\n"


def test_sections_of_a_multipart_digest_default_to_messages():
    """RFC 2046 5.1.5: in multipart/digest a part without Content-Type is message/rfc822."""
    root = parse(
        multipart(
            b"--D\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--D--\r\n",
            b'multipart/digest; boundary="D"',
        )
    )
    assert section_bytes(root, (1,), "HEADER", ()) == b"Subject: inner\r\n\r\n"
    assert section_bytes(root, (1,), "TEXT", ()) == b"inner body"
    assert body_structure(root, False).startswith(b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 28 ')


# --- HEADER.FIELDS -----------------------------------------------------------------------


def test_header_fields_not_keeps_lines_without_a_colon():
    msg = b"From: a@example.org\r\nThis line has no colon\r\nSubject: s\r\n\r\nbody\r\n"
    assert section_bytes(parse(msg), (), "HEADER.FIELDS.NOT", ("SUBJECT",)) == (
        b"From: a@example.org\r\nThis line has no colon\r\n\r\n"
    )


def test_header_fields_of_a_header_without_blank_line_end_without_one():
    """RFC 3501 6.4.5: the blank line is included except for a message with no body and no
    blank line; a field at the very end gets its line break."""
    msg = b"From: a@example.org\r\nSubject: no EOL"
    assert section_bytes(parse(msg), (), "HEADER.FIELDS", ("SUBJECT",)) == b"Subject: no EOL\r\n"


# --- ENVELOPE ----------------------------------------------------------------------------


def env_field(headers: bytes, index: int) -> bytes:
    """One field of the ENVELOPE of a message with `headers`, as sent (RFC 3501 7.4.2 order)."""
    env = envelope(parse(headers + b"\r\nbody\r\n"))
    pos = 1
    for _ in range(index):
        _, pos = imapdata.value(env, pos)
    _, end = imapdata.value(env, pos)
    return env[pos:end].lstrip(b" ")


FROM, SENDER, TO, CC = 2, 3, 5, 6


@pytest.mark.parametrize(
    "headers, index, expected",
    [
        # RFC 3501 7.4.2: group start (NIL NIL name NIL), members, end (NIL NIL NIL NIL)
        (
            b"To: Friends: a@x.example, b@x.example;\r\n",
            TO,
            b'((NIL NIL "Friends" NIL)(NIL NIL "a" "x.example")(NIL NIL "b" "x.example")'
            b"(NIL NIL NIL NIL))",
        ),
        (
            b"Cc: undisclosed-recipients:;\r\n",
            CC,
            b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))',
        ),
        # a mailbox is never a group marker: missing parts get Dovecot's placeholders
        (b"From: foo\r\n", FROM, b'((NIL NIL "foo" "MISSING_DOMAIN"))'),
        (
            b"From: a@example.org\r\nSender: Name <>\r\n",
            SENDER,
            b'(("Name" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))',
        ),
        (b"From: @example.org\r\n", FROM, b'((NIL NIL "MISSING_MAILBOX" "example.org"))'),
        # RFC 5322 4.4 obs-route is the adl
        (
            b"From: <@route.example:user@domain.example>\r\n",
            FROM,
            b'((NIL "@route.example" "user" "domain.example"))',
        ),
        (
            b"From: Name <@r1.example,@r2.example:u@d.example>\r\n",
            FROM,
            b'(("Name" "@r1.example,@r2.example" "u" "d.example"))',
        ),
        # comments are not the name; only an addr-spec's trailing comment stands in for one
        (
            b"From: <user-from (comment)@ (comment) domain.org>\r\n",
            FROM,
            b'((NIL NIL "user-from" "domain.org"))',
        ),
        (
            b"From: Ann (the boss) <ann@example.org> (work)\r\n",
            FROM,
            b'(("Ann" NIL "ann" "example.org"))',
        ),
        (b"From: (only a comment) c@example.org\r\n", FROM, b'((NIL NIL "c" "example.org"))'),
        (
            b"From: bob@example.org (Bob Smith)\r\n",
            FROM,
            b'(("Bob Smith" NIL "bob" "example.org"))',
        ),
        # repeated address fields are one list
        (
            b"To: a@example.org\r\nTo: B <b@example.org>\r\n",
            TO,
            b'((NIL NIL "a" "example.org")("B" NIL "b" "example.org"))',
        ),
        (b'From: "john..doe"@example.org\r\n', FROM, b'((NIL NIL "john..doe" "example.org"))'),
        (b"From: a@example.org garbage\r\n", FROM, b'((NIL NIL "a" "example.org"))'),
    ],
)
def test_envelope_addresses(headers, index, expected):
    assert env_field(headers, index) == expected


def test_envelope_strings_on_one_line():
    headers = (
        b"Date: Mon, 5 Jan 2026\r\n 10:00:00 +0100\r\nSubject:  a\r\n\tb   c  \r\n"
        b"Message-ID: <m@x>\r\n\t(c)\r\nSubject: last one counts\r\n"
    )
    assert env_field(headers, 0) == b'"Mon, 5 Jan 2026 10:00:00 +0100"'
    assert env_field(headers, 1) == b'"last one counts"'
    assert env_field(headers, 9) == b'"<m@x>\t(c)"'
    assert env_field(b"Subject:  a\r\n\tb   c  \r\n", 1) == b'"a b c"'
