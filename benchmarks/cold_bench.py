"""Ten sessions opening ten folders that have no index yet, and what a bystander notices.

Starts the real `mailsuite serve` with `--folders` users whose INBOX holds the same
`--messages` files (hard links of one set) and no index, and one more user with a small
INBOX. The bystander SELECTs its INBOX and sends NOOP every 10 ms for the whole run; then
every other user logs in and SELECTs at the same moment, so the server builds all the
indexes at once. Prints each SELECT's time, the server's memory before and after (PSS and
peak RSS), and the bystander's NOOP latency (p50, p99, max) while the builds ran.

"Cold" here means no index file, a fresh server process, and the message files in the page
cache as they were just written.

Usage: python benchmarks/cold_bench.py [--messages N] [--folders F] [--from MAILDIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import imap_bench

from mailsuite.store import Store
from mailsuite.store.maildir import INDEX_FILE, JOURNAL_FILE, unique_key
from tests.conftest import Suite

PASSWORD = imap_bench.PASSWORD
BYSTANDER = "bystander@example.test"


def users(count: int) -> list[str]:
    return [f"cold{n}@example.test" for n in range(count)]


def populate(suite: Suite, count: int, folders: int, source: Path | None) -> int:
    """One set of `count` files (90 % seen), or the files of the Maildir `source`,
    hard-linked into every user's INBOX; no index. Returns how many messages each holds."""
    store = Store(suite.config["paths"]["maildirs"], fsync=False)
    names = users(folders)
    first = store.mailbox(names[0]).path
    if source is None:
        now = time.time() - count
        for i in range(count):
            data = imap_bench.message(i)
            letters = "S" if i % 10 else ""
            path = first / "cur" / f"{unique_key(len(data), now + i)}:2,{letters}"
            path.write_bytes(data)
            os.utime(path, (now + i, now + i))
        source, targets = first, names[1:]
    else:
        targets = names
    files = [(sub, name) for sub in ("cur", "new") for name in os.listdir(source / sub)]
    for user in targets:
        target = store.mailbox(user).path
        for sub, name in files:
            os.link(source / sub / name, target / sub / name)
    for user in names:
        folder_dir = store.mailbox(user).path
        for name in os.listdir(folder_dir):
            if name.startswith((INDEX_FILE, JOURNAL_FILE)):
                os.unlink(folder_dir / name)
    for i in range(20):
        store.deliver([BYSTANDER], b"Subject: %d\r\n\r\nhello\r\n" % i)
    return len(files)


async def run(port: int, pid: int, folders: int) -> None:
    pss, hwm = imap_bench.memory(pid)
    print(f"server memory before: {pss:.1f} MiB PSS, {hwm:.1f} MiB peak RSS")
    bystander = await imap_bench.Client.connect(port)
    await bystander.cmd(f"LOGIN {BYSTANDER} {PASSWORD}")
    await bystander.cmd("SELECT INBOX")
    clients = []
    for user in users(folders):
        c = await imap_bench.Client.connect(port)
        await c.cmd(f"LOGIN {user} {PASSWORD}")
        clients.append(c)
    done = asyncio.Event()
    noops: list[float] = []

    async def keep_polling() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await bystander.cmd("NOOP")
            noops.append(time.perf_counter() - t)
            await asyncio.sleep(0.01)

    async def select(c: imap_bench.Client) -> float:
        t = time.perf_counter()
        await c.cmd("SELECT INBOX")
        return time.perf_counter() - t

    poller = asyncio.ensure_future(keep_polling())
    t0 = time.perf_counter()
    took = await asyncio.gather(*(select(c) for c in clients))
    wall = time.perf_counter() - t0
    done.set()
    await poller
    pss, hwm = imap_bench.memory(pid)
    each = sorted(took)
    print(
        f"{folders} SELECTs of unindexed folders at once: each {each[0]:.2f}-{each[-1]:.2f} s"
        f" (median {statistics.median(each):.2f}), all done in {wall:.2f} s"
    )
    print(f"server memory after: {pss:.1f} MiB PSS, {hwm:.1f} MiB peak RSS")
    noops.sort()
    p99 = noops[min(len(noops) - 1, int(len(noops) * 0.99))]
    print(
        f"bystander NOOP meanwhile: {len(noops)} commands, p50"
        f" {statistics.median(noops) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms,"
        f" max {noops[-1] * 1e3:.1f} ms"
    )
    for c in [bystander, *clients]:
        await c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--folders", type=int, default=10)
    ap.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="link the files of this Maildir instead of writing --messages new ones",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cold-bench-"))
    off = {k: None for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "web")}
    suite = Suite(tmp, {"listen": off, "log_level": "WARNING"})
    for user in [*users(args.folders), BYSTANDER]:
        suite.add_user(user, PASSWORD)
    t0 = time.perf_counter()
    count = populate(suite, args.messages, args.folders, args.source)
    print(
        f"populated {args.folders} unindexed folders of {count} messages (hard links)"
        f" in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    suite.start()
    try:
        assert suite.proc is not None
        asyncio.run(run(suite.port("imap"), suite.proc.pid, args.folders))
    finally:
        suite.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
