"""`mailsuite serve`: starts what the config lists, refuses bad configs, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .conftest import DEFAULT_PASSWORD, ROOT, Suite


def demo_copy(tmp: Path) -> Path:
    """The shipped demo config, moved to `tmp` with every port set to 0 (so tests never
    collide with a demo someone is running); paths stay relative, as shipped."""
    config = yaml.safe_load((ROOT / "config" / "mailsuite.yaml").read_text())
    config["listen"] = {
        key: f"{value.rpartition(':')[0]}:0" for key, value in config["listen"].items()
    }
    target = tmp / "config" / "mailsuite.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(yaml.safe_dump(config))
    return target


def test_demo_config_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    ready = tmp_path / "ready.json"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailsuite",
                "serve",
                "--config",
                str(config),
                "--ready-file",
                str(ready),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # The certificate was generated next to the config, as the demo promises.
        assert (tmp_path / "var" / "tls" / "cert.pem").exists()
        assert (tmp_path / "var" / "tls" / "key.pem").stat().st_mode & 0o077 == 0
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    text = log.read_text()
    assert "mailsuite ready" in text and "stopped" in text
    assert "Traceback" not in text


def test_every_listener_accepts_connections(suite: Suite) -> None:
    assert set(suite.ports) - {"pid"}, "no listener started"
    for port in suite.ports.values():
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_invalid_config_is_refused_with_the_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hostname: mail.example.test\ndomains: [example.test]\nlisten: {imap: x}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mailsuite", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{bad}:3: listen.imap:" in result.stderr


def test_port_in_use_names_the_listener(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "m.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "hostname": "mail.example.test",
                    "domains": ["example.test"],
                    "listen": {"pop3": f"127.0.0.1:{port}"},
                    "tls": {"self_signed": True},
                    "paths": {"maildirs": "m", "database": "d.sqlite"},
                }
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "mailsuite", "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"listen.pop3: cannot listen on 127.0.0.1:{port}" in result.stderr


# Two servers on one loop in one process, as `serve` builds and stops each; run in a child so
# that Twisted's reactor is installed once, into that loop. Prints what each server holds.
TWO_SERVERS = r"""
import asyncio, imaplib, json, poplib, sys
from pathlib import Path

from mailsuite.config import load_config
from mailsuite.fetcher.service import FetcherService
from mailsuite.imap.view import snapshots_of
from mailsuite.pop3.maildrop import POP3, pop3_state
from mailsuite.serve import _install_reactor, build_context, release_context, start_services
from mailsuite.serve import stop_services
from mailsuite.smtp.outgoing import on_enqueue, outgoing_of, spool_of, wake_queue

USER, PASSWORD = sys.argv[3], sys.argv[4]


def pop3_login(port):
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    client.user(USER)
    client.pass_(PASSWORD)
    return client


def pop3_refused(port):
    try:
        pop3_login(port).quit()
    except poplib.error_proto as exc:
        return exc.args[0].decode()
    return None


def imap_select(port):
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as client:
        client.login(USER, PASSWORD)
        return client.select("INBOX")[0]


async def main():
    loop = asyncio.get_running_loop()
    _install_reactor(loop)
    a, b = (build_context(load_config(Path(p)), Path(p), loop) for p in sys.argv[1:3])
    a.services = await start_services(a)
    b.services = await start_services(b)
    port = lambda ctx, name: ctx.services[name].address[1]
    woken = []
    on_enqueue(b, lambda: woken.append("b"))
    wake_queue(a)
    held = await asyncio.to_thread(pop3_login, port(a, "pop3"))
    on_b = await asyncio.to_thread(pop3_login, port(b, "pop3"))
    facts = {
        "second login on A": await asyncio.to_thread(pop3_refused, port(a, "pop3")),
        "A and B share a spool": spool_of(a) is spool_of(b),
        "A's spool is under its paths.spool": spool_of(a).root == a.settings.paths.spool,
        "waking A's queue woke B's": woken,
        "A and B share group commits": outgoing_of(a).groups is outgoing_of(b).groups,
        "A and B share POP3 locks": pop3_state(a).locks is pop3_state(b).locks,
        "SELECT on A": await asyncio.to_thread(imap_select, port(a, "imap")),
        "SELECT on B": await asyncio.to_thread(imap_select, port(b, "imap")),
        "A and B share snapshots": snapshots_of(a) is snapshots_of(b),
        "A's fetcher handle": type(a.fetcher).__name__,
        "A's handle is its running fetcher": a.fetcher is a.services["fetcher"],
        "A and B share a fetcher": a.fetcher is b.fetcher,
    }
    assert isinstance(a.fetcher, FetcherService) and isinstance(b.fetcher, FetcherService)
    await asyncio.to_thread(held.quit)
    await asyncio.to_thread(on_b.quit)
    kept = pop3_state(a)
    for ctx in (a, b):
        await stop_services(ctx.services)
        release_context(ctx)
    facts["A's fetcher handle after stop"] = a.fetcher
    facts["A's POP3 state kept after stop"] = a.part(POP3) is kept
    print(json.dumps(facts))
    for ctx in (a, b):
        ctx.io_pool.shutdown(wait=True)
        ctx.auth.hasher.shutdown()
        ctx.directory.close()


asyncio.run(main())
"""


def test_two_servers_in_one_process_share_no_state(suite_factory: Any) -> None:
    """A second server in the same process has its own spool, queue wake-ups, group commits,
    POP3 maildrop locks, IMAP listings and fetcher: a maildrop held on one server
    does not lock the same mailbox name on the other, and each server's fetcher is reached
    as a typed handle; when the server stops, all of it is let go."""
    one, two = suite_factory(start=False), suite_factory(start=False)
    address = "ala@example.test"
    for suite in (one, two):
        suite.add_user(address)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TWO_SERVERS,
            str(one.config_path),
            str(two.config_path),
            address,
            DEFAULT_PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert "[IN-USE]" in facts.pop("second login on A")
    assert facts == {
        "A and B share a spool": False,
        "A's spool is under its paths.spool": True,
        "waking A's queue woke B's": [],
        "A and B share group commits": False,
        "A and B share POP3 locks": False,
        "SELECT on A": "OK",
        "SELECT on B": "OK",
        "A and B share snapshots": False,
        "A's fetcher handle": "FetcherService",
        "A's handle is its running fetcher": True,
        "A and B share a fetcher": False,
        "A's fetcher handle after stop": None,
        "A's POP3 state kept after stop": False,
    }
