"""LIST / LSUB answers (RFC 3501 6.3.8-6.3.9, RFC 5258, RFC 6154, RFC 3348) from folder names.

Pure functions over the store's `FolderInfo` list and subscription list: wildcard matching
(linear in pattern and name, never backtracking), implied parent folders, subscribed names
whose folder is gone, the LIST-EXTENDED selection options with RECURSIVEMATCH and CHILDINFO,
child attributes and special-use attributes. Nothing here reads the store or the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailsuite.imap import render

DELIMITER = "/"
# RFC 5258 3.1 and RFC 6154 3; REMOTE has nothing to add here (no remote mailboxes)
SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
# RFC 5258 3.2 and RFC 6154 3; CHILDREN and SPECIAL-USE attributes are always given
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})  # RFC 5819


@dataclass(frozen=True)
class Listed:
    """One LIST/LSUB line; `childinfo` holds the RFC 5258 CHILDINFO selection options."""

    name: str
    attributes: tuple[str, ...]
    childinfo: tuple[str, ...] = ()


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


class NameMatcher(Protocol):
    def match(self, name: str) -> bool: ...


class AnyOf:
    """RFC 5258 3: with several patterns a name is listed when it matches any of them
    (once). No patterns match nothing."""

    def __init__(self, matchers: Sequence[NameMatcher]) -> None:
        self.matchers = tuple(matchers)

    def match(self, name: str) -> bool:
        return any(m.match(name) for m in self.matchers)


def ancestors(name: str) -> Iterator[str]:
    """The names above `name` in the hierarchy, outermost first ("a", "a/b" for "a/b/c")."""
    start = 0
    while (i := name.find(DELIMITER, start)) >= 0:
        yield name[:i]
        start = i + 1


def _order(name: str) -> tuple[bool, str]:
    return (name != "INBOX", name)


def list_folders(
    folders: Iterable,
    matcher: NameMatcher,
    *,
    subscriptions: Iterable[str] | None = None,
    subscribed_only: bool = False,
    special_use_only: bool = False,
    recursive: bool = False,
    return_subscribed: bool = False,
    extended: bool = False,
    lsub: bool = False,
) -> list[Listed]:
    """The LIST (or LSUB) lines for the names `matcher` accepts, in name order with INBOX
    first.

    `folders` are the existing folders; `subscriptions` the subscription list, names of
    folders that no longer exist included (taken from the folders' `subscribed` when not
    given). `subscribed_only`, `special_use_only` and `recursive` are the selection options
    SUBSCRIBED, SPECIAL-USE and RECURSIVEMATCH; `return_subscribed` is RETURN (SUBSCRIBED);
    `extended` says the command used RFC 5258 syntax, whose answers name a name that is no
    folder ``\\NonExistent`` where RFC 3501 says ``\\Noselect``.

    Costs about 0.1 ms per name for the worst pattern allowed: call it off the loop when the
    folders are many.
    """
    infos = {f.name: f for f in folders}
    subscribed = (
        {f.name for f in infos.values() if f.subscribed}
        if subscriptions is None
        else set(subscriptions)
    )
    # RFC 3348: a name has children when an existing folder sits below it
    has_children = {a for n in infos for a in ancestors(n)}
    if lsub:
        return _lsub(infos, subscribed, has_children, matcher)

    def selected(name: str) -> bool:
        """Whether the name meets the selection criteria itself."""
        if subscribed_only:
            if name not in subscribed:
                return False
        elif name not in infos and name not in has_children:
            return False  # RFC 3501 6.3.8: only folders and the parents they imply
        info = infos.get(name)
        return not special_use_only or (info is not None and bool(info.special_use))

    names = set(infos) | has_children
    if subscribed_only:
        names |= subscribed  # RFC 5258 3.1: subscribed names, existing or not
    wanted = {n for n in names if selected(n)}
    # RFC 5258 3.1 RECURSIVEMATCH: parents of names meeting the criteria, whether or not
    # those names match the pattern (Note 2), get CHILDINFO
    child_selected = {a for n in wanted for a in ancestors(n)} if recursive else set()
    mark_subscribed = subscribed_only or return_subscribed
    out: list[Listed] = []
    for name in sorted(wanted | child_selected, key=_order):
        if not matcher.match(name):
            continue
        info = infos.get(name)
        attrs: list[str] = []
        if info is None:
            # RFC 5258 3: \NonExistent implies \Noselect
            attrs.append("\\NonExistent" if extended else "\\Noselect")
        # RFC 3348 / RFC 5258 4: children attributes; a name that is no folder has no
        # \HasNoChildren to give
        if name in has_children:
            attrs.append("\\HasChildren")
        elif info is not None:
            attrs.append("\\HasNoChildren")
        if info is not None and info.special_use:
            attrs.append(info.special_use)  # RFC 6154 2
        if mark_subscribed and name in subscribed:
            attrs.append("\\Subscribed")  # RFC 5258 3.2
        childinfo = ("SUBSCRIBED",) if name in child_selected else ()
        out.append(Listed(name, tuple(attrs), childinfo))
    return out


def _lsub(
    infos: dict, subscribed: set[str], has_children: set[str], matcher: NameMatcher
) -> list[Listed]:
    """LSUB (RFC 3501 6.3.9): the subscribed names the pattern matches, whether or not the
    folder exists (RFC 3501 6.3.6: a deleted folder stays subscribed); a name that is no
    folder is ``\\Noselect``. A parent the pattern matches in place of a subscribed name
    below it (``%`` stops at the delimiter) is returned ``\\Noselect`` when not subscribed
    itself, as RFC 3501 6.3.9 requires."""
    listed: dict[str, bool] = {}  # name -> selectable as an LSUB answer
    for name in subscribed:
        if matcher.match(name):
            listed[name] = name in infos
            continue
        for parent in ancestors(name):
            if parent not in subscribed and matcher.match(parent):
                listed.setdefault(parent, False)
    out: list[Listed] = []
    for name in sorted(listed, key=_order):
        attrs: list[str] = [] if listed[name] else ["\\Noselect"]
        if name in has_children:
            attrs.append("\\HasChildren")
        elif name in infos:
            attrs.append("\\HasNoChildren")
        out.append(Listed(name, tuple(attrs)))
    return out


def list_line(verb: str, item: Listed, utf8: bool = False) -> bytes:
    """One untagged LIST/LSUB response (RFC 3501 7.2.2), with RFC 5258 3.5's CHILDINFO
    extended data when the item carries it; `utf8` once UTF8=ACCEPT is enabled."""
    extra = b""
    if item.childinfo:
        opts = b" ".join(b'"' + o.encode() + b'"' for o in item.childinfo)
        extra = b' ("CHILDINFO" (' + opts + b"))"
    return (
        b"* "
        + verb.encode()
        + b" ("
        + " ".join(item.attributes).encode()
        + b') "/" '
        + render.astring_mailbox(item.name, utf8)
        + extra
        + b"\r\n"
    )
