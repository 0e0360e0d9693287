"""External accounts end to end: the admin CLI and the fetcher against Dovecot.

Dovecot (Debian's package, our own config in a temporary folder) is the remote server, so
the fetcher is proven against a server we did not write. The local suite's state is read
through the store, as IMAP would see it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsuite.directory import external as ext_db
from mailsuite.store import NoSuchFolder, Store
from tests.dovecot import PASSWORD, Dovecot, message
from tests.peers import Peers

pytestmark = pytest.mark.timeout(120)

REMOTE_USERS = tuple(f"r{n}" for n in range(1, 17))
PORTS = {
    ("imap", "tls"): "imaps",
    ("imap", "starttls"): "imap",
    ("pop3", "tls"): "pop3s",
    ("pop3", "starttls"): "pop3",
}
USER = "ala@example.test"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=REMOTE_USERS).start()
    yield server
    server.stop()


@pytest.fixture
def local(suite_factory: Any) -> Any:
    """A suite that is not running: the CLI works on its database and Maildirs directly."""
    suite = suite_factory({"fetcher": {"timeout": 10}}, start=False)
    suite.add_user(USER)
    return suite


def add(
    suite: Any,
    dovecot: Dovecot,
    remote_user: str,
    label: str,
    protocol: str,
    *,
    security: str = "tls",
    password: str = PASSWORD,
    extra: tuple[str, ...] = (),
    user: str = USER,
) -> Any:
    port = dovecot.ports[PORTS[(protocol, security)]]
    return suite.cli(
        "external",
        "add",
        user,
        "--label",
        label,
        "--name",
        f"Ala {label}",
        "--email",
        f"{remote_user}@remote.test",
        "--login",
        remote_user,
        "--protocol",
        protocol,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        security,
        "--accept-self-signed",
        "--password-stdin",
        *extra,
        input=password + "\n",
    )


def local_messages(suite: Any, folder: str, user: str = USER) -> list[bytes]:
    store = Store(suite.config["paths"]["maildirs"])
    box = store.mailbox(user).folder(folder)
    box.sync()
    return [box.read(m.uid) for m in box.messages()]


def local_folders(suite: Any, user: str = USER) -> set[str]:
    return {f.name for f in Store(suite.config["paths"]["maildirs"]).mailbox(user).list_folders()}


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pop3_first_fetch_repeat_and_new_mail(local: Any, dovecot: Dovecot) -> None:
    """POP3 into the folder named after the label; a repeat adds nothing; new mail arrives;
    the remote keeps every message."""
    sent = [message(n) for n in range(3)]
    for data in sent:
        dovecot.put("r1", data)
    out = ok(add(local, dovecot, "r1", "Onet", "pop3"))
    assert "added Onet" in out
    assert "3 new" in ok(local.cli("external", "fetch", USER, "Onet"))
    assert sorted(local_messages(local, "Onet")) == sorted(sent)
    assert "0 new" in ok(local.cli("external", "fetch", USER))
    later = message(9, "later")
    dovecot.put("r1", later)
    assert "1 new" in ok(local.cli("external", "fetch", USER, "onet"))
    assert sorted(local_messages(local, "Onet")) == sorted([*sent, later])
    assert len(dovecot.files("r1")) == 4
    listing = ok(local.cli("external", "list", USER))
    assert "Onet" in listing and "4 messages" in listing
    shown = ok(local.cli("external", "show", USER, "Onet"))
    assert "messages:          4" in shown and "last error:        -" in shown


def test_imap_mirrors_folders_and_leaves_the_remote_unread(local: Any, dovecot: Dovecot) -> None:
    """IMAP: INBOX becomes the label's folder, sub-folders are mirrored beneath it, flags
    are copied, and on the server nothing is marked seen."""
    inbox = message(1, "inbox")
    work = message(2, "work")
    deep = message(3, "deep")
    polish = message(4, "polish")
    dovecot.put("r2", inbox)
    dovecot.put("r2", work, folder="Praca")
    dovecot.put("r2", deep, folder="Praca.2026")
    dovecot.put("r2", polish, folder="Zażółć")
    before = dovecot.files("r2", "Praca.2026")
    ok(add(local, dovecot, "r2", "Gmail", "imap", security="starttls"))
    assert "4 new" in ok(local.cli("external", "fetch", USER, "Gmail"))
    assert {"Gmail", "Gmail/Praca", "Gmail/Praca/2026", "Gmail/Zażółć"} <= local_folders(local)
    assert local_messages(local, "Gmail") == [inbox]
    assert local_messages(local, "Gmail/Praca") == [work]
    assert local_messages(local, "Gmail/Praca/2026") == [deep]
    assert local_messages(local, "Gmail/Zażółć") == [polish]
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Gmail"))
    after = dovecot.files("r2", "Praca.2026")
    assert [n.split(":")[0] for n in after] == [n.split(":")[0] for n in before]
    assert not any(":2," in n and "S" in n.split(":2,")[1] for n in after)


def test_uidvalidity_change_resyncs_without_duplicates(local: Any, dovecot: Dovecot) -> None:
    """After the server renumbers a folder, only the really new message is copied."""
    first = [message(n) for n in range(4)]
    no_id = message(99, message_id="")
    for data in [*first, no_id]:
        dovecot.put("r3", data)
    ok(add(local, dovecot, "r3", "Yahoo", "imap"))
    assert "5 new" in ok(local.cli("external", "fetch", USER, "Yahoo"))
    directory = local.directory
    account = ext_db.get_external(directory, USER, "Yahoo")
    old_validity = ext_db.folder_state(directory, account.id, "INBOX")[1]
    dovecot.reset_uidvalidity("r3")
    fresh = message(50, "after renumbering")
    dovecot.put("r3", fresh)
    assert "1 new" in ok(local.cli("external", "fetch", USER, "Yahoo"))
    assert ext_db.folder_state(directory, account.id, "INBOX")[1] != old_validity
    assert sorted(local_messages(local, "Yahoo")) == sorted([*first, no_id, fresh])
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Yahoo"))


def test_wrong_password_is_refused_on_save_and_reported_when_fetching(
    local: Any, dovecot: Dovecot
) -> None:
    """The wizard's test names the reason; a stored wrong password is retried later."""
    refused = add(local, dovecot, "r4", "WP", "pop3", password="wrong")
    assert refused.returncode == 1
    assert "not saved: the server refused the user name or password" in refused.stderr
    assert ext_db.list_external(local.directory, USER) == []
    ok(add(local, dovecot, "r4", "WP", "pop3", password="wrong", extra=("--no-test",)))
    failed = local.cli("external", "fetch", USER, "WP")
    assert failed.returncode == 1 and "user name or password" in failed.stdout
    account = ext_db.get_external(local.directory, USER, "WP")
    assert account.failures == 1 and "user name or password" in account.last_error
    assert account.next_attempt > account.last_attempt
    assert "user name or password" in ok(local.cli("external", "show", USER, "WP"))
    dovecot.put("r4", message(1))
    ok(local.cli("external", "edit", USER, "WP", "--password-stdin", input=PASSWORD + "\n"))
    assert "1 new" in ok(local.cli("external", "fetch", USER, "WP"))
    account = ext_db.get_external(local.directory, USER, "WP")
    assert account.failures == 0 and account.last_error == "" and account.last_success


def test_server_down_and_tls_problems_are_named(local: Any, dovecot: Dovecot) -> None:
    down = local.cli(
        "external", "add", USER, "--label", "Interia", "--email", "x@interia.pl",
        "--host", "127.0.0.1", "--port", "1", "--password-stdin", input="pw\n",
    )  # fmt: skip
    assert down.returncode == 1 and "refused the connection" in down.stderr
    untrusted = local.cli(
        "external", "add", USER, "--label", "o2", "--email", "r5@o2.pl", "--login", "r5",
        "--host", "127.0.0.1", "--port", str(dovecot.ports["imaps"]), "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert untrusted.returncode == 1 and "accept self-signed" in untrusted.stderr
    ok(add(local, dovecot, "r5", "o2", "imap"))
    dovecot_port = dovecot.ports["imaps"]
    account = ext_db.get_external(local.directory, USER, "o2")
    ext_db.update_external(local.directory, account.id, port=1)
    failed = local.cli("external", "fetch", USER, "o2")
    assert failed.returncode == 1 and "refused the connection" in failed.stdout
    ext_db.update_external(local.directory, account.id, port=dovecot_port)
    ok(local.cli("external", "test", USER, "o2"))


def one_line_error(result: Any) -> str:
    """A failed command: exit 1 and a single line on stderr, never a traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_wrong_protocol_for_the_port_is_one_line_in_every_command(
    local: Any, dovecot: Dovecot
) -> None:
    """POP3 on the IMAP port and IMAP on the POP3 port: add, edit and test each say so in
    one line and exit 1; nothing is saved."""
    pop3_on_imap = add(
        local, dovecot, "r14", "Zly", "pop3", extra=("--port", str(dovecot.ports["imaps"]))
    )
    assert "speaks IMAP, not POP3" in one_line_error(pop3_on_imap)
    assert ext_db.list_external(local.directory, USER) == []
    ok(add(local, dovecot, "r14", "Dobry", "pop3"))
    edit = local.cli("external", "edit", USER, "Dobry", "--protocol", "imap", "--host",
                     "127.0.0.1", "--port", str(dovecot.ports["pop3s"]))  # fmt: skip
    assert "speaks POP3, not IMAP" in one_line_error(edit)
    assert ext_db.get_external(local.directory, USER, "Dobry").protocol == "pop3"
    ok(local.cli("external", "edit", USER, "Dobry", "--protocol", "imap", "--host",
                 "127.0.0.1", "--port", str(dovecot.ports["pop3"]), "--security", "starttls",
                 "--no-test"))  # fmt: skip
    tested = local.cli("external", "test", USER, "Dobry")
    assert "speaks POP3, not IMAP" in one_line_error(tested)
    fetched = local.cli("external", "fetch", USER, "Dobry")
    assert fetched.returncode == 1 and "Traceback" not in fetched.stderr
    assert "speaks POP3, not IMAP" in fetched.stdout


def test_edit_protocol_alone_follows_the_wizards_rule(local: Any, dovecot: Dovecot) -> None:
    """`external edit --protocol` alone: a provider's host becomes its other preset, a host
    of one's own stays with the protocol's usual port."""
    ok(add(local, dovecot, "r13", "Wlasny", "pop3"))
    ok(local.cli("external", "edit", USER, "Wlasny", "--protocol", "imap", "--no-test"))
    own = ext_db.get_external(local.directory, USER, "Wlasny")
    assert (own.protocol, own.host, own.port, own.security) == ("imap", "127.0.0.1", 993, "tls")
    ok(local.cli("external", "add", USER, "--label", "Gmail", "--email", "r13@gmail.com",
                 "--password-stdin", "--no-test", input="pw\n"))  # fmt: skip
    ok(local.cli("external", "edit", USER, "Gmail", "--protocol", "pop3", "--no-test"))
    gmail = ext_db.get_external(local.directory, USER, "Gmail")
    assert (gmail.protocol, gmail.host, gmail.port) == ("pop3", "pop.gmail.com", 995)


PEER_ANSWERS = [
    # (behaviour, over TLS, protocol, security, words in the one-line error)
    ("smtp", False, "pop3", "plain", "is an SMTP server, not POP3"),
    ("http", False, "imap", "starttls", "is a web (HTTP) server, not IMAP"),
    ("garbage", False, "pop3", "tls", "did not answer as POP3 servers do"),
    ("garbage", False, "imap", "plain", "did not answer as IMAP servers do"),
    ("silent", False, "pop3", "plain", "did not answer within 1 s"),
    ("imap", True, "imap", "starttls", "expects TLS from the first byte"),
]


@pytest.mark.parametrize(("behaviour", "tls", "protocol", "security", "words"), PEER_ANSWERS)
def test_any_answer_on_the_port_is_one_line_from_the_cli(
    suite_factory: Any,
    tmp_path: Path,
    behaviour: str,
    tls: bool,
    protocol: str,
    security: str,
    words: str,
) -> None:
    suite = suite_factory({"fetcher": {"timeout": 1}}, start=False)
    suite.add_user(USER)
    with Peers(tmp_path) as peers:
        port = peers.start(behaviour, tls=tls)
        result = suite.cli(
            "external", "add", USER, "--label", "Peer", "--email", "u@peer.test",
            "--protocol", protocol, "--host", "127.0.0.1", "--port", str(port),
            "--security", security, "--accept-self-signed", "--password-stdin",
            input="pw\n",
        )  # fmt: skip
    assert words in one_line_error(result)


def test_fifth_account_is_refused(suite_factory: Any, dovecot: Dovecot) -> None:
    suite = suite_factory({"fetcher": {"max_accounts_per_user": 2}}, start=False)
    suite.add_user(USER)
    ok(add(suite, dovecot, "r6", "A1", "pop3"))
    ok(add(suite, dovecot, "r6", "A2", "imap"))
    third = add(suite, dovecot, "r6", "A3", "pop3")
    assert third.returncode == 1 and "the limit is 2" in third.stderr
    clash = add(suite, dovecot, "r6", "a1", "pop3", user="ola@example.test")
    assert clash.returncode == 1  # no such user
    assert len(ext_db.list_external(suite.directory, USER)) == 2


def test_huge_message_is_copied_and_one_over_the_limit_skipped(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    suite = suite_factory({"limits": {"message_size": "12M"}}, start=False)
    suite.add_user(USER)
    huge = message(1, "huge", size=10 * 1024 * 1024)
    too_big = message(2, "too big", size=13 * 1024 * 1024)
    small = message(3)
    for data in (huge, too_big, small):
        dovecot.put("r7", data)
    ok(add(suite, dovecot, "r7", "Big", "pop3"))
    out = ok(suite.cli("external", "fetch", USER, "Big"))
    assert "2 new, 1 skipped" in out
    assert sorted(local_messages(suite, "Big")) == sorted([huge, small])
    assert "0 new" in ok(suite.cli("external", "fetch", USER, "Big"))


def test_delete_keeps_the_remote_and_by_default_the_folder(local: Any, dovecot: Dovecot) -> None:
    for n in range(2):
        dovecot.put("r8", message(n))
    dovecot.put("r8", message(5), folder="Sub")
    ok(add(local, dovecot, "r8", "Keep", "imap"))
    ok(add(local, dovecot, "r8", "Drop", "pop3"))
    ok(local.cli("external", "fetch", USER))
    remote_before = (dovecot.files("r8"), dovecot.files("r8", "Sub"))
    assert "kept" in ok(local.cli("external", "del", USER, "Keep"))
    assert len(local_messages(local, "Keep")) == 2 and "Keep/Sub" in local_folders(local)
    ok(local.cli("external", "del", USER, "Drop", "--delete-folder"))
    with pytest.raises(NoSuchFolder):
        local_messages(local, "Drop")
    assert ext_db.list_external(local.directory, USER) == []
    names = [[n.split(":")[0] for n in files] for files in remote_before]
    after = [[n.split(":")[0] for n in files] for files in (dovecot.files("r8"),
             dovecot.files("r8", "Sub"))]  # fmt: skip
    assert after == names


def test_switching_protocol_copies_nothing_twice(local: Any, dovecot: Dovecot) -> None:
    """POP3 first, then the same mailbox over IMAP: the inbox is recognised."""
    sent = [message(n) for n in range(3)]
    for data in sent:
        dovecot.put("r9", data)
    ok(add(local, dovecot, "r9", "Switch", "pop3"))
    assert "3 new" in ok(local.cli("external", "fetch", USER, "Switch"))
    ok(local.cli("external", "edit", USER, "Switch", "--protocol", "imap", "--host",
                 "127.0.0.1", "--port", str(dovecot.ports["imaps"])))  # fmt: skip
    assert ext_db.get_external(local.directory, USER, "Switch").protocol == "imap"
    newer = message(7)
    dovecot.put("r9", newer)
    assert "1 new" in ok(local.cli("external", "fetch", USER, "Switch"))
    assert sorted(local_messages(local, "Switch")) == sorted([*sent, newer])
    ok(local.cli("external", "edit", USER, "Switch", "--label", "Renamed"))
    assert sorted(local_messages(local, "Renamed")) == sorted([*sent, newer])
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Renamed"))


def messages_shown(suite: Any, label: str) -> int:
    shown = ok(suite.cli("external", "show", USER, label))
    return int(shown.split("messages:", 1)[1].split()[0])


def test_the_count_is_the_messages_copied_across_protocol_switches(
    local: Any, dovecot: Dovecot
) -> None:
    """3 copied over POP3, 4 more arrive, the account moves to IMAP, then back to POP3: the
    page and `external show` count 7, the messages in the folder, never a copy twice."""
    sent = [message(n, "count") for n in range(7)]
    for data in sent[:3]:
        dovecot.put("r15", data)
    ok(add(local, dovecot, "r15", "Licz", "pop3"))
    assert "3 new" in ok(local.cli("external", "fetch", USER, "Licz"))
    assert messages_shown(local, "Licz") == 3
    for data in sent[3:]:
        dovecot.put("r15", data)
    ok(local.cli("external", "edit", USER, "Licz", "--protocol", "imap", "--host",
                 "127.0.0.1", "--port", str(dovecot.ports["imaps"])))  # fmt: skip
    assert "4 new" in ok(local.cli("external", "fetch", USER, "Licz"))
    assert messages_shown(local, "Licz") == 7
    ok(local.cli("external", "edit", USER, "Licz", "--protocol", "pop3", "--host",
                 "127.0.0.1", "--port", str(dovecot.ports["pop3s"])))  # fmt: skip
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Licz"))
    assert messages_shown(local, "Licz") == 7
    assert sorted(local_messages(local, "Licz")) == sorted(sent)
    listing = ok(local.cli("external", "list", USER))
    assert "7 messages" in listing


def test_a_new_server_starts_with_nothing_known_about_it(local: Any, dovecot: Dovecot) -> None:
    """What was seen on one server says nothing about another: after a change of server the
    remote ids are forgotten (another server may reuse them), while the copies made stay
    recognised so nothing is copied twice."""
    for n in range(2):
        dovecot.put("r16", message(n, "reset"))
    ok(add(local, dovecot, "r16", "Nowy", "pop3"))
    assert "2 new" in ok(local.cli("external", "fetch", USER, "Nowy"))
    account = ext_db.get_external(local.directory, USER, "Nowy")
    assert len(ext_db.seen_uids(local.directory, account.id, "")) == 2
    ok(local.cli("external", "edit", USER, "Nowy", "--host", "localhost", "--no-test"))
    assert ext_db.seen_uids(local.directory, account.id, "") == set()
    assert ext_db.has_copies(local.directory, account.id, "Nowy")
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Nowy"))
    assert len(local_messages(local, "Nowy")) == 2 and messages_shown(local, "Nowy") == 2


def test_crash_between_store_and_record_is_settled(local: Any, dovecot: Dovecot) -> None:
    """A copy the store holds but the directory still calls pending is confirmed, not
    copied again; a pending copy the store never got is fetched again."""
    one, two = message(1), message(2)
    dovecot.put("r10", one)
    dovecot.put("r10", two)
    ok(add(local, dovecot, "r10", "Crash", "pop3"))
    assert "2 new" in ok(local.cli("external", "fetch", USER, "Crash"))
    directory = local.directory
    account = ext_db.get_external(directory, USER, "Crash")
    store = Store(local.config["paths"]["maildirs"])
    folder = store.mailbox(USER).folder("Crash")
    rows = {r["size"]: r for r in directory._rows(
        "SELECT * FROM external_seen WHERE account_id = ?", (account.id,))}  # fmt: skip
    # As if the process died after the store write of `one` and before it was recorded,
    # and before the store write of `two` (its copy is gone).
    for data in (one, two):
        row = rows[len(data)]
        ext_db.mark(directory, account.id, "", row["uid"], "Crash", state="pending",
                    message_id=row["message_id"], size=row["size"], digest=row["digest"],
                    local_uidnext=row["local_uid"])  # fmt: skip
    folder.expunge([rows[len(two)]["local_uid"]])
    assert "1 new" in ok(local.cli("external", "fetch", USER, "Crash"))
    assert sorted(local_messages(local, "Crash")) == sorted([one, two])
    assert ext_db.pending_copies(directory, account.id) == []


def test_killed_fetch_neither_duplicates_nor_loses(local: Any, dovecot: Dovecot) -> None:
    """SIGKILL in the middle of a fetch, then fetch again: every message exactly once."""
    import signal
    import subprocess
    import sys
    import time

    sent = [message(n) for n in range(400)]
    for data in sent:
        dovecot.put("r11", data)
    ok(add(local, dovecot, "r11", "Killed", "pop3"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsuite", "external", "fetch", USER, "Killed",
         "--config", str(local.config_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cur = Path(local.maildir(USER)) / ".Killed" / "new"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cur.exists() and len(os.listdir(cur)) >= 50:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    ok(local.cli("external", "fetch", USER, "Killed"))
    got = local_messages(local, "Killed")
    assert len(got) == len(sent)
    assert sorted(got) == sorted(sent)


def test_passwords_are_encrypted_and_the_key_rotates(local: Any, dovecot: Dovecot) -> None:
    dovecot.put("r12", message(1))
    ok(add(local, dovecot, "r12", "Secret", "pop3"))
    key = Path(local.config["paths"]["secret_key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    db = sqlite3.connect(local.config["paths"]["database"])
    dump = "\n".join(db.iterdump())
    db.close()
    assert PASSWORD not in dump
    old_key = key.read_bytes()
    assert "1 passwords re-encrypted" in ok(local.cli("external", "rotate-key"))
    assert key.read_bytes() != old_key and len(key.read_bytes().split()) == 1
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "1 new" in ok(local.cli("external", "fetch", USER, "Secret"))


def test_external_address_is_an_allowed_sender(local: Any, dovecot: Dovecot) -> None:
    ok(add(local, dovecot, "r13", "Sender", "pop3"))
    account = local.directory.get_account(USER)
    assert ext_db.external_senders(local.directory, account) == [("r13@remote.test", "Ala Sender")]


def test_provider_settings_are_filled_in(local: Any) -> None:
    """Well-known providers need only the address; the test still runs (and fails here,
    offline, with a clear reason rather than a traceback)."""
    from mailsuite.fetcher import accounts

    expect = {
        "jan@gmail.com": "imap.gmail.com",
        "jan@outlook.com": "outlook.office365.com",
        "jan@yahoo.com": "imap.mail.yahoo.com",
        "jan@aol.com": "imap.aol.com",
        "jan@onet.pl": "imap.poczta.onet.pl",
        "jan@wp.pl": "imap.wp.pl",
        "jan@interia.pl": "poczta.interia.pl",
        "jan@o2.pl": "poczta.o2.pl",
        "jan@firma.pl": "imap.firma.pl",
    }
    for address, host in expect.items():
        server = accounts.suggested(address)
        assert (server.host, server.port, server.security) == (host, 993, "tls")
    assert accounts.suggested("jan@wp.pl", "pop3").host == "pop3.wp.pl"
    assert accounts.suggested("jan@gmail.com", "pop3").port == 995
    assert accounts.suggested("jan@firma.pl", "imap", label="Gmail").host == "imap.gmail.com"


def _silent_server() -> tuple[Any, list[Any]]:
    """Accepts connections and never says a word: the slowest possible remote."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[Any] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, held


def test_server_polls_on_schedule_and_a_stuck_account_holds_up_nobody(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    """The running suite polls every account; one whose server never answers times out on
    its own while the others keep arriving."""
    import time

    suite = suite_factory(
        {"fetcher": {"interval": "2s", "timeout": 30, "concurrency": 2}}, start=False
    )
    suite.add_user(USER)
    listener, held = _silent_server()
    try:
        ok(add(suite, dovecot, "r14", "Stuck", "pop3", extra=("--no-test",)))
        account = ext_db.get_external(suite.directory, USER, "Stuck")
        ext_db.update_external(suite.directory, account.id, port=listener.getsockname()[1])
        ok(add(suite, dovecot, "r14", "Live", "pop3"))
        suite.start()
        dovecot.put("r14", message(1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if len(local_messages(suite, "Live")) == 1:
                    break
            except NoSuchFolder:
                pass
            time.sleep(0.2)
        assert len(local_messages(suite, "Live")) == 1
        dovecot.put("r14", message(2))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(local_messages(suite, "Live")) < 2:
            time.sleep(0.2)
        assert len(local_messages(suite, "Live")) == 2
        stuck = ext_db.get_external(suite.directory, USER, "Stuck")
        assert stuck.last_success is None and stuck.lease_until is not None
        # Shutting down does not wait for the stuck account's 30 s timeout.
        started = time.monotonic()
        assert suite.stop(timeout=15) == 0
        assert time.monotonic() - started < 15
    finally:
        listener.close()
        for sock in held:
            sock.close()


def test_submission_accepts_the_external_address_as_sender(
    suite_factory: Any, dovecot: Dovecot
) -> None:
    """Once added, the external address may be used in MAIL FROM and From on submission;
    an address the user does not own is still refused."""
    import smtplib
    import ssl

    suite = suite_factory({"fetcher": {"interval": "1h"}}, start=False)
    suite.add_user(USER)
    suite.add_user("ola@example.org")
    ok(add(suite, dovecot, "r15", "Poczta", "pop3"))
    suite.start()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=20) as smtp:
        smtp.starttls(context=context)
        smtp.login(USER, "Secret123")
        body = (
            "From: Ala Poczta <r15@remote.test>\r\nTo: ola@example.org\r\n"
            "Subject: hej\r\n\r\nhej\r\n"
        )
        assert smtp.sendmail("r15@remote.test", ["ola@example.org"], body) == {}
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail("someone@remote.test", ["ola@example.org"], body)


def test_another_mailsuite_as_the_remote(suite_factory: Any) -> None:
    """Our own IMAP (implicit TLS) and POP3 (STLS) servers as the remote side."""
    remote = suite_factory()
    remote.add_user("bob@example.test")
    remote_store = Store(remote.config["paths"]["maildirs"])
    remote_box = remote_store.mailbox("bob@example.test")
    remote_box.create_folder("Projekty/2026")
    inbox = [message(n) for n in range(3)]
    project = message(10, "projekt")
    for data in inbox:
        remote_store.deliver(["bob@example.test"], data)
    remote_store.deliver(["bob@example.test"], project, folder="Projekty/2026")
    local = suite_factory(start=False)
    local.add_user(USER)
    common = ["--email", "bob@example.test", "--host", "127.0.0.1", "--accept-self-signed"]
    ok(local.cli("external", "add", USER, "--label", "Stara", "--protocol", "imap",
                 "--port", str(remote.port("imaps")), "--security", "tls", *common,
                 "--password-stdin", input="Secret123\n"))  # fmt: skip
    ok(local.cli("external", "add", USER, "--label", "Pop", "--protocol", "pop3",
                 "--port", str(remote.port("pop3")), "--security", "starttls", *common,
                 "--password-stdin", input="Secret123\n"))  # fmt: skip
    out = ok(local.cli("external", "fetch", USER))
    assert "Stara: 4 new" in out and "Pop: 3 new" in out
    assert sorted(local_messages(local, "Stara")) == sorted(inbox)
    assert local_messages(local, "Stara/Projekty/2026") == [project]
    assert sorted(local_messages(local, "Pop")) == sorted(inbox)
    assert "0 new" in ok(local.cli("external", "fetch", USER, "Stara"))
    folder = remote_box.folder("INBOX")
    folder.sync()
    assert len(folder.messages()) == 3
    assert not any("\\Seen" in m.flags for m in remote_box.folder("Projekty/2026").messages())


def test_serve_creates_the_key_file_at_start_and_refuses_a_damaged_one(
    suite_factory: Any,
) -> None:
    suite = suite_factory()
    key = Path(suite.config["paths"]["secret_key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert suite.stop() == 0
    key.write_text("not a key\n")
    with pytest.raises(RuntimeError, match="is not a key file"):
        suite.start()
