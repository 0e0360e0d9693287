"""The commented example config, written from the schema so the two never disagree."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mailsuite.config.schema import Settings

_REQUIRED_EXAMPLES: dict[str, Any] = {"hostname": "mail.example.test", "domains": ["example.test"]}


def _scalar(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    elif isinstance(value, tuple):
        value = f"{value[0]}:{value[1]}"
    elif isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return (
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
        .strip()
        .removesuffix("\n...")
    )


def _lines(model: type[BaseModel], values: BaseModel | None, indent: int) -> list[str]:
    out: list[str] = []
    pad = "  " * indent
    for name, field in model.model_fields.items():
        doc = field.description or ""
        annotation = field.annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if doc:
            out.append(f"{pad}# {doc}")
        if nested:
            out.append(f"{pad}{name}:")
            out.extend(_lines(annotation, getattr(values, name, None), indent + 1))
            continue
        value = getattr(values, name) if values is not None else _REQUIRED_EXAMPLES[name]
        out.append(f"{pad}{name}: {_scalar(value)}")
    return out


def example_yaml() -> str:
    """Every key with its default and its one-line description, as valid YAML."""
    defaults = Settings.model_validate(_REQUIRED_EXAMPLES)
    head = [
        "# mailsuite configuration: every key, its default and what it does.",
        "# Relative paths are resolved against the folder that holds this file.",
        "# Durations: 30s, 15m, 72h, 5d. Sizes: 512K, 25M, 1G.",
        "",
    ]
    return "\n".join(head + _lines(Settings, defaults, 0)) + "\n"
