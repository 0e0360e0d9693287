"""The site's words in Polish and English, and which of the two a request gets.

Polish comes first: it is the default when the browser states no preference. `?lang=en`
(a plain link, no script) switches and is remembered in a cookie; otherwise Accept-Language
decides (RFC 9110 12.5.4: the highest q-value among the languages we have wins).
"""

from __future__ import annotations

from aiohttp import web

LANGUAGES = ("pl", "en")
DEFAULT = "pl"
COOKIE = "lang"


def _accept_language(header: str) -> str | None:
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().partition("-")[0]
        quality = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if primary in LANGUAGES and quality > 0:
            # Earlier entries win ties: the sort key puts a lower position first.
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def choose(request: web.Request) -> tuple[str, bool]:
    """The language for this request, and whether it came from `?lang=` (to remember it)."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked, True
    cookie = request.cookies.get(COOKIE, "")
    if cookie in LANGUAGES:
        return cookie, False
    return _accept_language(request.headers.get("Accept-Language", "")) or DEFAULT, False


TEXTS: dict[str, tuple[str, str]] = {
    "site": ("Poczta — hasło i konto", "Mail — password and account"),
    "skip": ("Przejdź do treści", "Skip to content"),
    "switch": ("English", "Polski"),
    "nav.change": ("Zmiana hasła", "Change password"),
    "nav.reset": ("Nie pamiętam hasła", "Forgot password"),
    "nav.account": ("Moje konto", "My account"),
    "errors.title": ("Popraw następujące błędy:", "Please correct the following:"),
    "field.account": ("Konto", "Account"),
    "field.account.hint": (
        "Pełny adres, alias lub dotychczasowa nazwa konta",
        "Full address, alias or your old login",
    ),
    "field.current": ("Aktualne hasło", "Current password"),
    "field.new": ("Nowe hasło", "New password"),
    "field.repeat": ("Nowe hasło (ponownie)", "New password (again)"),
    "field.password": ("Hasło", "Password"),
    "field.login": ("Login", "Login"),
    "field.code": ("Kod autoryzacyjny", "Authorisation code"),
    "field.code.hint": (
        "Sześć cyfr z wiadomości wysłanej na adres kontaktowy",
        "Six digits from the message sent to your contact address",
    ),
    "policy.title": ("Wymagania dla hasła:", "Password requirements:"),
    "change.title": ("Zmiana hasła", "Change password"),
    "change.intro": (
        "Przed pierwszym logowaniem zmień hasło inicjalne (tymczasowe).",
        "Before you first sign in, change your initial (temporary) password.",
    ),
    "change.submit": ("Zmień hasło", "Change password"),
    "change.done": ("Hasło zostało zmienione.", "Your password has been changed."),
    "err.credentials": (
        "Nieprawidłowe konto lub hasło.",
        "Wrong account or password.",
    ),
    "err.throttled": (
        "Zbyt wiele nieudanych prób. Spróbuj ponownie później.",
        "Too many failed attempts. Please try again later.",
    ),
    "err.unavailable": (
        "Serwis jest chwilowo zajęty. Spróbuj ponownie za chwilę.",
        "The service is busy right now. Please try again in a moment.",
    ),
    "unavailable.title": ("Chwilowa przerwa", "Temporarily unavailable"),
    "err.temp_expired": (
        "Hasło tymczasowe wygasło. Poproś o nowe na stronie „Nie pamiętam hasła”.",
        "The temporary password has expired. Ask for a new one under “Forgot password”.",
    ),
    "err.disabled": ("To konto jest zablokowane.", "This account is disabled."),
    "err.legacy": (
        "Dotychczasowa nazwa konta już nie działa. Podaj pełny adres: {address}",
        "Your old login no longer works. Use your full address: {address}",
    ),
    "err.mismatch": (
        "Nowe hasło i jego powtórzenie różnią się.",
        "The new password and its repetition differ.",
    ),
    "err.same": (
        "Nowe hasło musi różnić się od aktualnego.",
        "The new password must differ from the current one.",
    ),
    "err.required": ("Wypełnij pole „{field}”.", "Please fill in “{field}”."),
    "err.rule": ("Nowe hasło: {rule}.", "New password: {rule}."),
    "err.csrf": (
        "Formularz wygasł. Wypełnij go ponownie.",
        "The form has expired. Please fill it in again.",
    ),
    "err.mail": (
        "Nie udało się wysłać wiadomości. Spróbuj ponownie później.",
        "The message could not be sent. Please try again later.",
    ),
    "settings.title": ("Ustawienia programu pocztowego", "Mail client settings"),
    "settings.login": ("Login (nazwa użytkownika)", "Login (user name)"),
    "settings.password": (
        "Hasło: to, które właśnie ustawiono",
        "Password: the one you have just set",
    ),
    "settings.servers": ("Serwery", "Servers"),
    "settings.apple": (
        "iPhone, iPad, Mac: pobierz profil konfiguracji poczty",
        "iPhone, iPad, Mac: download the mail configuration profile",
    ),
    "settings.autoconfig": (
        "Thunderbird i Outlook znajdą te ustawienia same po wpisaniu adresu i hasła.",
        "Thunderbird and Outlook find these settings themselves from your address and password.",
    ),
    "settings.service": ("Usługa", "Service"),
    "settings.server": ("Serwer", "Server"),
    "settings.port": ("Port", "Port"),
    "settings.security": ("Szyfrowanie", "Security"),
    "settings.imap": ("Poczta przychodząca (IMAP)", "Incoming mail (IMAP)"),
    "settings.pop3": ("Poczta przychodząca (POP3)", "Incoming mail (POP3)"),
    "settings.smtp": ("Poczta wychodząca (SMTP)", "Outgoing mail (SMTP)"),
    "settings.ssl": ("SSL/TLS", "SSL/TLS"),
    "settings.starttls": ("STARTTLS", "STARTTLS"),
    "settings.note": (
        "Logując się, podawaj zawsze pełny adres skrzynki.",
        "Always sign in with your full mailbox address.",
    ),
    "notice.legacy": (
        "Od teraz logując się, podawaj pełny adres {address}. Dotychczasowa nazwa konta "
        "{login} przestanie działać{until}.",
        "From now on, sign in with your full address {address}. The old login {login} stops "
        "working{until}.",
    ),
    "notice.until": (" {date}", " on {date}"),
    "notice.until_end": (" po zakończeniu migracji", " when the migration ends"),
    "activate.title": ("Ustawienie hasła", "Set your password"),
    "activate.intro": (
        "Ustaw hasło do konta {address} i powtórz je w kolejnym polu.",
        "Set the password for {address} and repeat it in the next field.",
    ),
    "activate.submit": ("Dalej", "Continue"),
    "activate.done": (
        "Hasło zostało ustawione. Login wysłaliśmy na Twój adres kontaktowy.",
        "Your password is set. We have sent your login to your contact address.",
    ),
    "activate.repeat": ("Powtórz hasło", "Repeat password"),
    "link.invalid.title": ("Link jest nieprawidłowy", "This link is not valid"),
    "link.invalid": (
        "Nie rozpoznajemy tego linku. Sprawdź, czy skopiowano go w całości, albo poproś "
        "administratora o nowe zaproszenie.",
        "We do not recognise this link. Check that it was copied in full, or ask the "
        "administrator for a new invitation.",
    ),
    "link.used.title": ("Link został już użyty", "This link has already been used"),
    "link.used": (
        "Hasło do tego konta zostało już ustawione. Zaloguj się, a jeśli nie pamiętasz hasła, "
        "skorzystaj ze strony „Nie pamiętam hasła”.",
        "The password for this account has already been set. Sign in, or use “Forgot "
        "password” if you do not remember it.",
    ),
    "link.expired.title": ("Link wygasł", "This link has expired"),
    "link.expired": (
        "Link aktywacyjny był ważny {hours} godzin i już wygasł. Poproś administratora o nowe "
        "zaproszenie albo skorzystaj ze strony „Nie pamiętam hasła”.",
        "The activation link was valid for {hours} hours and has expired. Ask the "
        "administrator for a new invitation or use “Forgot password”.",
    ),
    "reset.title": ("Nie pamiętam hasła", "Forgot password"),
    "reset.intro": (
        "Podaj login. Jeśli konto ma adres kontaktowy, wyślemy na niego hasło tymczasowe, "
        "które trzeba zmienić przy następnym logowaniu.",
        "Enter your login. If the account has a contact address we will send a temporary "
        "password there, which must be changed at the next sign-in.",
    ),
    "reset.submit": ("Wyślij hasło tymczasowe", "Send a temporary password"),
    "reset.done": (
        "Jeśli takie konto istnieje i ma adres kontaktowy, wysłaliśmy na niego hasło "
        "tymczasowe. Zmień je na stronie „Zmiana hasła”.",
        "If such an account exists and has a contact address, a temporary password has "
        "been sent there. Change it on the “Change password” page.",
    ),
    "reset.throttled": (
        "Zbyt wiele próśb. Spróbuj ponownie później.",
        "Too many requests. Please try again later.",
    ),
    "login.title": ("Logowanie do konta", "Sign in to your account"),
    "login.submit": ("Wyślij kod", "Send code"),
    "login.no_contact": (
        "To konto nie ma adresu kontaktowego, na który można wysłać kod. Skontaktuj się "
        "z administratorem.",
        "This account has no contact address to send a code to. Please contact the administrator.",
    ),
    "login.must_change": (
        "Najpierw zmień hasło tymczasowe.",
        "Change your temporary password first.",
    ),
    "code.title": ("Kod autoryzacyjny", "Authorisation code"),
    "code.intro": (
        "Wysłaliśmy sześciocyfrowy kod na adres kontaktowy {contact}. Kod jest ważny "
        "{minutes} minut.",
        "We have sent a six-digit code to your contact address {contact}. It is valid for "
        "{minutes} minutes.",
    ),
    "code.submit": ("Zaloguj się", "Sign in"),
    "code.wrong": (
        "Nieprawidłowy kod. Pozostało prób: {left}.",
        "Wrong code. Attempts left: {left}.",
    ),
    "code.gone": (
        "Kod wygasł lub wykorzystano wszystkie próby. Zaloguj się ponownie.",
        "The code has expired or all attempts are used up. Please sign in again.",
    ),
    "terms.title": ("Regulamin", "Terms of service"),
    "terms.accept": (
        "Zapoznałem(-am) się z regulaminem i akceptuję go.",
        "I have read and accept the terms.",
    ),
    "terms.submit": ("Zapisz", "Save"),
    "terms.required": (
        "Aby przejść dalej, zaakceptuj regulamin.",
        "To continue, please accept the terms.",
    ),
    "account.title": ("Moje konto", "My account"),
    "account.logout": ("Wyloguj", "Sign out"),
    "account.sections": ("Sekcje konta", "Account sections"),
    "section.profile": ("Dane konta", "Account details"),
    "section.password": ("Hasło", "Password"),
    "section.client": ("Program pocztowy", "Mail client"),
    "profile.address": ("Adres", "Address"),
    "profile.aliases": ("Aliasy", "Aliases"),
    "profile.contact": ("Adres kontaktowy", "Contact address"),
    "profile.name": ("Nazwa", "Name"),
    "profile.none": ("brak", "none"),
    "password.link": (
        "Hasło zmienisz na stronie „Zmiana hasła”.",
        "You can change your password on the “Change password” page.",
    ),
    "notfound.title": ("Nie ma takiej strony", "Page not found"),
    "notfound": (
        "Nie znaleziono strony. Wróć do strony głównej.",
        "The page was not found. Go back to the home page.",
    ),
}


def text(lang: str, key: str, **values: object) -> str:
    pl, en = TEXTS[key]
    return (pl if lang == "pl" else en).format(**values)
