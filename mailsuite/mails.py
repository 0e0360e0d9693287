"""The e-mails the site and the admin CLI send: Polish first, English below, plain text.

Each function returns (subject, body). Bodies name the full address as the login, because
that is what mail clients must be given; secrets appear only in the message to the user.
"""

from __future__ import annotations

from datetime import datetime

from mailsuite.config import Settings
from mailsuite.urls import ACCOUNT_PATH, ACTIVATE_PATH, CHANGE_PASSWORD_PATH, RESET_PATH, page


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def temporary_password(
    settings: Settings, address: str, password: str, expires: float | None, *, reset: bool = False
) -> tuple[str, str]:
    """Login and temporary password for a new account or a reset (seeds 003, 004)."""
    change = page(settings, CHANGE_PASSWORD_PATH)
    until = _when(expires) if expires else "-"
    if reset:
        note_pl = (
            "Jeśli to nie Ty prosiłeś o nowe hasło, zignoruj tę wiadomość: "
            "dotychczasowe hasło nadal działa.\n\n"
        )
        note_en = (
            "If you did not ask for a new password, ignore this message: "
            "your current password still works.\n"
        )
    else:
        note_pl = note_en = ""
    body = (
        "Dzień dobry,\n\n"
        "oto dane dostępowe do poczty:\n\n"
        f"  Login: {address}\n"
        f"  Hasło tymczasowe: {password}\n\n"
        f"Przed pierwszym logowaniem zmień hasło tymczasowe na stronie:\n  {change}\n"
        f"Hasło tymczasowe jest ważne do {until}.\n\n"
        f"{note_pl}"
        "-- \n\n"
        "Hello,\n\n"
        "here are your mail login details:\n\n"
        f"  Login: {address}\n"
        f"  Temporary password: {password}\n\n"
        f"Before you first sign in, change the temporary password at:\n  {change}\n"
        f"The temporary password is valid until {until}.\n"
        f"{note_en}"
    )
    return "Dane dostępowe do poczty / Your mail login", body


def activation_link(settings: Settings, address: str, secret: str, hours: int) -> tuple[str, str]:
    """The invitation (seed 002): a link that sets the first password."""
    link = page(settings, f"{ACTIVATE_PATH}/{secret}")
    body = (
        "Dzień dobry,\n\n"
        f"założyliśmy dla Ciebie skrzynkę pocztową {address}.\n"
        f"Aby ustawić hasło, otwórz link (ważny {hours} godzin):\n\n  {link}\n\n"
        "Jeśli nie spodziewasz się tej wiadomości, zignoruj ją.\n\n"
        "-- \n\n"
        "Hello,\n\n"
        f"a mailbox {address} has been created for you.\n"
        f"To set your password, open this link (valid for {hours} hours):\n\n  {link}\n\n"
        "If you did not expect this message, please ignore it.\n"
    )
    return "Aktywacja konta pocztowego / Activate your mailbox", body


def activated(settings: Settings, address: str) -> tuple[str, str]:
    """Sent once the first password is set: the login to use from now on."""
    account = page(settings, ACCOUNT_PATH)
    body = (
        "Dzień dobry,\n\n"
        "hasło zostało ustawione. Twój login to pełny adres skrzynki:\n\n"
        f"  {address}\n\n"
        f"Ustawienia programu pocztowego znajdziesz na stronie {account}\n\n"
        "-- \n\n"
        "Hello,\n\n"
        "your password is set. Your login is your full mailbox address:\n\n"
        f"  {address}\n\n"
        f"Mail client settings are on {account}\n"
    )
    return "Twój login do poczty / Your mail login", body


def login_code(settings: Settings, code: str, minutes: int) -> tuple[str, str]:
    """The 6-digit code for the account page (seed 002)."""
    reset = page(settings, RESET_PATH)
    body = (
        f"Twój kod autoryzacyjny: {code}\n"
        f"Kod jest ważny {minutes} minut. Jeśli to nie Ty się logujesz, zmień hasło: {reset}\n\n"
        "-- \n\n"
        f"Your authorisation code: {code}\n"
        f"It is valid for {minutes} minutes. If this was not you, change your password: "
        f"{reset}\n"
    )
    return f"Kod autoryzacyjny / Authorisation code: {code}", body
