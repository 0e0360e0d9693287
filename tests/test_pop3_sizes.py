"""POP3 sizes without reading the mail: the wire size travels in the file name (`,W=`).

RFC 1939 5: LIST and STAT give a message's size as RETR sends it (CRLF line ends, before
dot-stuffing). The store writes it as W= into every file name it creates (Dovecot's
Maildir++ field), so the first login on a mailbox reads no message file; /metrics counts
every file the store reads, which is how these tests see it. Files other software drops
into the Maildir without W= are read once and their size kept.
"""

from __future__ import annotations

import re
import smtplib
import time
from itertools import count
from pathlib import Path

from mailsuite.pop3.wire import to_crlf
from mailsuite.store.maildir import wire_from_key, wire_size

from .conftest import Suite
from .test_clients import fetch
from .test_pop3 import PASSWORD, Raw

_users = count(1)


def new_user(suite: Suite) -> str:
    address = f"sizes{next(_users)}-{time.monotonic_ns()}@example.test"
    suite.add_user(address, PASSWORD)
    return address


def reads(suite: Suite) -> int:
    """Message files the server's store has read so far, from /metrics."""
    status, body, _ = fetch(suite, "/metrics")
    assert status == 200
    found = re.search(
        r'^mailsuite_events_total\{component="store",event="message_reads"\} (\S+)$',
        body.decode(),
        re.MULTILINE,
    )
    return int(float(found.group(1))) if found else 0


def send(suite: Suite, address: str, body: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10) as client:
        client.sendmail("sender@remote.test", [address], body)


def pop3_login(suite: Suite, address: str) -> Raw:
    raw = Raw(suite.port("pop3"))
    assert raw.cmd(f"USER {address}").startswith(b"+OK")
    assert raw.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    return raw


def listing(raw: Raw) -> dict[int, int]:
    assert raw.cmd("LIST").startswith(b"+OK")
    return {int(n): int(s) for n, s in (line.split() for line in raw.multi())}


def retr_octets(raw: Raw, number: int) -> int:
    """Octets of RETR's message as sent, line ends included, without the dot-stuffing and
    the terminating line (what RFC 1939 5 says LIST counts)."""
    assert raw.cmd(f"RETR {number}").startswith(b"+OK")
    return sum(len(line[1:] if line.startswith(b"..") else line) for line in raw.multi())


def test_smtp_delivery_writes_the_wire_size_into_the_name(suite: Suite) -> None:
    address = new_user(suite)
    send(suite, address, b"Subject: sized\r\n\r\n.dotted line\r\nlast line\r\n")
    (path,) = (Path(suite.maildir(address)) / "new").iterdir()
    wire = wire_from_key(path.name.partition(":")[0])
    assert re.search(r",S=\d+,W=\d+$", path.name), path.name
    assert wire == wire_size(path.read_bytes()) == path.stat().st_size  # DATA is CRLF already
    raw = pop3_login(suite, address)
    assert listing(raw) == {1: wire}
    assert retr_octets(raw, 1) == wire
    raw.cmd("QUIT")


def test_first_login_reads_no_message_file(suite: Suite) -> None:
    address = new_user(suite)
    bodies = [b"Subject: m%d\r\n\r\n" % i + b"body line\r\n" * i for i in range(1, 6)]
    for body in bodies:
        send(suite, address, body)
    before = reads(suite)
    raw = pop3_login(suite, address)
    assert raw.cmd("STAT").startswith(b"+OK 5 ")
    sizes = listing(raw)
    assert raw.cmd("UIDL").startswith(b"+OK") and len(raw.multi()) == 5
    assert reads(suite) == before  # login, STAT, LIST and UIDL opened no message file
    assert [retr_octets(raw, n) for n in sizes] == list(sizes.values())
    assert reads(suite) >= before + 5  # the counter does count reads: RETR is one
    raw.cmd("QUIT")


def test_foreign_files_without_w_get_the_octets_retr_sends(suite: Suite) -> None:
    """Other software may store bare LF, bare CR or no final line end, and no W=; LIST still
    equals RETR, and the size is learned once: a second login reads nothing."""
    address = new_user(suite)
    send(suite, address, b"Subject: ours\r\n\r\nbody\r\n")
    new = Path(suite.maildir(address)) / "new"
    foreign = [
        b"Subject: lf\n\n.dot\nline two\n",
        b"Subject: cr\r\rbody\r",
        b"Subject: mixed\r\n\nno final line end",
    ]
    for i, body in enumerate(foreign):
        name = f"{1_700_000_000 + i}.M{i}P99Q{i}.other,S={len(body)}"
        (new / name).write_bytes(body)
        assert wire_from_key(name) is None
    raw = pop3_login(suite, address)
    sizes = listing(raw)
    assert len(sizes) == 4
    assert [retr_octets(raw, n) for n in sizes] == list(sizes.values())
    expected = [len(to_crlf(body)) for body in foreign]  # every line end CRLF on the wire
    assert sorted(list(sizes.values())[1:]) == sorted(expected)  # 1 is ours, by SMTP
    assert expected != [len(body) for body in foreign]
    raw.cmd("QUIT")
    before = reads(suite)
    raw = pop3_login(suite, address)
    assert listing(raw) == sizes
    assert reads(suite) == before
    raw.cmd("QUIT")
