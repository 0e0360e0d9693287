"""mailsuite answers FETCH as Dovecot does for a corpus of odd messages.

Every message of tests/corpus/ is delivered to a running mailsuite (through its store) and
put in the Maildir of a running Dovecot (as an MDA would). Both are asked over IMAP for
ENVELOPE, BODY, BODYSTRUCTURE and every section of every part: the whole message, HEADER,
TEXT, HEADER.FIELDS and .NOT, and per part BODY[n], n.MIME, n.HEADER, n.TEXT and
n.HEADER.FIELDS. Answers are compared as IMAP data, so quoted string or literal does not
matter; in BODY and BODYSTRUCTURE neither does the letter case of type, subtype, encoding,
parameter names and disposition type (case-insensitive tokens, RFC 2045 5.1).

Where the two still differ, it is a choice explained in docs/imap.md; ACCEPTED names the
heading, and a difference that disappears must be taken out of ACCEPTED.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailsuite.imap.message import Part, parse
from mailsuite.store import Store
from tests.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot import Dovecot
from tests.imapdata import Value, fetch_items
from tests.test_imap_server import PASSWORD, Raw

CORPUS = Path(__file__).parent / "corpus"
DOCS = Path(__file__).parent.parent / "docs" / "imap.md"
FIELDS = "(FROM TO SUBJECT CONTENT-TYPE X-AFTER)"
STRUCTURE_ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY")

BARE_LF = "Messages stored with bare LF line ends are served as stored"
NO_BLANK_LINE = "HEADER.FIELDS of a header without its blank line"

# (message, item) -> heading in docs/imap.md; item None covers every answer for the message
ACCEPTED: dict[tuple[str, str | None], str] = {
    ("lines-lf-only", None): BARE_LF,
    ("mp-lf-only", None): BARE_LF,
    ("mp-mixed-line-endings", None): BARE_LF,
    ("lines-header-only", f"BODY[HEADER.FIELDS {FIELDS}]"): NO_BLANK_LINE,
    ("rfc822-empty", "BODY[1.HEADER.FIELDS (SUBJECT)]"): NO_BLANK_LINE,
    ("mp-part-eoh-then-parent-boundary", "BODY[2.HEADER.FIELDS (SUBJECT)]"): NO_BLANK_LINE,
    ("mp-part-eoh-then-parent-boundary", "BODY[3.HEADER.FIELDS (SUBJECT)]"): NO_BLANK_LINE,
}


def corpus() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))}


# --- comparing answers -------------------------------------------------------------------


def _upper(v: Value) -> Value:
    return v.upper() if isinstance(v, bytes) else v


def _params(v: Value) -> Value:
    if not isinstance(v, list):
        return v
    return [_upper(x) if i % 2 == 0 else x for i, x in enumerate(v)]


def _disposition(v: Value) -> Value:
    if not isinstance(v, list) or not v:
        return v
    return [_upper(v[0]), *[_params(x) for x in v[1:]]]


def normalise_structure(v: Value) -> Value:
    """BODY/BODYSTRUCTURE with its case-insensitive tokens upper-cased (RFC 3501 7.4.2)."""
    if not isinstance(v, list):
        return v
    if v and isinstance(v[0], list):  # multipart: bodies, subtype, extension data
        n = next((i for i, x in enumerate(v) if not isinstance(x, list)), len(v))
        out = [normalise_structure(x) for x in v[:n]]
        rest = v[n:]
        if rest:
            out.append(_upper(rest[0]))
        if len(rest) > 1:
            out.append(_params(rest[1]))
        if len(rest) > 2:
            out.append(_disposition(rest[2]))
        return out + rest[3:]
    out = [_upper(v[0]), _upper(v[1]), _params(v[2]), v[3], v[4], _upper(v[5]), *v[6:]]
    ext = 7  # body-ext-1part follows body-fields, the lines, or envelope + body + lines
    if out[0] == b"MESSAGE" and out[1] == b"RFC822" and len(v) > 9:
        out[8] = normalise_structure(v[8])
        ext = 10
    elif out[0] == b"TEXT":
        ext = 8
    if len(out) > ext + 1:
        out[ext + 1] = _disposition(out[ext + 1])
    return out


def part_paths(root: Part) -> list[str]:
    """Section part numbers of every entity we find (RFC 3501 6.4.5 numbering)."""
    out: list[str] = []

    def inside(p: Part, path: str) -> None:
        if p.is_multipart:
            for i, child in enumerate(p.children, 1):
                out.append(f"{path}{i}")
                inside(child, f"{path}{i}.")
        elif p.message is not None:
            if p.message.is_multipart:
                inside(p.message, path)
            else:
                out.append(f"{path}1")

    if root.is_multipart:
        inside(root, "")
    else:
        out.append("1")
        inside(root, "1.")
    return out


def structure_paths(bs: Value, prefix: str = "") -> list[str]:
    """The same numbers read from a BODYSTRUCTURE answer, to ask for Dovecot's parts too."""
    if not isinstance(bs, list) or not bs:
        return []
    if not isinstance(bs[0], list):
        return [] if prefix else ["1", *_inner(bs, "1")]
    out: list[str] = []
    n = next((i for i, x in enumerate(bs) if not isinstance(x, list)), len(bs))
    for i, child in enumerate(bs[:n], 1):
        out += [f"{prefix}{i}", *_inner(child, f"{prefix}{i}")]
    return out


def _inner(bs: Value, path: str) -> list[str]:
    if isinstance(bs[0], list):
        return structure_paths(bs, path + ".")
    if _upper(bs[0]) == b"MESSAGE" and len(bs) > 8 and isinstance(bs[8], list):
        return structure_paths(bs[8], path + ".") if isinstance(bs[8][0], list) else [path + ".1"]
    return []


def sections(paths: list[str]) -> list[str]:
    out = ["", "HEADER", "TEXT", f"HEADER.FIELDS {FIELDS}", f"HEADER.FIELDS.NOT {FIELDS}"]
    for p in paths:
        out += [p, f"{p}.MIME", f"{p}.HEADER", f"{p}.TEXT", f"{p}.HEADER.FIELDS (SUBJECT)"]
    return out


def ask(client: Raw, seq: int, items: list[str]) -> dict[str, Value]:
    lines = client.cmd(f"FETCH {seq} ({' '.join(items)})")
    assert lines[-1].split(b" ")[1] == b"OK", lines[-1]
    return fetch_items(next(ln for ln in lines if ln.startswith(b"* %d FETCH " % seq)))


@dataclass
class Report:
    """How many answers were compared, and those that differ: (message, item) -> answers."""

    asked: dict[str, int] = field(default_factory=dict)
    differ: dict[tuple[str, str], tuple[Value, Value]] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        sections_ = kind == "sections"
        return sum(
            1
            for _, item in self.differ
            if item.startswith("BODY[") == sections_ and (sections_ or item == kind)
        )

    def summary(self) -> str:
        return ", ".join(f"{k} {self.count(k)}/{n}" for k, n in self.asked.items())


def compare(ours: tuple[Raw, dict[str, int]], theirs: tuple[Raw, dict[str, int]]) -> Report:
    report = Report(asked={k: 0 for k in (*STRUCTURE_ITEMS, "sections")})
    for name, data in corpus().items():
        a = ask(ours[0], ours[1][name], list(STRUCTURE_ITEMS))
        b = ask(theirs[0], theirs[1][name], list(STRUCTURE_ITEMS))
        for item in STRUCTURE_ITEMS:
            report.asked[item] += 1
            x, y = a[item], b[item]
            if item != "ENVELOPE":
                x, y = normalise_structure(x), normalise_structure(y)
            if x != y:
                report.differ[(name, item)] = (x, y)
        numbers = set(part_paths(parse(data))) | set(structure_paths(b["BODYSTRUCTURE"]))
        paths = sorted(numbers, key=lambda p: [int(n) for n in p.split(".")])
        wanted = [f"BODY.PEEK[{s}]" for s in sections(paths)]
        for i in range(0, len(wanted), 20):
            chunk = wanted[i : i + 20]
            a, b = ask(ours[0], ours[1][name], chunk), ask(theirs[0], theirs[1][name], chunk)
            for spec in chunk:
                label = spec.replace("BODY.PEEK[", "BODY[").upper()
                report.asked["sections"] += 1
                if a.get(label) != b.get(label):
                    report.differ[(name, label)] = (a.get(label), b.get(label))
    return report


# --- the two servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Raw, dict[str, int]]]:
    """A running Dovecot with the corpus in alice's INBOX: a session on it, name -> seq."""
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), users=("alice",)).start()
    try:
        messages = corpus()
        for data in messages.values():
            server.put("alice", data)
        client = Raw(server.ports["imap"])
        client.login("alice", DOVECOT_PASSWORD)
        client.ok("SELECT INBOX")
        yield client, _numbers(client, messages)
        client.close()
    finally:
        server.stop()


def _numbers(client: Raw, messages: dict[str, bytes]) -> dict[str, int]:
    """Which sequence number holds which message (Dovecot orders new files itself)."""

    def same(data: bytes) -> bytes:
        # Dovecot sends CRLF line ends and NUL as 0x80 whatever the file holds
        return re.sub(rb"\r?\n", b"\r\n", data).replace(b"\0", b"\x80")

    by_bytes = {same(data): name for name, data in messages.items()}
    out: dict[str, int] = {}
    for line in client.cmd("FETCH 1:* BODY.PEEK[]")[:-1]:
        name = by_bytes[same(fetch_items(line)["BODY[]"])]
        out[name] = int(line.split(b" ")[1])
    assert len(out) == len(messages)
    return out


@pytest.fixture(scope="module")
def mailsuite_inbox(suite) -> Iterator[tuple[Raw, dict[str, int]]]:
    address = "parity@example.test"
    suite.add_user(address, PASSWORD)
    store = Store(suite.config["paths"]["maildirs"], fsync=False)
    numbers = {}
    for n, (name, data) in enumerate(corpus().items(), 1):
        store.deliver([address], data)
        numbers[name] = n
    client = Raw(suite.port("imap"))
    client.login(address, PASSWORD)
    client.ok("SELECT INBOX")
    yield client, numbers
    client.close()


@pytest.fixture(scope="module")
def report(mailsuite_inbox, dovecot_inbox) -> Report:
    return compare(mailsuite_inbox, dovecot_inbox)


# --- tests -------------------------------------------------------------------------------


def test_the_corpus_is_large_and_odd_enough():
    names = corpus()
    assert len(names) >= 80
    for prefix in ("param-rfc2231", "rfc822-", "mp-", "hdr-8bit", "addr-group", "lines-"):
        assert any(n.startswith(prefix) for n in names), prefix


def _accepted(key: tuple[str, str]) -> str | None:
    return ACCEPTED.get(key) or ACCEPTED.get((key[0], None))


def test_every_answer_is_dovecots_or_a_documented_choice(report):
    unexplained = {k: v for k, v in report.differ.items() if _accepted(k) is None}
    assert not unexplained, (
        report.summary()
        + "\n"
        + "\n".join(
            f"{k}:\n  ours   {v[0]!r}\n  theirs {v[1]!r}" for k, v in sorted(unexplained.items())
        )
    )


def test_documented_choices_are_in_the_docs_and_still_differ(report):
    text = DOCS.read_text()
    for (name, item), heading in ACCEPTED.items():
        assert f"### {heading}" in text, heading
        if item is None:
            assert any(k[0] == name for k in report.differ), f"{name} now agrees: drop it"
        else:
            assert (name, item) in report.differ, f"{name} {item} now agrees: drop it"
