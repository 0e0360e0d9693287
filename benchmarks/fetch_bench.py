"""Fetching external accounts: 10,000 messages from a local Dovecot over POP3 and IMAP.

The same source is then read by getmail6 (Debian's package) into a Maildir, which is the bar.
Both keep the messages on the server and write each message durably into a Maildir.

    python benchmarks/fetch_bench.py [--messages 10000] [--size 4096]

Prints messages per second, MB/s and the mean time per message for each run. Needs
dovecot-imapd, dovecot-pop3d and getmail6 installed.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.config import Settings
from mailsuite.directory import Directory
from mailsuite.directory import external as ext_db
from mailsuite.fetcher.engine import Fetcher
from mailsuite.passwords import hash_password_sync
from mailsuite.remote import RemotePOP3
from mailsuite.store import Store
from tests.dovecot import PASSWORD, Dovecot, message

USER = "bench@example.test"


def report(name: str, count: int, total_bytes: int, seconds: float) -> None:
    print(
        f"{name:34} {count:6d} msgs in {seconds:6.2f} s  {count / seconds:8.0f} msgs/s  "
        f"{total_bytes / seconds / 1e6:6.1f} MB/s  {seconds / count * 1000:6.2f} ms/msg"
    )


def ours(root: Path, dovecot: Dovecot, protocol: str, remote_user: str) -> tuple[int, float]:
    work = root / f"ours-{protocol}"
    settings = Settings(
        hostname="mail.example.test",
        domains=["example.test"],
        paths={
            "maildirs": work / "maildirs",
            "database": work / "mailsuite.sqlite",
            "secret_key": work / "secret.key",
        },
        fetcher={"timeout": 60},
    )
    directory = Directory(settings.paths.database, settings.domains)
    directory.add_account(USER, password_hash=hash_password_sync("x" * 10, 4))
    fetcher = Fetcher(directory, Store(settings.paths.maildirs), settings)
    port = dovecot.ports["imap" if protocol == "imap" else "pop3"]
    account = ext_db.add_external(
        directory,
        USER,
        label="Bench",
        display_name="",
        email=f"{remote_user}@remote.test",
        login=remote_user,
        secret=fetcher.secrets.encrypt(PASSWORD),
        protocol=protocol,
        host="127.0.0.1",
        port=port,
        security="plain",
        limit=4,
    )
    started = time.perf_counter()
    result = fetcher.fetch(account)
    seconds = time.perf_counter() - started
    if result.error:
        raise SystemExit(f"our {protocol} fetch failed: {result.error}")
    directory.close()
    return result.copied, seconds


def getmail(
    root: Path, dovecot: Dovecot, protocol: str, remote_user: str, expected: int
) -> tuple[int, float]:
    work = root / f"getmail-{protocol}"
    maildir = work / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    as_user = ""
    if os.getuid() == 0:  # getmail refuses to deliver as root: it delivers as nobody
        as_user = "user = nobody\n"
        nobody = pwd.getpwnam("nobody")
        root.chmod(0o711)
        work.chmod(0o711)
        for path in (maildir, *maildir.iterdir()):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    retriever = "SimpleIMAPRetriever" if protocol == "imap" else "SimplePOP3Retriever"
    port = dovecot.ports["imap" if protocol == "imap" else "pop3"]
    rc = work / "getmailrc"
    rc.write_text(
        f"[retriever]\ntype = {retriever}\nserver = 127.0.0.1\nport = {port}\n"
        f"username = {remote_user}\npassword = {PASSWORD}\n"
        + ("mailboxes = ('INBOX',)\n" if protocol == "imap" else "")
        + f"\n[destination]\ntype = Maildir\npath = {maildir}/\n{as_user}\n"
        "[options]\nread_all = false\ndelete = false\nverbose = 0\nmessage_log_syslog = false\n"
    )
    # getmail sometimes gives up waiting for its delivery child under load ("waiting child
    # pid ... timed out"); it remembers what it delivered, so it is simply run again, as
    # cron would, and the time of every run counts.
    seconds = 0.0
    for _ in range(10):
        started = time.perf_counter()
        subprocess.run(
            ["getmail", f"--getmaildir={work}", f"--rcfile={rc}"],
            capture_output=True,
            timeout=3600,
        )
        seconds += time.perf_counter() - started
        if len(list((maildir / "new").iterdir())) >= expected:
            break
    return len(list((maildir / "new").iterdir())), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per message")
    args = parser.parse_args()
    if not shutil.which("getmail") or not shutil.which("dovecot"):
        raise SystemExit("needs dovecot-imapd, dovecot-pop3d and getmail6 (apt-get install)")
    root = Path(tempfile.mkdtemp(prefix="fetch-bench-"))
    users = ("ours_pop3", "getmail_pop3", "ours_imap", "getmail_imap")
    dovecot = Dovecot(root / "dovecot", users=users)
    dovecot.start()
    try:
        body = [message(n, size=args.size) for n in range(args.messages)]
        total = sum(len(b) for b in body)
        for user in users:
            for data in body:
                dovecot.put(user, data)
            with RemotePOP3("127.0.0.1", dovecot.ports["pop3"], "plain", user, PASSWORD, 60) as p:
                p.uidl()  # let Dovecot index the Maildir before anyone is timed
        print(f"{args.messages} messages of {args.size} bytes from Dovecot on loopback, no TLS")
        for protocol in ("pop3", "imap"):
            count, seconds = ours(root, dovecot, protocol, f"ours_{protocol}")
            report(f"mailsuite fetcher, {protocol.upper()}", count, total, seconds)
            count, seconds = getmail(root, dovecot, protocol, f"getmail_{protocol}", args.messages)
            report(f"getmail6, {protocol.upper()}", count, total, seconds)
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
