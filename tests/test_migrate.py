"""`mailsuite migrate`: imports from a Maildir and an mbox, date boundary, idempotence,
crash and resume, bulk plans and status.

The command runs as a subprocess against a real config, directory and Maildir root; what
arrived is read back through the store, and every source is compared byte for byte before and
after to prove it was only read.
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import mailbox
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from email.utils import formatdate
from pathlib import Path

import pytest

from mailsuite.directory import migration as mstate
from mailsuite.passwords import verify_password_sync
from mailsuite.store import Store
from tests.conftest import Suite

SINCE = "2006-08-01"


def msg(n: int | str, date: str | None, body: str = "", extra: str = "") -> bytes:
    head = f"From: bank@old.example\nTo: user@old.example\nSubject: message {n}\n"
    if date is not None:
        head += f"Date: {date}\n"
    head += f"Message-ID: <{n}@old.example>\n{extra}"
    return (head + "\n" + (body or f"Body of message {n}.\n")).encode()


def snapshot(path: Path) -> dict[str, tuple[str, float]]:
    """Every file under `path` with its content hash and mtime: a source must not change."""
    out = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            out[str(p.relative_to(path))] = (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                p.stat().st_mtime,
            )
    return out


def stored(suite: Suite, address: str) -> dict[str, list[tuple[bytes, frozenset[str], float]]]:
    """Folder name -> [(message bytes, flags, internal date)] as the store holds them."""
    store = Store(suite.config["paths"]["maildirs"])
    box = store.mailbox(address)
    out = {}
    for info in box.list_folders():
        folder = box.folder(info.name)
        out[info.name] = [(folder.read(m.uid), m.flags, m.internal_date) for m in folder.messages()]
    return out


def message_ids(folder: list[tuple[bytes, frozenset[str], float]]) -> list[str]:
    ids = []
    for data, _flags, _date in folder:
        for line in data.split(b"\n"):
            if line.lower().startswith(b"message-id:"):
                ids.append(line.split(b":", 1)[1].strip().decode())
    return ids


def migrate(suite: Suite, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return suite.cli("migrate", *args, input=input)


@pytest.fixture
def cfg(suite_factory) -> Suite:
    """A configured suite (directory and Maildir root) that the CLI works on."""
    suite = suite_factory(start=False)
    suite.add_user("anna@example.test")
    return suite


def make_maildir(path: Path) -> mailbox.Maildir:
    md = mailbox.Maildir(str(path), create=True)

    def add(box: mailbox.Maildir, data: bytes, flags: str = "", sub: str = "cur") -> None:
        m = mailbox.MaildirMessage(data)
        m.set_subdir(sub)
        m.set_flags(flags)
        m.set_date(time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1)))
        box.add(m)

    add(md, msg("inbox-seen", "Tue, 05 Sep 2006 10:00:00 +0200"), "S")
    add(md, msg("inbox-new", "Wed, 06 Sep 2006 10:00:00 +0200"), "", sub="new")
    add(md, msg("inbox-answered", "Thu, 07 Sep 2006 10:00:00 +0200"), "FRS")
    add(md, msg("inbox-trashed", "Fri, 08 Sep 2006 10:00:00 +0200"), "ST")
    add(md, msg("inbox-old", "Mon, 31 Jul 2006 23:59:59 +0200"), "S")
    archive = md.add_folder("Archive.2006")
    add(archive, msg("archive-1", "Fri, 01 Sep 2006 09:00:00 +0000"), "S")
    polish = md.add_folder("Wa&AXw-ne")  # "Ważne" in modified UTF-7, as Dovecot writes it
    add(polish, msg("wazne-1", "Fri, 01 Sep 2006 09:00:00 +0000"), "F")
    return md


def test_maildir_import_keeps_flags_and_folders_and_leaves_the_source_alone(cfg, tmp_path):
    source = tmp_path / "old"
    make_maildir(source)
    before = snapshot(source)

    run = migrate(cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE)

    assert run.returncode == 0, run.stderr
    assert "copied 6, skipped 0 as duplicates, 1 dated before 2006-08-01, failed 0" in run.stdout
    assert snapshot(source) == before
    boxes = stored(cfg, "anna@example.test")
    inbox = {
        mid: flags
        for mid, (_, flags, _) in zip(message_ids(boxes["INBOX"]), boxes["INBOX"], strict=True)
    }
    assert inbox == {
        "<inbox-seen@old.example>": {"\\Seen"},
        "<inbox-new@old.example>": set(),
        "<inbox-answered@old.example>": {"\\Seen", "\\Answered", "\\Flagged"},
        "<inbox-trashed@old.example>": {"\\Seen"},
    }
    assert message_ids(boxes["Archive/2006"]) == ["<archive-1@old.example>"]
    assert message_ids(boxes["Ważne"]) == ["<wazne-1@old.example>"]
    data, _flags, internal = boxes["Ważne"][0]
    assert data == msg("wazne-1", "Fri, 01 Sep 2006 09:00:00 +0000")
    assert internal == time.mktime((2006, 9, 1, 12, 0, 0, 0, 0, -1))


def test_second_run_adds_nothing(cfg, tmp_path):
    source = tmp_path / "old"
    make_maildir(source)
    first = migrate(cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE)
    assert first.returncode == 0, first.stderr
    before = stored(cfg, "anna@example.test")

    second = migrate(cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE)

    assert second.returncode == 0, second.stderr
    assert "copied 0, skipped 6 as duplicates" in second.stdout
    assert stored(cfg, "anna@example.test") == before
    assert mstate.copied_count(cfg.directory, "anna@example.test") == 6


def test_mbox_import_undoes_from_line_quoting(cfg, tmp_path):
    path = tmp_path / "old.mbox"
    box = mailbox.mbox(str(path))
    body = "Dear customer,\nFrom now on your login changes.\n>quoted reply stays\n"
    m = mailbox.mboxMessage(msg(1, "Tue, 05 Sep 2006 10:00:00 +0200", body))
    m.set_flags("RO")
    box.add(m)
    box.add(mailbox.mboxMessage(msg(2, "Wed, 06 Sep 2006 10:00:00 +0200")))
    box.add(mailbox.mboxMessage(msg(3, "Mon, 31 Jul 2006 10:00:00 +0200")))
    box.flush()
    box.close()
    raw = path.read_bytes()
    assert b"\n>From now on" in raw  # the writer quoted it, so the file has 3 messages
    before = snapshot(tmp_path)

    run = migrate(cfg, "import", "anna@example.test", "--from", str(path), "--since", SINCE)

    assert run.returncode == 0, run.stderr
    assert "copied 2, skipped 0 as duplicates, 1 dated before" in run.stdout
    assert snapshot(tmp_path) == before
    inbox = stored(cfg, "anna@example.test")["INBOX"]
    by_id = dict(zip(message_ids(inbox), inbox, strict=True))
    data, flags, _ = by_id["<1@old.example>"]
    assert b"\nFrom now on your login changes.\n>quoted reply stays\n" in data
    assert flags == {"\\Seen"}
    assert by_id["<2@old.example>"][1] == frozenset()


def test_folder_option_puts_everything_in_one_folder(cfg, tmp_path):
    source = tmp_path / "old"
    make_maildir(source)
    run = migrate(
        cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE,
        "--folder", "Old mail",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    boxes = stored(cfg, "anna@example.test")
    assert len(boxes["Old mail"]) == 6
    assert boxes["INBOX"] == []


def test_date_boundary_uses_the_date_header_then_the_file_time(cfg, tmp_path):
    """On or after the day as the sender wrote it; no usable Date falls back to the file."""
    md = mailbox.Maildir(str(tmp_path / "old"), create=True)
    august_1 = time.mktime((2006, 8, 1, 12, 0, 0, 0, 0, -1))
    july_31 = time.mktime((2006, 7, 31, 12, 0, 0, 0, 0, -1))
    cases = {
        # Message-ID: (Date header, file time, copied?)
        "day-before-late": ("Mon, 31 Jul 2006 23:59:59 +0200", august_1, False),
        "first-day-early": ("Tue, 01 Aug 2006 00:00:00 +0200", july_31, True),
        "first-day-utc-before": ("Tue, 01 Aug 2006 00:30:00 +0200", july_31, True),
        "west-still-july": ("Mon, 31 Jul 2006 20:00:00 -0500", august_1, False),
        "no-date-new-file": (None, august_1, True),
        "no-date-old-file": (None, july_31, False),
        "garbage-date-new-file": ("yesterday-ish", august_1, True),
        "garbage-date-old-file": ("yesterday-ish", july_31, False),
    }
    for mid, (date, mtime, _) in cases.items():
        m = mailbox.MaildirMessage(msg(mid, date))
        m.set_date(mtime)
        md.add(m)

    run = migrate(cfg, "import", "anna@example.test", "--from", str(md._path), "--since", SINCE)

    assert run.returncode == 0, run.stderr
    got = set(message_ids(stored(cfg, "anna@example.test")["INBOX"]))
    assert got == {f"<{mid}@old.example>" for mid, (_, _, keep) in cases.items() if keep}


def test_bad_source_and_bad_date_are_reported(cfg, tmp_path):
    run = migrate(cfg, "import", "anna@example.test", "--from", str(tmp_path / "none"),
                  "--since", SINCE)  # fmt: skip
    assert run.returncode == 1
    assert "no such Maildir or mbox file" in run.stderr
    run = migrate(cfg, "import", "anna@example.test", "--from", str(tmp_path), "--since", "8/1/06")
    assert run.returncode == 2
    assert "is not a date YYYY-MM-DD" in run.stderr
    run = migrate(cfg, "import", "nobody@example.test", "--from", str(tmp_path), "--since", SINCE)
    assert run.returncode == 1
    assert "no account" in run.stderr


def make_big_maildir(path: Path, count: int) -> None:
    md = mailbox.Maildir(str(path), create=True)
    for n in range(count):
        md.add(msg(f"big-{n}", formatdate(time.mktime((2006, 9, 1, 0, 0, 0, 0, 0, -1)) + n)))


def test_killed_import_resumes_without_copying_twice(cfg, tmp_path):
    source = tmp_path / "old"
    count = 600
    make_big_maildir(source, count)
    cmd = [
        sys.executable, "-m", "mailsuite", "migrate", "import", "anna@example.test",
        "--from", str(source), "--since", SINCE, "--config", str(cfg.config_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while mstate.copied_count(cfg.directory, "anna@example.test") < 50:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = mstate.copied_count(cfg.directory, "anna@example.test")
    assert done_before < count

    run = migrate(cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE)

    assert run.returncode == 0, run.stderr
    ids = Counter(message_ids(stored(cfg, "anna@example.test")["INBOX"]))
    assert set(ids) == {f"<big-{n}@old.example>" for n in range(count)}
    assert max(ids.values()) == 1
    assert mstate.copied_count(cfg.directory, "anna@example.test") == count
    assert mstate.pending_copies(cfg.directory, "anna@example.test") == []


def test_a_copy_written_but_not_confirmed_is_recognised(cfg, tmp_path):
    """The narrowest crash: the store has the message, the directory only a pending note."""
    source = tmp_path / "old"
    make_big_maildir(source, 3)
    from mailsuite.migrate.message import digest

    data = next(iter(mailbox.Maildir(str(source)).itervalues())).as_bytes()
    mid = data.split(b"Message-ID: ", 1)[1].split(b"\n", 1)[0].decode()
    d = digest(data, mid)
    assert mstate.begin_copy(cfg.directory, "anna@example.test", "INBOX", d, mid, len(data))
    Store(cfg.config["paths"]["maildirs"]).mailbox("anna@example.test").folder("INBOX").append(data)

    run = migrate(cfg, "import", "anna@example.test", "--from", str(source), "--since", SINCE)

    assert run.returncode == 0, run.stderr
    assert "copied 2, skipped 1 as duplicates" in run.stdout
    assert "1 confirmed from an interrupted run" in run.stdout
    ids = Counter(message_ids(stored(cfg, "anna@example.test")["INBOX"]))
    assert sorted(ids.values()) == [1, 1, 1]


def write_plan(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["legacy login", "new address", "contact", "source"])
        w.writerows(rows)
    return path


def test_plan_creates_accounts_imports_and_resumes(suite_factory, tmp_path):
    suite = suite_factory(start=False)
    suite.add_user("existing@example.test", legacy_login="OLD00003")
    suite.add_user("kontakt@example.org")  # a contact address the suite delivers to itself
    make_maildir(tmp_path / "u1")
    mbox_path = tmp_path / "u2.mbox"
    box = mailbox.mbox(str(mbox_path))
    box.add(msg("u2-1", "Tue, 05 Sep 2006 10:00:00 +0200"))
    box.close()
    missing = tmp_path / "u3-later"
    plan = write_plan(
        tmp_path / "plan.csv",
        [
            ["AB12CD34", "p.konarski@example.test", "kontakt@example.org", str(tmp_path / "u1")],
            ["EF56GH78", "m.nowak@example.test", "", str(mbox_path)],
            ["OLD00003", "existing@example.test", "ex@home.example", str(missing)],
        ],
    )

    run = suite.cli("migrate", "plan", str(plan), "--since", SINCE, "--jobs", "2")

    assert run.returncode == 1, run.stderr
    assert "3 users: 2 accounts created, 1 already existed" in run.stdout
    assert "temporary passwords of 1 new accounts e-mailed to their contacts" in run.stdout
    assert "existing@example.test: failed: " in run.stdout
    pw_file = tmp_path / "plan.passwords.csv"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert f"temporary passwords of 1 new accounts are in {pw_file} (mode 0600)" in run.stdout
    passwords = {row[0]: row for row in csv.reader(pw_file.open())}
    assert set(passwords) == {"m.nowak@example.test"}
    nowak = suite.directory.get_account("m.nowak@example.test")
    assert verify_password_sync(passwords["m.nowak@example.test"][3], nowak.password_hash)
    konarski = suite.directory.get_account("p.konarski@example.test")
    assert konarski.legacy_login == "AB12CD34"
    assert konarski.must_change and konarski.contact == "kontakt@example.org"
    [(mail, _, _)] = stored(suite, "kontakt@example.org")["INBOX"]
    text = email.message_from_bytes(mail, policy=email.policy.default).get_content()
    # The site speaks Polish unless configured otherwise, and so do its e-mails.
    assert "Login: p.konarski@example.test" in text
    sent = text.split("Hasło tymczasowe: ", 1)[1].split()[0]
    assert verify_password_sync(sent, konarski.password_hash)
    assert len(stored(suite, "p.konarski@example.test")["INBOX"]) == 4
    assert message_ids(stored(suite, "m.nowak@example.test")["INBOX"]) == ["<u2-1@old.example>"]
    status = {u.address: u for u in mstate.list_users(suite.directory)}
    assert status["p.konarski@example.test"].status == "done"
    assert status["existing@example.test"].status == "failed"

    # The missing source appears; running the same plan again finishes only what is left.
    box = mailbox.Maildir(str(missing), create=True)
    box.add(msg("u3-1", "Tue, 05 Sep 2006 10:00:00 +0200"))
    again = suite.cli("migrate", "plan", str(plan), "--since", SINCE)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 users: 0 accounts created, 3 already existed" in again.stdout
    assert "existing@example.test: copied 1" in again.stdout
    assert "p.konarski" not in again.stdout.split("already existed", 1)[1]
    assert len(list(csv.reader(pw_file.open()))) == 1
    assert len(stored(suite, "p.konarski@example.test")["INBOX"]) == 4

    shown = suite.cli("migrate", "status")
    assert shown.returncode == 0
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:] if line[:1] != " "}
    assert lines["p.konarski@example.test"].split()[1:3] == ["done", "6"]
    assert lines["existing@example.test"].split()[1:3] == ["done", "1"]
    assert str(mbox_path) in lines["m.nowak@example.test"]


def test_plan_refuses_a_broken_file_before_doing_anything(suite_factory, tmp_path):
    suite = suite_factory(start=False)
    plan = write_plan(
        tmp_path / "plan.csv",
        [
            ["AB12CD34", "p.konarski@example.test", "pk@home.example", "/x"],
            ["EF56GH78", "not an address", "", "/y"],
            ["AB12CD34", "other@example.test", "", "/z"],
            ["too", "few"],
        ],
    )
    run = suite.cli("migrate", "plan", str(plan), "--since", SINCE)
    assert run.returncode == 1
    assert "line 3: 'not an address' is not an e-mail address" in run.stderr
    assert "line 4: other@example.test or AB12CD34 appears twice" in run.stderr
    assert "line 5: expected 4 columns, found 2" in run.stderr
    assert suite.directory.list_accounts() == []


def test_status_shows_the_password_change_and_the_first_login(suite_factory, tmp_path):
    """After the plan: temporary password, no login; after the user changes the password on
    the web site and signs in over IMAP with the full address, status shows both."""
    import imaplib

    from tests.test_migrate_logins import change_password

    suite = suite_factory()
    make_maildir(tmp_path / "old")
    plan = write_plan(
        tmp_path / "plan.csv", [["AB12CD34", "p.konarski@example.test", "", str(tmp_path / "old")]]
    )
    assert suite.cli("migrate", "plan", str(plan), "--since", SINCE).returncode == 0
    [password] = [row[3] for row in csv.reader((tmp_path / "plan.passwords.csv").open())]

    def row() -> list[str]:
        shown = suite.cli("migrate", "status").stdout.splitlines()
        assert shown[0].split()[:4] == ["ADDRESS", "STATUS", "IMPORTED", "DUPES"]
        return shown[1].split()

    assert row()[:6] == ["p.konarski@example.test", "done", "6", "0", "0", "-"]
    assert row()[6] == "-"  # no login yet

    status, _ = change_password(suite, "AB12CD34", password, "Nowe-Haslo-2024")
    assert status == 200
    conn = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    conn.login("p.konarski@example.test", "Nowe-Haslo-2024")
    conn.logout()

    today = time.strftime("%Y-%m-%d")
    fields = row()
    assert fields[5] == today and fields[7] == today  # password changed, last login


def test_killed_plan_resumes_without_duplicates_or_new_passwords(cfg, tmp_path):
    rows = []
    for n in range(3):
        make_big_maildir(tmp_path / f"u{n}", 200)
        rows.append([f"OLD0000{n}", f"user{n}@example.test", "", str(tmp_path / f"u{n}")])
    plan = write_plan(tmp_path / "plan.csv", rows)
    cmd = [
        sys.executable, "-m", "mailsuite", "migrate", "plan", str(plan), "--since", SINCE,
        "--jobs", "2", "--config", str(cfg.config_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60

    def copied() -> int:
        return sum(
            mstate.copied_count(cfg.directory, f"user{n}@example.test")
            for n in range(3)
            if cfg.directory.get_account(f"user{n}@example.test")
        )

    while copied() < 100:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert copied() < 600
    hashes = {a.address: a.password_hash for a in cfg.directory.list_accounts()}

    again = cfg.cli("migrate", "plan", str(plan), "--since", SINCE, "--jobs", "2")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 users: 0 accounts created, 3 already existed" in again.stdout
    assert {a.address: a.password_hash for a in cfg.directory.list_accounts()} == hashes
    for n in range(3):
        ids = Counter(message_ids(stored(cfg, f"user{n}@example.test")["INBOX"]))
        assert set(ids) == {f"<big-{i}@old.example>" for i in range(200)}
        assert max(ids.values()) == 1
    shown = cfg.cli("migrate", "status").stdout
    assert "3 users: 0 pending, 0 running, 3 done, 0 failed" in shown
    assert len(list(csv.reader((tmp_path / "plan.passwords.csv").open()))) == 3


def test_sender_filter_copies_only_the_banks_mail_since_the_day(cfg, tmp_path):
    """Seed 000: "all messages sent by the Bank since 1 August", nothing else, said so."""
    md = mailbox.Maildir(str(tmp_path / "old"), create=True)
    cases = {
        "bank-sept": ("Bank <info@bank.example>", "Tue, 05 Sep 2006 10:00:00 +0200"),
        "bank-news": ('"Bank" <news@klienci.bank.example>', "Wed, 06 Sep 2006 10:00:00 +0200"),
        "bank-july": ("info@bank.example", "Mon, 31 Jul 2006 10:00:00 +0200"),
        "friend": ("Ola <ola@friends.example>", "Tue, 05 Sep 2006 11:00:00 +0200"),
        "look-alike": ("Bank <info@notbank.example>", "Tue, 05 Sep 2006 12:00:00 +0200"),
    }
    for n, (sender, date) in cases.items():
        md.add(msg(n, date).replace(b"From: bank@old.example", f"From: {sender}".encode()))
    before = snapshot(tmp_path / "old")

    run = migrate(
        cfg, "import", "anna@example.test", "--from", str(tmp_path / "old"), "--since", SINCE,
        "--from-domain", "bank.example",
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert (
        "copied 2, skipped 0 as duplicates, 1 dated before 2006-08-01, "
        "2 not matching From bank.example, failed 0"
    ) in run.stdout
    inbox = stored(cfg, "anna@example.test")["INBOX"]
    assert sorted(message_ids(inbox)) == ["<bank-news@old.example>", "<bank-sept@old.example>"]
    assert snapshot(tmp_path / "old") == before


def test_header_match_reads_encoded_words_and_every_pattern_must_match(cfg, tmp_path):
    path = tmp_path / "old.mbox"
    box = mailbox.mbox(str(path))
    subjects = {
        1: "=?utf-8?q?Wyci=C4=85g_z_konta?= 09/2006",  # "Wyciąg z konta"
        2: "Wyciag z konta 09/2006",
        3: "Oferta",
    }
    for n, subject in subjects.items():
        data = msg(n, "Tue, 05 Sep 2006 10:00:00 +0200")
        box.add(mailbox.mboxMessage(data.replace(f"message {n}".encode(), subject.encode())))
    box.flush()
    box.close()

    run = migrate(
        cfg, "import", "anna@example.test", "--from", str(path), "--since", SINCE,
        "--header-match", "Subject:wyci[aą]g", "--header-match", "subject: 09/2006",
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert "copied 2," in run.stdout and "1 not matching Subject ~ wyci[aą]g" in run.stdout
    inbox = stored(cfg, "anna@example.test")["INBOX"]
    assert sorted(message_ids(inbox)) == ["<1@old.example>", "<2@old.example>"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--header-match", "no colon"], "expected FIELD:PATTERN"),
        (["--header-match", "Subject:(unclosed"], "missing ), unterminated subpattern"),
        (["--from-domain", "a b"], "is not a domain"),
    ],
)
def test_a_broken_filter_is_refused_before_anything_is_read(cfg, tmp_path, option, message):
    make_maildir(tmp_path / "old")
    run = migrate(
        cfg, "import", "anna@example.test", "--from", str(tmp_path / "old"), "--since", SINCE,
        *option,
    )  # fmt: skip
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert stored(cfg, "anna@example.test")["INBOX"] == []
