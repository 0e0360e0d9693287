"""POP3 figures to set beside Dovecot's (/work/shared/BASELINES.md).

Starts the real `mailsuite serve` with a user whose INBOX holds N messages (10,000 of about
5 KB by default), then for plain POP3 and for POP3 after STLS: login, STAT, UIDL and RETR of
every message, one command at a time (as poplib, Thunderbird and Outlook do), and again with
RETRs pipelined (RFC 2449 PIPELINING). Prints msgs/s, MB/s, login time and RETR latency
percentiles. The first login after delivery also loads the folder's index into the server's
memory (the sizes come from the W= of the file names, no message is read); it is timed on
its own.

Usage: python benchmarks/pop3_bench.py [--messages N] [--window W] [--dovecot]

--dovecot runs the same client on the same mailbox against a private Dovecot
(tests/dovecot.py) afterwards, for a ratio measured under the same machine load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.store import Store
from tests.conftest import Suite

PASSWORD = "Secret123"
USER = "bench@example.test"


def message(i: int) -> bytes:
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "\r\n") * 4
    return (
        f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
        f"To: Bench <{USER}>\r\n"
        f"Subject: Benchmark message {i}\r\n"
        f"Date: Mon, 5 Jan 2026 10:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <{i}@bench.example.org>\r\n\r\n{body}"
    ).encode()


class Client:
    """A lean POP3 client (poplib reads line by line and would measure itself)."""

    def __init__(self, port: int, *, stls: bool) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port), timeout=60
        )
        self.buf = bytearray()
        self.line()
        if stls:
            self.sock.sendall(b"STLS\r\n")
            assert self.line().startswith(b"+OK")
            tls = ssl.create_default_context()
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
            self.sock = tls.wrap_socket(self.sock, server_hostname="mail.example.test")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        out = bytes(self.buf[: i + 2])
        del self.buf[: i + 2]
        return out

    def multi(self) -> bytes:
        """A multi-line body up to and without the terminating ".CRLF"."""
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                del self.buf[:3]
                return b""
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                out = bytes(self.buf[: i + 2])
                del self.buf[: i + 5]
                return out
            start = max(0, len(self.buf) - 4)
            self._fill()

    def cmd(self, text: bytes) -> bytes:
        self.sock.sendall(text + b"\r\n")
        reply = self.line()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{text!r}: {reply!r}")
        return reply

    def close(self) -> None:
        self.cmd(b"QUIT")
        self.sock.close()


def login(
    port: int, stls: bool, user: str = USER, password: str = PASSWORD
) -> tuple[Client, float]:
    started = time.perf_counter()
    client = Client(port, stls=stls)
    client.cmd(b"USER " + user.encode())
    client.cmd(b"PASS " + password.encode())
    return client, time.perf_counter() - started


def run(
    port: int, *, stls: bool, window: int, user: str = USER, password: str = PASSWORD
) -> dict[str, float]:
    """One full download: login, STAT, UIDL, RETR 1..n; nothing is deleted."""
    started = time.perf_counter()
    client, login_time = login(port, stls, user, password)
    count = int(client.cmd(b"STAT").split()[1])
    client.cmd(b"UIDL")
    assert len(client.multi().splitlines()) == count
    latencies: list[float] = []
    octets = 0
    if window <= 1:
        for n in range(1, count + 1):
            t = time.perf_counter()
            client.cmd(b"RETR %d" % n)
            octets += len(client.multi())
            latencies.append(time.perf_counter() - t)
    else:
        sent = 0
        for n in range(1, count + 1):
            while sent < min(count, n - 1 + window):
                sent += 1
                client.sock.sendall(b"RETR %d\r\n" % sent)
            if not client.line().startswith(b"+OK"):
                raise RuntimeError(f"RETR {n} failed")
            octets += len(client.multi())
    client.close()
    elapsed = time.perf_counter() - started
    result = {
        "messages": count,
        "seconds": elapsed,
        "msgs_s": count / elapsed,
        "mb_s": octets / elapsed / 1e6,
        "login_ms": login_time * 1000,
    }
    if latencies:
        latencies.sort()
        result["p50_ms"] = statistics.median(latencies) * 1000
        result["p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return result


def show(label: str, r: dict[str, float]) -> None:
    extra = f", RETR p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms" if "p99_ms" in r else ""
    print(
        f"{label:<34} {r['msgs_s']:8,.0f} msgs/s {r['mb_s']:6.1f} MB/s"
        f"  ({int(r['messages'])} in {r['seconds']:.2f} s, login {r['login_ms']:.1f} ms{extra})"
    )


def bench(label: str, port: int, window: int, user: str, password: str) -> None:
    for stls in (False, True):
        name = f"{label} {'STLS' if stls else 'plain'}"
        one = run(port, stls=stls, window=1, user=user, password=password)
        show(f"{name}, one at a time", one)
        many = run(port, stls=stls, window=window, user=user, password=password)
        show(f"{name}, {window} pipelined", many)


def against_dovecot(messages: int, window: int) -> None:
    """The same client and mailbox against Dovecot on this machine, at the same time of
    day: machines are noisy, so the ratio is the figure to compare."""
    from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
    from tests.dovecot import Dovecot

    if shutil.which("dovecot") is None:
        print("dovecot is not installed; no side-by-side figure")
        return
    with tempfile.TemporaryDirectory() as tmp:
        dovecot = Dovecot(Path(tmp), users=("bench",)).start()
        try:
            for i in range(messages):
                dovecot.put("bench", message(i))
            client, first = login(dovecot.ports["pop3"], False, "bench", DOVECOT_PASSWORD)
            client.close()
            print(f"Dovecot first login: {first * 1000:.0f} ms")
            bench("Dovecot", dovecot.ports["pop3"], window, "bench", DOVECOT_PASSWORD)
        finally:
            dovecot.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=32, help="RETRs in flight when pipelining")
    parser.add_argument(
        "--dovecot", action="store_true", help="also run the same load against Dovecot"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(Path(tmp), {"log_level": "WARNING"})
        suite.start()
        try:
            suite.add_user(USER, PASSWORD)
            store = Store(suite.config["paths"]["maildirs"], fsync=False)
            t = time.perf_counter()
            for i in range(args.messages):
                store.deliver([USER], message(i))
            print(f"delivered {args.messages} messages in {time.perf_counter() - t:.1f} s")
            port = suite.port("pop3")
            client, first = login(port, False)
            client.close()
            print(f"mailsuite first login (folder opened): {first * 1000:.0f} ms")
            bench("mailsuite", port, args.window, USER, PASSWORD)
        finally:
            suite.close()
    if args.dovecot:
        against_dovecot(args.messages, args.window)


if __name__ == "__main__":
    main()
