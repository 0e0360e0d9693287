"""Store benchmark: durable deliveries per second, and opening a 100,000-message folder.

Prints the same quantities as the peer baselines (BASELINES.md) where they overlap:
deliveries into one Maildir with fsync (sequential, from several threads, and grouped by
`deliver_many` as SMTP does under load), and for a large INBOX the time and memory to open
it with no index yet (a fresh process builds it from the files, which are in the page cache
as they were just written), cold with its index (a fresh process) and warm, a full flags
listing (what `UID FETCH 1:* (UID FLAGS RFC822.SIZE)` needs), STATUS, a no-change sync and
`UID STORE +FLAGS (\\Seen)` on 1,000 messages; with `--concurrent N`, N unindexed copies of
it opened at once from N threads.

    python benchmarks/store_bench.py                 # everything, in a temporary directory
    python benchmarks/store_bench.py --messages 20000 --deliveries 500
    python benchmarks/store_bench.py --skip-deliveries --concurrent 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mailsuite.store import Store
from mailsuite.store import maildir as layout

USER = "bench@example.org"


def body(n: int, size: int) -> bytes:
    head = (
        f"From: sender{n % 97}@example.net\r\nTo: {USER}\r\nSubject: benchmark message {n}\r\n"
        f"Message-ID: <{n}.bench@example.net>\r\n\r\n"
    ).encode()
    return head + b"y" * max(0, size - len(head) - 2) + b"\r\n"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def bench_deliveries(root: Path, count: int, size: int, threads: int) -> None:
    store = Store(root, fsync=True)
    store.mailbox(USER)
    data = body(0, size)
    for label, workers in (("sequential", 1), (f"{threads} threads", threads)):
        latencies: list[float] = []
        lock = threading.Lock()
        per_worker = count // workers

        def work(
            latencies: list[float] = latencies, lock: threading.Lock = lock, n: int = per_worker
        ) -> None:
            mine = []
            for _ in range(n):
                t0 = time.perf_counter()
                store.deliver([USER], data)
                mine.append(time.perf_counter() - t0)
            with lock:
                latencies.extend(mine)

        started = time.perf_counter()
        pool = [threading.Thread(target=work) for _ in range(workers)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        done = per_worker * workers
        print(
            f"deliver fsync {label:>11}: {done} x {size // 1024} KB in {elapsed:.2f} s = "
            f"{done / elapsed:,.0f} msgs/s; latency p50 {statistics.median(latencies) * 1e3:.1f}"
            f" ms, p99 {percentile(latencies, 0.99) * 1e3:.1f} ms"
        )
    status = store.mailbox(USER).folder("INBOX").status()
    assert status.messages == count // threads * threads + count, status


def bench_batches(root: Path, count: int, size: int, threads: int, batch: int) -> None:
    """Group commit as SMTP does it: messages prepared (tmp/ written and fsynced) in the
    writers' threads, then linked `batch` at a time by deliver_many, one directory fsync and
    one index commit per batch. Latency is from a batch's first write to its commit."""
    store = Store(root, fsync=True)
    store.mailbox(USER)
    data = body(0, size)
    latencies: list[float] = []
    lock = threading.Lock()
    rounds = max(1, count // (threads * batch))

    def work() -> None:
        mine = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            items = [store.prepare([USER], data) for _ in range(batch)]
            results = store.deliver_many(items)
            assert all(isinstance(r, dict) for r in results), results
            mine.extend([time.perf_counter() - t0] * batch)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    done = rounds * threads * batch
    label = f"{threads} x batch {batch}"
    print(
        f"deliver_many fsync {label:>11}: {done} x {size // 1024} KB in {elapsed:.2f} s = "
        f"{done / elapsed:,.0f} msgs/s; latency p50 {statistics.median(latencies) * 1e3:.1f}"
        f" ms, p99 {percentile(latencies, 0.99) * 1e3:.1f} ms"
    )
    status = store.mailbox(USER).folder("INBOX").status()
    assert status.messages == done, status


def build_big_folder(root: Path, count: int, size: int) -> Path:
    """Write `count` message files straight into the Maildir (no fsync): a quarter unseen in
    new/, the rest in cur/ with assorted flags, as a long-lived INBOX looks."""
    store = Store(root, fsync=False)
    folder_dir = store.mailbox(USER).path
    started = time.time() - count
    letters = ["S", "S", "RS", "FS", "S", "", "DS", "ST"]
    for n in range(count):
        data = body(n, size)
        key = layout.unique_key(len(data), now=started + n)
        if n >= count * 3 // 4:
            path = folder_dir / "new" / key
        else:
            path = folder_dir / "cur" / layout.file_name(key, letters[n % len(letters)])
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (started + n, started + n))
    return folder_dir


OPEN_SCRIPT = """
import json, resource, sys, time, tracemalloc
def hwm():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm0 = hwm()
trace = sys.argv[3] == "trace"
if trace:
    tracemalloc.start()
t0 = time.perf_counter()
from mailsuite.store import Store
t1 = time.perf_counter()
store = Store(sys.argv[1])
folder = store.mailbox(sys.argv[2]).folder("INBOX")
t2 = time.perf_counter()
status = folder.status()
t3 = time.perf_counter()
messages = folder.messages()
t4 = time.perf_counter()
current, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
print(json.dumps({
    "import": t1 - t0, "open": t2 - t1, "status": t3 - t2, "load": t4 - t3,
    "count": len(messages), "status_count": status.messages,
    "traced_now": current, "traced_peak": peak,
    "rss_before": rss0, "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "hwm_before": hwm0, "hwm_peak": hwm(),
}))
"""


CONCURRENT_SCRIPT = """
import json, sys, threading, time
from mailsuite.store import Store
def hwm():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
def rss():
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
store = Store(sys.argv[1])
users = sys.argv[2:]
took = {}
def open_one(user):
    t0 = time.perf_counter()
    took[user] = (len(store.mailbox(user).folder("INBOX").messages()), time.perf_counter() - t0)
threads = [threading.Thread(target=open_one, args=(u,)) for u in users]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"each": [took[u] for u in users], "wall": time.perf_counter() - t0,
                  "hwm": hwm(), "rss": rss()}))
"""


def bench_concurrent_cold(root: Path, folder_dir: Path, count: int, folders: int) -> None:
    """`folders` users whose INBOX holds hard links of the big folder's files and no index,
    opened at once from as many threads of one fresh process (ten sessions' first SELECT of
    ten unindexed folders)."""
    users = [f"cold{n}@example.org" for n in range(folders)]
    store = Store(root, fsync=False)
    t0 = time.perf_counter()
    for user in users:
        target = store.mailbox(user).path
        for sub in ("cur", "new"):
            for name in os.listdir(folder_dir / sub):
                os.link(folder_dir / sub / name, target / sub / name)
        for name in os.listdir(target):
            if name.startswith((layout.INDEX_FILE, layout.JOURNAL_FILE)):
                os.unlink(target / name)
    print(f"setup: linked {folders} unindexed folders in {time.perf_counter() - t0:.1f} s")
    out = subprocess.run(
        [sys.executable, "-c", CONCURRENT_SCRIPT, str(root), *users],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    assert all(n == count for n, _ in r["each"]), r
    each = sorted(t for _, t in r["each"])
    print(
        f"{folders} unindexed folders opened at once (new process, {folders} threads):"
        f" each {each[0]:.2f}-{each[-1]:.2f} s (median {statistics.median(each):.2f}),"
        f" all done in {r['wall']:.2f} s; peak RSS {r['hwm'] / 1024:.0f} MiB,"
        f" RSS after {r['rss'] / 1024:.0f} MiB"
    )


def flags_listing(messages: list) -> tuple[int, float]:
    """Render `* n FETCH (UID u FLAGS (...) RFC822.SIZE s)` for every message."""
    t0 = time.perf_counter()
    out = []
    for seq, m in enumerate(messages, 1):
        flags = " ".join(sorted(m.flags))
        out.append(f"* {seq} FETCH (UID {m.uid} FLAGS ({flags}) RFC822.SIZE {m.size})\r\n")
    total = sum(len(line) for line in out)
    return total, time.perf_counter() - t0


def bench_big_folder(root: Path, count: int, size: int, concurrent: int) -> None:
    t0 = time.perf_counter()
    folder_dir = build_big_folder(root, count, size)
    print(f"setup: wrote {count:,} files of {size} B in {time.perf_counter() - t0:.1f} s")

    out = subprocess.run(
        [sys.executable, "-c", OPEN_SCRIPT, str(root), USER, "time"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    assert r["count"] == count, r
    print(
        f"open with no index (new process, files in the page cache): open (builds the index)"
        f" {r['open'] * 1e3:.0f} ms, STATUS {r['status'] * 1e3:.0f} ms, message list"
        f" {r['load'] * 1e3:.0f} ms, total {(r['open'] + r['status'] + r['load']) * 1e3:.0f} ms;"
        f" peak RSS (VmHWM) {r['hwm_before'] / 1024:.0f} -> {r['hwm_peak'] / 1024:.0f} MiB"
    )
    # Files written by "other software" (the set-up above) within the last clock-tick window
    # earn one confirming rescan once the window has passed; let it happen here, untimed.
    time.sleep(2.1)
    t0 = time.perf_counter()
    Store(root).mailbox(USER).folder("INBOX").sync()
    print(f"confirming rescan of {count:,} files: {time.perf_counter() - t0:.2f} s")

    for label, mode in (("cold", "time"), ("again", "time"), ("traced", "trace")):
        if label == "cold":
            drop_cache_hint(folder_dir)
        out = subprocess.run(
            [sys.executable, "-c", OPEN_SCRIPT, str(root), USER, mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out)
        assert r["count"] == count == r["status_count"], r
        if mode == "time":
            print(
                f"open {label} (new process): open {r['open'] * 1e3:.0f} ms,"
                f" STATUS {r['status'] * 1e3:.0f} ms, message list {r['load'] * 1e3:.0f} ms,"
                f" total {(r['open'] + r['status'] + r['load']) * 1e3:.0f} ms"
                f" (+ import {r['import'] * 1e3:.0f} ms); peak RSS (VmHWM)"
                f" {r['hwm_before'] / 1024:.0f} -> {r['hwm_peak'] / 1024:.0f} MiB,"
                f" ru_maxrss {r['rss_peak'] / 1024:.0f} MiB"
            )
        else:
            print(
                f"open memory (new process, tracemalloc): peak {r['traced_peak'] / 2**20:.1f}"
                f" MiB, held after open {r['traced_now'] / 2**20:.1f} MiB"
            )

    store = Store(root)
    t0 = time.perf_counter()
    folder = store.mailbox(USER).folder("INBOX")
    messages = folder.messages()
    t1 = time.perf_counter()
    print(f"open warm (new Store, same process): {(t1 - t0) * 1e3:.0f} ms")
    t0 = time.perf_counter()
    changes = folder.sync()
    messages = folder.messages()
    t1 = time.perf_counter()
    assert changes == []
    print(f"re-SELECT of the open folder (sync + message list): {(t1 - t0) * 1e3:.1f} ms")
    t0 = time.perf_counter()
    for _ in range(100):
        folder.sync()
    print(f"sync with nothing changed: {(time.perf_counter() - t0) * 1e4:.0f} µs")

    for label in ("first", "again"):
        total, elapsed = flags_listing(folder.messages() if label == "again" else messages)
        print(
            f"flags listing {label}: {count:,} messages, {total / 1e6:.1f} MB of FETCH lines"
            f" in {elapsed * 1e3:.0f} ms"
        )
    t0 = time.perf_counter()
    status = folder.status()
    print(f"STATUS (loaded folder): {(time.perf_counter() - t0) * 1e3:.1f} ms -> {status}")
    unseen = [m.uid for m in messages if "\\Seen" not in m.flags][:1000]
    t0 = time.perf_counter()
    folder.store_flags(unseen, ["\\Seen"], "add")
    elapsed = time.perf_counter() - t0
    print(f"STORE +FLAGS (\\Seen) on {len(unseen)} messages: {elapsed * 1e3:.0f} ms")
    t0 = time.perf_counter()
    uid = folder.append(body(0, size))
    print(f"APPEND into the big folder (fsync): {(time.perf_counter() - t0) * 1e3:.1f} ms")
    t0 = time.perf_counter()
    folder.expunge([uid])
    print(f"EXPUNGE of one message: {(time.perf_counter() - t0) * 1e3:.1f} ms")
    if concurrent:
        bench_concurrent_cold(root, folder_dir, count, concurrent)


def drop_cache_hint(folder_dir: Path) -> None:
    """Ask the kernel to forget the index's pages so 'cold' is cold (ignored when not root)."""
    for name in (layout.INDEX_FILE, layout.INDEX_FILE + "-wal"):
        path = folder_dir / name
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--deliveries", type=int, default=2000, help="messages per delivery run")
    parser.add_argument("--size", type=int, default=10 * 1024, help="delivery message size (B)")
    parser.add_argument("--threads", type=int, default=8, help="threads for the parallel run")
    parser.add_argument("--batch", type=int, default=20, help="messages per deliver_many")
    parser.add_argument("--messages", type=int, default=100_000, help="size of the big folder")
    parser.add_argument("--big-size", type=int, default=600, help="message size in it (B)")
    parser.add_argument(
        "--concurrent", type=int, default=0, help="also open this many unindexed copies at once"
    )
    parser.add_argument("--skip-deliveries", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()

    work = args.root or Path(tempfile.mkdtemp(prefix="store-bench-"))
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, work dir {work}")
        if not args.skip_deliveries:
            bench_deliveries(work / "deliveries", args.deliveries, args.size, args.threads)
            bench_batches(work / "batches", args.deliveries, args.size, args.threads, args.batch)
        if not args.skip_big:
            bench_big_folder(work / "big", args.messages, args.big_size, args.concurrent)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"benchmark process peak RSS: {rss:.0f} MiB")
    finally:
        if args.root is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
