"""The verified-credential cache, seen from outside a running server: a repeated right login
costs no bcrypt (counted in /metrics), a password changed or an account disabled by the CLI
in another process is honoured at the very next login, another account with the same
password is not helped, and a throttled network stays throttled with a cached password."""

from __future__ import annotations

import imaplib
import poplib
import re
import smtplib

import pytest

from .conftest import Suite
from .test_clients import fetch

PASSWORD = "Cached-pass1"
OTHER_PASSWORD = "Changed-pass2"


def counter(suite: Suite, event: str) -> int:
    """One of the server's auth counters from /metrics (0 before it first counts)."""
    status, body, _ = fetch(suite, "/metrics")
    assert status == 200
    found = re.search(
        rf'^mailsuite_events_total{{component="auth",event="{re.escape(event)}"}} (\S+)$',
        body.decode(),
        re.MULTILINE,
    )
    return int(float(found.group(1))) if found else 0


def bcrypts(suite: Suite) -> int:
    return counter(suite, "bcrypt.verify")


def imap_login(suite: Suite, user: str, password: str) -> bool:
    """One IMAP LOGIN on a new connection; whether it was accepted."""
    with imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10) as client:
        try:
            client.login(user, password)
        except imaplib.IMAP4.error:
            return False
        client.logout()
        return True


@pytest.fixture
def cached(suite_factory) -> Suite:  # type: ignore[no-untyped-def]
    suite: Suite = suite_factory(
        {"throttle": {"max_failures_per_ip": 3, "max_failures_per_account": 3}}
    )
    suite.add_user("ala@example.test", PASSWORD)
    suite.add_user("ola@example.test", PASSWORD)
    return suite


def test_a_repeated_right_login_costs_no_bcrypt_on_any_protocol(cached: Suite) -> None:
    before = bcrypts(cached)
    assert imap_login(cached, "ala@example.test", PASSWORD)
    assert bcrypts(cached) == before + 1
    for _ in range(3):
        assert imap_login(cached, "ala@example.test", PASSWORD)
    pop = poplib.POP3("127.0.0.1", cached.port("pop3"), timeout=10)
    pop.user("ala@example.test")
    pop.pass_(PASSWORD)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", cached.port("submission"), timeout=10) as smtp:
        smtp.starttls()
        smtp.login("ala@example.test", PASSWORD)
    assert bcrypts(cached) == before + 1  # IMAP, POP3 and SMTP share the one cache
    assert counter(cached, "credential_cache.hit") == 5
    assert counter(cached, "login.imap.ok") == 4


def test_a_wrong_password_is_checked_by_bcrypt_every_time_and_never_cached(
    cached: Suite,
) -> None:
    assert imap_login(cached, "ala@example.test", PASSWORD)
    before = bcrypts(cached)
    assert not imap_login(cached, "ala@example.test", PASSWORD + "x")
    assert not imap_login(cached, "ala@example.test", PASSWORD + "x")
    assert bcrypts(cached) == before + 2
    assert imap_login(cached, "ala@example.test", PASSWORD)  # still the cached right one
    assert bcrypts(cached) == before + 2


def test_a_password_changed_by_the_cli_refuses_the_old_one_at_once(cached: Suite) -> None:
    assert imap_login(cached, "ala@example.test", PASSWORD)
    assert imap_login(cached, "ala@example.test", PASSWORD)
    done = cached.cli(
        "user", "passwd", "ala@example.test", "--password-stdin", input=OTHER_PASSWORD + "\n"
    )
    assert done.returncode == 0, done.stderr
    assert not imap_login(cached, "ala@example.test", PASSWORD)
    assert imap_login(cached, "ala@example.test", OTHER_PASSWORD)
    before = bcrypts(cached)
    assert imap_login(cached, "ala@example.test", OTHER_PASSWORD)
    assert bcrypts(cached) == before  # the new password is cached in its turn


def test_an_account_disabled_by_the_cli_is_refused_at_once(cached: Suite) -> None:
    assert imap_login(cached, "ala@example.test", PASSWORD)
    done = cached.cli("user", "disable", "ala@example.test")
    assert done.returncode == 0, done.stderr
    assert not imap_login(cached, "ala@example.test", PASSWORD)
    assert cached.cli("user", "enable", "ala@example.test").returncode == 0
    before = bcrypts(cached)
    assert imap_login(cached, "ala@example.test", PASSWORD)
    assert bcrypts(cached) == before + 1  # disabling dropped what was cached


def test_another_account_with_the_same_password_is_not_helped(cached: Suite) -> None:
    assert imap_login(cached, "ala@example.test", PASSWORD)
    before = bcrypts(cached)
    assert imap_login(cached, "ola@example.test", PASSWORD)
    assert bcrypts(cached) == before + 1


def test_a_throttled_network_stays_throttled_with_a_cached_password(cached: Suite) -> None:
    assert imap_login(cached, "ala@example.test", PASSWORD)
    for _ in range(3):
        assert not imap_login(cached, "ola@example.test", "wrong-password")
    hits = counter(cached, "credential_cache.hit")
    assert not imap_login(cached, "ala@example.test", PASSWORD)
    assert counter(cached, "login.imap.throttled") >= 1
    assert counter(cached, "credential_cache.hit") == hits  # refused before the cache


def test_a_lifetime_of_zero_runs_bcrypt_for_every_login(suite_factory) -> None:  # type: ignore[no-untyped-def]
    suite: Suite = suite_factory({"accounts": {"credential_cache_lifetime": 0}})
    suite.add_user("ala@example.test", PASSWORD)
    before = bcrypts(suite)
    for _ in range(3):
        assert imap_login(suite, "ala@example.test", PASSWORD)
    assert bcrypts(suite) == before + 3
    assert counter(suite, "credential_cache.hit") == 0


def test_each_worker_proves_a_password_once(suite_factory) -> None:  # type: ignore[no-untyped-def]
    """Every worker keeps its own cache: with two, six logins cost one or two bcrypts."""
    suite: Suite = suite_factory({"workers": 2})
    suite.add_user("ala@example.test", PASSWORD)
    for _ in range(6):
        assert imap_login(suite, "ala@example.test", PASSWORD)
    assert 1 <= bcrypts(suite) <= 2
    assert bcrypts(suite) + counter(suite, "credential_cache.hit") == 6
