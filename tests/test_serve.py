"""`mailsuite serve`: starts what the config lists, refuses bad configs, stops on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .conftest import ROOT, Suite


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
