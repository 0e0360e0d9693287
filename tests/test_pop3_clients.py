"""Real POP3 clients from Debian against the real server: curl, fetchmail and getmail6.

Each fetches over TLS where the client supports it (STLS or implicit TLS), verifying our
self-signed certificate against its own file. "Leave messages on server" must never fetch
a message twice: the second run with keep fetches nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from itertools import count
from pathlib import Path

import pytest

from mailsuite.store import Store

PASSWORD = "Secret123"
HOST = "mail.example.test"  # the certificate's name; clients are pointed at 127.0.0.1
_users = count(1)

needs = {name: shutil.which(name) for name in ("curl", "fetchmail", "getmail")}


def _require(name: str) -> str:
    path = needs[name]
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/test.sh installs it)")
    return path


def new_mailbox(suite, messages: int) -> tuple[str, list[bytes]]:  # type: ignore[no-untyped-def]
    address = f"client{next(_users)}@example.test"
    suite.add_user(address, PASSWORD)
    store = Store(suite.config["paths"]["maildirs"])
    bodies = [
        b"From: sender@example.org\r\nTo: %s\r\nSubject: message %d\r\n"
        b"Message-ID: <m%d.%s@example.org>\r\n\r\nbody %d\r\n.dotted line\r\n"
        % (address.encode(), i, i, address.encode(), i)
        for i in range(messages)
    ]
    for body in bodies:
        store.deliver([address], body)
    return address, bodies


def inbox_count(suite, address: str) -> int:  # type: ignore[no-untyped-def]
    folder = Store(suite.config["paths"]["maildirs"]).mailbox(address).folder("INBOX")
    folder.sync()
    return len(folder.messages())


def cert(suite) -> str:  # type: ignore[no-untyped-def]
    return suite.config["paths"]["tls_cert"]


def run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


# -- curl ----------------------------------------------------------------------------------


def curl(suite, url_path: str, address: str, *extra: str, tls: str = "stls") -> bytes:  # type: ignore[no-untyped-def]
    port = suite.port("pop3s" if tls == "implicit" else "pop3")
    scheme = "pop3s" if tls == "implicit" else "pop3"
    args = [
        _require("curl"),
        "-sS",
        "--cacert",
        cert(suite),
        "--resolve",
        f"{HOST}:{port}:127.0.0.1",
        "-u",
        f"{address}:{PASSWORD}",
        f"{scheme}://{HOST}:{port}/{url_path}",
        *extra,
    ]
    if tls == "stls":
        args.append("--ssl-reqd")
    result = subprocess.run(args, capture_output=True, timeout=60)  # bytes: CRLF untouched
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_curl_list_uidl_retr_dele(suite) -> None:  # type: ignore[no-untyped-def]
    address, bodies = new_mailbox(suite, 3)
    listing = curl(suite, "", address)
    assert listing.splitlines() == [b"%d %d" % (i + 1, len(b)) for i, b in enumerate(bodies)]
    uidl = curl(suite, "", address, "-X", "UIDL", tls="implicit")
    assert len(uidl.splitlines()) == 3
    assert curl(suite, "2", address) == bodies[1]
    assert curl(suite, "3", address, tls="implicit") == bodies[2]
    curl(suite, "1", address, "-X", "DELE", "-I")
    assert inbox_count(suite, address) == 2


# -- fetchmail -----------------------------------------------------------------------------


def _deliver_script(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    script = tmp / "deliver.sh"
    script.write_text(f'#!/bin/sh\nexec cat > "$(mktemp {out}/msg.XXXXXX)"\n')
    script.chmod(0o755)
    return script


def fetchmail(suite, tmp: Path, address: str, *, keep: bool, implicit: bool) -> int:  # type: ignore[no-untyped-def]
    """Run fetchmail once; returns how many messages it handed to the MDA."""
    script = tmp / "deliver.sh"
    if not script.exists():
        _deliver_script(tmp)
    port = suite.port("pop3s" if implicit else "pop3")
    tls = "ssl" if implicit else "sslproto 'tls1.2+'"
    rc = tmp / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll {HOST} via 127.0.0.1 with proto POP3 port {port} uidl\n"
        f'  user "{address}" there with password "{PASSWORD}" is "root" here\n'
        f"  options {'keep' if keep else 'nokeep'} {tls} sslcertck"
        f' sslcertfile "{cert(suite)}" sslcommonname "{HOST}"\n'
        f'  mda "{script}"\n'
    )
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(tmp), HOME=str(tmp))
    result = run(
        [_require("fetchmail"), "-f", str(rc), "-N", "--nosyslog", "-v"],
        env=env,
    )
    # fetchmail exits 1 when there was no mail, 0 when it fetched some.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return len(list((tmp / "out").iterdir()))


@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "pop3s"])
def test_fetchmail_keep_fetches_once(suite, tmp_path: Path, implicit: bool) -> None:  # type: ignore[no-untyped-def]
    address, bodies = new_mailbox(suite, 4)
    assert fetchmail(suite, tmp_path, address, keep=True, implicit=implicit) == 4
    assert fetchmail(suite, tmp_path, address, keep=True, implicit=implicit) == 4  # no new ones
    assert inbox_count(suite, address) == 4
    fetched = sorted(p.read_bytes() for p in (tmp_path / "out").iterdir())
    for body in bodies:
        assert any(body.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n") in f for f in fetched)


def test_fetchmail_without_keep_empties_the_inbox(suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    address, _ = new_mailbox(suite, 3)
    assert fetchmail(suite, tmp_path, address, keep=False, implicit=False) == 3
    assert inbox_count(suite, address) == 0
    assert fetchmail(suite, tmp_path, address, keep=False, implicit=False) == 3


# -- getmail6 ------------------------------------------------------------------------------


def getmail(suite, tmp: Path, address: str, *, keep: bool, implicit: bool) -> int:  # type: ignore[no-untyped-def]
    """Run getmail once; returns how many messages it has handed to the MDA so far."""
    script = tmp / "deliver.sh"
    if not script.exists():
        _deliver_script(tmp)
    if implicit:
        retriever = (
            "type = SimplePOP3SSLRetriever\n"
            f"port = {suite.port('pop3s')}\n"
            f"ca_certs = {cert(suite)}\n"
            f"ssl_cert_hostname = {HOST}\n"
        )
    else:
        retriever = f"type = SimplePOP3Retriever\nport = {suite.port('pop3')}\n"
    rc = tmp / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        f"{retriever}"
        "server = 127.0.0.1\n"
        f"username = {address}\n"
        f"password = {PASSWORD}\n"
        "[destination]\n"
        "type = MDA_external\n"
        f"path = {script}\n"
        "allow_root_commands = true\n"  # CI may run as root; the script only writes files
        "[options]\n"
        f"delete = {'false' if keep else 'true'}\n"
        "read_all = false\n"
        "verbose = 2\n"
    )
    result = run([_require("getmail"), "--getmaildir", str(tmp), "--rcfile", str(rc)])
    assert result.returncode == 0, result.stdout + result.stderr
    return len(list((tmp / "out").iterdir()))


@pytest.mark.parametrize("implicit", [False, True], ids=["plain-loopback", "pop3s"])
def test_getmail_keep_fetches_once(suite, tmp_path: Path, implicit: bool) -> None:  # type: ignore[no-untyped-def]
    address, _ = new_mailbox(suite, 5)
    assert getmail(suite, tmp_path, address, keep=True, implicit=implicit) == 5
    assert getmail(suite, tmp_path, address, keep=True, implicit=implicit) == 5
    assert inbox_count(suite, address) == 5


def test_getmail_without_keep_empties_the_inbox(suite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    address, _ = new_mailbox(suite, 2)
    assert getmail(suite, tmp_path, address, keep=False, implicit=True) == 2
    assert inbox_count(suite, address) == 0
