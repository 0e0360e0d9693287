"""Admin commands that e-mail users, run with no server up: the message must still be durable
(a local Maildir, or the outbound spool that a running server's queue picks up later)."""

from __future__ import annotations

from typing import Any


def test_temporary_password_for_a_remote_contact_waits_in_the_queue(suite_factory: Any) -> None:
    suite = suite_factory(start=False)
    done = suite.cli("user", "add", "ola@example.test", "--temporary", "--contact", "ola@home.test")
    assert done.returncode == 0, done.stderr
    assert "e-mailed to ola@home.test" in done.stdout and "shown once" not in done.stdout
    queued = suite.cli("queue", "list")
    assert queued.returncode == 0, queued.stderr
    assert "ola@home.test" in queued.stdout
    assert suite.directory.get_account("ola@example.test").must_change


def test_invite_refuses_an_account_that_already_has_a_password(suite_factory: Any) -> None:
    suite = suite_factory(start=False)
    suite.add_user("jest@example.test")
    done = suite.cli("user", "invite", "jest@example.test", "--contact", "jest@home.test")
    assert done.returncode == 1 and "already has a password" in done.stderr
    done = suite.cli("user", "invite", "obcy@elsewhere.test", "--contact", "x@home.test")
    assert done.returncode == 1 and "not one of this server's domains" in done.stderr
    done = suite.cli("user", "invite", "nowy@example.test")
    assert done.returncode == 2 and "--contact" in done.stderr


def test_a_second_invitation_replaces_the_first_link(suite_factory: Any) -> None:
    suite = suite_factory(start=False)
    for _ in range(2):
        done = suite.cli("user", "invite", "nowy@example.test", "--contact", "nowy@home.test")
        assert done.returncode == 0, done.stderr
    account = suite.directory.get_account("nowy@example.test")
    assert account.password_hash is None and account.contact == "nowy@home.test"
    tokens = suite.directory.db.conn.execute(
        "SELECT used FROM tokens WHERE kind = 'activation' ORDER BY id"
    ).fetchall()
    assert len(tokens) == 2 and tokens[0][0] is not None and tokens[1][0] is None
    assert "account.invite" in [e["event"] for e in suite.directory.audit_log("nowy@example.test")]
