"""Real IMAP clients against the real server: curl, mbsync, neomutt, and Thunderbird's start-up."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mailsuite.store import Store
from tests.test_imap_server import PASSWORD, Raw, deliver, reply, simple


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (scripts/test.sh installs it)")
    return path


@pytest.fixture
def account(suite) -> str:
    address = f"client{time.monotonic_ns()}@example.test"
    suite.add_user(address, PASSWORD)
    return address


@pytest.fixture
def store(suite) -> Store:
    return Store(suite.config["paths"]["maildirs"], fsync=False)


def test_curl_lists_fetches_and_searches(suite, account, store):
    curl = _require("curl")
    deliver(store, account, simple(1, "first"), simple(2, "second"))
    base = f"imap://127.0.0.1:{suite.port('imap')}"
    auth = ["-u", f"{account}:{PASSWORD}", "--silent", "--show-error", "--max-time", "20"]
    out = subprocess.run([curl, *auth, base + "/"], capture_output=True, text=True, check=True)
    assert '"/" "INBOX"' in out.stdout and '\\Sent) "/" "Sent"' in out.stdout
    out = subprocess.run([curl, *auth, base + "/INBOX;UID=2"], capture_output=True, check=True)
    assert out.stdout == simple(2, "second")
    out = subprocess.run(
        [curl, *auth, base + "/INBOX?SUBJECT%20first"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "* SEARCH 1"
    out = subprocess.run(
        [curl, *auth, base + "/INBOX", "-X", "UID FETCH 1:* (FLAGS)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "* 2 FETCH (UID 2 FLAGS (" in out.stdout
    # and over implicit TLS
    out = subprocess.run(
        [curl, *auth, "--insecure", f"imaps://127.0.0.1:{suite.port('imaps')}/INBOX;UID=1"],
        capture_output=True,
        check=True,
    )
    assert out.stdout == simple(1, "first")


def _mbsync(cfg: Path) -> None:
    r = subprocess.run(
        [_require("mbsync"), "-c", str(cfg), "-a"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _count(folder: Path) -> int:
    return sum(len(os.listdir(folder / sub)) for sub in ("cur", "new"))


def test_mbsync_syncs_a_thousand_messages_both_ways(suite, account, store, tmp_path):
    for i in range(1000):
        store.deliver([account], simple(i, "bulk"))
    local = tmp_path / "local"
    local.mkdir()
    cfg = tmp_path / "mbsyncrc"
    # plaintext on loopback is allowed by the test config; the certificate is for another name
    cfg.write_text(
        f"IMAPAccount t\nHost 127.0.0.1\nPort {suite.port('imap')}\nUser {account}\n"
        f"Pass {PASSWORD}\nSSLType None\n\nIMAPStore remote\nAccount t\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        "Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n"
        "SyncState *\n"
    )
    _mbsync(cfg)
    assert _count(local / "INBOX") == 1000
    assert (local / "Sent").is_dir()
    # local changes: 500 new messages, 100 marked seen, 10 deleted, one new folder
    new_dir = local / "INBOX" / "new"
    for i in range(500):
        (new_dir / f"{1700000000 + i}.local{i}.host").write_bytes(simple(5000 + i, "local"))
    inbox = local / "INBOX"
    pulled = sorted(
        (sub, n) for sub in ("cur", "new") for n in os.listdir(inbox / sub) if "local" not in n
    )
    for i, (sub, name) in enumerate(pulled[:110]):
        # Maildir: seen (S) for the first 100, trashed (T) for the next 10
        base = name.split(":2,")[0]
        os.rename(inbox / sub / name, inbox / "cur" / (base + (":2,S" if i < 100 else ":2,T")))
    (local / "Projects" / "cur").mkdir(parents=True)
    (local / "Projects" / "new").mkdir()
    (local / "Projects" / "tmp").mkdir()
    (local / "Projects" / "new" / "1700000000.p.host").write_bytes(simple(1, "project"))
    _mbsync(cfg)
    c = Raw(suite.port("imap"))
    c.login(account, PASSWORD)
    status = c.cmd("STATUS INBOX (MESSAGES UNSEEN)")[0]
    assert status == b'* STATUS "INBOX" (MESSAGES 1490 UNSEEN 1390)\r\n', status
    assert c.cmd("STATUS Projects (MESSAGES)")[0] == b'* STATUS "Projects" (MESSAGES 1)\r\n'
    c.ok("SELECT INBOX")
    found = c.cmd("SEARCH SUBJECT local")[0]
    assert len(found.split()) == 2 + 500
    # and a change on the server comes back down
    c.ok("STORE 1 +FLAGS (\\Flagged)")
    _mbsync(cfg)
    flagged = [n for n in os.listdir(local / "INBOX" / "cur") if n.endswith("F") or ",F" in n]
    assert len(flagged) == 1


def test_neomutt_reads_the_inbox(suite, account, store, tmp_path):
    neomutt = _require("neomutt")
    tmux = _require("tmux")
    deliver(store, account, simple(1, "Neomutt-visible"))
    rc = tmp_path / "muttrc"
    rc.write_text(
        f"set imap_user={account}\nset imap_pass={PASSWORD}\n"
        f'set folder="imap://127.0.0.1:{suite.port("imap")}/"\n'
        'set spoolfile="+INBOX"\nset ssl_starttls=no\nset ssl_force_tls=no\n'
        "set imap_check_subscribed=no\nset mail_check=1\nset header_cache=\n"
        "set message_cachedir=\nset sort=date\n"
    )
    session = f"imapt{os.getpid()}"
    subprocess.run(
        [
            tmux,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "200",
            "-y",
            "40",
            f"{neomutt} -n -F {rc}",
        ],
        check=True,
        env={**os.environ, "TERM": "xterm"},
    )
    try:
        screen = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if "Neomutt-visible" in screen:
                break
            time.sleep(0.3)
        assert "Neomutt-visible 1" in screen, screen
        subprocess.run([tmux, "send-keys", "-t", session, "Enter"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if "body 1" in screen:
                break
            time.sleep(0.3)
        assert "body 1" in screen, screen
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], check=False)


def test_thunderbird_start_up_sequence(suite, account, store):
    """The commands Thunderbird sends on start-up, in its order, with its literal forms."""
    deliver(store, account, *(simple(i) for i in range(1, 4)))
    c = Raw(suite.port("imap"))
    assert b"IMAP4rev1" in c.cmd("capability")[0]
    c.starttls()
    token = base64.b64encode(b"\0" + account.encode() + b"\0" + PASSWORD.encode())
    c.ok(b"authenticate PLAIN " + token)
    lines = c.cmd('ID ("name" "Thunderbird" "version" "128.0")')
    assert lines[0].startswith(b'* ID ("name" "mailsuite"')
    assert reply(c.cmd("ENABLE UTF8=ACCEPT")).startswith(b"OK")
    lines = c.cmd('list (SPECIAL-USE) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n' in lines
    lines = c.cmd('list "" "*"')
    assert lines[0] == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    lines = c.cmd('lsub "" "*"')
    assert reply(lines).startswith(b"OK")
    lines = c.cmd('select "INBOX"')
    assert b"* 3 EXISTS\r\n" in lines and reply(lines).startswith(b"OK [READ-WRITE]")
    lines = c.cmd('getquotaroot "INBOX"')
    assert lines[0] == b'* QUOTAROOT "INBOX" ""\r\n' and reply(lines).startswith(b"OK")
    lines = c.cmd("UID fetch 1:* (FLAGS)")
    assert lines[:-1] == [b"* %d FETCH (UID %d FLAGS (\\Recent))\r\n" % (i, i) for i in (1, 2, 3)]
    lines = c.cmd(
        "UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
        "(From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
        "In-Reply-To Content-Type Reply-To)])"
    )
    assert re.match(
        rb"\* 1 FETCH \(UID 1 RFC822.SIZE \d+ FLAGS \(\\Recent\) BODY\[HEADER.FIELDS \(FROM TO",
        lines[0],
    )
    c.send(b"t99 IDLE\r\n")
    assert c.line().startswith(b"+ ")
    other = Raw(suite.port("imap"))
    other.login(account, PASSWORD)
    other.ok("APPEND INBOX {8+}\r\nS: x\r\n\r\n")
    assert c.line() == b"* 4 EXISTS\r\n"
    c.line()
    c.send(b"DONE\r\n")
    assert c.line().startswith(b"t99 OK")
