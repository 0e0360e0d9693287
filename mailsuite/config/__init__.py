"""Typed, validated settings from YAML; imports nothing else of mailsuite."""

from mailsuite.config.loader import ConfigError, ConfigProblem, config_path, load_config
from mailsuite.config.schema import Settings

__all__ = ["ConfigError", "ConfigProblem", "Settings", "config_path", "load_config"]
