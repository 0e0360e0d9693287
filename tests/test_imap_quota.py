"""QUOTA (RFC 9208) against the real server: usage after deliveries and expunges, APPEND,
COPY and SMTP over quota, the configured default and the per-account override."""

from __future__ import annotations

import smtplib
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from mailsuite.store import Store
from mailsuite.store.maildir import INDEX_FILE
from tests.test_imap_server import PASSWORD, Raw, deliver, reply, session, store

__all__ = ["store"]  # fixture, imported so pytest finds it here

KIB = 1024
BIG = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 44  # 3 KiB and a little
SMALL = b"Subject: small\r\n\r\nhello\r\n"
_users = count(1)


def quota_user(suite: Any, limit: int | None) -> str:
    address = f"quota{next(_users)}@example.test"
    suite.add_user(address, PASSWORD, quota=limit)
    return address


def quota_of(c: Raw) -> bytes:
    (line,) = [ln for ln in c.ok('GETQUOTA ""') if ln.startswith(b"* QUOTA ")]
    return line


def test_capabilities_offer_quota_with_the_storage_resource_only(suite):
    """RFC 9208 5.1: a resource offered is advertised as QUOTA=RES-<name>; MESSAGE is not
    enforced, so it is not offered, nor QUOTASET, since SETQUOTA is refused."""
    address = quota_user(suite, None)
    caps = session(suite, address, select=None).ok("CAPABILITY")[0].split()
    assert b"QUOTA" in caps and b"QUOTA=RES-STORAGE" in caps
    assert b"QUOTA=RES-MESSAGE" not in caps and b"QUOTASET" not in caps


def test_getquotaroot_reports_usage_after_deliveries_and_expunges(suite, store):
    """RFC 9208 4.1.2: GETQUOTAROOT gives QUOTAROOT then QUOTA for each root; 5.1: STORAGE
    usage and limit in units of 1024 octets, counting every folder."""
    address = quota_user(suite, 100 * KIB)
    c = session(suite, address)
    lines = c.ok("GETQUOTAROOT INBOX")
    assert lines[:2] == [b'* QUOTAROOT "INBOX" ""\r\n', b'* QUOTA "" (STORAGE 0 100)\r\n']

    deliver(store, address, BIG, BIG)
    deliver(store, address, BIG, folder="Sent")
    used = -(-3 * len(BIG) // KIB)
    assert quota_of(c) == b'* QUOTA "" (STORAGE %d 100)\r\n' % used

    c.ok("NOOP")
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    assert quota_of(c) == b'* QUOTA "" (STORAGE %d 100)\r\n' % -(-2 * len(BIG) // KIB)
    c.ok("DELETE Sent")
    assert quota_of(c) == b'* QUOTA "" (STORAGE %d 100)\r\n' % -(-len(BIG) // KIB)


def test_quota_root_errors_and_an_account_without_a_limit(suite):
    """RFC 9208 4.1.1: GETQUOTA of a root that does not exist is NO; 4.1.2: GETQUOTAROOT of a
    mailbox that does not exist is NO; without a limit the QUOTA resource list is empty."""
    address = quota_user(suite, None)
    c = session(suite, address, select=None)
    assert reply(c.cmd('GETQUOTA "other"')).startswith(b"NO [NONEXISTENT]")
    assert reply(c.cmd("GETQUOTAROOT Nowhere")).startswith(b"NO [NONEXISTENT]")
    assert quota_of(c) == b'* QUOTA "" ()\r\n'
    assert reply(c.cmd("GETQUOTA")).startswith(b"BAD")


def test_setquota_is_refused(suite):
    """RFC 9208 4.1.3: without QUOTASET the server does not let clients change limits; the
    limit stays as the administrator set it. Bad syntax is still BAD."""
    address = quota_user(suite, 50 * KIB)
    c = session(suite, address, select=None)
    assert reply(c.cmd('SETQUOTA "" (STORAGE 1000000)')).startswith(b"NO")
    assert quota_of(c) == b'* QUOTA "" (STORAGE 0 50)\r\n'
    assert reply(c.cmd('SETQUOTA "" (STORAGE)')).startswith(b"BAD")


def test_append_over_quota_is_refused_with_overquota(suite, store):
    """RFC 9208 4.3.1: an APPEND that would take usage past the limit fails with NO
    [OVERQUOTA], and nothing is added."""
    address = quota_user(suite, 5 * KIB)
    c = session(suite, address)
    literal = b"{%d+}\r\n" % len(BIG)
    assert b" OK [APPENDUID" in c.cmd(b"APPEND INBOX " + literal + BIG)[-1]
    lines = c.cmd(b"APPEND INBOX " + literal + BIG)
    assert reply(lines).startswith(b"NO [OVERQUOTA]")
    assert c.ok("STATUS INBOX (MESSAGES)")[0] == b'* STATUS "INBOX" (MESSAGES 1)\r\n'
    small = b"{%d+}\r\n" % len(SMALL)
    assert b" OK [APPENDUID" in c.cmd(b"APPEND INBOX " + small + SMALL)[-1]  # what fits, goes


def test_copy_over_quota_is_refused_and_move_is_not(suite, store):
    """RFC 9208 4.3.1: COPY past the limit is NO [OVERQUOTA] and copies nothing; MOVE keeps the
    messages under the same quota root, so it does not grow usage and is allowed."""
    address = quota_user(suite, 7 * KIB)
    deliver(store, address, BIG, BIG)
    c = session(suite, address)
    assert reply(c.cmd("COPY 1:2 Sent")).startswith(b"NO [OVERQUOTA]")
    assert c.ok("STATUS Sent (MESSAGES)")[0] == b'* STATUS "Sent" (MESSAGES 0)\r\n'
    assert reply(c.cmd("COPY 1:2 Sent")).startswith(b"NO [OVERQUOTA]")
    lines = c.ok("MOVE 1:2 Sent")
    assert b"* 2 EXPUNGE\r\n" in lines or b"* 1 EXPUNGE\r\n" in lines
    assert c.ok("STATUS Sent (MESSAGES)")[0] == b'* STATUS "Sent" (MESSAGES 2)\r\n'


def test_status_deleted_and_deleted_storage(suite, store):
    """RFC 9208 5.1: a server with the STORAGE resource supports STATUS DELETED-STORAGE,
    what EXPUNGE would free in units of 1024 octets; RFC 9051 6.3.11 DELETED counts them."""
    address = quota_user(suite, None)
    deliver(store, address, BIG, SMALL, BIG)
    c = session(suite, address)
    c.ok("STORE 1,2 +FLAGS (\\Deleted)")
    lines = c.ok("STATUS INBOX (DELETED DELETED-STORAGE MESSAGES)")
    expected = -(-(len(BIG) + len(SMALL)) // KIB)
    assert lines[0] == b'* STATUS "INBOX" (DELETED 2 DELETED-STORAGE %d MESSAGES 3)\r\n' % expected
    c.ok("EXPUNGE")
    lines = c.ok("STATUS INBOX (DELETED DELETED-STORAGE)")
    assert lines[0] == b'* STATUS "INBOX" (DELETED 0 DELETED-STORAGE 0)\r\n'


# --- SMTP -----------------------------------------------------------------------------------


def _send(suite: Any, rcpts: list[str], data: bytes, *, size: bool) -> tuple[dict, Any]:
    """One transaction; per-recipient refusals and the DATA reply."""
    refused: dict[str, tuple[int, bytes]] = {}
    with smtplib.SMTP("127.0.0.1", suite.port("smtp")) as client:
        client.ehlo("client.example")
        options = [f"SIZE={len(data)}"] if size else []
        assert client.mail("sender@elsewhere.example", options)[0] == 250
        for rcpt in rcpts:
            code, text = client.rcpt(rcpt)
            if code != 250:
                refused[rcpt] = (code, text)
        if len(refused) == len(rcpts):
            return refused, None
        return refused, client.data(data)


def test_smtp_refuses_only_the_full_mailbox_of_several_recipients(suite, store):
    """RFC 5321 4.2.5 / RFC 3463 3.3: each recipient gets its own RCPT reply: the full
    mailbox 452 4.2.2 (temporary: room may be made), the others are delivered, and DATA is
    answered 250 only once their copies are durable."""
    full = quota_user(suite, 4 * KIB)
    roomy = quota_user(suite, 100 * KIB)
    unlimited = quota_user(suite, None)
    deliver(store, full, BIG)
    refused, done = _send(suite, [roomy, full, unlimited], BIG, size=True)
    assert refused[full][0] == 452 and refused[full][1].startswith(b"4.2.2")
    assert set(refused) == {full}
    assert done[0] == 250
    for address in (roomy, unlimited):
        folder = Store(suite.config["paths"]["maildirs"]).mailbox(address).folder("INBOX")
        assert [folder.read(m.uid) for m in folder.messages()][-1].endswith(BIG)
    inbox = Store(suite.config["paths"]["maildirs"]).mailbox(full).folder("INBOX")
    assert len(inbox.messages()) == 1


def test_smtp_a_message_larger_than_the_quota_is_refused_for_good(suite):
    """RFC 3463 3.3 X.2.2 with 552 (RFC 5321 4.2.2: exceeded storage allocation): a message
    that can never fit is a permanent failure, at RCPT when SIZE was declared, at DATA when
    it was not."""
    tiny = quota_user(suite, 2 * KIB)
    refused, _ = _send(suite, [tiny], BIG, size=True)
    assert refused[tiny][0] == 552 and refused[tiny][1].startswith(b"5.2.2")
    refused, done = _send(suite, [tiny], BIG, size=False)
    assert not refused
    assert done[0] == 552 and done[1].startswith(b"5.2.2")


def test_smtp_full_mailbox_without_declared_size_gets_452_at_data(suite, store):
    """Without SIZE= the RCPT check counts one octet; DATA checks the real size, and when no
    recipient can take the message it is refused with 452 4.2.2 and nothing is stored."""
    address = quota_user(suite, 5 * KIB)
    deliver(store, address, BIG)
    refused, done = _send(suite, [address], BIG, size=False)
    assert not refused
    assert done[0] == 452 and done[1].startswith(b"4.2.2")
    inbox = Store(suite.config["paths"]["maildirs"]).mailbox(address).folder("INBOX")
    assert len(inbox.messages()) == 1


# --- the configured default -----------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    from tests.conftest import Suite

    s = Suite(tmp_path_factory.mktemp("quota"), {"accounts": {"quota": "4K"}})
    s.start()
    yield s
    s.close()


def test_accounts_quota_is_the_default_and_an_account_may_override_it(limited):
    """accounts.quota holds for accounts without their own; `user edit --quota` overrides
    it, `none` lifts it, `default` returns to it."""
    address = quota_user(limited, None)
    c = session(limited, address, select=None)
    assert quota_of(c) == b'* QUOTA "" (STORAGE 0 4)\r\n'
    done = limited.cli("user", "edit", address, "--quota", "10K")
    assert done.returncode == 0, done.stderr
    assert quota_of(c) == b'* QUOTA "" (STORAGE 0 10)\r\n'
    limited.cli("user", "edit", address, "--quota", "none", check=True)
    assert quota_of(c) == b'* QUOTA "" ()\r\n'
    limited.cli("user", "edit", address, "--quota", "default", check=True)
    assert quota_of(c) == b'* QUOTA "" (STORAGE 0 4)\r\n'
    shown = limited.cli("user", "show", address, check=True).stdout
    assert "4K (accounts.quota)" in shown


def test_append_and_copy_without_a_limit_leave_other_folders_unread(suite, store):
    """An account with no quota has nothing to count: APPEND and COPY must not open (and so
    index) every folder of the mailbox to learn a usage nobody asked for."""
    address = quota_user(suite, None)
    deliver(store, address, SMALL, folder="Archive")
    archive = suite.maildir(address) / ".Archive"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{archive / INDEX_FILE}{suffix}").unlink(missing_ok=True)
    c = session(suite, address)
    assert b" OK [APPENDUID" in c.cmd(b"APPEND INBOX {%d+}\r\n" % len(SMALL) + SMALL)[-1]
    assert b" OK [COPYUID" in c.cmd("COPY 1 INBOX")[-1]
    assert not (archive / INDEX_FILE).exists()
    assert reply(c.cmd("SELECT Archive")).startswith(b"OK")  # the folder itself is intact
