"""A read never writes, and changes arrive as notices.

SELECT, EXAMINE, FETCH, SEARCH, STATUS and NOOP commit nothing to a folder's index and make no
fsync (`\\Recent` lives in the server's memory); changes made by another process reach a
session at its next command and an IDLE session within a second, through the folder's change
counter; files other Maildir software adds are found by NOOP and IDLE within their look
intervals; flag changes are fsynced in groups, not one by one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import pytest

from mailsuite.imap.server import POLL_INTERVAL, PUSH_INTERVAL
from mailsuite.imap.session import OUTSIDE_CHECK_INTERVAL
from mailsuite.store import Store
from mailsuite.store.maildir import INDEX_FILE
from tests.test_imap_server import PASSWORD, Raw, deliver, simple

_users = count(1)
_DIRTY_WINDOW = 2.1  # a scan of young directories asks for one more look after 2 s (folder.py)


@pytest.fixture
def store(suite) -> Store:
    return Store(suite.config["paths"]["maildirs"])


@pytest.fixture
def user(suite) -> str:
    address = f"reads{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    return address


def session(suite, user: str) -> Raw:
    c = Raw(suite.port("imap"))
    c.login(user, PASSWORD)
    return c


def _tree(pid: int) -> list[int]:
    """The server process and its worker processes, for strace to attach to (with -f it
    follows every thread of each)."""
    found = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


@contextmanager
def fsyncs_counted(suite) -> Iterator[list[int]]:
    """Count the fsync and fdatasync calls the server makes inside the block (strace)."""
    # scripts/test.sh installs strace: without it this proof is missing, so the test fails
    assert shutil.which("strace") is not None, "strace is not installed (scripts/test.sh)"
    args = [a for tid in _tree(suite.proc.pid) for a in ("-p", str(tid))]
    tracer = subprocess.Popen(
        ["strace", "-qq", "-f", "-c", "-e", "trace=fsync,fdatasync", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # attaching takes a moment
    assert tracer.poll() is None, f"strace cannot attach: {tracer.stderr.read().decode()[:200]}"
    counted = [0]
    try:
        yield counted
    finally:
        tracer.send_signal(signal.SIGINT)
        _, err = tracer.communicate(timeout=30)
    for line in err.decode().splitlines():
        words = line.split()
        if len(words) >= 5 and words[-1] in ("fsync", "fdatasync"):
            counted[0] += int(words[3])


def index_state(folder_dir: Path) -> tuple[tuple[int, int] | None, int]:
    """What a commit would change on disk: the WAL's size and mtime, the index file's mtime."""
    wal = folder_dir / f"{INDEX_FILE}-wal"
    try:
        st = wal.stat()
        wal_state: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        wal_state = None
    return wal_state, (folder_dir / INDEX_FILE).stat().st_mtime_ns


def test_reads_commit_nothing_and_make_no_fsync(suite, user, store):
    """A hundred rounds of SELECT, EXAMINE, FETCH, SEARCH, STATUS and NOOP from two sessions:
    the index's data_version, its WAL and its file stay as they were, and the server makes
    not one fsync. (RFC 3501 2.3.2: `\\Recent` still goes to one session only.)"""
    deliver(store, user, *(simple(i) for i in range(1, 6)))
    home = Path(suite.maildir(user))
    time.sleep(_DIRTY_WINDOW)  # the one look at young directories the first scan asked for
    a, b = session(suite, user), session(suite, user)
    assert b"* 5 RECENT\r\n" in a.ok("SELECT INBOX")
    assert b"* 0 RECENT\r\n" in b.ok("SELECT INBOX")  # RFC 3501 2.3.2: one session has it
    for c in (a, b):  # the rendered ENVELOPEs are cached once (not fsynced); then nothing
        c.ok("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    watcher = sqlite3.connect(home / INDEX_FILE)
    version = watcher.execute("PRAGMA data_version").fetchone()[0]
    before = index_state(home)
    with fsyncs_counted(suite) as syncs:
        for n in range(100):
            c = a if n % 2 else b
            c.ok("SELECT INBOX")
            c.ok("EXAMINE INBOX")
            c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")
            c.ok("FETCH 2 BODY.PEEK[]")
            c.ok("UID SEARCH UNSEEN")
            c.ok("STATUS INBOX (MESSAGES RECENT UNSEEN UIDNEXT)")
            c.ok("NOOP")
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version
    assert index_state(home) == before
    assert syncs[0] == 0


def test_recent_goes_to_the_first_session_that_hears_of_a_new_message(suite, user, store):
    """RFC 3501 2.3.2: a message delivered while two sessions have the folder open is
    \\Recent in the first one to be told, and in no other."""
    deliver(store, user, simple(1))
    a, b = session(suite, user), session(suite, user)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    deliver(store, user, simple(2))  # another process: seen through the change counter
    first = a.ok("NOOP")  # both messages are \\Recent here for the whole session
    assert b"* 2 EXISTS\r\n" in first and b"* 2 RECENT\r\n" in first
    second = b.ok("NOOP")
    assert b"* 2 EXISTS\r\n" in second and b"* 0 RECENT\r\n" in second
    assert b"\\Recent" in b"".join(a.ok("FETCH 2 FLAGS"))
    assert b"\\Recent" not in b"".join(b.ok("FETCH 2 FLAGS"))


def test_another_processes_flag_change_reaches_the_next_command(suite, user, store):
    """Not only NOOP: the change counter tells any command that another process changed the
    folder, and a FETCH may carry the new flags (RFC 3501 7.4.1 holds back only EXPUNGE)."""
    deliver(store, user, simple(1), simple(2))
    c = session(suite, user)
    c.ok("SELECT INBOX")
    store.mailbox(user).folder("INBOX").store_flags([2], ["\\Answered"], "add")
    lines = c.ok("FETCH 1 UID")
    assert any(re.match(rb"\* 2 FETCH \(FLAGS \(\\Answered", ln) for ln in lines), lines
    store.mailbox(user).folder("INBOX").expunge([1])
    lines = c.ok("FETCH 2 UID")
    assert not any(b"EXPUNGE" in ln for ln in lines)
    assert b"* 1 EXPUNGE\r\n" in c.ok("NOOP")


def test_idle_hears_of_another_processes_delivery_within_a_second(suite, user, store):
    """A delivery by another process (the CLI, a second worker) reaches an IDLE session
    within a second: the poller reads the change counter every PUSH_INTERVAL."""
    assert PUSH_INTERVAL < 0.5
    c = session(suite, user)
    c.ok("SELECT INBOX")
    waits = []
    for n in range(1, 4):
        c.send(b"i IDLE\r\n")
        assert c.line().startswith(b"+ ")
        started = time.monotonic()
        deliver(store, user, simple(n))
        assert c.line() == b"* %d EXISTS\r\n" % n
        waits.append(time.monotonic() - started)
        c.line()  # RECENT
        c.send(b"DONE\r\n")
        assert c.line().startswith(b"i OK")
    assert max(waits) < 1.0, waits


def test_files_other_software_adds_are_found_by_noop_and_idle(suite, user, store):
    """Other Maildir software bumps no counter: NOOP looks at new/ and cur/ when nobody has
    for OUTSIDE_CHECK_INTERVAL, the IDLE poller every POLL_INTERVAL."""
    deliver(store, user, simple(1))
    home = Path(suite.maildir(user))
    c = session(suite, user)
    c.ok("SELECT INBOX")
    (home / "new" / "1700000000.other1.host").write_bytes(simple(2, "other"))
    started = time.monotonic()
    while b"* 2 EXISTS\r\n" not in c.ok("NOOP"):
        assert time.monotonic() - started < OUTSIDE_CHECK_INTERVAL + 2
        time.sleep(0.05)
    c.send(b"i IDLE\r\n")
    assert c.line().startswith(b"+ ")
    (home / "new" / "1700000001.other2.host").write_bytes(simple(3, "other"))
    started = time.monotonic()
    assert c.line() == b"* 3 EXISTS\r\n"
    assert time.monotonic() - started < POLL_INTERVAL + 2
    c.line()
    c.send(b"DONE\r\n")
    assert c.line().startswith(b"i OK")


def test_flag_changes_are_fsynced_in_groups(suite, user, store):
    """Fifty STOREs in a row: each is committed (another process sees it at once) but they
    share their fsyncs, a few per FLAG_FLUSH_DELAY instead of one or more per command."""
    deliver(store, user, *(simple(i) for i in range(1, 11)))
    c = session(suite, user)
    c.ok("SELECT INBOX")
    with fsyncs_counted(suite) as syncs:
        for n in range(50):
            c.ok(f"STORE {n % 10 + 1} {'+' if n % 20 < 10 else '-'}FLAGS.SILENT (\\Flagged)")
        time.sleep(1.0)  # the group flush
    outside = Store(suite.config["paths"]["maildirs"]).mailbox(user).folder("INBOX")
    assert [m.uid for m in outside.messages() if "\\Flagged" in m.flags] == list(range(1, 11))
    assert 0 < syncs[0] <= 15, syncs
