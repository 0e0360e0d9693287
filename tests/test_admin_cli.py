"""Admin tasks done with the CLI alone, never with SQLite: editing accounts, what `user show`
and `user list` say, temporary passwords, and the rules `check-config` and `user add` share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailsuite.directory import Directory

from .conftest import make_config


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


@pytest.mark.parametrize(
    ("domain", "valid"),
    [("intranet", True), ("poczta.example.pl", True), ("10.0.0.1", False), ("-x.pl", False)],
)
def test_check_config_and_user_add_accept_the_same_domains(
    tmp_path: Path, domain: str, valid: bool
) -> None:
    """A domain check-config passes can hold accounts; one it refuses is refused by both."""
    admin = Admin(tmp_path, {"domains": [domain]})
    checked = admin("check-config")
    added = admin("user", "add", f"ala@{domain}", "--temporary")
    assert (checked.returncode == 0) is valid, checked.stderr
    assert (added.returncode == 0) is valid, added.stderr
    assert "Traceback" not in checked.stderr + added.stderr
    if valid:
        assert f"created ala@{domain}" in added.stdout
    else:
        assert "not valid domain names" in checked.stderr
