"""Config: every mistake is reported at once, with its YAML path and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailsuite.config import ConfigError, load_config
from mailsuite.config.example import example_yaml
from mailsuite.config.loader import parse_config

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = "hostname: mail.example.test\ndomains: [example.test]\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("m.yaml"))
    return [p.render(Path("m.yaml")) for p in info.value.problems]


VALID = [
    MINIMAL,
    MINIMAL + "listen: {imap: '127.0.0.1:1143', pop3: null}\n",
    MINIMAL + "listen: {imaps: '[::1]:993'}\n",
    MINIMAL + "accounts: {activation_link_lifetime: 72h, temporary_password_lifetime: 14d}\n",
    MINIMAL + "limits: {message_size: 10M}\n",
    MINIMAL + "migration: {window_start: 2006-12-11, cutoff: 2007-01-11}\n",
    MINIMAL + "smtp: {catch_all: {example.test: postmaster@example.test}}\n",
]

INVALID = [
    ("domains: [example.test]\n", ["m.yaml: hostname: required key is missing"]),
    (
        MINIMAL + "listen: {imap: 'localhost'}\n",
        ["m.yaml:3: listen.imap: 'localhost' is not HOST:PORT"],
    ),
    (
        MINIMAL + "listen: {imap: '127.0.0.1:70000'}\n",
        ["listen.imap: port '70000' is not a number"],
    ),
    (MINIMAL + "listen: {imap: 143}\n", ["listen.imap: expected HOST:PORT"]),
    (MINIMAL + "listne: {}\n", ["m.yaml:3: listne: unknown key"]),
    (MINIMAL + "limits: {message_size: lots}\n", ["limits.message_size: expected a size"]),
    (MINIMAL + "accounts: {activation_link_lifetime: soon}\n", ["expected a duration"]),
    (MINIMAL + "throttle: {max_failures_per_ip: 0}\n", ["throttle.max_failures_per_ip:"]),
    (
        MINIMAL + "password_policy: {min_length: 20, max_length: 10}\n",
        ["password_policy.min_length: 20 is more than max_length 10"],
    ),
    (
        MINIMAL + "listen: {imap: '127.0.0.1:1143', pop3: '127.0.0.1:1143'}\n",
        ["listen.pop3: 127.0.0.1:1143 is already used by listen.imap"],
    ),
    (
        "hostname: 'bad host'\ndomains: []\n",
        [
            "hostname: 'bad host' is not a valid host name",
            "domains: List should have at least 1 item",
        ],
    ),
    (
        MINIMAL + "migration: {window_start: 2007-01-11, cutoff: 2006-12-11}\n",
        ["migration.cutoff: 2006-12-11 is not after window_start"],
    ),
    ("hostname: [unclosed\n", ["m.yaml:2: not valid YAML"]),
    ("- a list\n", ["the file must be a YAML mapping"]),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_configs_load(text: str) -> None:
    settings = parse_config(text, Path("m.yaml"))
    assert settings.hostname == "mail.example.test"


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_configs_name_path_and_reason(text: str, expected: list[str]) -> None:
    found = problems(text)
    for fragment in expected:
        assert any(fragment in line for line in found), (fragment, found)


def test_every_problem_is_reported_in_one_run() -> None:
    text = (
        "hostname: mail.example.test\n"
        "domains: [example.test]\n"
        "listen: {imap: nowhere, pop3: '1.2.3.4:x'}\n"
        "limits: {line_length: 10}\n"
        "colour: blue\n"
    )
    found = problems(text)
    assert len(found) == 4, found


def test_units_are_converted() -> None:
    s = parse_config(
        MINIMAL + "limits: {message_size: 10M}\naccounts: {activation_link_lifetime: 72h}\n",
        Path("m.yaml"),
    )
    assert s.limits.message_size == 10 * 1024 * 1024
    assert s.accounts.activation_link_lifetime == 72 * 3600


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "m.yaml").write_text(
        MINIMAL + "paths: {maildirs: mail, database: /srv/d.sqlite}\ntls: {self_signed: true}\n"
    )
    s = load_config(folder / "m.yaml")
    assert s.paths.maildirs == folder / "mail"
    assert s.paths.database == Path("/srv/d.sqlite")


def test_missing_certificate_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MINIMAL + "paths: {tls_cert: c.pem, tls_key: k.pem}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "m.yaml")
    text = info.value.report()
    assert "paths.tls_cert" in text and "paths.tls_key" in text and "does not exist" in text


def test_example_config_is_valid_and_documents_every_key() -> None:
    text = example_yaml()
    parse_config(text, Path("example.yaml"))
    assert "# Fewest characters." in text
    committed = (ROOT / "config" / "mailsuite.example.yaml").read_text()
    assert committed == text, (
        "regenerate with: mailsuite config-example > config/mailsuite.example.yaml"
    )


def test_demo_config_is_valid() -> None:
    s = load_config(ROOT / "config" / "mailsuite.yaml", check_files=False)
    assert s.domains == ["example.test"]
    assert all(v is None or v[0] == "127.0.0.1" for _, v in s.listen)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailsuite", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL + "tls: {self_signed: true}\nlisten: {imap: '127.0.0.1:1143'}\n")
    result = run_cli("check-config", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "imap=127.0.0.1:1143" in result.stdout
    cores = len(os.sched_getaffinity(0))
    assert f"workers: {cores} (one per core)" in result.stdout
    two = tmp_path / "two.yaml"
    two.write_text(good.read_text() + "workers: 2\n")
    result = run_cli("check-config", "--config", str(two))
    assert "workers: 2 (set in the config): a supervisor and 2 server processes" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "hostname: mail.example.test\ndomains: [example.test]\nlisten: {imap: x}\nfoo: 1\n"
    )
    result = run_cli("check-config", "--config", str(bad))
    assert result.returncode == 1
    assert "2 problems" in result.stderr
    assert f"{bad}:3: listen.imap:" in result.stderr
    assert f"{bad}:4: foo: unknown key" in result.stderr


def test_workers_is_auto_or_a_positive_number(tmp_path: Path) -> None:
    for value, problem in (("0", "workers"), ("many", "workers"), ("-2", "workers")):
        bad = tmp_path / "w.yaml"
        bad.write_text(MINIMAL + f"workers: {value}\n")
        result = run_cli("check-config", "--config", str(bad))
        assert result.returncode == 1, value
        assert f"{bad}:" in result.stderr and f" {problem}" in result.stderr, result.stderr


def test_config_from_environment_variable(tmp_path: Path) -> None:
    bad = tmp_path / "env.yaml"
    bad.write_text(yaml.safe_dump({"hostname": "x.test"}))
    result = subprocess.run(
        [sys.executable, "-m", "mailsuite", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "MAILSUITE_CONFIG": str(bad)},
    )
    assert result.returncode == 1
    assert "domains: required key is missing" in result.stderr


EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))


def test_every_seed_has_an_example_config() -> None:
    assert [p.name for p in EXAMPLES][:5] == [
        "seed-000-bank.yaml",
        "seed-001-hosting.yaml",
        "seed-002-portal.yaml",
        "seed-003-water.yaml",
        "seed-004-water.yaml",
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_config_passes_check_config(tmp_path: Path, example: Path) -> None:
    """Each shipped example, as it is, with its certificate where its paths expect it."""
    from mailsuite.tls import generate_self_signed

    folder = tmp_path / "config"
    folder.mkdir()
    config = folder / example.name
    config.write_text(example.read_text())
    tls = tmp_path / "var" / "tls"
    tls.mkdir(parents=True)
    generate_self_signed(tls / "cert.pem", tls / "key.pem", "mail.example.test")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
