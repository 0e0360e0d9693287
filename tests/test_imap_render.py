"""Response rendering: ENVELOPE, BODYSTRUCTURE and sections cut byte-exact from the original."""

from __future__ import annotations

import datetime as dt

import pytest

from mailsuite.imap.message import parse, section_bytes
from mailsuite.imap.parser import parse_command
from mailsuite.imap.render import body_structure, envelope, fetch_line, internal_date, string

MIXED = (
    b'From: "A B" <a@example.org>\r\n'
    b"To: c@example.org, D <d@x.y>\r\n"
    b"Subject: =?utf-8?q?h=C3=A9?=\r\n"
    b"X-Long: one\r\n two\r\n"
    b"received: first\r\n"
    b"Received: second\r\n"
    b"Message-ID: <1@x>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Language: pl\r\n"
    b"\r\n"
    b"hello\r\nworld\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b'Content-Disposition: attachment; filename="m.eml"\r\n'
    b"\r\n"
    b"Subject: inner\r\nFrom: e@f\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
    b"--YY\r\n\r\nplain\r\n--YY\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--YY--\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)

SIMPLE = b"Subject: s\nFrom: x@y\n\nline1\nline2\n"


@pytest.mark.parametrize(
    "path, text, fields, expected",
    [
        ((), None, (), MIXED),
        ((1,), None, (), b"hello\r\nworld"),
        (
            (1,),
            "MIME",
            (),
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Language: pl\r\n\r\n",
        ),
        (
            (2,),
            "HEADER",
            (),
            b"Subject: inner\r\nFrom: e@f\r\n"
            b"Content-Type: multipart/alternative; boundary=YY\r\n\r\n",
        ),
        ((2, 1), None, (), b"plain"),
        ((2, 2), None, (), b"<b>x</b>"),
        ((2, 2), "MIME", (), b"Content-Type: text/html\r\n\r\n"),
        ((2,), "HEADER.FIELDS", ("SUBJECT",), b"Subject: inner\r\n\r\n"),
        ((3,), None, (), b""),
        ((1,), "TEXT", (), b""),
        (
            (),
            "HEADER.FIELDS",
            ("X-LONG", "RECEIVED"),
            b"X-Long: one\r\n two\r\nreceived: first\r\nReceived: second\r\n\r\n",
        ),
    ],
)
def test_sections_are_cut_from_the_original_bytes(path, text, fields, expected):
    assert section_bytes(parse(MIXED), path, text, fields) == expected


def test_header_fields_not_keeps_order_and_case_and_ends_with_blank_line():
    out = section_bytes(parse(MIXED), (), "HEADER.FIELDS.NOT", ("RECEIVED", "X-LONG", "TO"))
    assert out.startswith(b'From: "A B" <a@example.org>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n')
    assert b"received" not in out.lower()
    assert out.endswith(b'boundary="XX"\r\n\r\n')


def test_lf_only_message_sections():
    root = parse(SIMPLE)
    assert section_bytes(root, (), "HEADER", ()) == b"Subject: s\nFrom: x@y\n\n"
    assert section_bytes(root, (), "TEXT", ()) == b"line1\nline2\n"
    assert section_bytes(root, (1,), None, ()) == b"line1\nline2\n"
    assert section_bytes(root, (), "HEADER.FIELDS", ("FROM",)) == b"From: x@y\n\r\n"


def test_envelope_keeps_raw_values_and_defaults_sender_to_from():
    """RFC 3501 9: address lists are "(" 1*address ")", with no space between addresses."""
    assert envelope(parse(MIXED)) == (
        b'(NIL "=?utf-8?q?h=C3=A9?=" (("A B" NIL "a" "example.org"))'
        b' (("A B" NIL "a" "example.org"))'
        b' (("A B" NIL "a" "example.org")) ((NIL NIL "c" "example.org")("D" NIL "d" "x.y"))'
        b' NIL NIL NIL "<1@x>")'
    )


def test_bodystructure_of_nested_multipart_with_message_rfc822():
    """Text "hello\r\nworld" before the delimiter is one line: the line break before a delimiter
    is the delimiter's (RFC 2046 5.1.1); languages are always a list, as Dovecot sends."""
    bs = body_structure(parse(MIXED), True)
    assert bs.startswith(
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL ("pl") NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" '
    )
    assert b'("ATTACHMENT" ("FILENAME" "m.eml"))' in bs
    assert b'"ALTERNATIVE" ("BOUNDARY" "YY") NIL NIL NIL)' in bs
    assert bs.endswith(b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL)')
    body = body_structure(parse(MIXED), False)
    assert body.endswith(b' "MIXED")')
    assert b"NIL NIL NIL NIL" not in body.split(b"MESSAGE")[0]


def test_bodystructure_of_simple_message_defaults_to_text_plain_us_ascii():
    assert body_structure(parse(SIMPLE), True) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 2 NIL NIL NIL NIL)'
    )


def test_strings_choose_quoted_or_literal():
    assert string(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert string(b"a\r\nb") == b"{4}\r\na\r\nb"
    assert string("\u00e9") == b"{2}\r\n\xc3\xa9"


def test_internal_date_format():
    when = dt.datetime(2026, 2, 1, 9, 5, 3, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30)))
    assert internal_date(when) == b'"01-Feb-2026 09:05:03 -0330"'


def test_fetch_line_partial_and_peek_labels():
    items = parse_command(
        b"a FETCH 1 (UID FLAGS BODY.PEEK[1]<2.3> BODY[HEADER.FIELDS (to)] RFC822.SIZE)"
    ).fetch
    line = fetch_line(4, items, uid=9, flag_names=["\\Seen"], size=len(MIXED), when=0.0, data=MIXED)
    assert line == (
        b"* 4 FETCH (UID 9 FLAGS (\\Seen) BODY[1]<2> {3}\r\nllo BODY[HEADER.FIELDS (TO)] "
        b"{32}\r\nTo: c@example.org, D <d@x.y>\r\n\r\n RFC822.SIZE %d)\r\n" % len(MIXED)
    )


def test_partial_past_the_end_is_empty():
    items = parse_command(b"a FETCH 1 BODY[]<100000.10>").fetch
    line = fetch_line(1, items, uid=1, flag_names=[], size=1, when=0.0, data=SIMPLE)
    assert line == b"* 1 FETCH (BODY[]<100000> {0}\r\n)\r\n"


def test_malformed_mime_does_not_raise():
    bad = b"Content-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n\r\nno end"
    root = parse(bad)
    assert section_bytes(root, (1,), None, ()) == b"no end"
    assert body_structure(root, True).startswith(b'(("TEXT" "PLAIN"')
    assert body_structure(parse(b""), True).startswith(b'("TEXT" "PLAIN"')
