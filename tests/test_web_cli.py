"""Admin commands that e-mail users, run with no server up: the message must still be durable
(a local Maildir, or the outbound spool that a running server's queue picks up later)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
from pathlib import Path
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


def test_an_invitation_lands_in_the_maildir_without_any_server_machinery(
    suite_factory: Any,
) -> None:
    """`user invite` with a local contact puts a working activation link into the contact's
    Maildir, and sending it builds nothing a server needs: the self-signed certificate that
    serve would create stays absent, and neither the serve module (TLS, the bcrypt pool) nor
    Twisted's reactor is loaded."""
    suite = suite_factory(start=False)
    suite.add_user("kontakt@example.test")
    script = (
        "import json, sys\n"
        "from mailsuite.cli import main\n"
        "main(sys.argv[1:], standalone_mode=False)\n"
        "machinery = ('mailsuite.serve', 'twisted.internet.reactor')\n"
        "print(json.dumps([m for m in machinery if m in sys.modules]))\n"
    )
    args = ["user", "invite", "nowy@example.test", "--contact", "kontakt@example.test"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args, "--config", str(suite.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "activation link e-mailed to kontakt@example.test" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert not Path(suite.config["paths"]["tls_cert"]).exists()

    (delivered,) = (suite.maildir("kontakt@example.test") / "new").iterdir()
    message = email.message_from_bytes(delivered.read_bytes(), policy=email.policy.default)
    assert message["To"] == "kontakt@example.test"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"/aktywuj/(\S+)", body.get_content())
    assert found is not None
    token = suite.directory.find_token("activation", found.group(1))
    assert token is not None and token.used is None
    assert suite.cli("queue", "list").stdout.strip() == "the queue is empty"
