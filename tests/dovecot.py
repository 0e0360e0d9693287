"""A private Dovecot for tests: a server we did not write, on free loopback ports.

Everything lives in temporary folders (config, passwd-file, logs and sockets in one, the
Maildirs in it or, as root, in a second one);
nothing under /etc is read or written. Runs as root (CI) or as an ordinary user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mailsuite.remote import encode_mutf7
from mailsuite.tls import generate_self_signed

PASSWORD = "Remote-pass1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dovecot:
    """`dovecot -F -c <tmp>/dovecot.conf` with IMAP, IMAPS, POP3 and POP3S listeners."""

    def __init__(
        self,
        root: Path,
        users: tuple[str, ...] = ("alice", "bob"),
        *,
        passwords: dict[str, str] | None = None,
        extra: str = "",
    ) -> None:
        """`passwords` maps a user to its passwd-file password field (a scheme such as
        "{BLF-CRYPT}$2b$12$..."; {PLAIN}PASSWORD otherwise); `extra` is appended to the
        config (benchmarks turn Dovecot's auth cache on there)."""
        self.root = root
        self.users = users
        self.passwords = passwords or {}
        self.extra = extra
        self.ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        self.cert = root / "cert.pem"
        self.proc: subprocess.Popen[bytes] | None = None
        self._sequence = 0
        # Dovecot never reads mail as root; as root the mail belongs to "nobody", who cannot
        # pass through pytest's private (0700) folders, so the Maildirs live in a folder of
        # their own that only lets others pass (0711), removed again by stop().
        if os.getuid() == 0:
            self.home = Path(tempfile.mkdtemp(prefix="fetcher-dovecot-mail-"))
            self.home.chmod(0o711)
        else:
            self.home = root / "home"

    def start(self) -> Dovecot:
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "run", 0o755)
        generate_self_signed(self.cert, self.root / "key.pem", "localhost")
        me = pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        self.owner = (me.pw_uid, me.pw_gid)
        (self.root / "passwd").write_text(
            "".join(f"{u}:{self.passwords.get(u, '{PLAIN}' + PASSWORD)}:::::\n" for u in self.users)
        )
        for user in self.users:
            self.maildir(user)
        if os.getuid() == 0:
            users = "service auth {\n  user = root\n}\n"
        else:
            users = f"default_login_user = {me.pw_name}\ndefault_internal_user = {me.pw_name}\n"
        conf = f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
info_log_path = {self.root}/dovecot.log
{users}
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {me.pw_uid}
mail_gid = {me.pw_gid}
mail_location = maildir:{self.home}/%n/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.root}/passwd
  default_fields = home={self.home}/%n
}}
service imap-login {{
  inet_listener imap {{
    port = {self.ports["imap"]}
  }}
  inet_listener imaps {{
    port = {self.ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {self.ports["pop3s"]}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
{self.extra}
"""
        conf_path = self.root / "dovecot.conf"
        conf_path.write_text(conf)
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("ab"),
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports["pop3"]), 1) as sock:
                    if sock.recv(100).startswith(b"+OK"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"dovecot did not start:\n{self.log()}") from None
                time.sleep(0.1)
        return self

    def log(self) -> str:
        parts = [self.root / "dovecot.log", self.root / "stderr.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.home != self.root / "home":
            shutil.rmtree(self.home, ignore_errors=True)

    def maildir(self, user: str, folder: str | None = None) -> Path:
        """The Maildir of `user` (a Maildir++ sub-folder such as "Work.2026" if given)."""
        path = self.home / user / "Maildir"
        if folder:
            path = path / f".{encode_mutf7(folder)}"  # Dovecot's Maildir++ names are mUTF-7
        if not (path / "tmp").is_dir():
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            for made in [path / "cur", path / "new", path / "tmp", path, *path.parents]:
                self._own(made)
                if made == self.home:
                    break
        return path

    def _own(self, path: Path) -> None:
        if os.getuid() == 0:
            os.chown(path, *self.owner)

    def put(self, user: str, data: bytes, folder: str | None = None) -> Path:
        """Deliver a message the way an MDA would: write to tmp/, rename into new/."""
        self._sequence += 1
        target = self.maildir(user, folder)
        name = f"{time.time():.6f}.P{os.getpid()}Q{self._sequence}.test"
        tmp = target / "tmp" / name
        tmp.write_bytes(data)
        self._own(tmp)
        final = target / "new" / name
        tmp.rename(final)
        return final

    def files(self, user: str, folder: str | None = None) -> list[str]:
        """Every message file name (with flags) in the folder, to prove nothing changed."""
        target = self.maildir(user, folder)
        return sorted(p.name for sub in ("cur", "new") for p in (target / sub).iterdir())

    def reset_uidvalidity(self, user: str, folder: str | None = None) -> None:
        """Lose Dovecot's UID list and indexes, as after a restore: a new UIDVALIDITY."""
        target = self.maildir(user, folder)
        for path in target.iterdir():
            if path.name.startswith("dovecot"):
                path.unlink()
        time.sleep(1.1)  # Dovecot takes the new UIDVALIDITY from the clock, in seconds


def message(n: int, subject: str = "", size: int = 0, message_id: str | None = None) -> bytes:
    """A small RFC 5322 message; `size` pads the body with lines to about that many bytes."""
    mid = message_id if message_id is not None else f"<m{n}.{time.time_ns()}@remote.test>"
    head = (
        f"From: Sender {n} <sender{n}@remote.test>\r\n"
        f"To: alice@remote.test\r\n"
        f"Subject: {subject or f'message {n}'}\r\n"
        f"Date: Mon, 23 Nov 2026 12:00:00 +0000\r\n"
        + (f"Message-ID: {mid}\r\n" if mid else "")
        + "\r\n"
    ).encode()
    body = f"Body of message {n}.\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    missing = max(0, size - len(head) - len(body))
    return head + body + line * -(-missing // len(line))
