"""Headless Chromium for the browser tests: how it is launched, and the page helpers they share.

The Debian chromium package (/usr/bin/chromium) is driven through Playwright; nothing is
downloaded. Each launch gets a fresh profile: Playwright's `launch()` gives Chromium a new
temporary user-data-dir and removes it on close, so no cookies or cache pass between modules.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> Iterator[Browser]:
    """One headless Chromium for a module fixture to yield from; closed when it resumes."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_page(
    browser: Browser, locale: str, width: int, *, timeout: int = 15_000, **options: Any
) -> tuple[BrowserContext, Page]:
    """A new context and page on a screen `width` wide: under 600 px it is a touch phone
    844 px high, otherwise 900 px high. The caller closes the context."""
    phone = width < 600
    context = browser.new_context(
        locale=locale,
        viewport={"width": width, "height": 844 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
        **options,
    )
    page = context.new_page()
    page.set_default_timeout(timeout)
    return context, page


def shot(page: Page, name: str, tmp_path: Path) -> None:
    """Saves the whole page as `name`.png in MAILSUITE_SCREENSHOTS, or else in `tmp_path`."""
    folder = Path(os.environ.get("MAILSUITE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def errors(page: Page) -> list[str]:
    """The form's error list, one entry per broken rule."""
    return [e.strip() for e in page.locator(".errors li").all_inner_texts()]


def status(page: Page) -> str:
    """The text of the page's status notice."""
    return page.get_by_role("status").inner_text().strip()
