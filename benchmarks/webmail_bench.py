"""Webmail-shaped IMAP commands, mailsuite beside Dovecot in the same run.

A webmail sorts by fetching one header of every message and searches on the server. Both
servers get the same N messages (2,000 by default, about 21 KB on average with one of
1.7 MB, Polish text in several encodings), delivered the way each takes mail (mailsuite's
store delivery; a file renamed into Dovecot's new/). Each command is run once to warm up,
then --rounds times against each server, alternating, and the median time per command (the
client's round trip on loopback) is printed with the ratio mailsuite / Dovecot and the load
average. Dovecot runs without its FTS plugin. The machine may be busy with other work.

    python benchmarks/webmail_bench.py [--messages 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.store import Store
from tests.conftest import Suite
from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot import Dovecot

USER = "web@example.test"
PASSWORD = "Secret123"
WORDS = "ala ma kota żółw zażółć gęślą jaźń raport faktura spotkanie projekt".split()
WORDS += "lorem ipsum dolor sit amet consectetur adipiscing elit sed do".split()


def message(i: int, rng: random.Random, plain: bool = False) -> bytes:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 400)))
    if i % 10 == 3:
        text += f" unikat{i}"
    head = (
        f"From: =?utf-8?q?Pawe=C5=82_{i % 37}?= <sender{i % 37}@example.org>\r\n"
        f"To: Web <{USER}>\r\nSubject: Temat {i} {rng.choice(WORDS)}\r\n"
        f"Date: Mon, {1 + i % 28} Jan 2026 10:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <{i}@bench.example.org>\r\nMIME-Version: 1.0\r\n"
    )
    if i == 7:
        size = 1_700_000  # one large message
    elif i % 10 < 3 and not plain:
        size = rng.randint(20_000, 100_000)  # an attachment: 21 KB a message on average
    else:
        size = 0
    if not size:
        return (
            head + "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n"
        ).encode()
    blob = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n").decode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n--b\r\n"
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + blob
        + "--b--\r\n"
    ).encode()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def commands(m: imaplib.IMAP4, big_uid: int) -> dict[str, Callable[[], object]]:
    def ok(typ_data: tuple[str, list]) -> None:
        assert typ_data[0] == "OK", typ_data

    return {
        "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (DATE)])": lambda: ok(
            m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (DATE)])")
        ),
        "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])": lambda: ok(
            m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
        ),
        "UID FETCH big (BODY.PEEK[HEADER.FIELDS (DATE)])": lambda: ok(
            m.uid("FETCH", str(big_uid), "(BODY.PEEK[HEADER.FIELDS (DATE)])")
        ),
        "SEARCH HEADER SUBJECT raport": lambda: ok(m.search(None, "HEADER", "SUBJECT", "raport")),
        "SEARCH FROM sender5": lambda: ok(m.search(None, "FROM", "sender5")),
        "SEARCH BODY unikat13": lambda: ok(m.search(None, "BODY", "unikat13")),
        "SEARCH TEXT faktura": lambda: ok(m.search(None, "TEXT", "faktura")),
    }


def three_at_once(connect: Callable[[], imaplib.IMAP4], needle: str) -> tuple[float, float]:
    """Three sessions send SEARCH BODY at the same moment while a fourth sends NOOPs: the
    slowest search's time and the slowest NOOP's."""
    sessions = [connect() for _ in range(3)]
    neighbour = connect()
    times: list[float] = []
    noops: list[float] = []
    start = threading.Barrier(4)
    done = threading.Event()

    def run(m: imaplib.IMAP4) -> None:
        start.wait()
        times.append(timed(lambda: m.search(None, "BODY", needle)))

    def noop() -> None:
        start.wait()
        while not done.is_set():
            noops.append(timed(neighbour.noop))

    threads = [threading.Thread(target=run, args=(m,)) for m in sessions]
    beside = threading.Thread(target=noop)
    beside.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    beside.join()
    for m in [*sessions, neighbour]:
        m.logout()
    return max(times), max(noops)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--plain", action="store_true", help="no attachments (for 100,000 messages)")
    args = ap.parse_args()
    rng = random.Random(14)
    corpus = [message(i, rng, args.plain) for i in range(args.messages)]
    total = sum(map(len, corpus))
    tmp = Path(tempfile.mkdtemp(prefix="webmail-bench-"))
    off = {k: None for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "web")}
    suite = Suite(tmp / "ms", {"listen": off, "log_level": "WARNING"})
    started = time.perf_counter()
    suite.add_user(USER, PASSWORD)
    store = Store(suite.config["paths"]["maildirs"], fsync=False)
    for data in corpus:
        store.deliver([USER], data)
    print(f"delivered to mailsuite in {time.perf_counter() - started:.1f} s")
    dovecot = Dovecot(tmp / "dc", users=("web",)).start()
    for data in corpus:
        dovecot.put("web", data)
    suite.start()
    try:

        def ours() -> imaplib.IMAP4:
            m = imaplib.IMAP4("127.0.0.1", suite.port("imap"))
            m.login(USER, PASSWORD)
            m.select("INBOX")
            return m

        def theirs() -> imaplib.IMAP4:
            m = imaplib.IMAP4("127.0.0.1", dovecot.ports["imap"])
            m.login("web", DOVECOT_PASSWORD)
            m.select("INBOX")
            return m

        clients = {"mailsuite": ours(), "dovecot": theirs()}
        cmds = {name: commands(m, 8) for name, m in clients.items()}
        # The first BODY search of a folder starts its full-text index and is answered from
        # the files; the build is timed, then everything is warmed up (Dovecot builds its
        # index and cache then) and measured.
        first = timed(cmds["mailsuite"]["SEARCH BODY unikat13"])
        built = time.monotonic()
        while timed(cmds["mailsuite"]["SEARCH BODY unikat13"]) > 0.5:
            assert time.monotonic() - built < 1800, "the full-text index was not built"
            time.sleep(0.5)
        print(
            f"first SEARCH BODY (files) {first:.2f} s; full-text index built"
            f" {time.monotonic() - built:.1f} s later"
        )
        for name in clients:
            for fn in cmds[name].values():
                fn()
        print(
            f"{args.messages} messages, {total / 1e6:.1f} MB; median of {args.rounds} rounds,"
            f" alternating; load average {os.getloadavg()[0]:.2f} at start"
        )
        print(f"{'command':55} {'Dovecot':>10} {'mailsuite':>10} {'ratio':>7}")
        for label in cmds["mailsuite"]:
            got: dict[str, list[float]] = {"mailsuite": [], "dovecot": []}
            for _ in range(args.rounds):
                for name in ("dovecot", "mailsuite"):
                    got[name].append(timed(cmds[name][label]))
            d, ms = statistics.median(got["dovecot"]), statistics.median(got["mailsuite"])
            print(f"{label:55} {d * 1000:8.1f}ms {ms * 1000:8.1f}ms {ms / d:6.2f}x")
        runs: dict[str, list[tuple[float, float]]] = {"mailsuite": [], "dovecot": []}
        for _ in range(args.rounds):
            runs["dovecot"].append(three_at_once(theirs, "spotkanie"))
            runs["mailsuite"].append(three_at_once(ours, "spotkanie"))
        for n, label in enumerate(
            ("three SEARCH BODY at once (slowest)", "the slowest NOOP of a session beside them")
        ):
            d = statistics.median(r[n] for r in runs["dovecot"])
            ms = statistics.median(r[n] for r in runs["mailsuite"])
            print(f"{label:55} {d * 1000:8.1f}ms {ms * 1000:8.1f}ms {ms / d:6.2f}x")
        print(f"load average {os.getloadavg()[0]:.2f} at end")
        for m in clients.values():
            m.logout()
    finally:
        suite.close()
        dovecot.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
