"""`mailsuite migrate import` from remote accounts: Dovecot over IMAP and POP3.

Dovecot runs from its own config in a temporary directory (`dovecot -F -c`), with a
passwd-file and loopback ports; nothing under /etc is read or written. Its mail is a Maildir
the test fills with the stdlib `mailbox` module before Dovecot starts.
"""

from __future__ import annotations

import hashlib
import imaplib
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.store import Store
from tests.conftest import Suite
from tests.test_migrate import SINCE, message_ids, msg, stored

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"  # scripts/test.sh installs it
PASSWORD = "Old-Pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """A private Dovecot (IMAP and POP3, plaintext on loopback) serving one Maildir per user."""

    def __init__(self) -> None:
        # Dovecot's unprivileged processes must reach these files, so the tree lives in a
        # world-traversable directory of its own rather than under pytest's private tmp.
        self.root = Path(tempfile.mkdtemp(prefix="mailsuite-dovecot-"))
        self.root.chmod(0o755)
        self.imap_port = free_port()
        self.pop3_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            # Dovecot never lets mail processes run as root; use its own system user.
            self.mail_user = pwd.getpwnam("dovecot")
            internal = "dovecot"
            login = "dovenull"
        else:
            self.mail_user = pwd.getpwuid(os.geteuid())
            internal = login = self.mail_user.pw_name
        self.users: list[str] = []
        conf = f"""
protocols = imap pop3
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {self.mail_user.pw_uid}
last_valid_uid = {self.mail_user.pw_uid}
mail_location = maildir:{self.root}/mail/%u
pop3_uidl_format = %g
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={self.mail_user.pw_uid} gid={self.mail_user.pw_gid} home={self.root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(conf)
        (self.root / "passwd").write_text("")

    def maildir(self, user: str) -> mailbox.Maildir:
        """The user's Maildir, to fill before `start()` (Dovecot indexes it on first login)."""
        if user not in self.users:
            self.users.append(user)
            with (self.root / "passwd").open("a") as f:
                f.write(f"{user}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.root / "mail").mkdir(exist_ok=True)
        return mailbox.Maildir(str(self.root / "mail" / user), create=True)

    def start(self) -> Dovecot:
        for path in [self.root / "mail", self.root / "home"]:
            path.mkdir(exist_ok=True)
        for base, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                os.chmod(Path(base) / name, 0o755 if name in dirs else 0o644)
        for top in ("mail", "home"):
            for base, dirs, files in os.walk(self.root / top):
                for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
                    os.chown(name, self.mail_user.pw_uid, self.mail_user.pw_gid)
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
        )
        deadline = time.monotonic() + 20
        for port in (self.imap_port, self.pop3_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot did not start:\n{self.log()}") from None
                    time.sleep(0.05)
        return self

    def log(self) -> str:
        out = ""
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                out += path.read_text(errors="replace")
        return out

    def url(self, scheme: str, user: str, *, password: bool = True) -> str:
        port = self.imap_port if scheme == "imap" else self.pop3_port
        secret = f":{PASSWORD}" if password else ""
        return f"{scheme}://{user}{secret}@127.0.0.1:{port}?security=plain"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def snapshot(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(folder, unique name) -> (content hash, flag letters) of every message.

    Dovecot keeps index files beside the mail and, when POP3 opens a mailbox, moves files from
    new/ to cur/ as its own bookkeeping; neither is a change to the mail. Content, flags and
    presence of every message must stay as they were.
    """
    out = {}
    for base, _dirs, files in os.walk(path):
        if Path(base).name not in ("cur", "new"):
            continue
        folder = str(Path(base).parent.relative_to(path))
        for name in files:
            unique, _, info = name.partition(":")
            data = (Path(base) / name).read_bytes()
            out[(folder, unique)] = (hashlib.sha256(data).hexdigest(), info.removeprefix("2,"))
    return out


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    yield server
    server.stop()


def fill(box: mailbox.Maildir) -> None:
    def add(target: mailbox.Maildir, data: bytes, flags: str, sub: str = "cur") -> None:
        m = mailbox.MaildirMessage(data)
        m.set_subdir(sub)
        m.set_flags(flags)
        m.set_date(time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1)))
        target.add(m)

    add(box, msg("d-seen", "Tue, 05 Sep 2006 10:00:00 +0200"), "S")
    add(box, msg("d-new", "Wed, 06 Sep 2006 10:00:00 +0200"), "", "new")
    add(box, msg("d-flagged", "Thu, 07 Sep 2006 10:00:00 +0200"), "FS")
    add(box, msg("d-old", "Mon, 31 Jul 2006 23:59:59 +0200"), "S")
    archive = box.add_folder("Archive")
    add(archive, msg("d-archive", "Fri, 01 Sep 2006 09:00:00 +0000"), "RS")


@pytest.fixture
def cfg(suite_factory):
    suite = suite_factory(start=False)
    suite.add_user("anna@example.test")
    return suite


def test_imap_import_from_dovecot_keeps_folders_flags_and_is_idempotent(cfg, dovecot):
    box = dovecot.maildir("olduser")
    fill(box)
    dovecot.start()
    before = snapshot(dovecot.root / "mail" / "olduser")
    url = dovecot.url("imap", "olduser")

    run = cfg.cli("migrate", "import", "anna@example.test", "--from", url, "--since", SINCE)

    assert run.returncode == 0, run.stdout + run.stderr + dovecot.log()
    assert "copied 4, skipped 0 as duplicates, 1 dated before 2006-08-01, failed 0" in run.stdout
    assert PASSWORD not in run.stdout + run.stderr
    boxes = stored(cfg, "anna@example.test")
    inbox = dict(zip(message_ids(boxes["INBOX"]), boxes["INBOX"], strict=True))
    assert set(inbox) == {"<d-seen@old.example>", "<d-new@old.example>", "<d-flagged@old.example>"}
    assert inbox["<d-flagged@old.example>"][1] == {"\\Seen", "\\Flagged"}
    assert inbox["<d-new@old.example>"][1] == frozenset()
    assert inbox["<d-seen@old.example>"][0].replace(b"\r\n", b"\n") == msg(
        "d-seen", "Tue, 05 Sep 2006 10:00:00 +0200"
    )
    archived = boxes["Archive"]
    assert message_ids(archived) == ["<d-archive@old.example>"]
    assert archived[0][1] == {"\\Seen", "\\Answered"}
    assert archived[0][2] == time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1))
    assert snapshot(dovecot.root / "mail" / "olduser") == before

    again = cfg.cli("migrate", "import", "anna@example.test", "--from", url, "--since", SINCE)
    assert again.returncode == 0, again.stderr
    assert "copied 0, skipped 4 as duplicates" in again.stdout
    assert stored(cfg, "anna@example.test") == boxes


def test_pop3_import_from_dovecot_with_password_on_stdin(cfg, dovecot):
    fill(dovecot.maildir("olduser"))
    dovecot.start()
    before = snapshot(dovecot.root / "mail" / "olduser")
    url = dovecot.url("pop3", "olduser", password=False)

    run = cfg.cli(
        "migrate", "import", "anna@example.test", "--from", url, "--since", SINCE,
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr + dovecot.log()
    assert "copied 3, skipped 0 as duplicates, 1 dated before 2006-08-01, failed 0" in run.stdout
    inbox = stored(cfg, "anna@example.test")["INBOX"]
    assert sorted(message_ids(inbox)) == [
        "<d-flagged@old.example>",
        "<d-new@old.example>",
        "<d-seen@old.example>",
    ]
    # POP3 has no internal date: the Date header stands in for it.
    by_id = dict(zip(message_ids(inbox), inbox, strict=True))
    assert by_id["<d-seen@old.example>"][2] == 1157443200.0
    assert snapshot(dovecot.root / "mail" / "olduser") == before
    again = cfg.cli(
        "migrate", "import", "anna@example.test", "--from", url, "--since", SINCE,
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert "copied 0, skipped 3 as duplicates" in again.stdout


def test_wrong_remote_password_fails_without_echoing_it(cfg, dovecot):
    dovecot.maildir("olduser")
    dovecot.start()
    url = dovecot.url("imap", "olduser", password=False)
    run = cfg.cli(
        "migrate", "import", "anna@example.test", "--from", url, "--since", SINCE,
        "--password-stdin", input="Wrong-Guess-9\n",
    )  # fmt: skip
    assert run.returncode == 1
    assert "refused the user name or password" in run.stderr
    assert "Wrong-Guess-9" not in run.stdout + run.stderr
    shown = cfg.cli("migrate", "status")
    assert "failed" in shown.stdout and "Wrong-Guess-9" not in shown.stdout


@pytest.fixture
def old_suite(suite_factory):
    """Our own server standing in for the old system, with mail delivered through its store."""
    suite = suite_factory()
    suite.add_user("old@example.test", PASSWORD)
    store = Store(suite.config["paths"]["maildirs"])
    sept = time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1))
    store.deliver(["old@example.test"], msg("s-1", "Tue, 05 Sep 2006 10:00:00 +0200"),
                  internal_date=sept)  # fmt: skip
    store.deliver(["old@example.test"], msg("s-2", "Wed, 06 Sep 2006 10:00:00 +0200"),
                  flags=["\\Seen", "$Important"], internal_date=sept)  # fmt: skip
    store.deliver(["old@example.test"], msg("s-old", "Mon, 31 Jul 2006 10:00:00 +0200"),
                  internal_date=sept)  # fmt: skip
    box = store.mailbox("old@example.test")
    box.create_folder("Projekty/Ważne")
    box.folder("Projekty/Ważne").append(msg("s-3", "Fri, 01 Sep 2006 09:00:00 +0000"),
                                        ["\\Flagged"], sept)  # fmt: skip
    return suite


def source_state(suite: Suite) -> dict[str, list[tuple[bytes, frozenset[str], float]]]:
    return stored(suite, "old@example.test")


def test_imaps_import_from_our_own_server(cfg, old_suite):
    before = source_state(old_suite)
    url = f"imaps://old%40example.test:{PASSWORD}@127.0.0.1:{old_suite.port('imaps')}?verify=no"

    run = cfg.cli("migrate", "import", "anna@example.test", "--from", url, "--since", SINCE)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "copied 3, skipped 0 as duplicates, 1 dated before 2006-08-01, failed 0" in run.stdout
    boxes = stored(cfg, "anna@example.test")
    inbox = dict(zip(message_ids(boxes["INBOX"]), boxes["INBOX"], strict=True))
    assert inbox["<s-2@old.example>"][1] == {"\\Seen", "$Important"}
    assert inbox["<s-1@old.example>"][1] == frozenset()
    assert inbox["<s-1@old.example>"][2] == time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1))
    assert message_ids(boxes["Projekty/Ważne"]) == ["<s-3@old.example>"]
    assert boxes["Projekty/Ważne"][0][1] == {"\\Flagged"}
    assert source_state(old_suite) == before  # nothing marked \Seen, nothing moved
    again = cfg.cli("migrate", "import", "anna@example.test", "--from", url, "--since", SINCE)
    assert "copied 0, skipped 3 as duplicates" in again.stdout


def test_pop3_import_from_our_own_server(cfg, old_suite):
    before = source_state(old_suite)
    url = f"pop3://old%40example.test@127.0.0.1:{old_suite.port('pop3')}?security=plain"

    run = cfg.cli(
        "migrate", "import", "anna@example.test", "--from", url, "--since", SINCE,
        "--folder", "Stara poczta", "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    assert "copied 2, skipped 0 as duplicates, 1 dated before 2006-08-01, failed 0" in run.stdout
    got = stored(cfg, "anna@example.test")["Stara poczta"]
    assert sorted(message_ids(got)) == ["<s-1@old.example>", "<s-2@old.example>"]
    assert source_state(old_suite) == before


def test_during_the_window_new_mail_reaches_only_the_new_mailbox(suite_factory, dovecot):
    """The old box stays readable and unchanged; mail sent to the new address lands in the
    new mailbox, and importing again neither copies it back nor disturbs it."""
    import smtplib

    suite = suite_factory()
    suite.add_user("anna@example.test", legacy_login="AB12CD34")
    fill(dovecot.maildir("olduser"))
    dovecot.start()
    before = snapshot(dovecot.root / "mail" / "olduser")
    url = dovecot.url("imap", "olduser")
    assert suite.cli("migrate", "import", "anna@example.test", "--from", url,
                     "--since", SINCE).returncode == 0  # fmt: skip

    with smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("bank@old.example", ["anna@example.test"], msg("fresh", None))

    deadline = time.monotonic() + 10
    while "<fresh@old.example>" not in message_ids(stored(suite, "anna@example.test")["INBOX"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = suite.cli("migrate", "import", "anna@example.test", "--from", url, "--since", SINCE)
    assert "copied 0, skipped 4 as duplicates" in again.stdout
    assert len(stored(suite, "anna@example.test")["INBOX"]) == 4
    assert snapshot(dovecot.root / "mail" / "olduser") == before
    imap = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=10)
    imap.login("olduser", PASSWORD)
    assert imap.select("INBOX", readonly=True) == ("OK", [b"4"])
    imap.logout()


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_sender_filter_on_a_remote_account_is_checked_once_each_message_is_read(
    cfg, dovecot, scheme
):
    """Remote headers arrive with the message: the filter is applied before anything is
    written, and the summary says how many it left behind."""
    box = dovecot.maildir("olduser")
    fill(box)  # every message is from bank@old.example
    other = msg("d-other", "Tue, 05 Sep 2006 11:00:00 +0200")
    box.add(other.replace(b"From: bank@old.example", b"From: Ola <ola@friends.example>"))
    dovecot.start()

    run = cfg.cli(
        "migrate", "import", "anna@example.test", "--from", dovecot.url(scheme, "olduser"),
        "--since", SINCE, "--from-domain", "old.example",
    )  # fmt: skip

    assert run.returncode == 0, run.stderr + dovecot.log()
    assert "1 not matching From old.example" in run.stdout, run.stdout
    copied = [
        mid for folder in stored(cfg, "anna@example.test").values() for mid in message_ids(folder)
    ]
    assert "<d-other@old.example>" not in copied and "<d-seen@old.example>" in copied
