"""mailsuite beside Dovecot and Postfix, measured side by side in one sitting.

One command starts a private Dovecot (Debian's dovecot-imapd/pop3d, tests/dovecot.py), a
private Postfix (Debian's postfix, benchmarks/postfix.py) and `mailsuite serve`, all on
127.0.0.1 and reaching nothing else, fills both IMAP/POP3 servers with the same message files
(hard links of one set, so the bytes and file names are the same; the names carry the file
size S= and the CRLF size W= as Dovecot's own delivery writes them, without which Dovecot
reads a message and rewrites its dovecot-uidlist to learn its size), then runs each workload
against both, alternating which goes first, `--pairs` times, and prints one table: the peer's
figure, ours, and the ratio, with the load average at the start of each pair.

Ratios read the same way on every row: above 1 mailsuite is better (more per second, or less
time or memory), below 1 the peer is.

What "cold" means: the folder has never been opened by either server, so neither has an
index of it (a fresh folder per pair and server, hard links of the same files made just
before, checked to hold nothing else); the file metadata is in the OS cache for both.

Dovecot's passwords are bcrypt of the same cost as ours (BLF-CRYPT, `--bcrypt`) and its auth
cache is on (auth_cache_size 10M, TTL 5 min); with a passwd-file passdb that cache keeps the
stored hash, not a proof of the password, so Dovecot still runs bcrypt at every login (its
log shows a passdb lookup each time, and a login takes a bcrypt).
The POP3 mailboxes have cost-4 hashes on both sides, so "first PASS" is about the mailbox.

The IMAP load is our own asyncio generator that does what an IMAP load generator does:
`--clients` sessions (spread over `--load-processes` processes, so the generator is not what
runs out of CPU first) log in once, SELECT the `--messages` folder and stay, each sending one
command after the other, chosen at random: FETCH of flags and envelope, of two header fields,
of a whole message, UID SEARCH of a UID range for UNSEEN, NOOP; with STORE also +/-FLAGS
\\Flagged and APPEND of a small message to another folder. The generator runs on the same
machine; how much of a core it took is printed beside each run.

Rows (`--only` takes these group names, comma separated):
  imap     mixed load without and with STORE, commands/s; FETCH/STORE/APPEND p50 latency
  select   first SELECT of the big folder with no index; SELECT warm; UID SEARCH UNSEEN
  memory   PSS with the big folder open: our server (all its processes) vs Dovecot's imap
           process, and every process of each
  pop3     drain of `--pop3-messages` (plain; STLS with --stls); first PASS on a mailbox
  smtp     `--smtp-sessions` sessions, `--smtp-messages` of 10 KB, a new connection each,
           against Postfix (both fsync before 250)
  webmail  on `--web-messages` messages of about 21 KB: FETCH 1:* HEADER.FIELDS (DATE),
           SEARCH HEADER SUBJECT, SEARCH BODY (each once before the pairs, so both are warm)
  login    connect, LOGIN, LOGOUT cycles/s from 4 clients, the same right password; again
           with Dovecot checking a plain-text password, what its logins cost without bcrypt

Quick run (minutes): python benchmarks/compare.py --messages 5000 --pop3-messages 1000
    --smtp-messages 400 --web-messages 500 --seconds 3 --pairs 1
The full table: python benchmarks/compare.py  (as root: Postfix runs only as root)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path

import bcrypt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import imap_bench  # noqa: E402
import pop3_bench  # noqa: E402
import smtp_load  # noqa: E402
from postfix import Postfix  # noqa: E402

from mailsuite.passwords import hash_password_sync  # noqa: E402
from tests.conftest import Suite  # noqa: E402
from tests.dovecot import Dovecot  # noqa: E402

PASSWORD = "Bench-pass1"
DOMAIN = "example.test"
SMTP_RCPT = f"load@{DOMAIN}"
GROUPS = ("imap", "select", "memory", "pop3", "smtp", "webmail", "login")
WORDS = ("invoice", "meeting", "report", "holiday", "budget", "ticket", "order", "review")


# -- the messages ---------------------------------------------------------------------------


def web_message(i: int) -> bytes:
    """About 21 KB, as the webmail figures in the issue (2,000 messages of 42 MB)."""
    word = WORDS[i % len(WORDS)]
    paragraph = (
        f"Paragraph about the {WORDS[(i * 7) % len(WORDS)]} for customer {i % 313}; "
        "nothing else of note in this line of filler text.\r\n"
    )
    needle = "Please see the quarterly figures attached.\r\n" if i % 20 == 0 else ""
    body = paragraph * 150 + needle + paragraph * 50
    return (
        f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
        f"To: Bench <bench@{DOMAIN}>\r\n"
        f"Subject: {word.title()} number {i}\r\n"
        f"Date: Mon, 5 Jan 2026 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <web{i}@bench.example.org>\r\n\r\n{body}"
    ).encode()


class Pool:
    """One set of message files written once; folders of both servers are hard links to it."""

    def __init__(self, root: Path, name: str, make: Callable[[int], bytes], count: int) -> None:
        self.files: list[Path] = []
        folder = root / name
        folder.mkdir(parents=True)
        start = time.time() - count
        for i in range(count):
            data = make(i)
            flags = "S" if i % 10 else ""  # 90 % seen, so UNSEEN finds a tenth
            path = folder / f"{int(start) + i}.M{i}P1.bench,S={len(data)},W={len(data)}:2,{flags}"
            path.write_bytes(data)
            os.chmod(path, 0o644)  # Dovecot reads as nobody
            os.utime(path, (start + i, start + i))
            self.files.append(path)

    def link_into(self, maildir: Path) -> None:
        """Make `maildir` (cur/new/tmp) hold this pool's messages, all in cur/."""
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        cur = maildir / "cur"
        for path in self.files:
            os.link(path, cur / path.name)


# -- the servers ----------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(p) for p in task.read_text().split())
            except OSError:
                pass
    return found


def pss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += imap_bench.memory(pid)[0]
        except OSError:
            pass
    return total


@dataclass
class Side:
    """One server under test as the workloads see it."""

    name: str
    imap: int
    pop3: int
    smtp: int | None
    user: str  # the login of the account holding the big folder
    plain_user: str  # Dovecot: an account whose password is stored in plain text; ours: `user`
    pop_user: Callable[[int], str]  # the login of pair n's POP3 mailbox
    memory: Callable[[], float]  # MB PSS of what serves the open folder
    memory_all: Callable[[], float]  # MB PSS of every process of the server
    delivered: Callable[[], int]  # messages the SMTP recipient has in its Maildir
    cold_folder: Callable[[str], Path]  # makes a folder of the big set that nobody has opened


class Sites:
    """Starts Dovecot, Postfix and mailsuite and fills them; `close` stops all three."""

    def __init__(self, args: argparse.Namespace, groups: set[str]) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="compare-"))
        self.tmp.chmod(0o755)
        self.suite: Suite | None = None
        self.dovecot: Dovecot | None = None
        self.postfix: Postfix | None = None
        self.groups = groups

    def start(self) -> tuple[Side, Side]:
        args = self.args
        pairs = args.pairs
        pops = [f"pop{n}" for n in range(pairs)] if "pop3" in self.groups else []
        t = time.perf_counter()
        big = Pool(self.tmp / "pool", "big", imap_bench.message, args.messages)
        pop = Pool(self.tmp / "pool", "pop", pop3_bench.message, args.pop3_messages if pops else 0)
        web = Pool(
            self.tmp / "pool",
            "web",
            web_message,
            args.web_messages if "webmail" in self.groups else 0,
        )
        print(f"messages written in {time.perf_counter() - t:.1f} s", flush=True)

        cost = args.bcrypt
        strong = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost)).decode()
        cheap = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        self.dovecot = Dovecot(
            self.tmp / "dovecot",
            users=("bench", "plain", *pops),
            passwords={"bench": "{BLF-CRYPT}" + strong, "plain": "{PLAIN}" + PASSWORD}
            | {u: "{BLF-CRYPT}" + cheap for u in pops},
            extra="auth_cache_size = 10M\nauth_cache_ttl = 5 min\n"
            "mail_max_userip_connections = 1000\n",
        )
        dovecot = self.dovecot.start()

        off = {k: None for k in ("imaps", "pop3s", "submission", "submissions", "web")}
        connections = max(200, args.clients * 4, args.smtp_sessions * 4)
        self.suite = Suite(
            self.tmp / "mailsuite",
            {
                "listen": off,
                "log_level": "WARNING",
                "workers": args.workers if args.workers == "auto" else int(args.workers),
                "accounts": {"bcrypt_rounds": cost},
                "limits": {"connections": 2000, "connections_per_ip": connections},
                "imap": {"max_connections_per_user": connections},
            },
        )
        suite = self.suite
        directory = suite.directory
        directory.add_account(f"bench@{DOMAIN}", password_hash=strong)
        for user in pops:
            directory.add_account(f"{user}@{DOMAIN}", password_hash=cheap)
        directory.add_account(SMTP_RCPT, password_hash=hash_password_sync(PASSWORD, 4))

        t = time.perf_counter()
        for maildir, folder in (
            (dovecot.maildir("bench"), lambda name: dovecot.maildir("bench", name)),
            (
                suite.maildir(f"bench@{DOMAIN}"),
                lambda name: suite.maildir(f"bench@{DOMAIN}") / f".{name}",
            ),
        ):
            big.link_into(maildir)
            web.link_into(folder("Web"))
            for sub in ("cur", "new", "tmp"):
                folder("Sent").joinpath(sub).mkdir(parents=True, exist_ok=True)
        for user in pops:
            pop.link_into(dovecot.maildir(user))
            pop.link_into(suite.maildir(f"{user}@{DOMAIN}"))
        print(f"folders linked in {time.perf_counter() - t:.1f} s", flush=True)
        suite.start(timeout=120)

        if "smtp" in self.groups:
            self.postfix = Postfix(self.tmp / "postfix", (SMTP_RCPT,)).start()
        postfix = self.postfix
        assert suite.proc is not None
        serve_pid = suite.proc.pid
        ours = Side(
            "mailsuite",
            suite.port("imap"),
            suite.port("pop3"),
            suite.port("smtp"),
            f"bench@{DOMAIN}",
            f"bench@{DOMAIN}",
            lambda n: f"pop{n}@{DOMAIN}",
            lambda: pss_mb(descendants(serve_pid)),
            lambda: pss_mb(descendants(serve_pid)),
            lambda: maildir_count(suite.maildir(SMTP_RCPT)),
            lambda name: linked(big, suite.maildir(f"bench@{DOMAIN}") / f".{name}"),
        )
        assert dovecot.proc is not None
        master = dovecot.proc.pid
        peer = Side(
            "Dovecot",
            dovecot.ports["imap"],
            dovecot.ports["pop3"],
            postfix.port if postfix else None,
            "bench",
            "plain",
            lambda n: f"pop{n}",
            lambda: pss_mb([p for p in descendants(master) if comm(p) == "imap"]),
            lambda: pss_mb(descendants(master)),
            lambda: postfix.delivered(SMTP_RCPT) if postfix else 0,
            lambda name: linked(big, dovecot.maildir("bench", name)),
        )
        return peer, ours

    def close(self) -> None:
        if self.postfix is not None:
            self.postfix.stop()
        if self.suite is not None:
            self.suite.close()
        if self.dovecot is not None:
            self.dovecot.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def linked(pool: Pool, maildir: Path) -> Path:
    pool.link_into(maildir)
    return maildir


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def maildir_count(maildir: Path) -> int:
    return sum(len(os.listdir(maildir / s)) for s in ("new", "cur") if (maildir / s).is_dir())


# -- the workloads --------------------------------------------------------------------------


async def logged_in(side: Side, folder: str | None = None) -> imap_bench.Client:
    client = await imap_bench.Client.connect(side.imap)
    await client.cmd(f"LOGIN {side.user} {PASSWORD}")
    if folder:
        await client.cmd(f"SELECT {folder}")
    return client


async def timed(client: imap_bench.Client, command: str) -> float:
    started = time.perf_counter()
    await client.cmd(command)
    return time.perf_counter() - started


async def hits(client: imap_bench.Client, command: str) -> tuple[float, float]:
    """(seconds, how many numbers the SEARCH answered), so both servers' answers are compared."""
    started = time.perf_counter()
    lines = await client.cmd(command)
    took = time.perf_counter() - started
    found = [line for line in lines if line.startswith(b"* SEARCH")]
    return took, float(sum(len(line.split()) - 2 for line in found))


APPENDED = (
    "From: Bench <bench@example.test>\r\nTo: someone@example.org\r\n"
    "Subject: appended\r\n\r\n" + "A line of an appended message.\r\n" * 60
)


def imap_commands(rnd: random.Random, count: int, writes: bool) -> tuple[str, str]:
    """(kind, command) of the next command of one session of the mixed load."""
    i = rnd.randint(1, count)
    choices = [
        ("FETCH", f"FETCH {i} (UID FLAGS RFC822.SIZE ENVELOPE)"),
        ("FETCH", f"FETCH {i} BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]"),
        ("FETCH", f"FETCH {i} BODY.PEEK[]"),
        ("SEARCH", f"UID SEARCH UID {i}:{i + 50} UNSEEN"),
        ("NOOP", "NOOP"),
    ]
    if writes:
        choices += [
            ("STORE", f"STORE {i} +FLAGS.SILENT (\\Flagged)"),
            ("STORE", f"STORE {i} -FLAGS.SILENT (\\Flagged)"),
            ("APPEND", f"APPEND Sent {{{len(APPENDED)}+}}\r\n{APPENDED}"),
        ]
    return rnd.choice(choices)


@dataclass
class Share:
    """What one load-generator process runs: `clients` sessions of the mixed load."""

    port: int
    user: str
    first: int  # the number of its first session (seeds its random choices)
    clients: int
    count: int  # messages in the folder
    seconds: float
    writes: bool


async def run_share(share: Share, ready: Callable[[], None]) -> tuple[int, dict, float]:
    """Log the sessions in, say so, wait for the go, run; (commands, latencies, CPU s)."""
    clients = []
    for _ in range(share.clients):
        client = await imap_bench.Client.connect(share.port)
        await client.cmd(f"LOGIN {share.user} {PASSWORD}")
        await client.cmd("SELECT INBOX")
        clients.append(client)
    await asyncio.get_running_loop().run_in_executor(None, ready)
    kinds: dict[str, list[float]] = {}
    cpu = time.process_time()
    stop = time.perf_counter() + share.seconds

    async def session(n: int, client: imap_bench.Client) -> int:
        rnd = random.Random(n)
        done = 0
        while time.perf_counter() < stop:
            kind, command = imap_commands(rnd, share.count, share.writes)
            kinds.setdefault(kind, []).append(await timed(client, command))
            done += 1
        return done

    done = await asyncio.gather(*(session(share.first + n, c) for n, c in enumerate(clients)))
    cpu = time.process_time() - cpu
    for client in clients:
        await client.cmd("LOGOUT")
        await client.close()
    return sum(done), kinds, cpu


def share_process(share: Share, queue: multiprocessing.Queue, go: Event) -> None:
    def ready() -> None:
        queue.put("ready")
        go.wait()

    queue.put(asyncio.run(run_share(share, ready)))


def mixed(side: Side, args: argparse.Namespace, writes: bool) -> dict[str, float]:
    """commands/s of `args.clients` logged-in sessions spread over `--load-processes`
    processes that start together, the p50 ms per command kind, and the share of one core
    the load generator used meanwhile."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    go = context.Event()
    processes = max(1, min(args.load_processes, args.clients))
    sizes = [args.clients // processes + (i < args.clients % processes) for i in range(processes)]
    firsts = [sum(sizes[:i]) for i in range(processes)]
    workers = [
        context.Process(
            target=share_process,
            args=(
                Share(side.imap, side.user, first, size, args.messages, args.seconds, writes),
                queue,
                go,
            ),
        )
        for first, size in zip(firsts, sizes, strict=True)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if queue.get(timeout=300) != "ready":
            raise RuntimeError("a load process failed before the start")
    started = time.perf_counter()
    go.set()
    results = [queue.get(timeout=args.seconds + 300) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join(30)
    kinds: dict[str, list[float]] = {}
    for _, share_kinds, _ in results:
        for kind, values in share_kinds.items():
            kinds.setdefault(kind, []).extend(values)
    result = {
        "rate": sum(done for done, _, _ in results) / elapsed,
        "_cpu": sum(cpu for _, _, cpu in results) / elapsed * 100,
    }
    for kind, values in kinds.items():
        result[kind] = statistics.median(values) * 1000
    return result


def imap_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    plain = mixed(side, args, writes=False)
    writes = mixed(side, args, writes=True)
    print(
        f"  {side.name}: the load generator used {plain['_cpu']:.0f} % / {writes['_cpu']:.0f} %"
        " of one core (without / with STORE)",
        flush=True,
    )
    return {
        "mixed": plain["rate"],
        "mixed_store": writes["rate"],
        "lat_fetch": writes["FETCH"],
        "lat_store": writes["STORE"],
        "lat_append": writes["APPEND"],
    }


async def select_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    """The cold folder is made just before its SELECT: anything that opens every folder of a
    mailbox (an APPEND of ours, before, indexed them all) cannot have indexed it first."""
    folder = side.cold_folder(f"Cold{pair}")
    client = await logged_in(side)
    before = sorted(p.name for p in folder.iterdir() if p.name not in ("cur", "new", "tmp"))
    if before:
        print(f"  {side.name}: Cold{pair} is not cold, it holds {', '.join(before)}", flush=True)
    cold = await timed(client, f"SELECT Cold{pair}")
    warm = min([await timed(client, "SELECT INBOX") for _ in range(3)])
    unseen = [await hits(client, "UID SEARCH UNSEEN") for _ in range(3)]
    await client.cmd("LOGOUT")
    await client.close()
    return {
        "select_cold": cold,
        "select_warm": warm * 1000,
        "unseen": min(t for t, _ in unseen) * 1000,
        "_unseen_hits": unseen[0][1],
    }


async def memory_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    client = await logged_in(side, "INBOX")
    await client.cmd("UID SEARCH UNSEEN")
    await asyncio.sleep(0.5)
    used = {"memory": side.memory(), "memory_all": side.memory_all()}
    await client.cmd("LOGOUT")
    await client.close()
    return used


def pop3_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    user = side.pop_user(pair)
    client, first = pop3_bench.login(side.pop3, False, user, PASSWORD)
    client.close()
    result = {"pop3_pass": first * 1000}
    result["pop3_plain"] = pop3_bench.run(
        side.pop3, stls=False, window=1, user=user, password=PASSWORD
    )["msgs_s"]
    if args.stls:
        result["pop3_stls"] = pop3_bench.run(
            side.pop3, stls=True, window=1, user=user, password=PASSWORD
        )["msgs_s"]
    return result


async def smtp_message(port: int, n: int, size: int) -> None:
    """One message on a connection of its own, as MTAs out there send most mail."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await smtp_load.reply(reader)
        writer.write(b"EHLO load.remote.test\r\n")
        await smtp_load.reply(reader)
        writer.write(
            b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<" + SMTP_RCPT.encode() + b">\r\nDATA\r\n"
        )
        for expected in (b"250", b"250", b"354"):
            line = await smtp_load.reply(reader)
            if not line.startswith(expected):
                raise RuntimeError(f"message {n}: {line!r}")
        writer.write(smtp_load.message(n, size) + b".\r\n")
        line = await smtp_load.reply(reader)
        if not line.startswith(b"250"):
            raise RuntimeError(f"message {n}: {line!r}")
        writer.write(b"QUIT\r\n")
        await smtp_load.reply(reader)
    finally:
        writer.close()


def smtp_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    port = side.smtp
    assert port is not None
    before = side.delivered()
    total = args.smtp_messages
    shares = [range(i, total, args.smtp_sessions) for i in range(args.smtp_sessions)]

    async def session(numbers: range) -> None:
        for n in numbers:
            await smtp_message(port, n, 10 * 1024)

    async def load() -> None:
        await asyncio.gather(*(session(s) for s in shares))

    started = time.perf_counter()
    asyncio.run(load())
    rate = total / (time.perf_counter() - started)
    deadline = time.monotonic() + 120
    while side.delivered() - before < total and time.monotonic() < deadline:
        time.sleep(0.2)  # Postfix delivers after its 250: wait, so the pairs do not overlap
    landed = side.delivered() - before
    if landed != total:
        print(f"  {side.name}: {landed} of {total} messages landed", flush=True)
    return {"smtp": rate}


WEB_COMMANDS = {
    "web_fetch": "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (DATE)])",
    "web_subject": "SEARCH HEADER SUBJECT invoice",
    "web_body": "SEARCH BODY quarterly",
}


async def webmail_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    client = await logged_in(side, "Web")
    result = {}
    for row, command in WEB_COMMANDS.items():
        took, found = await hits(client, command)
        result[row] = took * 1000
        if command.startswith("SEARCH"):
            result[f"_{row}_hits"] = found
    await client.cmd("LOGOUT")
    await client.close()
    return result


async def login_cycles(side: Side, user: str, seconds: float) -> float:
    """connect, LOGIN, LOGOUT per second from 4 clients at once."""
    stop = time.perf_counter() + seconds

    async def cycles() -> int:
        done = 0
        while time.perf_counter() < stop:
            client = await imap_bench.Client.connect(side.imap)
            await client.cmd(f"LOGIN {user} {PASSWORD}")
            await client.cmd("LOGOUT")
            await client.close()
            done += 1
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(cycles() for _ in range(4)))
    return sum(counts) / (time.perf_counter() - started)


async def login_group(side: Side, pair: int, args: argparse.Namespace) -> dict[str, float]:
    return {
        "login": await login_cycles(side, side.user, args.login_seconds),
        "login_plain": await login_cycles(side, side.plain_user, args.login_seconds),
    }


async def warm_up(side: Side, args: argparse.Namespace, groups: set[str]) -> None:
    """What both servers do once before the pairs: open the big folder and fetch what the
    mixed load fetches of every message (without it Dovecot's session processes were several
    times slower here, filling its cache file as they went), open the webmail
    folder and run its commands, so "warm" rows are warm for both."""
    client = await logged_in(side, "INBOX")
    if "imap" in groups:
        await client.cmd(
            "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])"
        )
    if "webmail" in groups:
        await client.cmd("SELECT Web")
        for command in WEB_COMMANDS.values():
            await client.cmd(command)
    await client.cmd("LOGOUT")
    await client.close()


GROUP_RUNS: dict[str, Callable[[Side, int, argparse.Namespace], object]] = {
    "imap": imap_group,
    "select": select_group,
    "memory": memory_group,
    "pop3": pop3_group,
    "smtp": smtp_group,
    "webmail": webmail_group,
    "login": login_group,
}


# -- the table ------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    higher_is_better: bool
    peer: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        pairs = zip(self.ours, self.peer, strict=True)
        if self.higher_is_better:
            return [o / p if p else float("inf") for o, p in pairs]
        return [p / o if o else float("inf") for o, p in pairs]


def rows(args: argparse.Namespace) -> dict[str, Row]:
    n = f"{args.messages:,}"
    return {
        "mixed": Row(
            f"{args.clients} clients logged in (one SELECT), FETCH/SEARCH/NOOP, commands/s", True
        ),
        "mixed_store": Row("the same with STORE and APPEND, commands/s", True),
        "lat_fetch": Row("per-command latency there: FETCH p50, ms", False),
        "lat_store": Row("per-command latency there: STORE p50, ms", False),
        "lat_append": Row("per-command latency there: APPEND p50, ms", False),
        "select_cold": Row(f"first SELECT of a {n}-message folder with no index, s", False),
        "select_warm": Row(f"SELECT warm, {n}, ms", False),
        "unseen": Row(f"UID SEARCH UNSEEN, {n}, ms", False),
        "memory": Row(f"memory with a {n} folder open, MB PSS (Dovecot: its imap process)", False),
        "memory_all": Row("the same, every process of each server, MB PSS", False),
        "pop3_plain": Row(f"POP3 drain of {args.pop3_messages:,}, plain, msgs/s", True),
        "pop3_stls": Row(f"POP3 drain of {args.pop3_messages:,}, STLS, msgs/s", True),
        "pop3_pass": Row("POP3 first PASS on a mailbox, ms", False),
        "smtp": Row(
            f"SMTP, {args.smtp_sessions} sessions, {args.smtp_messages:,} x 10 KB, "
            "new connection per message, msgs/s (vs Postfix)",
            True,
        ),
        "web_fetch": Row(
            f"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (DATE)]), {args.web_messages:,} msgs, ms", False
        ),
        "web_subject": Row(f"SEARCH HEADER SUBJECT x, {args.web_messages:,} msgs, ms", False),
        "web_body": Row(f"SEARCH BODY x, {args.web_messages:,} msgs, ms", False),
        "login": Row(f"LOGIN cycles/s, bcrypt cost {args.bcrypt}, the same right password", True),
        "login_plain": Row(
            "the same, Dovecot's password in plain text (no hash at all), ours as above", True
        ),
    }


def spread(values: list[float]) -> str:
    def fmt(v: float) -> str:
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

    if not values:
        return ""
    low, high = min(values), max(values)
    return fmt(low) if len(values) == 1 or fmt(low) == fmt(high) else f"{fmt(low)}–{fmt(high)}"


def table(found: dict[str, Row]) -> str:
    lines = [
        "| workload | Dovecot / Postfix | mailsuite | ratio (>1: mailsuite better) "
        "| better in | load avg per pair |",
        "|---|---|---|---|---|---|",
    ]
    for row in found.values():
        if not row.ours:
            continue
        ratios = row.ratios()
        won = sum(1 for r in ratios if r > 1)
        lines.append(
            f"| {row.label} | {spread(row.peer)} | {spread(row.ours)} "
            f"| {statistics.median(ratios):.2f} ({spread(ratios)}) | {won} of {len(ratios)} "
            f"| {' / '.join(f'{x:.1f}' for x in row.loads)} |"
        )
    return "\n".join(lines)


def run(step: object) -> dict[str, float]:
    return asyncio.run(step) if asyncio.iscoroutine(step) else step  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(GROUPS), help="groups: " + ",".join(GROUPS))
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per group")
    parser.add_argument("--messages", type=int, default=100_000, help="the big folder")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument(
        "--load-processes", type=int, default=2, help="processes the IMAP clients are spread over"
    )
    parser.add_argument("--seconds", type=float, default=15, help="each mixed IMAP run")
    parser.add_argument("--pop3-messages", type=int, default=10_000)
    parser.add_argument("--stls", action="store_true", help="also drain POP3 after STLS")
    parser.add_argument("--smtp-messages", type=int, default=2_000)
    parser.add_argument("--smtp-sessions", type=int, default=20)
    parser.add_argument("--web-messages", type=int, default=2_000)
    parser.add_argument("--login-seconds", type=float, default=10)
    parser.add_argument("--bcrypt", type=int, default=12, help="bcrypt cost of both servers")
    parser.add_argument(
        "--workers", default="auto", help="mailsuite's `workers` (auto: one per core, as shipped)"
    )
    args = parser.parse_args()
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = groups - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {', '.join(sorted(unknown))}")
    if "smtp" in groups and os.getuid() != 0:
        parser.error("the smtp group starts Postfix, whose master runs only as root")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    found = rows(args)
    sites = Sites(args, groups)
    try:
        peer, ours = sites.start()
        for side in (peer, ours):
            asyncio.run(warm_up(side, args, groups))
        for group in (g for g in GROUPS if g in groups):
            for pair in range(args.pairs):
                load = os.getloadavg()[0]
                order = (peer, ours) if pair % 2 == 0 else (ours, peer)
                results = {side.name: run(GROUP_RUNS[group](side, pair, args)) for side in order}
                for key, value in results[ours.name].items():
                    if key.startswith("_"):  # an answer both servers must agree on
                        if value != results[peer.name][key]:
                            print(
                                f"  answers differ, {key}: peer {results[peer.name][key]:g}"
                                f", ours {value:g}",
                                flush=True,
                            )
                        continue
                    row = found[key]
                    row.ours.append(value)
                    row.peer.append(results[peer.name][key])
                    row.loads.append(load)
                shown = ", ".join(
                    f"{key} {results[peer.name][key]:.4g} / {value:.4g}"
                    for key, value in results[ours.name].items()
                    if not key.startswith("_")
                )
                print(
                    f"{group} pair {pair + 1} (load {load:.1f}), peer / ours: {shown}", flush=True
                )
    finally:
        sites.close()
    print()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"{os.uname().nodename}; Dovecot {version(['dovecot', '--version'])}, "
        f"Postfix {version(['postconf', '-d', '-h', 'mail_version'])}"
    )
    print(table(found))


def version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return done.stdout.strip().split()[0] if done.stdout.strip() else "?"


if __name__ == "__main__":
    main()
