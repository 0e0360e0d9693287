"""SELECT of a folder whose Maildir another program replaced: the client is told the new
UIDVALIDITY and the command completes (RFC 3501 2.3.1.1, 6.3.1), so it can resync."""

from __future__ import annotations

import re
import shutil
import time
from itertools import count
from pathlib import Path

import pytest

from mailsuite.store import Store
from tests.test_imap_server import PASSWORD, Raw, deliver, reply, simple

_users = count(1)
_UIDVALIDITY = re.compile(rb"\* OK \[UIDVALIDITY (\d+)\]")


@pytest.fixture
def store(suite) -> Store:
    return Store(suite.config["paths"]["maildirs"])


@pytest.fixture
def user(suite) -> str:
    address = f"replaced{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    return address


def uidvalidity(lines: list[bytes]) -> int:
    found = [int(m.group(1)) for ln in lines if (m := _UIDVALIDITY.match(ln))]
    assert len(found) == 1, lines
    return found[0]


def exists(lines: list[bytes]) -> int:
    found = [int(ln.split()[1]) for ln in lines if ln.endswith(b" EXISTS\r\n")]
    assert len(found) == 1, lines
    return found[0]


def refill(folder_dir: Path, subjects: list[str], *, whole: bool) -> None:
    """What another program does: remove the folder's messages (or the whole folder
    directory, index and all) and write other messages under new names."""
    if whole:
        shutil.rmtree(folder_dir)
        folder_dir.mkdir()
        (folder_dir / "maildirfolder").touch()
    else:
        shutil.rmtree(folder_dir / "cur")
        shutil.rmtree(folder_dir / "new")
    for sub in ("cur", "new", "tmp"):
        (folder_dir / sub).mkdir(exist_ok=True)
    now = int(time.time())
    for i, subject in enumerate(subjects):
        data = f"From: other@example.org\r\nSubject: {subject}\r\n\r\nrefilled {i}\r\n".encode()
        (folder_dir / "cur" / f"{now}.R{i}x.otherhost:2,S").write_bytes(data)


def select_ok(c: Raw, folder: str) -> list[bytes]:
    lines = c.cmd(f"SELECT {folder}")
    assert not any(ln.startswith(b"* BYE") for ln in lines), lines
    assert reply(lines).startswith(b"OK [READ-WRITE]"), lines
    return lines


@pytest.mark.parametrize("whole", [False, True], ids=["cur-and-new", "whole-folder"])
def test_select_after_the_maildir_was_replaced_completes_with_the_new_uidvalidity(
    suite, store, user, whole
):
    """Two sessions had the folder selected when another program replaced its messages;
    each SELECTs it again, and so does a third that logs in afterwards: every one gets the
    folder's UIDVALIDITY (a new one when the index went too), the new message count and a
    tagged OK, and FETCH serves the new messages under UIDs the old ones never had."""
    store.mailbox(user).create_folder("Projects")
    deliver(store, user, simple(1), simple(2), simple(3), folder="Projects")
    sessions = [Raw(suite.port("imap")), Raw(suite.port("imap"))]
    for c in sessions:
        c.login(user, PASSWORD)
        before = select_ok(c, "Projects")
        assert exists(before) == 3
        c.ok("FETCH 1:* (FLAGS)")

    refill(suite.maildir(user) / ".Projects", ["new one", "new two"], whole=whole)

    sessions.append(Raw(suite.port("imap")))
    sessions[-1].login(user, PASSWORD)
    for c in sessions:
        after = select_ok(c, "Projects")
        assert exists(after) == 2
        lines = c.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        text = b"".join(lines)
        assert b"Subject: new one" in text and b"Subject: new two" in text
        uids = [int(u) for u in re.findall(rb"UID (\d+)", text)]
        # RFC 3501 2.3.1.1: the old UIDs never name the new messages
        assert uidvalidity(after) != uidvalidity(before) or min(uids) > 3
        if whole:
            assert uidvalidity(after) != uidvalidity(before)  # the index went with the files
        c.ok("NOOP")  # still in the session: no late BYE
        c.close()


def test_examine_after_the_inbox_index_and_messages_were_replaced_completes(suite, store, user):
    """EXAMINE of an INBOX whose messages and index were replaced while a session had it
    selected completes with a tagged OK and the new UIDVALIDITY."""
    deliver(store, user, simple(1), simple(2))
    c = Raw(suite.port("imap"))
    c.login(user, PASSWORD)
    before = select_ok(c, "INBOX")
    home = suite.maildir(user)
    for leftover in home.glob("mailsuite-index.sqlite*"):
        leftover.unlink()
    (home / "mailsuite-uids").unlink(missing_ok=True)
    refill(home, ["replacement"], whole=False)
    lines = c.cmd("EXAMINE INBOX")
    assert not any(ln.startswith(b"* BYE") for ln in lines), lines
    assert reply(lines).startswith(b"OK [READ-ONLY]"), lines
    assert exists(lines) == 1
    assert uidvalidity(lines) != uidvalidity(before)
    assert b"refilled 0" in b"".join(c.ok("FETCH 1 BODY.PEEK[TEXT]"))
    c.close()
