"""The one login path: same answers for every protocol, throttling shared between them."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mailsuite.auth import AuthCode, Authenticator
from mailsuite.config.loader import parse_config
from mailsuite.directory import Directory
from mailsuite.passwords import Hasher, hash_password_sync

from .test_directory import Clock

CONFIG = """
hostname: mail.example.test
domains: [example.test]
web: {base_url: 'https://haslo.example.test'}
throttle: {max_failures_per_ip: 6, max_failures_per_account: 3, window: 15m, lockout: 15m}
migration: {window_start: 2006-12-11, cutoff: 2007-01-11}
"""


def ts(day: date) -> float:
    return datetime(day.year, day.month, day.day, 12).timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(ts(date(2006, 12, 20)))


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> Authenticator:
    settings = parse_config(CONFIG, Path("m.yaml"))
    directory = Directory(tmp_path / "d.sqlite", ["example.test"], clock=clock)
    pw = hash_password_sync("Secret123", 4)
    directory.add_account("ala@example.test", password_hash=pw, legacy_login="ab12cd34")
    directory.add_account(
        "tmp@example.test", password_hash=pw, temporary=True, temp_expires=clock() + 3600
    )
    directory.add_account("off@example.test", password_hash=pw)
    directory.set_state("off@example.test", "disabled")
    directory.add_alias("biuro@example.test", "ala@example.test")
    return Authenticator(settings, directory, Hasher(4, 2))


async def login(
    auth: Authenticator, user: str, password: str = "Secret123", ip: str = "10.0.0.1", **kw: bool
):  # type: ignore[no-untyped-def]
    return await auth.authenticate(user, password, protocol="test", remote_ip=ip, **kw)


async def test_address_and_alias_log_in(auth: Authenticator) -> None:
    assert (await login(auth, "ala@example.test")).ok
    result = await login(auth, "BIURO@example.test")
    assert result.ok and result.account.address == "ala@example.test"


async def test_unknown_user_and_wrong_password_look_the_same(auth: Authenticator) -> None:
    wrong = await login(auth, "ala@example.test", "nope")
    unknown = await login(auth, "ghost@example.test", "nope", ip="10.0.0.2")
    assert wrong.code is unknown.code is AuthCode.BAD_CREDENTIALS
    assert wrong.message == unknown.message
    assert wrong.account is None and unknown.account is None


async def test_temporary_password_must_be_changed_first(auth: Authenticator, clock: Clock) -> None:
    result = await login(auth, "tmp@example.test")
    assert result.code is AuthCode.MUST_CHANGE
    assert "https://haslo.example.test/zmien-haslo" in result.message
    assert (await login(auth, "tmp@example.test", allow_temporary=True)).ok
    clock.now += 7200
    assert (
        await login(auth, "tmp@example.test", allow_temporary=True)
    ).code is AuthCode.TEMP_EXPIRED


async def test_disabled_account_is_named_only_after_the_right_password(auth: Authenticator) -> None:
    assert (await login(auth, "off@example.test", "bad")).code is AuthCode.BAD_CREDENTIALS
    assert (await login(auth, "off@example.test")).code is AuthCode.DISABLED


async def test_account_lockout_after_repeated_failures(auth: Authenticator, clock: Clock) -> None:
    for n in range(3):
        assert (
            await login(auth, "ala@example.test", "bad", ip=f"10.1.0.{n}")
        ).code is AuthCode.BAD_CREDENTIALS
    # Even the right password is refused while locked, from any address.
    assert (await login(auth, "ala@example.test", ip="10.9.9.9")).code is AuthCode.THROTTLED
    clock.now += 16 * 60
    assert (await login(auth, "ala@example.test", ip="10.9.9.9")).ok


async def test_address_lockout_spans_accounts(auth: Authenticator) -> None:
    for n in range(6):
        await login(auth, f"guess{n}@example.test", "bad", ip="10.5.5.5")
    assert (await login(auth, "ala@example.test", ip="10.5.5.5")).code is AuthCode.THROTTLED
    assert (await login(auth, "ala@example.test", ip="10.5.5.6")).ok


async def test_legacy_login_inside_the_window_carries_a_notice(auth: Authenticator) -> None:
    result = await login(auth, "AB12CD34")
    assert result.ok and result.account.address == "ala@example.test"
    assert any("ala@example.test" in n and "2007-01-11" in n for n in result.notices)


async def test_legacy_login_after_cutoff(auth: Authenticator, clock: Clock) -> None:
    clock.now = ts(date(2007, 1, 11))
    wrong = await login(auth, "ab12cd34", "bad")
    assert wrong.code is AuthCode.BAD_CREDENTIALS and "ala@" not in wrong.message
    right = await login(auth, "ab12cd34")
    assert right.code is AuthCode.LEGACY_EXPIRED
    assert "ala@example.test" in right.message
    assert (await login(auth, "ala@example.test")).ok


async def test_legacy_login_before_the_window(auth: Authenticator, clock: Clock) -> None:
    clock.now = ts(date(2006, 12, 1))
    assert (await login(auth, "ab12cd34")).code is AuthCode.LEGACY_EXPIRED


async def test_failures_are_audited_without_the_password(auth: Authenticator) -> None:
    await login(auth, "ala@example.test", "MySecretGuess")
    rows = auth.directory.audit_log("ala@example.test")
    assert rows[0]["event"] == "login.fail"
    assert all("MySecretGuess" not in str(r) for r in rows)
