"""Reading config/mailsuite.yaml into `Settings`, with every mistake reported at once.

Errors name the file, the YAML path (`listen.imap`), the line when the YAML has one, and what
is wrong. Checks that need more than one field (ports used twice, certificate files missing,
dates out of order) run after the schema so that they too join the one report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mailsuite.config.schema import Settings

DEFAULT_CONFIG = Path("config/mailsuite.yaml")


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line else str(file)
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(Exception):
    """The config cannot be used; `problems` lists every reason found."""

    def __init__(self, file: Path, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__(self.report())

    def report(self) -> str:
        lines = [p.render(self.file) for p in self.problems]
        noun = "problem" if len(lines) == 1 else "problems"
        return f"{self.file}: {len(lines)} {noun}:\n" + "\n".join(f"  {ln}" for ln in lines)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, else $MAILSUITE_CONFIG, else config/mailsuite.yaml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("MAILSUITE_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def _line_map(node: yaml.Node, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple, int]]:
    """Walk a composed YAML tree and give each key path its 1-based line."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            yield path, key_node.start_mark.line + 1
            yield from _line_map(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            yield path, item.start_mark.line + 1
            yield from _line_map(item, path)


def _dotted(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config/mailsuite.example.yaml)"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_config(
    text: str, file: Path, *, base: Path | None = None, check_files: bool = False
) -> Settings:
    """Validate YAML text; raise ConfigError with every problem.

    With `base`, relative paths are resolved against it; `check_files` also requires the TLS
    files to exist unless a self-signed certificate may be generated.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        problem = f"not valid YAML: {exc.problem or exc}"
        raise ConfigError(file, [ConfigProblem("", problem, line)]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, [ConfigProblem("", "the file must be a YAML mapping of keys")])
    lines = dict(_line_map(root)) if root is not None else {}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
            problems.append(ConfigProblem(_dotted(loc), _explain(err), line))
        raise ConfigError(file, problems) from None
    if base is not None:
        settings = _resolve(settings, base)
    problems = list(_cross_checks(settings, lines))
    if check_files:
        problems.extend(_check_files(settings, lines))
    if problems:
        raise ConfigError(file, problems)
    return settings


def _cross_checks(settings: Settings, lines: dict[tuple, int]) -> Iterator[ConfigProblem]:
    seen: dict[tuple[str, int], str] = {}
    for name, value in settings.listen:
        if value is None or value[1] == 0:
            continue
        if value in seen:
            yield ConfigProblem(
                f"listen.{name}",
                f"{value[0]}:{value[1]} is already used by listen.{seen[value]}",
                lines.get(("listen", name)),
            )
        seen[value] = name
    policy = settings.password_policy
    if policy.min_length > policy.max_length:
        yield ConfigProblem(
            "password_policy.min_length",
            f"{policy.min_length} is more than max_length {policy.max_length}",
            lines.get(("password_policy", "min_length")),
        )
    if policy.forbid_special and policy.require_special:
        yield ConfigProblem(
            "password_policy.forbid_special",
            "cannot both forbid and require special characters",
            lines.get(("password_policy", "forbid_special")),
        )
    mig = settings.migration
    if mig.window_start and mig.cutoff and mig.cutoff <= mig.window_start:
        yield ConfigProblem(
            "migration.cutoff",
            f"{mig.cutoff} is not after window_start {mig.window_start}",
            lines.get(("migration", "cutoff")),
        )
    for domain, target in settings.smtp.catch_all.items():
        if domain.lower() not in settings.domains:
            yield ConfigProblem(
                f"smtp.catch_all.{domain}",
                "is not one of `domains`",
                lines.get(("smtp", "catch_all", domain)),
            )
        if "@" not in target:
            yield ConfigProblem(
                f"smtp.catch_all.{domain}",
                f"{target!r} is not an address",
                lines.get(("smtp", "catch_all", domain)),
            )
    postmaster = settings.smtp.postmaster
    # Postmaster mail is delivered here, never relayed: an MX client must not make us send.
    if postmaster is not None and postmaster.rpartition("@")[2].lower() not in settings.domains:
        yield ConfigProblem(
            "smtp.postmaster",
            f"{postmaster!r} is not an address in one of `domains`",
            lines.get(("smtp", "postmaster")),
        )


def _absolute(value: Path, base: Path) -> Path:
    return (value if value.is_absolute() else (base / value)).resolve()


def _resolve(settings: Settings, base: Path) -> Settings:
    """Every file setting made absolute against `base`: the whole `paths` section and the
    site's files (a logo given as an https:// address stays as it is)."""
    paths = {name: _absolute(value, base) for name, value in settings.paths}
    site = settings.site
    files: dict[str, object] = {"templates": _absolute(site.templates, base)}
    if site.terms_file is not None:
        files["terms_file"] = _absolute(site.terms_file, base)
    if site.logo and not site.logo.startswith("https://"):
        files["logo"] = str(_absolute(Path(site.logo), base))
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(update=paths),
            "site": site.model_copy(update=files),
        }
    )


def _check_files(settings: Settings, lines: dict[tuple, int]) -> Iterator[ConfigProblem]:
    site = settings.site
    for key, value in (("terms_file", site.terms_file), ("logo", site.logo)):
        if value and not str(value).startswith("https://") and not Path(value).is_file():
            yield ConfigProblem(f"site.{key}", f"{value} does not exist", lines.get(("site", key)))
    if settings.tls.self_signed:
        return
    for key in ("tls_cert", "tls_key"):
        path = getattr(settings.paths, key)
        if not path.is_file():
            yield ConfigProblem(
                f"paths.{key}",
                f"{path} does not exist (or set tls.self_signed: true to generate one)",
                lines.get(("paths", key)),
            )


def load_config(
    path: str | os.PathLike[str] | None = None, *, check_files: bool = True
) -> Settings:
    """Read, validate and resolve the config; raise ConfigError naming every problem."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, file, base=file.resolve().parent, check_files=check_files)
