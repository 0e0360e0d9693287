"""Addresses of the haslo web site's pages, for protocols and e-mails that point users there."""

from __future__ import annotations

from mailsuite.config import Settings

CHANGE_PASSWORD_PATH = "/zmien-haslo"
ACTIVATE_PATH = "/aktywuj"
RESET_PATH = "/nie-pamietam-hasla"
ACCOUNT_PATH = "/konto"


def base_url(settings: Settings) -> str:
    """The site as users reach it: `web.base_url`, else built from hostname and listen.web."""
    if settings.web.base_url:
        return settings.web.base_url.rstrip("/")
    scheme = "https" if settings.web.tls else "http"
    port = settings.listen.web[1] if settings.listen.web else None
    default = 443 if scheme == "https" else 80
    suffix = f":{port}" if port and port != default else ""
    return f"{scheme}://{settings.hostname}{suffix}"


def page(settings: Settings, path: str) -> str:
    return base_url(settings) + path
