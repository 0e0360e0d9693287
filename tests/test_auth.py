"""The one login path: same answers for every protocol, throttling shared between them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from mailsuite.auth import AuthCode, Authenticator, client_network
from mailsuite.config.loader import parse_config
from mailsuite.config.schema import Throttle
from mailsuite.directory import Directory
from mailsuite.passwords import Hasher, hash_password_sync

from .test_directory import Clock

CONFIG = """
hostname: mail.example.test
domains: [example.test]
web: {base_url: 'https://haslo.example.test'}
throttle:
  max_failures_per_ip: 6
  max_failures_per_account: 3
  window: 15m
  lockout: 15m
  account_delay: 0.1
  account_delay_max: 0.5
  global_failures_per_minute: 10
  global_delay: 1
  prune_interval: 5m
migration: {window_start: 2006-12-11, cutoff: 2007-01-11}
"""


class Sleeps(list[float]):
    """Stands in for asyncio.sleep: keeps how long each answer would have waited."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ts(day: date) -> float:
    return datetime(day.year, day.month, day.day, 12).timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(ts(date(2006, 12, 20)))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock, sleeps: Sleeps) -> Authenticator:
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
    return Authenticator(settings, directory, Hasher(4, 2), sleep=sleeps)


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


async def test_failures_refuse_that_network_for_the_account_and_no_other(
    auth: Authenticator, clock: Clock
) -> None:
    for _ in range(3):
        assert (await login(auth, "ala@example.test", "bad")).code is AuthCode.BAD_CREDENTIALS
    # From the guessing network even the right password is refused while locked ...
    assert (await login(auth, "ala@example.test")).code is AuthCode.THROTTLED
    # ... while the owner elsewhere is let in, so an attacker cannot keep the owner out.
    assert (await login(auth, "ala@example.test", ip="10.9.9.9")).ok
    clock.now += 16 * 60
    assert (await login(auth, "ala@example.test")).ok


async def test_failures_from_many_networks_only_slow_the_account_down(
    auth: Authenticator, sleeps: Sleeps
) -> None:
    for n in range(8):
        result = await login(auth, "ala@example.test", "bad", ip=f"10.1.0.{n}")
        assert result.code is AuthCode.BAD_CREDENTIALS
    # Beyond max_failures_per_account (3) each failure waits twice as long, up to the cap.
    assert sleeps == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert (await login(auth, "ala@example.test", ip="10.2.0.1")).ok
    assert len(sleeps) == 5  # the right password is answered at once
    assert auth.events.snapshot()["auth.throttle.account"] == 5


async def test_the_global_budget_slows_every_failure_but_no_success(
    auth: Authenticator, sleeps: Sleeps
) -> None:
    for n in range(13):
        result = await login(auth, f"ghost{n}@example.test", "bad", ip=f"10.3.0.{n}")
        assert result.code is AuthCode.BAD_CREDENTIALS
    assert sleeps == [1.0] * 3  # failures 11 to 13 of the minute
    assert (await login(auth, "ala@example.test", ip="10.3.1.1")).ok
    assert sleeps == [1.0] * 3
    assert auth.events.snapshot()["auth.throttle.global"] == 3


async def test_attempts_at_the_same_moment_each_reserve_their_check(auth: Authenticator) -> None:
    results = await asyncio.gather(*(login(auth, "ala@example.test", f"bad{n}") for n in range(12)))
    codes = [r.code for r in results]
    assert codes.count(AuthCode.BAD_CREDENTIALS) == 3
    assert codes.count(AuthCode.THROTTLED) == 9


async def test_a_busy_directory_answers_unavailable_within_about_a_second(
    auth: Authenticator,
) -> None:
    other = sqlite3.connect(auth.directory.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        began = time.monotonic()
        result = await login(auth, "ala@example.test")
        took = time.monotonic() - began
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.code is AuthCode.UNAVAILABLE and result.account is None
    assert 0.5 < took < 1.6
    assert (await login(auth, "ala@example.test")).ok


async def test_old_failures_are_pruned_as_logins_go_by(auth: Authenticator, clock: Clock) -> None:
    def rows() -> int:
        return auth.directory.db.conn.execute("SELECT count(*) FROM login_failures").fetchone()[0]

    await login(auth, "ala@example.test", "bad")
    assert rows() > 0
    clock.now += 16 * 60  # older than the window, and the prune interval has passed
    await login(auth, "ala@example.test")
    assert rows() == 0


@pytest.mark.parametrize(
    ("ip", "settings", "network"),
    [
        ("127.0.0.66", {}, "127.0.0.66/32"),
        ("127.0.0.66", {"ipv4_prefix": 24}, "127.0.0.0/24"),
        ("2001:db8:1:2:3:4:5:6", {}, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", {"ipv6_prefix": 48}, "2001:db8:1::/48"),
        ("::ffff:10.1.2.3", {}, "10.1.2.3/32"),
        (None, {}, "unknown"),
        ("not an address", {}, "not an address"),
    ],
)
def test_clients_are_grouped_by_network(
    ip: str | None, settings: dict[str, int], network: str
) -> None:
    assert client_network(ip, Throttle(**settings)) == network


def test_the_dummy_hash_costs_what_real_hashes_cost() -> None:
    hasher = Hasher(5, 1)
    try:
        assert hasher.dummy_hash().startswith(b"$2b$05$")
    finally:
        hasher.shutdown()


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


async def test_a_cached_password_lasts_the_configured_lifetime(
    auth: Authenticator, clock: Clock
) -> None:
    """accounts.credential_cache_lifetime (default 5 min), on the clock the throttle uses."""

    def bcrypts() -> int:
        return auth.events.snapshot().get("auth.bcrypt.verify", 0)

    assert auth.settings.accounts.credential_cache_lifetime == 300
    assert (await login(auth, "ala@example.test")).ok
    clock.now += 299
    assert (await login(auth, "ala@example.test")).ok
    assert bcrypts() == 1
    clock.now += 1
    assert (await login(auth, "ala@example.test")).ok
    assert bcrypts() == 2


async def test_a_cached_password_still_goes_through_every_account_check(
    auth: Authenticator,
) -> None:
    """The cache stands in for bcrypt only: a temporary password stays to be changed, and a
    an alias reaches the same entry as the address."""
    for _ in range(2):
        assert (await login(auth, "tmp@example.test")).code is AuthCode.MUST_CHANGE
    assert (await login(auth, "ala@example.test")).ok
    assert (await login(auth, "biuro@example.test")).ok
    assert auth.events.snapshot()["auth.credential_cache.hit"] == 2
