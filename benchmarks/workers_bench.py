"""IMAP throughput with one worker process against two (`workers: 1` / `workers: 2`).

Runs imap_bench.py's mixed load (S sessions logged in, FETCH/SEARCH/NOOP on random messages
of an N-message INBOX, with and without STORE) against the same Maildir served by one
worker, then two, alternating for R rounds, and prints each run's commands/s with the CPU
the load generator (this process) and the server processes took, then the median ratio.
The load generator runs on the same machine, so on two cores it competes with the workers
for them: its CPU share is printed beside every figure.

Usage: python benchmarks/workers_bench.py [--messages N] [--sessions S] [--seconds T]
       [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.imap_bench import PASSWORD, USER, mixed, populate
from tests.conftest import Suite

TICKS = os.sysconf("SC_CLK_TCK")


def server_pids(suite: Suite) -> list[int]:
    """The serve process and, with workers, each worker (from the ready file)."""
    assert suite.proc is not None
    ready = json.loads(suite.ready_file.read_text())
    return [suite.proc.pid, *(int(p) for p in ready.get("workers", {}).values())]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(suite: Suite, args: argparse.Namespace, writes: bool) -> tuple[float, float, list[float]]:
    """(commands/s, load generator CPU %, each server process's CPU %) of one mixed run;
    with workers the first process is the supervisor."""
    pids = server_pids(suite)
    servers, mine, started = list(map(cpu_seconds, pids)), own_cpu(), time.monotonic()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rate = asyncio.run(
            mixed(suite.port("imap"), args.sessions, args.seconds, args.messages, writes)
        )
    elapsed = time.monotonic() - started
    if rate is None:  # an imap_bench that only prints its figure
        rate = float(re.search(r"(\d+) commands/s", printed.getvalue()).group(1))  # type: ignore[union-attr]
    generator = (own_cpu() - mine) / elapsed * 100
    server = [
        (cpu_seconds(p) - before) / elapsed * 100 for p, before in zip(pids, servers, strict=True)
    ]
    return rate, generator, server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="workers-bench-"))
    off = {k: None for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "web")}
    suite = Suite(
        tmp,
        {
            "listen": off,
            "log_level": "WARNING",
            "throttle": {"max_failures_per_ip": 10**9, "max_failures_per_account": 10**9},
        },
    )
    suite.add_user(USER, PASSWORD)
    populate(suite, args.messages)
    print(
        f"{args.messages} messages, {args.sessions} sessions, {args.seconds:.0f} s per run, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start"
    )
    rates: dict[tuple[bool, int], list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for workers in (1, 2):
                suite.config["workers"] = workers
                suite.config_path.write_text(json.dumps(suite.config))
                suite.start()
                try:
                    for writes in (True, False):
                        rate, generator, server = run(suite, args, writes)
                        rates.setdefault((writes, workers), []).append(rate)
                        print(
                            f"round {round_ + 1} workers {workers} "
                            f"{'with' if writes else 'without'} STORE: {rate:7.0f} commands/s, "
                            f"load generator {generator:3.0f} % CPU, servers {sum(server):3.0f} % "
                            f"CPU ({' + '.join(f'{c:.0f}' for c in server)}), "
                            f"load average {os.getloadavg()[0]:.2f}"
                        )
                finally:
                    suite.stop()
        for writes in (True, False):
            one = statistics.median(rates[(writes, 1)])
            two = statistics.median(rates[(writes, 2)])
            print(
                f"median {'with' if writes else 'without'} STORE: 1 worker {one:.0f}, "
                f"2 workers {two:.0f} commands/s: {two / one:.2f}x"
            )
    finally:
        suite.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
