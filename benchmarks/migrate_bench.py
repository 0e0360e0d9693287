"""Import throughput: a 10,000-message mailbox copied from Dovecot over IMAP.

A private Dovecot (the same one the tests start, from its own config in a temporary
directory) serves a Maildir filled with messages of mixed sizes; the importer copies them
into a fresh store and directory exactly as `mailsuite migrate import` does, fsync included.
Prints messages/s, KB/s and the per-message latency; then runs again to time the no-op re-run.

    python benchmarks/migrate_bench.py [--messages 10000] [--seed 1]

For comparison, imapsync's published mean is about 340 KB/s per sync.
"""

from __future__ import annotations

import argparse
import itertools
import mailbox
import random
import statistics
import sys
import tempfile
import time
from datetime import date
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.directory import Directory
from mailsuite.migrate.plan import import_user
from mailsuite.store import Store
from tests.test_migrate_remote import Dovecot

SIZES = [800, 2_000, 4_000, 8_000, 16_000, 40_000, 120_000]  # bytes, roughly a real inbox
WEIGHTS = [10, 25, 25, 20, 12, 6, 2]


def fill(box: mailbox.Maildir, count: int, rng: random.Random) -> int:
    total = 0
    start = time.mktime((2006, 8, 1, 0, 0, 0, 0, 0, -1))
    words = "konto przelew saldo wyciąg hasło bank lokata karta odsetki".split()
    for n in range(count):
        size = rng.choices(SIZES, WEIGHTS)[0]
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        body = (line * (size // len(line.encode()) + 1)).encode()[:size]
        head = (
            f"From: bank@old.example\nTo: user@old.example\nSubject: wyciąg {n}\n"
            f"Date: {formatdate(start + n * 600)}\nMessage-ID: <bench-{n}@old.example>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\n"
        ).encode()
        m = mailbox.MaildirMessage(head + body)
        m.set_subdir("cur")
        m.set_flags(rng.choice(["", "S", "S", "RS", "FS"]))
        box.add(m)
        total += len(head) + len(body)
    return total


def run(store: Store, directory: Directory, url: str) -> tuple[float, list[float], object]:
    stamps: list[float] = []
    start = time.perf_counter()
    summary = import_user(
        store,
        directory,
        "bench@example.test",
        url,
        date(2006, 8, 1),
        advance=lambda n: stamps.append(time.perf_counter()),
    )
    elapsed = time.perf_counter() - start
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return elapsed, gaps, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    server = Dovecot()
    try:
        size = fill(server.maildir("olduser"), args.messages, random.Random(args.seed))
        server.start()
        with tempfile.TemporaryDirectory(prefix="migrate-bench-") as tmp:
            directory = Directory(Path(tmp) / "directory.sqlite", ["example.test"])
            directory.add_account("bench@example.test", password_hash=None)
            store = Store(Path(tmp) / "maildirs")
            url = server.url("imap", "olduser")
            print(f"source: Dovecot over IMAP on loopback, {args.messages} messages, "
                  f"{size / 1024:.0f} KB (mean {size / args.messages / 1024:.1f} KB)")  # fmt: skip
            elapsed, gaps, summary = run(store, directory, url)
            assert summary.copied == args.messages, summary
            kbs = summary.bytes / 1024 / elapsed
            print(f"import:  {summary.copied} copied in {elapsed:.1f} s: "
                  f"{summary.copied / elapsed:.0f} msgs/s, {kbs:.0f} KB/s "
                  f"({kbs / 340:.1f}x imapsync's published 340 KB/s)")  # fmt: skip
            if gaps:
                q = statistics.quantiles(gaps, n=100)
                print(f"latency per message: p50 {q[49] * 1000:.2f} ms, "
                      f"p99 {q[98] * 1000:.2f} ms, max {max(gaps) * 1000:.2f} ms")  # fmt: skip
            elapsed, _, summary = run(store, directory, url)
            assert summary.copied == 0 and summary.duplicates == args.messages, summary
            print(f"re-run:  {summary.duplicates} skipped as duplicates in {elapsed:.1f} s: "
                  f"{summary.duplicates / elapsed:.0f} msgs/s")  # fmt: skip
            directory.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
