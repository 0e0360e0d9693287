"""SASL: the PLAIN and LOGIN grammar as tables of odd inputs, and the authorization identity
rule answered alike by the real SMTP, IMAP and POP3 servers."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator

import pytest

from mailsuite import i18n, sasl
from mailsuite.i18n import ascii_text
from mailsuite.sasl import Challenge, Credentials, Failure, FailureKind
from mailsuite.smtp import replies as smtp_replies

from .conftest import Suite
from .test_imap_server import Raw as ImapRaw
from .test_pop3 import Raw as PopRaw

PASSWORD = "Secret123"
CANCELLED = Failure(FailureKind.CANCELLED)
BAD_BASE64 = Failure(FailureKind.BAD_BASE64)
MALFORMED = Failure(FailureKind.MALFORMED)
TOO_LONG = Failure(FailureKind.TOO_LONG)


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


# --- the pure parser ------------------------------------------------------------------------

DECODE_CASES = [
    # (line as sent, initial response?, decoded or failure)
    (b"*", False, CANCELLED),
    (b"*\r\n", False, CANCELLED),
    (b"*", True, CANCELLED),
    (b"=", True, b""),  # RFC 4954 4, RFC 4959 3, RFC 5034 4
    (b"=", False, BAD_BASE64),  # only an initial response abbreviates empty as "="
    (b"", False, b""),
    (b"\r\n", False, b""),
    (b"QQ==", False, b"A"),
    (b"QQ==\r\n", True, b"A"),
    (b"QQ", False, BAD_BASE64),  # missing padding
    (b"QQ=", False, BAD_BASE64),
    (b"QU JD", False, BAD_BASE64),  # space inside
    (b"!!notbase64", False, BAD_BASE64),
    (b"**", False, BAD_BASE64),
    ("ĄĘ".encode(), True, BAD_BASE64),
    (b"A" * sasl.MAX_RESPONSE, False, b"\0" * (sasl.MAX_RESPONSE // 4 * 3)),
    (b"A" * (sasl.MAX_RESPONSE + 4), False, TOO_LONG),
]


@pytest.mark.parametrize(("line", "initial", "expected"), DECODE_CASES)
def test_decode_response(line: bytes, initial: bool, expected: bytes | Failure) -> None:
    assert sasl.decode_response(line, initial=initial) == expected


PLAIN_CASES = [
    (b"\0ala@example.test\0pw", Credentials("", "ala@example.test", "pw")),
    (
        b"ola@example.test\0ala@example.test\0pw",
        Credentials("ola@example.test", "ala@example.test", "pw"),
    ),
    (b"\0ala\0pass word with spaces", Credentials("", "ala", "pass word with spaces")),
    ("\0żółw@example.test\0zażółć".encode(), Credentials("", "żółw@example.test", "zażółć")),
    # RFC 4616 2: fields of 255 octets must be accepted
    (
        b"z" * 255 + b"\0" + b"a" * 255 + b"\0" + b"p" * 255,
        Credentials("z" * 255, "a" * 255, "p" * 255),
    ),
    (b"", MALFORMED),
    (b"ala@example.test", MALFORMED),  # no NUL
    (b"ala@example.test\0pw", MALFORMED),  # one NUL
    (b"\0\0ala@example.test\0pw", MALFORMED),  # extra NUL in front
    (b"\0ala@example.test\0pw\0", MALFORMED),  # trailing NUL
    (b"\0ala@\0example.test\0pw", MALFORMED),  # NUL inside the authcid
    (b"\0ala@example.test\0", MALFORMED),  # empty password: passwd = 1*SAFE
    (b"\0\0pw", MALFORMED),  # empty authcid: authcid = 1*SAFE
    (b"\0\0", MALFORMED),
    (b"\xff\0ala@example.test\0pw", MALFORMED),  # non-UTF-8 authzid
    (b"\0\xc3(\0pw", MALFORMED),  # non-UTF-8 authcid
    (b"\0ala@example.test\0\xffpw", MALFORMED),  # non-UTF-8 password
    (b"\0a\0" + b"p" * sasl.MAX_DECODED, TOO_LONG),
]


@pytest.mark.parametrize(("message", "expected"), PLAIN_CASES)
def test_parse_plain(message: bytes, expected: Credentials | Failure) -> None:
    assert sasl.parse_plain(message) == expected


EXCHANGE_CASES = [
    # (mechanism, initial response or None, client answers, steps the server returns)
    ("PLAIN", b64("\0ala\0pw"), [], [Credentials("", "ala", "pw")]),
    ("plain", b64("\0ala\0pw"), [], [Credentials("", "ala", "pw")]),  # RFC 4422 3.1
    ("PLAIN", None, [b64("\0ala\0pw")], [Challenge(b""), Credentials("", "ala", "pw")]),
    ("PLAIN", None, [b64("\0ala\0pw") + b"\r\n"], [Challenge(b""), Credentials("", "ala", "pw")]),
    ("PLAIN", b"=", [], [MALFORMED]),  # an empty message is not PLAIN
    ("PLAIN", b"*", [], [CANCELLED]),
    ("PLAIN", b"%%%", [], [BAD_BASE64]),
    ("PLAIN", None, [b"*"], [Challenge(b""), CANCELLED]),
    ("PLAIN", None, [b"="], [Challenge(b""), BAD_BASE64]),
    ("PLAIN", None, [b""], [Challenge(b""), MALFORMED]),
    ("PLAIN", None, [b"A" * 9000], [Challenge(b""), TOO_LONG]),
    (
        "LOGIN",
        None,
        [b64("ala"), b64("pw")],
        [Challenge(b"Username:"), Challenge(b"Password:"), Credentials("", "ala", "pw")],
    ),
    ("LOGIN", b64("ala"), [b64("pw")], [Challenge(b"Password:"), Credentials("", "ala", "pw")]),
    ("LOGIN", b"=", [], [MALFORMED]),  # empty user name
    (
        "LOGIN",
        None,
        [b64("ala"), b""],
        [Challenge(b"Username:"), Challenge(b"Password:"), MALFORMED],
    ),
    ("LOGIN", None, [b64("a\0la")], [Challenge(b"Username:"), MALFORMED]),
    ("LOGIN", b64("ala"), [b64(b"\xff")], [Challenge(b"Password:"), MALFORMED]),
    ("LOGIN", b64("ala"), [b"*"], [Challenge(b"Password:"), CANCELLED]),
]


@pytest.mark.parametrize(("mechanism", "initial", "answers", "steps"), EXCHANGE_CASES)
def test_exchange(
    mechanism: str, initial: bytes | None, answers: list[bytes], steps: list[sasl.Step]
) -> None:
    exchange = sasl.Exchange(mechanism)
    got = [exchange.begin(initial)]
    for answer in answers:
        got.append(exchange.respond(answer))
    assert got == steps
    assert exchange.done


def test_exchange_takes_what_a_library_already_decoded() -> None:
    """aiosmtpd decodes continuation lines itself; the same grammar applies to its bytes."""
    exchange = sasl.Exchange("LOGIN")
    assert exchange.begin_decoded(None) == Challenge(b"Username:")
    assert exchange.respond_decoded(b"ala") == Challenge(b"Password:")
    assert exchange.respond_decoded(b"\xff") == MALFORMED


def test_a_finished_exchange_takes_no_more_answers() -> None:
    exchange = sasl.Exchange("PLAIN")
    exchange.begin(b64("\0ala\0pw"))
    with pytest.raises(RuntimeError):
        exchange.respond(b64("\0ala\0pw"))


def test_only_plain_and_login_are_known() -> None:
    assert sasl.supported("plain") and sasl.supported("LOGIN")
    assert not sasl.supported("CRAM-MD5")
    with pytest.raises(ValueError):
        sasl.Exchange("CRAM-MD5")


def test_the_password_never_shows_in_a_repr() -> None:
    assert "hunter2" not in repr(Credentials("", "ala", "hunter2"))


def test_challenges_are_base64_and_an_empty_one_stays_empty() -> None:
    assert sasl.encode_challenge(b"") == b""
    assert sasl.encode_challenge(b"Username:") == b"VXNlcm5hbWU6"


# --- the authorization identity on the real servers ------------------------------------------

ACCEPT, REFUSE = "accept", "refuse"
IMAP_AUTHZ_FAILED = b"NO [AUTHORIZATIONFAILED]"
POP3_AUTHZ_FAILED = b"-ERR [AUTH] "

AUTHZID_CASES = [
    ("", ACCEPT),  # RFC 4422 3.4.1: no authzid, act as the authenticated identity
    ("ala@example.test", ACCEPT),
    ("ALA@Example.TEST", ACCEPT),
    ("kontakt@example.org", ACCEPT),  # an alias of ala's account
    ("ala", ACCEPT),  # ala's legacy login
    ("ola@example.test", REFUSE),  # another account
    ("OLA@example.test", REFUSE),
    ("biuro@example.org", REFUSE),  # an alias of another account
    ("nobody@example.test", REFUSE),
    ("ala@elsewhere.test", REFUSE),
    (" ala@example.test", REFUSE),  # padded: not a name as typed
    ("not an address \x01\x7f", REFUSE),
    ("ala@example.test\r\nX", REFUSE),
]


@pytest.fixture(scope="module")
def accounts(suite: Suite) -> Iterator[Suite]:
    suite.add_user("ala@example.test", legacy_login="ala")
    suite.add_user("ola@example.test")
    suite.directory.add_alias("kontakt@example.org", "ala@example.test")
    suite.directory.add_alias("biuro@example.org", "ola@example.test")
    yield suite


def plain(authzid: str, authcid: str = "ala@example.test", password: str = PASSWORD) -> str:
    return b64(f"{authzid}\0{authcid}\0{password}").decode()


def smtp_auth(suite: Suite, response: str) -> tuple[int, str]:
    """The reply to AUTH PLAIN with an initial response, on submission after STARTTLS."""
    with smtplib.SMTP("127.0.0.1", suite.port("submission"), timeout=10) as client:
        client.starttls()
        client.ehlo()
        code, text = client.docmd("AUTH", "PLAIN " + response)
    return code, f"{code} {text.decode()}"


def imap_auth(suite: Suite, response: str) -> bytes:
    """The tagged reply to AUTHENTICATE PLAIN with a SASL-IR initial response, tag removed."""
    client = ImapRaw(suite.port("imaps"), tls=True)
    try:
        reply = client.cmd(f"AUTHENTICATE PLAIN {response}")[-1].split(b" ", 1)[1]
        client.cmd("LOGOUT")  # the next case may log the same account in at once
        return reply
    finally:
        client.close()


def pop3_auth(suite: Suite, response: str) -> bytes:
    """The reply to AUTH PLAIN with an initial response, on the TLS listener."""
    client = PopRaw(suite.port("pop3s"), tls=True)
    try:
        reply = client.cmd(f"AUTH PLAIN {response}")
        client.cmd("QUIT")  # releases the maildrop before the next case locks it
        return reply
    finally:
        client.close()


def answers(suite: Suite, response: str) -> dict[str, str]:
    """Accept or refuse per protocol, asserting each refusal is that protocol's own reply
    for a refused authorization identity."""
    out = {}
    code, text = smtp_auth(suite, response)
    assert code == 235 or text == smtp_replies.AUTHZ_FAILED, text
    out["smtp"] = ACCEPT if code == 235 else REFUSE
    imap = imap_auth(suite, response)
    assert imap.startswith((b"OK ", IMAP_AUTHZ_FAILED)), imap
    out["imap"] = ACCEPT if imap.startswith(b"OK ") else REFUSE
    pop3 = pop3_auth(suite, response)
    assert pop3.startswith((b"+OK Logged in", POP3_AUTHZ_FAILED)), pop3
    out["pop3"] = ACCEPT if pop3.startswith(b"+OK") else REFUSE
    return out


@pytest.mark.parametrize(("authzid", "expected"), AUTHZID_CASES)
def test_authzid_gets_the_same_answer_on_every_protocol(
    accounts: Suite, authzid: str, expected: str
) -> None:
    """An empty authzid or any name of the authenticated account lets it in; any other
    identity is refused, and SMTP, IMAP and POP3 agree."""
    assert answers(accounts, plain(authzid)) == {
        "smtp": expected,
        "imap": expected,
        "pop3": expected,
    }


def test_logging_in_through_an_alias_may_name_the_account(accounts: Suite) -> None:
    """The authzid is compared with the account the login resolved to, not with its text."""
    response = plain("ala@example.test", authcid="KONTAKT@example.org")
    assert answers(accounts, response) == {"smtp": ACCEPT, "imap": ACCEPT, "pop3": ACCEPT}


def test_a_wrong_password_is_refused_as_such_whatever_the_authzid(accounts: Suite) -> None:
    """The authzid is judged only after the password: a guess learns nothing from it."""
    accounts.add_user("guess@example.test")
    response = plain("ola@example.test", authcid="guess@example.test", password="wrong")
    text = smtp_auth(accounts, response)[1]
    refused = ascii_text(i18n.text("pl", "auth.bad_credentials"))  # the site's language
    assert text == smtp_replies.AUTH_FAILED.format(message=refused)
    assert imap_auth(accounts, response).startswith(b"NO [AUTHENTICATIONFAILED]")
    assert pop3_auth(accounts, response).startswith(b"-ERR [AUTH] " + refused.encode())


MALFORMED_ON_THE_WIRE = [
    "=",  # an empty initial response is not a PLAIN message
    b64(b"\0ala@example.test\0\xff").decode(),  # non-UTF-8 password
    b64(f"\0\0ala@example.test\0{PASSWORD}").decode(),  # an extra NUL
    b64(b"\0ala@example.test\0").decode(),  # an empty password
]


@pytest.mark.parametrize("response", MALFORMED_ON_THE_WIRE)
def test_malformed_plain_gets_each_protocols_syntax_reply(accounts: Suite, response: str) -> None:
    assert smtp_auth(accounts, response)[1] == smtp_replies.AUTH_UNDECODABLE
    assert imap_auth(accounts, response) == b"BAD Malformed PLAIN response\r\n"
    assert pop3_auth(accounts, response) == b"-ERR [AUTH] Malformed PLAIN response\r\n"
