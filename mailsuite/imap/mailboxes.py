"""LIST / LSUB answers (RFC 3501 6.3.8-6.3.9, RFC 5258, RFC 6154, RFC 3348) from folder names.

Pure functions over the store's `FolderInfo` list: wildcard matching (linear in pattern and
name, never backtracking), implied parent folders (shown as ``\\Noselect``), child attributes
and special-use attributes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailsuite.imap import render

DELIMITER = "/"


@dataclass(frozen=True)
class Listed:
    name: str
    attributes: tuple[str, ...]


MAX_PATTERN = 1000  # characters of reference + pattern once runs of wildcards are merged


class PatternTooLong(ValueError):
    """The LIST pattern is longer than `MAX_PATTERN` even with its wildcard runs merged."""


class Pattern:
    """A LIST/LSUB pattern (RFC 3501 6.3.8): ``*`` matches anything, the hierarchy delimiter
    included, ``%`` anything but the delimiter; every other character matches itself.

    Matching costs O(pattern × name / word size) whatever the input: the pattern is run as a
    set of positions (one bit each, in a Python int), advanced once per name character, so
    there is no backtracking for a hostile pattern such as fifty stars and an ``x`` to
    exploit. Runs of wildcards are merged first (``**`` is ``*``, ``%*`` is ``*``, ``%%`` is
    ``%``), which matches the same names and keeps the positions few.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _merge_wildcards(text)
        if len(self.tokens) > MAX_PATTERN:
            raise PatternTooLong(f"LIST pattern too long (at most {MAX_PATTERN} characters)")
        star = percent = 0
        literal: dict[str, int] = {}
        for i, tok in enumerate(self.tokens):
            bit = 1 << i
            if tok == "*":
                star |= bit
            elif tok == "%":
                percent |= bit
            else:
                literal[tok] = literal.get(tok, 0) | bit
        self._star = star
        self._percent = percent
        self._wild = star | percent
        self._literal = literal
        self._accept = 1 << len(self.tokens)

    def _close(self, states: int) -> int:
        # A wildcard may match nothing, so its position also stands for the one after it.
        # Merged runs mean no two wildcards are adjacent: one step closes the set.
        return states | ((states & self._wild) << 1)

    def match(self, name: str) -> bool:
        """Whether the whole of `name` matches the whole pattern."""
        states = self._close(1)
        literal = self._literal
        for ch in name:
            stay = self._star if ch == DELIMITER else self._wild
            states = self._close((states & stay) | ((states & literal.get(ch, 0)) << 1))
            if not states:
                return False
        return bool(states & self._accept)


def _merge_wildcards(text: str) -> list[str]:
    """The pattern's characters with each run of wildcards merged into one: ``*`` when the
    run holds a ``*`` (it already matches whatever ``%`` does), else ``%``."""
    out: list[str] = []
    for ch in text:
        if ch in "*%" and out and out[-1] in "*%":
            if ch == "*":
                out[-1] = "*"
            continue
        out.append(ch)
    return out


class Matcher:
    """Reference + pattern as LIST applies them to folder names.

    RFC 3501 6.3.8: the reference is prefixed to the pattern. RFC 3501 5.1: INBOX is
    case-insensitive, so for INBOX and the folders under it a pattern spelling ``inbox`` in
    any case at its start matches as ``INBOX``; the rest of every name stays case-sensitive.
    Raises `PatternTooLong` for a pattern no folder name could need.
    """

    def __init__(self, reference: str, pattern: str) -> None:
        full = reference + pattern
        self.plain = Pattern(full)
        self.inbox = Pattern("INBOX" + full[5:]) if full[:5].upper() == "INBOX" else self.plain

    def match(self, name: str) -> bool:
        if name == "INBOX" or name.startswith("INBOX" + DELIMITER):
            return self.inbox.match(name)
        return self.plain.match(name)


def list_folders(
    folders: Iterable,
    matcher: Matcher,
    *,
    subscribed_only: bool = False,
    special_use_only: bool = False,
    lsub: bool = False,
) -> list[Listed]:
    """The LIST (or LSUB) lines for the names `matcher` accepts, in name order with INBOX
    first. Costs about 0.1 ms per folder for the worst pattern allowed: call it off the loop
    when the folders are many."""
    infos = {f.name: f for f in folders}
    names = set(infos)
    implied = set()
    for name in names:
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            parent = DELIMITER.join(parts[:i])
            if parent not in names:
                implied.add(parent)
    has_children = {
        DELIMITER.join(n.split(DELIMITER)[:i])
        for n in names
        for i in range(1, n.count(DELIMITER) + 1)
    }
    out: list[Listed] = []
    for name in sorted(names | implied, key=lambda n: (n != "INBOX", n)):
        if not matcher.match(name):
            continue
        info = infos.get(name)
        if (subscribed_only or lsub) and (info is None or not info.subscribed):
            continue
        if special_use_only and (info is None or not info.special_use):
            continue
        attrs: list[str] = []
        if info is None:
            attrs.append("\\Noselect")
        # RFC 3348 / RFC 5258 4: children attributes
        attrs.append("\\HasChildren" if name in has_children else "\\HasNoChildren")
        if info is not None and info.special_use and not lsub:
            attrs.append(info.special_use)  # RFC 6154 2
        if subscribed_only and info is not None and info.subscribed:
            attrs.append("\\Subscribed")
        out.append(Listed(name, tuple(attrs)))
    return out


def list_line(verb: str, item: Listed) -> bytes:
    return (
        b"* "
        + verb.encode()
        + b" ("
        + " ".join(item.attributes).encode()
        + b') "/" '
        + render.astring_mailbox(item.name)
        + b"\r\n"
    )
