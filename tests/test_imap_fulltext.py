"""Header fetches and searches from what the store keeps, BODY/TEXT from the full-text
index: the same answers as reading every file, over the real server with imaplib.

RFC 3501 6.4.4: "In all search keys that use strings, a message matches the key if the
string is a substring of the field. The matching is case-insensitive." The store folds
diacritics too (store/fulltext.py says how), so `zolw` finds "żółw".
"""

from __future__ import annotations

import datetime as dt
import imaplib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailsuite.imap.parser import parse_command
from mailsuite.imap.search import search
from mailsuite.store import fulltext
from tests.test_imap_server import PASSWORD, store, user

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
POLISH = [
    "From: =?utf-8?q?Pawe=C5=82?= <pawel@example.org>\r\nTo: ala@example.org\r\n"
    "Subject: =?utf-8?q?=C5=BB=C3=B3=C5=82w_w_ogrodzie?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    "\r\nW ogrodzie mieszka =C5=BC=C3=B3=C5=82w i je sa=C5=82at=C4=99.\r\n",
    "From: ala@example.org\r\nSubject: base64\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: base64\r\n"
    "\r\nWkGv06PGIEfKpkyhIEpBrNE=\r\n",  # "ZAŻÓŁĆ GĘŚLĄ JAŹŃ" in ISO-8859-2
    "From: kot@example.org\r\nSubject: plain\r\n\r\nzolw bez ogonkow, kot i pies\r\n",
    "From: Ala Kowalska <ala@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: raport\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
    "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Raport kwartalny</p>\r\n--zz\r\n"
    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "cmFwb3J0IHNla3JldG55\r\n--zz--\r\n",
]
NEEDLES = ["zolw", "ŻÓŁW", "żółw", "zazolc", "gęślą", "raport", "kot", "ko", "a", "the", ""]
NEEDLES += ["sekretny", "boundary", "example", "<p>", "Content-Type", "x", "subject"]


def _imap(suite, address: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", suite.port("imap"))
    m.login(address, PASSWORD)
    return m


def _uids(m: imaplib.IMAP4, *criteria: str | bytes) -> list[int]:
    if any(isinstance(c, str) and not c.isascii() for c in criteria):
        m.literal = None
        args = [c.encode() if isinstance(c, str) else c for c in criteria]
        *head, last = args
        m.literal = last
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", *head)
    else:
        typ, data = m.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Entry:
    uid: int
    size: int
    internal_date: dt.datetime
    flags: frozenset[str]
    modseq: int = 1


def _slow(program: str, files: dict[int, bytes]) -> list[int]:
    """What reading every file answers: the search with no kept headers and no index."""
    cmd = parse_command(b"a UID SEARCH CHARSET UTF-8 " + program.encode())
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    entries = [_Entry(uid, len(data), when, frozenset()) for uid, data in sorted(files.items())]
    return search(cmd.search, entries, set(), files.__getitem__).uids


def _program(key: str, needle: str) -> str:
    if needle.isascii():
        return f"{key} {_quote(needle)}"
    return f"{key} {{{len(needle.encode())}}}\r\n{needle}"


def _search(m: imaplib.IMAP4, key: str, needle: str) -> list[int]:
    parts = key.split(" ")
    if needle.isascii():
        return _uids(m, *parts, _quote(needle))
    return _uids(m, *parts, needle)


def _fill(m: imaplib.IMAP4, folder: str) -> dict[int, bytes]:
    files: dict[int, bytes] = {}
    messages = [p.read_bytes() for p in CORPUS] + [t.encode() for t in POLISH]
    for data in messages:
        typ, resp = m.append(folder, None, None, data)
        assert typ == "OK", resp
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1))
        files[uid] = data
    return files


@pytest.mark.parametrize("key", ["BODY", "TEXT", "HEADER SUBJECT", "FROM", "TO", "SUBJECT"])
def test_searches_answer_as_reading_every_file_does(suite, user, key):
    """The kept header blocks and the full-text index give exactly what a scan of every
    file gives, on the odd-message corpus and Polish text in several encodings."""
    m = _imap(suite, user)
    files = _fill(m, "INBOX")
    m.select("INBOX")
    for needle in NEEDLES:
        want = _slow(_program(key, needle), files)
        assert _search(m, key, needle) == want, (key, needle)
    m.logout()


def test_polish_diacritics_and_case_are_folded(suite, user):
    """RFC 3501 6.4.4 (case-insensitive substring) with diacritics folded as well."""
    m = _imap(suite, user)
    files = _fill(m, "INBOX")
    by_text = {data.split(b"\r\n\r\n", 1)[-1][:20]: uid for uid, data in files.items()}
    qp = by_text[b"W ogrodzie mieszka ="]
    b64 = by_text[b"WkGv06PGIEfKpkyhIEpB"]
    bare = by_text[b"zolw bez ogonkow, ko"]
    m.select("INBOX")
    for needle in ("zolw", "ŻÓŁW", "Żółw", "żółw"):
        assert _search(m, "BODY", needle) == [qp, bare]
    assert _search(m, "BODY", "zażółć gęślą jaźń") == [b64]
    assert _search(m, "BODY", "ZAZOLC GESLA JAZN") == [b64]
    assert _search(m, "SUBJECT", "zolw w ogrodzie") == [qp]
    assert _search(m, "FROM", "pawel") == [qp]  # the address
    assert _search(m, "FROM", "Paweł") == [qp]  # the decoded name
    assert _search(m, "TEXT", "ogrodzie") == [qp]  # the body, and the decoded subject
    m.logout()


def test_the_index_follows_append_copy_and_expunge(suite, user, store):
    m = _imap(suite, user)
    _fill(m, "INBOX")
    assert m.create("Kopie")[0] == "OK"
    m.select("INBOX")
    assert _uids(m, "BODY", "niepowtarzalny") == []
    m.append("INBOX", None, None, b"Subject: nowy\r\n\r\nniepowtarzalny wyraz\r\n")
    m.noop()
    (new,) = _uids(m, "BODY", "niepowtarzalny")
    assert _uids(m, "TEXT", "nowy") == [new]
    assert m.uid("COPY", str(new), "Kopie")[0] == "OK"
    m.select("Kopie")
    (copied,) = _uids(m, "BODY", "niepowtarzalny")
    m.select("INBOX")
    m.uid("STORE", str(new), "+FLAGS", "(\\Deleted)")
    assert m.expunge()[0] == "OK"
    # the expunged message left the index itself at once, not just the answers
    index = fulltext.FullText(store.mailbox(user).folder("INBOX").path)
    assert new not in index.uids()
    assert index.uids()  # the others are there
    assert _uids(m, "BODY", "niepowtarzalny") == []
    archived = fulltext.FullText(store.mailbox(user).folder("Kopie").path)
    assert copied in archived.uids()
    m.logout()


def test_header_fetches_never_read_the_message_file(suite, user, store):
    """Once delivered, a message's header fields come from the index: replacing the file's
    bytes on disk (which Maildir never does) does not change what FETCH answers for them,
    while BODY[] shows the file."""
    m = _imap(suite, user)
    m.append(
        "INBOX", None, None, b"Subject: kept\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\nx\r\n"
    )
    folder = store.mailbox(user).folder("INBOX")
    (path,) = [p for sub in ("cur", "new") for p in (folder.path / sub).iterdir()]
    path.write_bytes(b"Subject: changed\r\nDate: Tue, 6 Jan 2026 10:00:00 +0000\r\n\r\ny\r\n")
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])")
    assert typ == "OK"
    assert data[0][1] == b"Subject: kept\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\n"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
    assert b"kept" in data[0][1]
    assert _uids(m, "SUBJECT", "kept") == [1]
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert b"changed" in data[0][1]  # the file was indeed replaced
    m.logout()


def test_search_of_a_folder_whose_index_is_still_building(suite, user, store):
    """Messages another program put into the Maildir: SEARCH answers at once (by reading
    the files) while the index is built in the background, then from the index, the same."""
    count = fulltext.INLINE_LIMIT * 3
    folder = store.mailbox(user).folder("INBOX")
    files = {}
    for n in range(count):
        body = f"wiadomość {n} {'żółw' if n % 7 == 0 else 'kot'}"
        data = f"From: a{n}@example.org\r\nSubject: s{n}\r\n\r\n{body}\r\n".encode()
        (folder.path / "cur" / f"{1700000000 + n}.M{n}P1.test:2,S").write_bytes(data)
        files[n] = data
    m = _imap(suite, user)
    m.select("INBOX")
    started = time.monotonic()
    first = _uids(m, "BODY", "zolw")
    assert len(first) == len(range(0, count, 7))
    index = fulltext.FullText(folder.path)
    while index.state().get("through", 0) < max(_uids(m, "ALL")):
        assert time.monotonic() - started < 120, "the background build did not finish"
        time.sleep(0.2)
    assert _uids(m, "BODY", "zolw") == first
    assert _uids(m, "TEXT", "s14") == [u for u in _uids(m, "SUBJECT", "s14")]
    m.logout()
