"""A private Postfix for side-by-side SMTP figures: Debian's `postfix`, on loopback only.

Everything lives in one temporary folder: main.cf and master.cf (`postfix -c DIR`), its own
queue_directory and data_directory, and the Maildirs its virtual(8) agent delivers into
(`virtual_mailbox_maps`, one Maildir per address, owned by `nobody`). It listens on
127.0.0.1 at a port of its own, does no DNS, and sends nothing anywhere: every transport that
would leave the machine is error(8). Postfix's daemons drop to `mail_owner` (the package's
`postfix` user), so starting it needs root, as a real Postfix does; an ordinary user cannot
run one (its master refuses to start unless run by root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Postfix:
    """`postfix -c <root>/conf start`, delivering `addresses` into Maildirs under <root>/mail."""

    def __init__(self, root: Path, addresses: tuple[str, ...]) -> None:
        self.root = root
        self.addresses = addresses
        self.port = free_port()
        self.conf = root / "conf"

    def main_cf(self) -> str:
        nobody = pwd.getpwnam("nobody")
        domains = sorted({a.rpartition("@")[2] for a in self.addresses})
        return f"""\
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
mail_owner = postfix
myhostname = mx.peer.test
mydomain = peer.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {self.root}/maillog
maillog_file_prefixes = {self.root}
smtpd_banner = $myhostname ESMTP
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = error:this benchmark Postfix sends nothing anywhere
relay_transport = error:this benchmark Postfix sends nothing anywhere
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
message_size_limit = 52428800
virtual_mailbox_limit = 0
virtual_mailbox_domains = {" ".join(domains)}
virtual_mailbox_base = {self.root}/mail
virtual_mailbox_maps = texthash:{self.conf}/vmailbox
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = 1
"""

    def maildir(self, address: str) -> Path:
        local, _, domain = address.rpartition("@")
        return self.root / "mail" / domain / local

    def start(self) -> Postfix:
        if os.getuid() != 0:
            raise RuntimeError("Postfix's master runs only as root")
        self.conf.mkdir(parents=True, exist_ok=True)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        (self.root / "queue").mkdir(exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(mail, nobody.pw_uid, nobody.pw_gid)
        (self.conf / "main.cf").write_text(self.main_cf())
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        (self.conf / "vmailbox").write_text(
            "".join(f"{a} {a.rpartition('@')[2]}/{a.rpartition('@')[0]}/\n" for a in self.addresses)
        )
        self.root.chmod(0o755)  # postfix's daemons (mail_owner) walk into the queue below
        self._postfix("start")
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as sock:
                    if sock.recv(100).startswith(b"220"):
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def _postfix(self, *args: str) -> None:
        done = subprocess.run(
            ["postfix", "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)}: {done.stderr}\n{self.log()}")

    def master_pid(self) -> int | None:
        pid_file = self.root / "queue" / "pid" / "master.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def delivered(self, address: str) -> int:
        """Messages in the address's Maildir so far."""
        base = self.maildir(address)
        return sum(len(os.listdir(base / sub)) for sub in ("new", "cur") if (base / sub).is_dir())

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.master_pid() is not None:
            subprocess.run(
                ["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=60
            )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
