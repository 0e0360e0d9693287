"""Fixtures that run the real suite: `mailsuite serve` in a subprocess on free ports.

Tests talk to it with real clients. Accounts are created through the same directory
functions the CLI uses; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailsuite.auth import Authenticator
from mailsuite.config.loader import parse_config
from mailsuite.context import Context
from mailsuite.directory import Account, Directory
from mailsuite.passwords import Hasher, hash_password_sync
from mailsuite.store import Store
from mailsuite.tls import TLSMaterial

ROOT = Path(__file__).resolve().parent.parent
# Servers and commands the tests start run this checkout's code, whatever copy of mailsuite
# happens to be installed in the environment.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
ALL_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "web")
DEFAULT_PASSWORD = "Secret123"


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_config(tmp: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config on 127.0.0.1 port 0 for every listener, state kept under `tmp`."""
    base = {
        "hostname": "mail.example.test",
        "domains": ["example.test", "example.org"],
        # As in the demo: clients reach the test server at 127.0.0.1 (autoconfig, web pages).
        "client_host": "127.0.0.1",
        "listen": {name: "127.0.0.1:0" for name in ALL_LISTENERS},
        "paths": {
            "maildirs": str(tmp / "maildirs"),
            "database": str(tmp / "var" / "mailsuite.sqlite"),
            "spool": str(tmp / "var" / "spool"),
            "tls_cert": str(tmp / "var" / "tls" / "cert.pem"),
            "tls_key": str(tmp / "var" / "tls" / "key.pem"),
            "secret_key": str(tmp / "var" / "secret.key"),
            "dkim_keys": str(tmp / "var" / "dkim"),
        },
        "tls": {"self_signed": True, "allow_plaintext_auth_on_loopback": True},
        "web": {"tls": False},
        # Cost 4 keeps tests fast; the cost is a setting, the code path is the same.
        "accounts": {"bcrypt_rounds": 4},
        # One process: a suite starts in a second and a test sees one server's counters;
        # tests/test_serve_workers.py runs two workers.
        "workers": 1,
        "log_level": "DEBUG",
    }
    return merge(base, overrides or {})


class Admin:
    """The `mailsuite` command over a config file of its own, with no server running."""

    def __init__(self, tmp: Path, overrides: dict[str, Any] | None = None) -> None:
        self.config = make_config(tmp, overrides)
        self.path = tmp / "mailsuite.yaml"
        self.path.write_text(yaml.safe_dump(self.config))

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailsuite", *args, "--config", str(self.path)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def directory(self) -> Directory:
        return Directory(Path(self.config["paths"]["database"]), self.config["domains"])


def in_process_context(tmp: Path, data: dict[str, Any], clock: Any = time.time) -> Context:
    """The parts `serve` would hand its services, built over files in `tmp`, for tests that
    drive an app in-process (aiohttp's test client). `data` is the config; its paths are
    replaced by ones under `tmp`. Must be called with a running loop."""
    data = {**data, "paths": {k: str(tmp / v) for k, v in TMP_PATHS.items()}}
    settings = parse_config(yaml.safe_dump(data), tmp / "m.yaml", base=tmp)
    directory = Directory(settings.paths.database, settings.domains, clock=clock)
    loop = asyncio.get_running_loop()
    store = Store(settings.paths.maildirs)
    store.attach_loop(loop)
    return Context(
        settings=settings,
        config_path=tmp / "m.yaml",
        directory=directory,
        store=store,
        auth=Authenticator(settings, directory, Hasher(4, 2)),
        tls=TLSMaterial.for_settings(settings),
        loop=loop,
        io_pool=ThreadPoolExecutor(max_workers=2),
    )


TMP_PATHS = {
    "maildirs": "maildirs",
    "database": "d.sqlite",
    "spool": "spool",
    "tls_cert": "cert.pem",
    "tls_key": "key.pem",
    "secret_key": "secret.key",
    "dkim_keys": "dkim",
    "control_socket": "control.sock",
}


class Suite:
    """One running `mailsuite serve` with its own config, database and Maildirs."""

    def __init__(self, tmp: Path, overrides: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.config = make_config(tmp, overrides)
        self.config_path = tmp / "config" / "mailsuite.yaml"
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.ready_file = tmp / "ready.json"
        self.log_path = tmp / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self._directory: Directory | None = None

    # -- process --------------------------------------------------------------------------

    def command(self) -> list[str]:
        """How the server is started; a test may start it through a wrapper of its own."""
        return [sys.executable, "-m", "mailsuite"]

    def start(self, timeout: float = 30) -> Suite:
        self.ready_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.command(),
                "serve",
                "--config",
                str(self.config_path),
                "--ready-file",
                str(self.ready_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
        )
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"serve not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.05)
        data = json.loads(self.ready_file.read_text())
        self.ports = {k: v[1] for k, v in data.items() if isinstance(v, list)}
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> Suite:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def port(self, name: str) -> int:
        return self.ports[name]

    # -- data -----------------------------------------------------------------------------

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = Directory(
                Path(self.config["paths"]["database"]), self.config["domains"]
            )
        return self._directory

    def add_user(
        self,
        address: str,
        password: str = DEFAULT_PASSWORD,
        *,
        temporary: bool = False,
        **fields: Any,
    ) -> Account:
        expires = time.time() + 86400 if temporary else None
        return self.directory.add_account(
            address,
            password_hash=hash_password_sync(password, 4),
            temporary=temporary,
            temp_expires=expires,
            **fields,
        )

    def maildir(self, address: str) -> Path:
        local, _, domain = address.lower().rpartition("@")
        return Path(self.config["paths"]["maildirs"]) / domain / local

    def cli(
        self, *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailsuite", *args, "--config", str(self.config_path)],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def close(self) -> None:
        self.kill()
        if self._directory is not None:
            self._directory.close()


@pytest.fixture
def suite_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Make suites (`suite_factory(overrides)`); each is killed at the end of the test."""
    made: list[Suite] = []

    def make(overrides: dict[str, Any] | None = None, *, start: bool = True) -> Suite:
        suite = Suite(tmp_path_factory.mktemp("suite"), overrides)
        made.append(suite)
        return suite.start() if start else suite

    yield make
    for suite in made:
        suite.close()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """One running suite shared by a test module (tests use distinct accounts)."""
    s = Suite(tmp_path_factory.mktemp("suite"))
    s.start()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILSUITE_CONFIG", raising=False)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
