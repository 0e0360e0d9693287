"""IMAP figures to set beside Dovecot's (/work/shared/BASELINES.md).

Starts the real `mailsuite serve` (no TLS on loopback) with a user whose INBOX holds N
messages (100,000 by default), then prints:

- SELECT cold (first after start) and warm; LOGIN latency
- UID FETCH 1:* (UID FLAGS RFC822.SIZE), first and again, with the bytes sent
- UID SEARCH UNSEEN
- FETCH ENVELOPE + BODYSTRUCTURE of the last 100, first and again
- UID STORE +FLAGS (\\Seen) on 1,000 messages
- memory of the server process (PSS, peak RSS) with the mailbox open
- a mixed workload from many concurrent sessions (commands/s)
- 1,000 concurrent IDLE connections: memory per connection, push latency of one new message

Usage: python benchmarks/imap_bench.py [--messages N] [--sessions S] [--seconds T] [--idle I]
       [--only single,mixed,idle] [--select-share F] [--cold]

`--cold` leaves the folder without an index, so "SELECT cold" includes building it (a fresh
server process; the files are in the page cache, as they were just written).

`--select-share` makes that fraction of the mixed commands a SELECT or EXAMINE of the INBOX
(a client that reopens the folder often, like a webmail), which shows what opening costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.store import Store
from mailsuite.store.maildir import unique_key
from tests.conftest import Suite

PASSWORD = "Secret123"
USER = "bench@example.test"


def message(i: int) -> bytes:
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "\r\n") * 3
    return (
        f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
        f"To: Bench <{USER}>\r\n"
        f"Subject: Benchmark message {i}\r\n"
        f"Date: Mon, 5 Jan 2026 10:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <{i}@bench.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body}</p>\r\n--b--\r\n"
    ).encode()


def populate(suite: Suite, count: int, *, index: bool = True) -> float:
    """Write `count` messages straight into the Maildir (90 % seen), then index them once
    (with `index=False` the server's first SELECT builds the index: a cold SELECT)."""
    started = time.perf_counter()
    cur = suite.maildir(USER) / "cur"
    store = Store(suite.config["paths"]["maildirs"], fsync=False)
    store.mailbox(USER).folder("INBOX")  # creates the Maildir
    now = time.time() - count
    for i in range(count):
        data = message(i)
        letters = "S" if i % 10 else ""
        path = cur / f"{unique_key(len(data), now + i)}:2,{letters}"
        path.write_bytes(data)
        os.utime(path, (now + i, now + i))
    if index:
        folder = store.mailbox(USER).folder("INBOX")
        folder.sync()
        assert len(folder.messages()) == count
    else:
        folder_dir = suite.maildir(USER)
        for name in os.listdir(folder_dir):
            if name.startswith(("mailsuite-index.sqlite", "mailsuite-uids")):
                os.unlink(folder_dir / name)
    return time.perf_counter() - started


class Client:
    """A minimal asyncio IMAP client: tagged commands, whole responses, byte counts."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.n = 0
        self.received = 0

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        c = cls(reader, writer)
        await reader.readline()
        return c

    async def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"b%d" % self.n
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("closed")
            self.received += len(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                data = await self.reader.readexactly(int(m.group(1)))
                self.received += len(data)
                line += data
                continue_line = await self.reader.readline()
                self.received += len(continue_line)
                line += continue_line
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return lines

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def memory(pid: int) -> tuple[float, float]:
    """(PSS MiB, peak RSS MiB) of a process."""
    pss = 0.0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return pss, hwm


async def timed(coro) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    result = await coro
    return time.perf_counter() - t, result


async def single_session(port: int, pid: int, count: int) -> None:
    pss, _ = memory(pid)
    print(f"server memory, logged out             {pss:8.1f} MiB PSS")
    c = await Client.connect(port)
    t, _ = await timed(c.cmd(f"LOGIN {USER} {PASSWORD}"))
    print(f"LOGIN                                   {t * 1000:8.1f} ms")
    t, _ = await timed(c.cmd("SELECT INBOX"))
    print(f"SELECT cold                             {t:8.3f} s")
    c2 = await Client.connect(port)
    await c2.cmd(f"LOGIN {USER} {PASSWORD}")
    t, _ = await timed(c2.cmd("SELECT INBOX"))
    print(f"SELECT warm (second session)            {t:8.3f} s")
    t, _ = await timed(c2.cmd("SELECT INBOX"))
    print(f"SELECT warm (again)                     {t:8.3f} s")
    await c2.close()
    for label in ("first", "again"):
        before = c.received
        t, lines = await timed(c.cmd("UID FETCH 1:* (UID FLAGS RFC822.SIZE)"))
        size = (c.received - before) / 1e6
        print(
            f"UID FETCH 1:* (UID FLAGS RFC822.SIZE) {label:5} {t:8.3f} s"
            f"  ({len(lines) - 1} messages, {size:.1f} MB)"
        )
    t, lines = await timed(c.cmd("UID SEARCH UNSEEN"))
    print(f"UID SEARCH UNSEEN                       {t:8.3f} s  ({len(lines[0].split()) - 2} hits)")
    for label in ("first", "again"):
        t, _ = await timed(c.cmd(f"FETCH {count - 99}:{count} (ENVELOPE BODYSTRUCTURE)"))
        print(f"FETCH ENVELOPE BODYSTRUCTURE last 100 {label:5} {t:8.3f} s")
    t, _ = await timed(c.cmd("UID STORE 1:1000 +FLAGS.SILENT (\\Seen)"))
    print(f"UID STORE +FLAGS (\\Seen) 1,000          {t:8.3f} s")
    pss, hwm = memory(pid)
    print(f"server memory, mailbox open             {pss:8.1f} MiB PSS, {hwm:.1f} MiB peak RSS")
    await c.cmd("LOGOUT")
    await c.close()


async def mixed(
    port: int, sessions: int, seconds: float, count: int, writes: bool, select_share: float = 0.0
) -> float:
    """Each session: SELECT, then a loop of FETCH/STORE/SEARCH/NOOP on random messages;
    returns (and prints) commands/s.

    Without `writes` the STOREs are left out: flag changes are made durable (fsync) while the
    folder is locked, so the two runs show the protocol side and the storage side apart.
    `select_share` of the commands are SELECT or EXAMINE INBOX instead.
    """
    done = 0
    latencies: list[float] = []
    per_op: dict[str, list[float]] = {}
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        rnd = random.Random(n)
        c = await Client.connect(port)
        await c.cmd(f"LOGIN {USER} {PASSWORD}")
        await c.cmd("SELECT INBOX")
        readonly = False
        while time.perf_counter() < stop:
            i = rnd.randint(1, count)
            op = rnd.choice(["SELECT INBOX", "EXAMINE INBOX"])
            if rnd.random() >= select_share:
                op = rnd.choice(
                    [
                        *(
                            [
                                f"STORE {i} +FLAGS.SILENT (\\Flagged)",
                                f"STORE {i} -FLAGS.SILENT (\\Flagged)",
                            ]
                            if writes
                            else []
                        ),
                        f"FETCH {i} (FLAGS UID RFC822.SIZE ENVELOPE)",
                        f"FETCH {i} BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
                        f"FETCH {i} BODY.PEEK[]",
                        f"UID SEARCH UID {i}:{i + 50} UNSEEN",
                        "NOOP",
                    ]
                )
            if readonly and op.startswith("STORE"):
                op = "SELECT INBOX"  # STORE needs a read-write SELECT again
            readonly = op == "EXAMINE INBOX" or (readonly and op != "SELECT INBOX")
            t = time.perf_counter()
            await c.cmd(op)
            latencies.append(time.perf_counter() - t)
            per_op.setdefault(op.split()[0] + " " + op.split()[-1][:12], []).append(latencies[-1])
            done += 1
        await c.cmd("LOGOUT")
        await c.close()

    t = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(sessions)))
    elapsed = time.perf_counter() - t
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0
    selects = f", {select_share:.0%} SELECT/EXAMINE" if select_share else ""
    print(
        f"mixed {'with' if writes else 'without'} STORE{selects}, {sessions} sessions,"
        f" {seconds:.0f} s {done / elapsed:8.0f} commands/s"
        f"  (p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms)"
    )
    for name, values in sorted(per_op.items()):
        print(f"    {name:28} p50 {statistics.median(values) * 1000:7.1f} ms  n={len(values)}")
    return done / elapsed


async def idle_fanout(port: int, pid: int, count: int) -> None:
    """`count` sessions IDLE on one INBOX; one APPEND; how soon each hears EXISTS."""
    base_pss, _ = memory(pid)
    clients: list[Client] = []
    for _ in range(count):
        c = await Client.connect(port)
        await c.cmd(f"LOGIN {USER} {PASSWORD}")
        await c.cmd("EXAMINE INBOX")
        c.writer.write(b"i IDLE\r\n")
        await c.reader.readline()
        clients.append(c)
    pss, _ = memory(pid)
    print(
        f"{count} IDLE connections                   {(pss - base_pss) * 1024 / count:8.0f} KiB"
        f" PSS per connection"
    )
    sender = await Client.connect(port)
    await sender.cmd(f"LOGIN {USER} {PASSWORD}")

    async def wait_exists(c: Client) -> float:
        while True:
            line = await c.reader.readline()
            if line.endswith(b"EXISTS\r\n"):
                return time.perf_counter()

    waits = [asyncio.ensure_future(wait_exists(c)) for c in clients]
    t0 = time.perf_counter()
    await sender.cmd("APPEND INBOX {14+}\r\nSubject: new\r\n")
    done, pending = await asyncio.wait(waits, timeout=30)
    lat = sorted(w.result() - t0 for w in done)
    for w in pending:
        w.cancel()
    within5 = sum(1 for x in lat if x <= 5) / count * 100
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    print(
        f"push of one new message                 {within5:7.1f} % within 5 s"
        f"  (p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms)"
    )
    for c in clients:
        c.writer.close()
    await sender.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--only", default="single,mixed,idle", help="parts to run, comma-separated")
    ap.add_argument("--select-share", type=float, default=0.0)
    ap.add_argument(
        "--cold", action="store_true", help="no index before the first SELECT (it builds it)"
    )
    args = ap.parse_args()
    parts = set(args.only.split(","))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="imap-bench-"))
    off = {k: None for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "web")}
    suite = Suite(
        tmp,
        {
            "listen": off,
            "log_level": "WARNING",
            "limits": {"connections": args.idle + 100, "connections_per_ip": args.idle + 100},
            "imap": {"max_connections_per_user": args.idle + 100},
            # logins of many sessions at once reserve an attempt each before bcrypt
            "throttle": {"max_failures_per_ip": 10**9, "max_failures_per_account": 10**9},
        },
    )
    suite.add_user(USER, PASSWORD)
    took = populate(suite, args.messages, index=not args.cold)
    what = "files only, no index" if args.cold else "files + index"
    print(f"populated {args.messages} messages in {took:.1f} s ({what})")
    suite.start()
    try:
        assert suite.proc is not None
        pid = suite.proc.pid
        port = suite.port("imap")
        if "single" in parts:
            asyncio.run(single_session(port, pid, args.messages))
        if "mixed" in parts:
            for writes in (True, False):
                asyncio.run(
                    mixed(
                        port, args.sessions, args.seconds, args.messages, writes, args.select_share
                    )
                )
        if "idle" in parts:
            asyncio.run(idle_fanout(port, pid, args.idle))
        pss, hwm = memory(pid)
        print(f"server memory at the end                {pss:8.1f} MiB PSS, {hwm:.1f} MiB peak RSS")
    finally:
        suite.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
