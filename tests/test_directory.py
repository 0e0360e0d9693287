"""Directory: accounts, aliases, tokens and throttling in a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from mailsuite.directory import (
    AlreadyExists,
    Directory,
    DirectoryUnavailable,
    InvalidAddress,
    NoSuchAccount,
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(tmp_path: Path, clock: Clock) -> Directory:
    return Directory(tmp_path / "d.sqlite", ["example.test"], clock=clock)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("no-at-sign", "not an e-mail address"),
        ("@example.test", "not an e-mail address"),
        ("a..b@example.test", "characters not allowed"),
        (".a@example.test", "characters not allowed"),
        ("a/b@example.test", "characters not allowed"),
        ("a@exa_mple.test", "is not a valid domain"),
        ("ala@other.test", "is not one of this server's domains"),
    ],
)
def test_invalid_addresses_are_refused_with_a_reason(
    directory: Directory, address: str, reason: str
) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        directory.add_account(address, password_hash="x")


def test_addresses_are_case_insensitive(directory: Directory) -> None:
    directory.add_account("Ala@Example.TEST", password_hash="x")
    assert directory.get_account("ala@example.test") is not None
    with pytest.raises(AlreadyExists):
        directory.add_account("ALA@example.test", password_hash="x")


def test_aliases_resolve_for_login_and_delivery(directory: Directory) -> None:
    ala = directory.add_account("ala@example.test", password_hash="x")
    directory.add_alias("biuro@example.test", "ala@example.test")
    assert directory.resolve_login("Biuro@example.test") == ala
    assert directory.resolve_recipient("biuro@example.test") == [ala]
    assert directory.addresses_of(ala) == ["ala@example.test", "biuro@example.test"]
    assert directory.resolve_recipient("nobody@example.test") == []
    with pytest.raises(AlreadyExists):
        directory.add_account("biuro@example.test", password_hash="x")
    with pytest.raises(AlreadyExists):
        directory.add_alias("ala@example.test", "ala@example.test")
    with pytest.raises(NoSuchAccount):
        directory.add_alias("x@example.test", "ghost@example.test")


def test_legacy_login_resolves_case_insensitively(directory: Directory) -> None:
    ala = directory.add_account(
        "p.konarski@example.test", password_hash="x", legacy_login="AB12CD34"
    )
    assert directory.resolve_login("ab12cd34") == ala
    with pytest.raises(AlreadyExists):
        directory.add_account("other@example.test", password_hash="x", legacy_login="ab12cd34")


def test_deleting_an_account_removes_its_aliases(directory: Directory) -> None:
    directory.add_account("ala@example.test", password_hash="x")
    directory.add_alias("biuro@example.test", "ala@example.test")
    directory.delete_account("ala@example.test")
    assert directory.list_aliases() == []
    with pytest.raises(NoSuchAccount):
        directory.delete_account("ala@example.test")


def test_password_change_clears_temporary_flag_and_keeps_history(
    directory: Directory, clock: Clock
) -> None:
    directory.add_account(
        "ala@example.test", password_hash="temp", temporary=True, temp_expires=clock.now + 60
    )
    account = directory.set_password("ala@example.test", "first")
    assert not account.must_change and account.temp_expires is None
    clock.now += 1
    directory.set_password("ala@example.test", "second")
    clock.now += 1
    directory.set_password("ala@example.test", "third")
    # The temporary one is not history: it was never the user's own password.
    assert directory.password_history("ala@example.test", 5) == ["second", "first"]


def test_tokens_are_stored_hashed_single_use_and_newest_only(
    directory: Directory, tmp_path: Path, clock: Clock
) -> None:
    directory.add_account("ala@example.test", password_hash="x")
    first = directory.create_token("activate", "ala@example.test", "secret-one", 3600)
    second = directory.create_token("activate", "ala@example.test", "secret-two", 3600)
    raw = sqlite3.connect(tmp_path / "d.sqlite").execute("SELECT token_hash FROM tokens").fetchall()
    assert all("secret" not in row[0] for row in raw)
    assert directory.find_token("activate", "secret-one").used is not None  # superseded
    assert directory.find_token("activate", "secret-two").id == second.id
    assert directory.find_token("activate", "nope") is None
    assert directory.use_token(second) is True
    assert directory.use_token(second) is False
    assert first.id != second.id


def test_code_attempts_are_counted(directory: Directory) -> None:
    directory.add_account("ala@example.test", password_hash="x")
    token = directory.create_token("code", "ala@example.test", "123456", 600)
    assert directory.token_matches(token, "000000") is False
    assert directory.token_matches(token, "123456") is True
    assert directory.latest_token("code", "ala@example.test").attempts == 2


def test_failures_are_counted_in_a_window(directory: Directory, clock: Clock) -> None:
    directory.record_failure(["ip:1.2.3.4", "acct:a@example.test"])
    clock.now += 10
    directory.record_failure(["ip:1.2.3.4"])
    assert directory.failures_since("ip:1.2.3.4", clock.now - 60) == (2, clock.now)
    assert directory.failures_since("ip:1.2.3.4", clock.now - 5)[0] == 1
    directory.clear_failures(["ip:1.2.3.4"])
    assert directory.failures_since("ip:1.2.3.4", 0)[0] == 0


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    Directory(path, ["example.test"]).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(Exception, match="newer mailsuite"):
        Directory(path, ["example.test"])


def test_audit_log_records_changes(directory: Directory) -> None:
    directory.add_account("ala@example.test", password_hash="x")
    directory.set_state("ala@example.test", "disabled")
    events = [e["event"] for e in directory.audit_log("ala@example.test")]
    assert events[:2] == ["account.disable", "account.add"]


def test_an_attempt_is_reserved_against_every_limit_until_released(
    directory: Directory, clock: Clock
) -> None:
    limits = [("login:a", 2), ("net:n", 3)]
    first = directory.reserve_attempt(limits, since=clock.now - 60, lockout=60)
    second = directory.reserve_attempt(limits, since=clock.now - 60, lockout=60)
    assert first and second
    # Two attempts in progress already use up login:a, though neither has failed yet.
    assert directory.reserve_attempt(limits, since=clock.now - 60, lockout=60) is None
    directory.release_attempt(first)
    assert directory.failures_since("login:a", 0)[0] == 1
    assert directory.reserve_attempt(limits, since=clock.now - 60, lockout=60)
    # The other key refuses on its own once full, and a release can forgive a whole key.
    assert directory.reserve_attempt([("net:n", 3)], since=clock.now - 60, lockout=60)
    assert directory.reserve_attempt([("net:n", 3)], since=clock.now - 60, lockout=60) is None
    directory.release_attempt([], forgive=["net:n"])
    assert directory.failures_since("net:n", 0)[0] == 0


def test_a_failure_is_counted_with_its_keys_in_one_step(directory: Directory, clock: Clock) -> None:
    directory.note_failure(["acct:a", "all"])
    clock.now += 120
    counts = directory.note_failure(["acct:a", "all"], [("acct:a", 0), ("all", clock.now - 60)])
    assert counts == [2, 1]


@pytest.fixture
def write_locked(directory: Directory):  # type: ignore[no-untyped-def]
    """Another process holding the directory's write lock for the test."""
    other = sqlite3.connect(directory.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield
    other.execute("ROLLBACK")
    other.close()


def test_a_write_gives_up_within_about_a_second_while_another_process_writes(
    directory: Directory, write_locked: None
) -> None:
    began = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        directory.record_failure(["net:n"])
    assert 0.5 < time.monotonic() - began < 1.5
    assert directory.failures_since("net:n", 0)[0] == 0  # reads still answer


def test_reads_never_wait_for_a_write_that_waits(directory: Directory) -> None:
    directory.add_account("ala@example.test", password_hash="x")
    other = sqlite3.connect(directory.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    refused: list[bool] = []

    def write() -> None:
        try:
            directory.audit("waits")
        except DirectoryUnavailable:
            refused.append(True)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.1)  # the writer now waits for the other process
        began = time.monotonic()
        assert directory.get_account("ala@example.test") is not None
        assert time.monotonic() - began < 0.1
    finally:
        writer.join()
        other.execute("ROLLBACK")
        other.close()
    assert refused == [True]
    # And this process's writers take turns: none is lost.
    threads = [threading.Thread(target=directory.record_failure, args=(["k"],)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert directory.failures_since("k", 0)[0] == 20
