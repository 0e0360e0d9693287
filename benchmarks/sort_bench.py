"""SORT and THREAD on a large INBOX: mailsuite beside Dovecot, on the same messages, in one run.

The benchmark writes N messages (100,000 by default) with varied headers: subjects with
``Re:``/``Fwd:``/``[list]`` prefixes and RFC 2047 encoded Polish words, display names
(encoded, quoted, or none), dates in several zones, and Message-ID / In-Reply-To /
References chains (some truncated, some In-Reply-To only), so that THREAD=REFERENCES builds
real threads. The files go straight into a Maildir ``cur/``; Dovecot is given a copy of the
same files.

What the runs mean (say which with --delivered):

- default ("scanned"): neither server has seen the messages. SELECT (timed apart) builds
  each server's index; nothing else is cached, so the *first* SORT or THREAD of a key reads
  what it needs from the files on both sides (Dovecot adds the fields to its
  dovecot.index.cache then, mailsuite keeps its header blocks and sort keys);
- ``--delivered``: the messages reach mailsuite through its store's delivery (as SMTP and
  LMTP deliver), which keeps the header block and sort keys with each message's index row;
  Dovecot still gets plain files and starts with no cache. *first* is then the first SORT
  after delivery;
- *again*: the same command once more, in the same session, after every command has run
  once (both servers now answer from their caches; mailsuite keeps its last answers for an
  unchanged folder);
- *new*: a message is appended to the INBOX first (not timed), then the command: the
  answer has to be worked out again over the 1 + N messages, from the keys kept.

mailsuite works out every kind of key of a message at once, so only its first row that
reads headers (SUBJECT unless --only says otherwise) pays for reading them; Dovecot caches
each field as a command first needs it.

Each command runs on both servers, Dovecot first. Times are the client's round trip on
loopback, including reading the answer. The machine may be busy with other work: the load
average is printed. Only 127.0.0.1 is used.

    python benchmarks/sort_bench.py [--messages 100000] [--only subject,date,...] [--delivered]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailsuite.store import Store
from mailsuite.store.maildir import unique_key
from tests.conftest import Suite
from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot import Dovecot

USER = "sort@example.test"
PASSWORD = "Secret123"
COMMANDS = {
    "subject": "SORT (SUBJECT) UTF-8 ALL",
    "date": "SORT (REVERSE DATE) UTF-8 ALL",
    "from": "SORT (FROM) UTF-8 ALL",
    "display": "SORT (DISPLAYFROM) UTF-8 ALL",
    "references": "THREAD REFERENCES UTF-8 ALL",
    "orderedsubject": "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "esort": "SORT RETURN (COUNT MIN) (DATE) UTF-8 ALL",
}

RUNS = ("first", "again", "new")

FIRST = "Łukasz Paweł Żaneta Ścibor Ćwikła Agnieszka Grzegorz Małgorzata Zofia Jan".split()
LAST = "Żółtowski Wiśniewska Kowalski Dąbrowska Łęcki Nowak Smith Brzęczyszczykiewicz".split()
WORDS = "zażółć gęślą jaźń raport faktura spotkanie projekt budżet umowa wyjazd łódź".split()
WORDS += "meeting notes invoice release plan review draft budget".split()
LISTS = ["[dev]", "[ogłoszenia]", "[users]", "[PATCH]"]
ZONES = ["+0000", "+0100", "+0200", "-0500", "+0530", "GMT"]
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _q(data: bytes) -> str:
    # RFC 2047 4.2: "_" for a space; "=", "?", "_" and 8-bit octets as =XX
    return "".join(
        "_" if b == 32 else chr(b) if 33 <= b < 127 and b not in b"=?_" else f"={b:02X}"
        for b in data
    )


def encoded(text: str, rng: random.Random) -> str:
    """`text` as it might be written in a header: raw ASCII, or RFC 2047 Q or B words in
    UTF-8 or ISO-8859-2."""
    if text.isascii():
        return text
    kind = rng.random()
    if kind < 0.45:
        return f"=?UTF-8?Q?{_q(text.encode())}?="
    if kind < 0.8:
        return f"=?utf-8?B?{base64.b64encode(text.encode()).decode()}?="
    return f"=?iso-8859-2?q?{_q(text.encode('iso-8859-2'))}?="


def sender(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    addr = f"{first.lower().encode('ascii', 'ignore').decode()}{rng.randint(1, 300)}@example.org"
    kind = rng.random()
    if kind < 0.1:
        return addr
    if kind < 0.2:
        return f'"{last}, {first}" <{addr}>'.encode("ascii", "ignore").decode()
    return f"{encoded(first + ' ' + last, rng)} <{addr}>"


def corpus(count: int, seed: int = 15) -> list[bytes]:
    """`count` messages; about a third start a thread, the rest answer a recent one."""
    rng = random.Random(seed)
    out: list[bytes] = []
    threads: list[tuple[str, list[str]]] = []  # (subject, message IDs of the thread)
    start = 1_700_000_000
    for i in range(count):
        mid = f"<{i}.{rng.randrange(1 << 30):x}@bench.example.org>"
        refs: list[str] = []
        if threads and rng.random() < 0.65:
            subject, ids = threads[-1 - min(len(threads) - 1, int(rng.expovariate(0.05)))]
            parent = rng.randrange(len(ids))
            refs = ids[: parent + 1]
            ids.append(mid)
            prefix = rng.choice(["Re: ", "RE: ", "Re: Re: ", "Fwd: ", "Re:", "Odp: "])
            if subject.startswith("["):
                tag, _, rest = subject.partition(" ")
                shown = f"{prefix}{tag} {rest}" if rng.random() < 0.5 else f"{tag} {prefix}{rest}"
            else:
                shown = prefix + subject
        else:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
            subject = f"{words} {i}" if rng.random() < 0.7 else words
            if rng.random() < 0.2:
                subject = f"{rng.choice(LISTS)} {subject}"
            threads.append((subject, [mid]))
            shown = subject
        when = start + i * 60 + rng.randint(-86400, 86400)
        tm = time.gmtime(when)
        date = (
            f"{DAYS[tm.tm_wday]}, {tm.tm_mday} {MONTHS[tm.tm_mon - 1]} {tm.tm_year}"
            f" {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {rng.choice(ZONES)}"
        )
        head = [
            f"From: {sender(rng)}",
            f"To: Skrzynka <{USER}>",
            f"Subject: {encoded(shown, rng)}",
            f"Date: {date}",
            f"Message-ID: {mid}",
        ]
        if refs:
            head.append(f"In-Reply-To: {refs[-1]}")
            kept = refs[-rng.randint(1, 12) :] if rng.random() < 0.9 else []
            if kept:
                head.append("References: " + "\r\n ".join(kept))
        head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 200)))
        out.append(("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode())
    return out


class Client:
    """A blocking IMAP client for commands whose answers carry no literals."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.file.readline()

    def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"s%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        lines: list[bytes] = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return lines
            lines.append(line)

    def append(self, data: bytes) -> None:
        """APPEND to the INBOX with a synchronizing literal (RFC 3501 7.5)."""
        self.n += 1
        tag = b"s%d" % self.n
        self.sock.sendall(tag + b" APPEND INBOX {%d}\r\n" % len(data))
        if not self.file.readline().startswith(b"+"):
            raise RuntimeError("APPEND refused")
        self.sock.sendall(data + b"\r\n")
        while not (line := self.file.readline()).startswith(tag + b" "):
            if not line:
                raise ConnectionError("closed")
        if not line.startswith(tag + b" OK"):
            raise RuntimeError(f"APPEND: {line!r}")

    def close(self) -> None:
        self.cmd("LOGOUT")
        self.sock.close()


def timed(client: Client, text: str) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    lines = client.cmd(text)
    return time.perf_counter() - started, lines


def write_files(cur: Path, messages: list[bytes]) -> None:
    now = time.time() - len(messages)
    for i, data in enumerate(messages):
        path = cur / f"{unique_key(len(data), now + i)}:2,S"
        path.write_bytes(data)
        os.utime(path, (now + i, now + i))


def copy_maildir(source: Path, dovecot: Dovecot, user: str) -> None:
    """Dovecot's INBOX gets a copy of every message file, names kept, owned as it needs."""
    target = dovecot.maildir(user)
    owner = getattr(dovecot, "owner", None)
    for sub in ("cur", "new"):
        for path in sorted((source / sub).iterdir()):
            dest = target / "cur" / path.name
            if sub == "new":
                dest = target / "cur" / (path.name.split(":")[0] + ":2,")
            shutil.copyfile(path, dest)
            os.utime(dest, (path.stat().st_mtime,) * 2)
            if owner is not None and os.getuid() == 0:
                os.chown(dest, *owner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--only", default=",".join(COMMANDS), help="of: " + ",".join(COMMANDS))
    ap.add_argument("--delivered", action="store_true", help="deliver to mailsuite's store")
    args = ap.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    for name in chosen:
        if name not in COMMANDS:
            ap.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    started = time.perf_counter()
    messages = corpus(args.messages)
    tmp = Path(tempfile.mkdtemp(prefix="sort-bench-"))
    off = {k: None for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "web")}
    suite = Suite(tmp / "ms", {"listen": off, "log_level": "WARNING"})
    suite.add_user(USER, PASSWORD)
    store = Store(suite.config["paths"]["maildirs"], fsync=False)
    folder = store.mailbox(USER).folder("INBOX")  # makes the Maildir
    if args.delivered:
        for data in messages:
            store.deliver([USER], data)
    else:
        write_files(suite.maildir(USER) / "cur", messages)
    del store
    dovecot = Dovecot(tmp / "dc", users=("sort",))
    dovecot.start()
    copy_maildir(folder.path, dovecot, "sort")
    size = sum(map(len, messages)) / 1e6
    print(
        f"{args.messages} messages ({size:.0f} MB) written in"
        f" {time.perf_counter() - started:.0f} s;"
        f" run: {'delivered to mailsuite' if args.delivered else 'scanned by both'}"
    )
    suite.start(timeout=120)
    try:
        ours = Client(suite.port("imap"))
        ours.cmd(f"LOGIN {USER} {PASSWORD}")
        theirs = Client(dovecot.ports["imap"])
        theirs.cmd(f"LOGIN sort {DOVECOT_PASSWORD}")
        clients = {"dovecot": theirs, "mailsuite": ours}
        print(f"load average {os.getloadavg()[0]:.2f} at start")
        for name, c in clients.items():
            took, lines = timed(c, "SELECT INBOX")
            exists = [line for line in lines if line.endswith(b" EXISTS\r\n")]
            print(f"SELECT INBOX {name}: {took:.2f} s, {exists[0].decode().strip()}")
        results: dict[tuple[str, str, str], float] = {}
        answers: dict[tuple[str, str], int] = {}
        extra = corpus(len(chosen), seed=16)
        for run in RUNS:
            for n, key in enumerate(chosen):
                for name, c in clients.items():
                    if run == "new":
                        c.append(extra[n])
                    took, lines = timed(c, COMMANDS[key])
                    results[(key, run, name)] = took
                    answers[(key, name)] = sum(map(len, lines))
        print(f"load average {os.getloadavg()[0]:.2f} at end")
        print()
        print(f"{'command':46} {'run':6} {'Dovecot':>9} {'mailsuite':>10} {'ratio':>6}")
        for key in chosen:
            for run in RUNS:
                d = results[(key, run, "dovecot")]
                ms = results[(key, run, "mailsuite")]
                print(f"{COMMANDS[key]:46} {run:6} {d:8.3f}s {ms:9.3f}s {ms / d:6.2f}")
        print()
        print("answer sizes (bytes, Dovecot / mailsuite):")
        for key in chosen:
            d, ms = answers[(key, "dovecot")], answers[(key, "mailsuite")]
            print(f"  {COMMANDS[key]:44} {d:>9} {ms:>9}")
        for c in clients.values():
            c.close()
    finally:
        suite.close()
        dovecot.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
