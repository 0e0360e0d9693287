"""SMTP load: many concurrent sessions delivering to one local user, with fsync on.

Starts the real `mailsuite serve` in a temporary directory, opens `--sessions` SMTP sessions
to the MX listener and sends `--messages` messages of `--size` bytes to one user, each
session sending its share back to back (MAIL, RCPT and DATA pipelined, RFC 2920); with
`--reconnect` every message comes on a new connection (greeting, EHLO, transaction, QUIT), as
mail from many servers does. Prints accepted messages per second and the latency of each
transaction (MAIL sent to 250 after the data), then checks that every message is in the
Maildir exactly once.

`--postfix` runs the same load against a private Postfix (benchmarks/postfix.py, needs root)
right after, in the same sitting, and prints the ratio; `--rounds` alternates the two.

    python benchmarks/smtp_load.py [--sessions 20] [--messages 2000] [--size 10240]
        [--reconnect] [--workers auto] [--postfix] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO load.remote.test\r\n")
    await reply(reader)
    return reader, writer


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def session(
    port: int, numbers: list[int], size: int, latencies: list[float], *, reconnect: bool
) -> None:
    reader, writer = await connect(port)
    for i, n in enumerate(numbers):
        if reconnect and i:
            await hang_up(reader, writer)
            reader, writer = await connect(port)
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
    await hang_up(reader, writer)


async def load(
    port: int, sessions: int, messages: int, size: int, *, reconnect: bool
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [list(range(i, messages, sessions)) for i in range(sessions)]
    start = time.perf_counter()
    await asyncio.gather(
        *(session(port, share, size, latencies, reconnect=reconnect) for share in shares)
    )
    return time.perf_counter() - start, latencies


def landed(maildir: Path) -> tuple[int, bool]:
    """Files in the Maildir, and whether every message is there exactly once."""
    files = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    subjects = sorted(
        int(line.split(b" ")[2])
        for p in files
        for line in p.read_bytes().splitlines()
        if line.startswith(b"Subject: load ")
    )
    return len(files), subjects == list(range(len(files)))


def cpu_seconds(pids: list[int], *, reaped: bool = False) -> float:
    """User plus system CPU of processes (all their threads), from /proc; with `reaped`
    also what their children that have exited took (Postfix's smtpd, cleanup, virtual)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if reaped:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / tick


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def report(
    name: str, count: int, elapsed: float, latencies: list[float], files: int, cpu: float
) -> tuple[float, float]:
    """Print and return (msgs/s, CPU ms per message). The CPU figure is what the server
    itself spent, which a machine busy with other work disturbs far less than the rate."""
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rate = count / elapsed
    per = cpu * 1000 / count
    print(f"  {name:<9} accepted {rate:6.0f} msgs/s ({elapsed:.2f} s), p50 {p50:.1f} ms,")
    print(f"            p99 {p99:.1f} ms, server CPU {per:.2f} ms per message; {files} files")
    return rate, per


def run_mailsuite(args: argparse.Namespace) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="smtp-load-") as tmp:
        suite = Suite(
            Path(tmp),
            {
                "listen": {k: None for k in ("imap", "imaps", "pop3", "pop3s", "web")},
                "log_level": "WARNING",
                "limits": {"connections_per_ip": max(50, args.sessions)},
                "workers": args.workers,
            },
        )
        suite.start()
        try:
            suite.add_user(USER)
            assert suite.proc is not None
            before = server_cpu(suite.proc.pid)
            elapsed, latencies = asyncio.run(
                load(
                    suite.port("smtp"),
                    args.sessions,
                    args.messages,
                    args.size,
                    reconnect=args.reconnect,
                )
            )
            cpu = server_cpu(suite.proc.pid) - before
            files, once = landed(suite.maildir(USER))
        finally:
            suite.close()
    if not once or files != args.messages:
        sys.exit(f"mailsuite: {files} files, every message exactly once: {once}")
    return report("mailsuite", args.messages, elapsed, latencies, files, cpu)


def server_cpu(pid: int | None) -> float:
    """A server's CPU so far: the process, its workers or daemons, live or reaped."""
    if pid is None:
        return 0.0
    return cpu_seconds([pid], reaped=True) + cpu_seconds(children(pid))


def run_postfix(args: argparse.Namespace) -> tuple[float, float]:
    """The same load against a private Postfix; its 250 comes once the queue file is
    fsynced, and the Maildir delivery follows, which is waited for before counting."""
    from benchmarks.postfix import Postfix

    root = Path(tempfile.mkdtemp(prefix="smtp-load-postfix-"))
    peer = Postfix(root, (USER,)).start()
    try:
        before = server_cpu(peer.master_pid())
        elapsed, latencies = asyncio.run(
            load(peer.port, args.sessions, args.messages, args.size, reconnect=args.reconnect)
        )
        deadline = time.monotonic() + 120
        while peer.delivered(USER) < args.messages and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu = server_cpu(peer.master_pid()) - before
        files, once = landed(peer.maildir(USER))
    finally:
        peer.remove()
    if not once or files != args.messages:
        sys.exit(f"postfix: {files} files, every message exactly once: {once}")
    return report("postfix", args.messages, elapsed, latencies, files, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10 * 1024, help="bytes per message")
    parser.add_argument(
        "--reconnect", action="store_true", help="a new connection for every message"
    )
    parser.add_argument(
        "--workers", default="auto", help="mailsuite's `workers` (auto: one per core)"
    )
    parser.add_argument("--postfix", action="store_true", help="the same load against Postfix")
    parser.add_argument("--rounds", type=int, default=1, help="alternating pairs with --postfix")
    args = parser.parse_args()
    if args.workers != "auto":
        args.workers = int(args.workers)

    print(
        f"smtp_load: {args.messages} messages of {args.size} bytes, {args.sessions} sessions, "
        f"{'a new connection per message' if args.reconnect else 'connections kept'}, fsync on,"
        f" mailsuite workers: {args.workers}"
    )
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        ours, our_cpu = run_mailsuite(args)
        if args.postfix:
            theirs, their_cpu = run_postfix(args)
            print(
                f"  ratio     {ours / theirs:.2f} in msgs/s, {their_cpu / our_cpu:.2f} in CPU per"
                " message (mailsuite / Postfix; above 1 is mailsuite ahead)"
            )


if __name__ == "__main__":
    main()
