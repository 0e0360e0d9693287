"""Dovecot reads the Maildir++ the store writes, and the store follows Dovecot's changes.

Dovecot's own `imap` binary is run in PREAUTH mode on the test Maildir (no daemon, no
network); it keeps its index files outside the Maildir so only the shared files meet.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.store import Change, Store

DOVECOT_IMAP = Path("/usr/lib/dovecot/imap")
ALICE = "alice@example.org"


@pytest.fixture
def work_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, or when running as root a directory the unprivileged user can reach
    (Dovecot refuses to serve mail as root, and pytest's base directory is private)."""
    if os.getuid() != 0:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="store-dovecot-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def dovecot(tmp_path: Path, maildir: Path, commands: list[str]) -> str:
    """Run one Dovecot IMAP session over `maildir` and return everything it said."""
    assert DOVECOT_IMAP.exists(), "Dovecot's imap binary (Debian: dovecot-imapd) is needed"
    user = pwd.getpwuid(os.getuid())
    if os.getuid() == 0:
        user = pwd.getpwnam("nobody")
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(tmp_path)], check=True)
    conf = tmp_path / "dovecot.conf"
    conf.write_text(
        f"mail_location = maildir:{maildir}:LAYOUT=maildir++:INDEX={tmp_path / 'dovecot-index'}\n"
        "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
        f"mail_uid = {user.pw_uid}\nmail_gid = {user.pw_gid}\n"
        "first_valid_uid = 1\nfirst_valid_gid = 1\n"
        f"log_path = {tmp_path / 'dovecot.log'}\n"
    )
    script = "".join(f"t{n} {c}\r\n" for n, c in enumerate([*commands, "LOGOUT"]))
    env = {"USER": user.pw_name, "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [str(DOVECOT_IMAP), "-c", str(conf)],
        input=script.encode(),
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
    )
    out = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0 and "* PREAUTH" in out, out + done.stderr.decode()
    return out


def test_dovecot_reads_folders_flags_and_messages(work_dir):
    tmp_path = work_dir
    store = Store(tmp_path / "maildirs")
    store.deliver([ALICE], b"Subject: first\r\n\r\none\r\n")
    store.deliver(
        [ALICE], b"Subject: second\r\n\r\ntwo\r\n", flags=["\\Seen", "\\Flagged", "$Label1"]
    )
    mailbox = store.mailbox(ALICE)
    mailbox.create_folder("Archive/2026")
    mailbox.create_folder("Été")
    mailbox.subscribe("Archive/2026")
    mailbox.folder("Été").append(b"Subject: third\r\n\r\nthree\r\n", flags=["\\Answered"])
    out = dovecot(
        tmp_path,
        mailbox.path,
        [
            'LIST "" "*"',
            'LSUB "" "*"',
            "SELECT INBOX",
            "FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
            'SELECT "&AMk-t&AOk-"',
            "FETCH 1 (FLAGS BODY.PEEK[TEXT])",
        ],
    )
    listed = set(re.findall(r'^\* LIST \([^)]*\) "/" (.+?)\r$', out, re.M))
    assert listed == {
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Archive/2026",
        "&AMk-t&AOk-",
    }
    assert '* LSUB () "/" Archive/2026\r' in out
    assert "* 2 EXISTS" in out
    size = len(b"Subject: first\r\n\r\none\r\n")
    assert re.search(
        rf"\* 1 FETCH \(FLAGS \(\\Recent\) RFC822.SIZE {size} .*\r\nSubject: first", out
    )
    assert re.search(r"\* 2 FETCH \(FLAGS \(\\Flagged \\Seen \\Recent \$Label1\)", out)
    assert re.search(r"\* 1 FETCH \(FLAGS \(\\Answered \\Recent\) BODY\[TEXT\] \{7\}\r\nthree", out)


def test_store_follows_flag_changes_and_expunges_made_by_dovecot(work_dir):
    tmp_path = work_dir
    store = Store(tmp_path / "maildirs")
    for n in range(3):
        store.deliver([ALICE], b"Subject: m%d\r\n\r\nbody\r\n" % n)
    folder = store.mailbox(ALICE).folder("INBOX")
    keys = [m.key for m in folder.messages()]
    heard: list[Change] = []
    store.watch(ALICE, "INBOX", heard.append)
    flags = ["SELECT INBOX", "STORE 1 +FLAGS (\\Seen Urgent)", "STORE 2 +FLAGS (\\Deleted)"]
    dovecot(tmp_path, folder.path, flags)
    # A second session: Dovecot may run a pipelined EXPUNGE before the STORE has finished.
    dovecot(tmp_path, folder.path, ["SELECT INBOX", "EXPUNGE"])
    changes = folder.sync()
    assert Change("expunge", "INBOX", (2,)) in changes
    assert any(c.kind == "flags" and 1 in c.uids for c in changes)
    assert heard == changes
    infos = folder.messages()
    assert [(m.uid, m.key) for m in infos] == [(1, keys[0]), (3, keys[2])]
    assert infos[0].flags == {"\\Seen", "Urgent"}
    assert folder.read(3) == b"Subject: m2\r\n\r\nbody\r\n"
