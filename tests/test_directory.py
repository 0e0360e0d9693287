"""Directory: accounts, aliases, tokens and throttling in a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailsuite.directory import AlreadyExists, Directory, InvalidAddress, NoSuchAccount


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
