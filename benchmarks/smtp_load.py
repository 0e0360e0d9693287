"""SMTP load: many concurrent sessions delivering to one local user, with fsync on.

Starts the real `mailsuite serve` in a temporary directory, opens `--sessions` SMTP sessions
to the MX listener and sends `--messages` messages of `--size` bytes to one user, each
session sending its share back to back (MAIL, RCPT and DATA pipelined, RFC 2920). Prints
accepted messages per second and the latency of each transaction (MAIL sent to 250 after the
data), then checks that every message is in the Maildir exactly once.

For comparison: Postfix 3.7 delivers this load into a Maildir at 530-730 msgs/s on this
kind of machine.

    python benchmarks/smtp_load.py [--sessions 20] [--messages 2000] [--size 10240]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import Suite

USER = "load@example.test"


def message(n: int, size: int) -> bytes:
    head = (
        f"From: Load <sender@remote.test>\r\nTo: <{USER}>\r\n"
        f"Subject: load {n}\r\nMessage-ID: <load-{n}@remote.test>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopq\r\n"
    body = (line * (size // len(line) + 1))[: max(size - len(head), 0)]
    return head + body.rpartition(b"\r\n")[0] + b"\r\n"


async def reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def session(port: int, numbers: list[int], size: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO load.remote.test\r\n")
    await reply(reader)
    for n in numbers:
        start = time.perf_counter()
        writer.write(
            b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<" + USER.encode() + b">\r\nDATA\r\n"
        )
        for expected in (b"250", b"250", b"354"):
            line = await reply(reader)
            if not line.startswith(expected):
                raise RuntimeError(f"message {n}: {line!r}")
        writer.write(message(n, size) + b".\r\n")
        line = await reply(reader)
        if not line.startswith(b"250"):
            raise RuntimeError(f"message {n}: {line!r}")
        latencies.append(time.perf_counter() - start)
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def load(port: int, sessions: int, messages: int, size: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [list(range(i, messages, sessions)) for i in range(sessions)]
    start = time.perf_counter()
    await asyncio.gather(*(session(port, share, size, latencies) for share in shares))
    return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10 * 1024, help="bytes per message")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smtp-load-") as tmp:
        suite = Suite(
            Path(tmp),
            {
                "listen": {k: None for k in ("imap", "imaps", "pop3", "pop3s", "web")},
                "log_level": "WARNING",
                "limits": {"connections_per_ip": max(50, args.sessions)},
            },
        )
        suite.start()
        try:
            suite.add_user(USER)
            elapsed, latencies = asyncio.run(
                load(suite.port("smtp"), args.sessions, args.messages, args.size)
            )
            maildir = suite.maildir(USER)
            files = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
            subjects = sorted(
                int(line.split(b" ")[2])
                for p in files
                for line in p.read_bytes().split(b"\r\n")
                if line.startswith(b"Subject: load ")
            )
        finally:
            suite.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"smtp_load: {args.messages} messages of {args.size} bytes, {args.sessions} sessions, "
        "fsync on"
    )
    print(f"  accepted: {args.messages / elapsed:.0f} msgs/s ({elapsed:.2f} s)")
    print(f"  latency:  p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    landed = subjects == list(range(args.messages))
    print(f"  landed:   {len(files)} files in the Maildir; every message exactly once: {landed}")
    if not landed:
        sys.exit(1)


if __name__ == "__main__":
    main()
