"""Moving between Dovecot and us without mail clients downloading everything again.

A real Dovecot (tests/dovecot.py) numbers the old Maildir as an IMAP server does; `migrate
import` must keep its UIDVALIDITY and UIDs, which our IMAP server then shows. The other way,
`mailsuite export` writes a Maildir that Dovecot serves with our UIDs.
"""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import DEFAULT_PASSWORD
from .dovecot import PASSWORD, Dovecot, message
from .test_migrate import SINCE

OLD_DATE = "Tue, 05 Sep 2006 10:00:00 +0200"


def dated(n: int, mid: str) -> bytes:
    """A message of the old system (September 2006, after `--since`)."""
    data = message(n, message_id=mid)
    return data.replace(b"Mon, 23 Nov 2026 12:00:00 +0000", OLD_DATE.encode())


@pytest.fixture
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=("alice", "carol")).start()
    yield server
    server.stop()


def uids_of(host_port: tuple[str, int], user: str, password: str, folder: str) -> dict[str, Any]:
    """UIDVALIDITY, UIDNEXT and Message-ID -> UID of a folder, as an IMAP client sees them."""
    imap = imaplib.IMAP4(*host_port)
    try:
        imap.login(user, password)
        typ, _ = imap.select(f'"{folder}"', readonly=True)
        assert typ == "OK", folder
        validity = int(imap.response("UIDVALIDITY")[1][0])
        uidnext = int(imap.response("UIDNEXT")[1][0])
        typ, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found = {}
        for part in data:
            if isinstance(part, tuple):
                uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
                mid = re.search(rb"<[^>]+>", part[1]).group(0).decode()
                found[mid] = uid
        return {"uidvalidity": validity, "uidnext": uidnext, "uids": found}
    finally:
        imap.logout()


def test_import_from_a_dovecot_maildir_keeps_uidvalidity_and_uids(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    """Clients that knew the old server find the same UIDVALIDITY and UIDs here, gaps and
    all; what Dovecot never numbered gets UIDs above all of its own."""
    suite = suite_factory()
    suite.add_user("anna@example.test")
    for n in range(1, 6):
        dovecot.put("alice", dated(n, f"<inbox-{n}@old.example>"))
    for n in range(1, 3):
        dovecot.put("alice", dated(n, f"<work-{n}@old.example>"), folder="Work")
    old = ("127.0.0.1", dovecot.ports["imap"])
    imap = imaplib.IMAP4(*old)
    imap.login("alice", PASSWORD)
    imap.select("INBOX")
    imap.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    imap.expunge()  # UID 3 is gone: a gap the import must keep
    imap.logout()
    before = {f: uids_of(old, "alice", PASSWORD, f) for f in ("INBOX", "Work")}
    assert sorted(before["INBOX"]["uids"].values()) == [1, 2, 4, 5]
    dovecot.put("alice", dated(6, "<inbox-6@old.example>"))  # arrived after Dovecot looked
    source = dovecot.maildir("alice")

    run = suite.cli(
        "migrate", "import", "anna@example.test", "--from", str(source), "--since", SINCE
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "copied 7," in run.stdout
    assert "UIDs kept in INBOX, Work: mail clients keep what they downloaded" in run.stdout
    assert "(1 messages got new UIDs)" in run.stdout
    ours = ("127.0.0.1", suite.port("imap"))
    for folder in ("INBOX", "Work"):
        now = uids_of(ours, "anna@example.test", DEFAULT_PASSWORD, folder)
        assert now["uidvalidity"] == before[folder]["uidvalidity"], folder
        kept = {mid: now["uids"][mid] for mid in before[folder]["uids"]}
        assert kept == before[folder]["uids"], folder
        assert now["uidnext"] >= before[folder]["uidnext"]
    inbox = uids_of(ours, "anna@example.test", DEFAULT_PASSWORD, "INBOX")
    assert inbox["uids"]["<inbox-6@old.example>"] >= before["INBOX"]["uidnext"]

    again = suite.cli(
        "migrate", "import", "anna@example.test", "--from", str(source), "--since", SINCE
    )
    assert "copied 0, skipped 7 as duplicates" in again.stdout, again.stdout
    assert uids_of(ours, "anna@example.test", DEFAULT_PASSWORD, "INBOX") == inbox


def test_a_mailbox_that_already_holds_mail_is_numbered_afresh_and_says_so(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    suite = suite_factory(start=False)
    suite.add_user("busy@example.test")
    from mailsuite.store import Store

    Store(suite.config["paths"]["maildirs"]).deliver(["busy@example.test"], dated(99, "<new@x>"))
    dovecot.put("alice", dated(1, "<inbox-1@old.example>"))
    imap = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"])
    imap.login("alice", PASSWORD)
    imap.select("INBOX")
    imap.logout()

    run = suite.cli(
        "migrate", "import", "busy@example.test", "--from", str(dovecot.maildir("alice")),
        "--since", SINCE,
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert "copied 1," in run.stdout
    assert "new UIDs in INBOX: it already held mail here" in run.stdout


def test_an_exported_mailbox_is_served_by_dovecot_with_our_uids(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    suite = suite_factory()
    suite.add_user("anna@example.test")
    from mailsuite.store import Store

    store = Store(suite.config["paths"]["maildirs"])
    for n in range(1, 6):
        store.deliver(["anna@example.test"], dated(n, f"<ours-{n}@example.test>"))
    mailbox = store.mailbox("anna@example.test")
    inbox = mailbox.folder("INBOX")
    inbox.expunge([2])
    inbox.store_flags([4], ["\\Seen", "$Important"], "add")
    mailbox.create_folder("Projekty/Ważne")
    mailbox.folder("Projekty/Ważne").append(dated(7, "<ours-7@example.test>"), uid=31)
    ours = ("127.0.0.1", suite.port("imap"))
    before = uids_of(ours, "anna@example.test", DEFAULT_PASSWORD, "INBOX")
    dest = dovecot.maildir("carol")

    done = suite.cli("export", "anna@example.test", "--to", str(dest), "--copy")

    assert done.returncode == 0, done.stderr
    assert (
        "INBOX: 4 messages, UIDVALIDITY" in done.stdout
        and "0 files linked, 5 copied" in done.stdout
    )
    if os.getuid() == 0:  # the old server's mail belongs to its own user
        owner = f"{dovecot.owner[0]}:{dovecot.owner[1]}"
        subprocess.run(["chown", "-R", owner, str(dest)], check=True)
    old = ("127.0.0.1", dovecot.ports["imap"])
    after = uids_of(old, "carol", PASSWORD, "INBOX")
    assert after == before
    moved = uids_of(old, "carol", PASSWORD, "Projekty.Wa&AXw-ne")  # Dovecot's "." separator
    assert moved["uids"] == {"<ours-7@example.test>": 31}
    imap = imaplib.IMAP4(*old)
    imap.login("carol", PASSWORD)
    imap.select("INBOX", readonly=True)
    _, data = imap.uid("FETCH", "4", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"$Important" in data[0]
    imap.logout()
    assert store.mailbox("anna@example.test").folder("INBOX").messages()  # ours untouched

    again = suite.cli("export", "anna@example.test", "--to", str(dest))
    assert again.returncode == 1 and "is not empty" in again.stderr
