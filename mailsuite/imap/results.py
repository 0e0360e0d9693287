"""Search results as the extensions want them: ESEARCH (RFC 4731), the saved result and
``$`` (RFC 5182), SORT with ESORT (RFC 5256, 5267, 5957) and THREAD (RFC 5256).

This module owns the session's saved result and the per-message sort keys of each open
folder (`SortKeyCache`, one per server, in memory over the store's per-message cache). The
ordering itself is `imap.sort`; matching is `imap.search`. Files are read only for
messages whose keys are in neither cache, and only in I/O threads.
"""

from __future__ import annotations

import threading
import weakref
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mailsuite import store as store_pkg
from mailsuite.context import Context, Part
from mailsuite.imap import condstore, render, sort
from mailsuite.imap.parser import Command, SearchKey, SequenceSet
from mailsuite.imap.search import SearchResult, search
from mailsuite.store import fulltext
from mailsuite.store import headers as store_headers

if TYPE_CHECKING:
    from mailsuite.imap.session import Session
    from mailsuite.imap.view import View

# what this module serves, for the CAPABILITY list
CAPABILITIES = (
    "ESEARCH",  # RFC 4731
    "SEARCHRES",  # RFC 5182
    "WITHIN",  # RFC 5032
    "SORT",  # RFC 5256
    "SORT=DISPLAY",  # RFC 5957
    "ESORT",  # RFC 5267
    "THREAD=ORDEREDSUBJECT",  # RFC 5256
    "THREAD=REFERENCES",
)
CACHE_NAME = f"sort{sort.KEYS_VERSION}.keys"  # the store cache entry of `sort.pack`
_HEADER_KEYS = frozenset(sort.CRITERIA) - {"ARRIVAL", "SIZE"}
LOAD_BATCH = 2000  # messages whose keys are looked up and stored together
T = TypeVar("T")


# --- per-message sort keys ------------------------------------------------------------------


KEPT_MESSAGES = 250_000  # keys held in memory across folders (about 500 bytes each)
KEPT_ORDERS = 8  # sort and thread answers kept per folder


class _FolderKeys:
    """What is kept for one folder: keys by UID, and the last answers by what was asked."""

    __slots__ = ("listed", "orders", "table", "uidvalidity", "used")

    def __init__(self, uidvalidity: int) -> None:
        self.uidvalidity = uidvalidity
        self.table: dict[int, sort.SortKeys] = {}
        self.orders: dict[Hashable, tuple[object, Any]] = {}
        self.used = 0
        self.listed = 0  # how many messages the folder had when last looked at


class SortKeyCache:
    """The sort keys of the messages of each folder the store keeps open, by UID (weakly:
    a folder the store lets go of takes its keys along), at most `KEPT_MESSAGES` of them
    (the folders used least recently go first). A message's header never changes under
    its UID, so keys stay right until the folder's UIDVALIDITY does.

    Beside them, the last few answers per folder (`answer`), each with the listing it was
    worked out from: a webmail sorts the same unchanged folder again on every page, and a
    listing object stands for exactly one set of messages (the store hands out a new one on
    any change)."""

    def __init__(self) -> None:
        self._by_folder: weakref.WeakKeyDictionary[Any, _FolderKeys]
        self._by_folder = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._clock = 0

    def _entry(self, folder: Any) -> _FolderKeys:
        entry = self._by_folder.get(folder)
        if entry is None or entry.uidvalidity != folder.uidvalidity:
            entry = self._by_folder[folder] = _FolderKeys(folder.uidvalidity)
        self._clock += 1
        entry.used = self._clock
        return entry

    def keys(
        self, folder: Any, uids: Sequence[int], listed: Callable[[], Iterable[int]]
    ) -> list[sort.SortKeys]:
        """Keys of `uids`, in that order; those not in memory come from the store's cache,
        else from the header block (and are put in both). Off the loop. A message gone
        meanwhile gets empty keys; its EXPUNGE reaches the client later. `listed` gives
        the folder's UIDs, to let go of expunged messages' keys once they pile up."""
        with self._lock:
            entry = self._entry(folder)
            table = entry.table
            got = list(map(table.get, uids))
        missing = [u for u, k in zip(uids, got, strict=True) if k is None]
        if missing:
            found: dict[int, sort.SortKeys] = {}
            with sort.paused_gc():  # many objects, none in a cycle
                for start in range(0, len(missing), LOAD_BATCH):
                    found.update(_load(folder, missing[start : start + LOAD_BATCH]))
            empty = sort.SortKeys()
            got = [
                k if k is not None else found.get(u, empty) for u, k in zip(uids, got, strict=True)
            ]
            with self._lock:
                table.update(found)
                self._bound(entry, listed)
        return got

    def _bound(self, entry: _FolderKeys, listed: Callable[[], Iterable[int]]) -> None:
        """Keep memory bounded: drop expunged messages' keys, then whole folders, least
        recently used first, while more than `KEPT_MESSAGES` are held. Under the lock."""
        if len(entry.table) > 2 * entry.listed + 1000:
            present = set(listed())
            entry.listed = len(present)
            if len(entry.table) > 2 * len(present) + 1000:
                entry.table = {u: k for u, k in entry.table.items() if u in present}
        total = sum(len(e.table) for e in self._by_folder.values())
        for folder, other in sorted(self._by_folder.items(), key=lambda fe: fe[1].used):
            if total <= KEPT_MESSAGES or other is entry:
                break
            total -= len(other.table)
            del self._by_folder[folder]

    def kept(self, folder: Any, asked: Hashable) -> tuple[object, Any] | None:
        """The last answer to `asked` in the folder, with what it was worked out from."""
        with self._lock:
            return self._entry(folder).orders.get(asked)

    def keep(self, folder: Any, asked: Hashable, source: object, answer: object) -> None:
        """Keep `answer` to `asked`, worked out from `source`, in place of the last one."""
        with self._lock:
            orders = self._entry(folder).orders
            orders.pop(asked, None)
            orders[asked] = (source, answer)
            while len(orders) > KEPT_ORDERS:
                del orders[next(iter(orders))]

    def answer(self, folder: Any, listing: object, asked: Hashable, work: Callable[[], T]) -> T:
        """The answer to `asked` over the messages of `listing`: the one kept for that
        listing object, else `work()`, kept for next time. Off the loop."""
        kept = self.kept(folder, asked)
        if kept is not None and kept[0] is listing:
            answer: T = kept[1]
            return answer
        answer = work()
        self.keep(folder, asked, listing, answer)
        return answer

    def close(self) -> None:
        with self._lock:
            self._by_folder.clear()


SORT_KEYS: Part[SortKeyCache] = Part("imap.sortkeys", lambda ctx: SortKeyCache())


FULLTEXT: Part[fulltext.Indexer] = Part("store.fulltext", lambda ctx: fulltext.Indexer())


def search_view(ctx: Context, view: View, key: SearchKey, recent: set[int]) -> SearchResult:
    """Search the view's messages, header keys answered from the header blocks the store
    keeps and BODY/TEXT from the folder's full-text index once it is current (until then,
    and while it is built in the background, from the files). Off the loop."""
    folder = view.folder
    entries = view.entries()
    indexer = ctx.part(FULLTEXT)
    return search(
        key,
        entries,
        recent,
        folder.read,
        headers=lambda uids: store_headers.blocks(folder, uids),
        fulltext=lambda queries: indexer.lookup(folder, [e.uid for e in entries], queries),
    )


def sort_keys_of(ctx: Context) -> SortKeyCache:
    """The sort-key cache of the server `ctx` belongs to, made on first use."""
    return ctx.part(SORT_KEYS)


def _load(folder: Any, uids: list[int]) -> dict[int, sort.SortKeys]:
    """Keys from the store's cache, in one query per few hundred; the rest from the header
    blocks the store keeps (never the bodies), put in the cache in one transaction."""
    out: dict[int, sort.SortKeys] = {}
    for uid, blob in folder.cache_get_many(uids, CACHE_NAME).items():
        keys = sort.unpack(blob)
        if keys is not None:
            out[uid] = keys
    new: list[tuple[int, bytes]] = []
    blocks = store_headers.blocks(folder, [uid for uid in uids if uid not in out])
    for uid in uids:
        if uid in out:
            continue
        block = blocks.get(uid)
        if block is None:
            out[uid] = sort.SortKeys()  # gone: its EXPUNGE comes later
            continue
        out[uid] = keys = sort.keys_of(sort.header_fields(block))
        new.append((uid, sort.pack(keys)))
    if new:
        try:
            folder.cache_put_many(CACHE_NAME, new)
        except store_pkg.StoreError:
            pass  # the folder went away: worked out again next time
    return out


# --- answers -------------------------------------------------------------------------------


def sequence_text(numbers: Sequence[int], *, ordered: bool = False) -> bytes:
    """RFC 4731 3.1 sequence-set of `numbers`. A search result is ascending and joined into
    ranges freely; a sort result (`ordered`, RFC 5267 3.2) keeps its order, so only runs
    that go up by one become ranges."""
    nums = list(numbers) if ordered else sorted(set(numbers))
    out: list[bytes] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(b"%d" % nums[i] if i == j else b"%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return b",".join(out)


def esearch_line(cmd: Command, numbers: Sequence[int], *, ordered: bool = False) -> bytes:
    """The ``* ESEARCH`` response (RFC 4731 3.1, RFC 5267 3.2): MIN, MAX and ALL only when
    something matched, COUNT always when asked for. In a sort result MIN and MAX are the
    first and last in sort order."""
    opts = set(cmd.result_opts)
    out = [b"* ESEARCH (TAG " + render.string(cmd.tag) + b")"]
    if cmd.uid:
        out.append(b"UID")  # RFC 4731 3.1: the numbers are UIDs
    if numbers:
        low, high = (numbers[0], numbers[-1]) if ordered else (min(numbers), max(numbers))
        if "MIN" in opts:
            out.append(b"MIN %d" % low)
        if "MAX" in opts:
            out.append(b"MAX %d" % high)
    if "COUNT" in opts:
        out.append(b"COUNT %d" % len(numbers))
    if numbers and "ALL" in opts:
        out.append(b"ALL " + sequence_text(numbers, ordered=ordered))
    return b" ".join(out) + b"\r\n"


def _to_save(opts: set[str], uids: Sequence[int], ordered: bool) -> list[int]:
    """RFC 5182 2.1: with MIN and/or MAX and neither ALL nor COUNT only those are saved;
    else the whole result."""
    if not uids or opts & {"ALL", "COUNT"} or not opts & {"MIN", "MAX"}:
        return sorted(uids)
    picked = set()
    low, high = (uids[0], uids[-1]) if ordered else (min(uids), max(uids))
    if "MIN" in opts:
        picked.add(low)
    if "MAX" in opts:
        picked.add(high)
    return sorted(picked)


def _answer(
    session: Session, cmd: Command, seqs: Sequence[int], uids: Sequence[int], ordered: bool
) -> None:
    """Write the ESEARCH response and keep the saved result as RETURN asks."""
    opts = set(cmd.result_opts)
    if "SAVE" in opts:
        session.saved_uids = _to_save(opts, uids, ordered)  # RFC 5182 2.1: kept as UIDs
        opts.discard("SAVE")
        if not opts:
            return  # RFC 5182 2.1: SAVE alone gets no ESEARCH response
    line = esearch_line(cmd, uids if cmd.uid else seqs, ordered=ordered)
    top = condstore.esearch_modseq(session.view, cmd, uids, opts, ordered=ordered)
    if top:
        line = line[:-2] + b" MODSEQ %d\r\n" % top  # RFC 7162 3.1.5 with RFC 4731
    session.conn.write(line)


async def do_esearch(session: Session, cmd: Command) -> str | None:
    """SEARCH RETURN (...) (RFC 4731 3.1) with SAVE (RFC 5182 2.1)."""
    view = session._view()
    assert cmd.search is not None
    try:
        result = await session.ctx.run_io(
            search_view, session.ctx, view, cmd.search, set(view.recent)
        )
    except Exception:
        if "SAVE" in cmd.result_opts:
            session.saved_uids = []  # RFC 5182 2.1: a failed SEARCH ... SAVE empties it
        raise
    _answer(session, cmd, result.seqs, result.uids, ordered=False)
    return None


def _chosen(
    ctx: Context, view: View, key: SearchKey, recent: set[int]
) -> tuple[list[int], list[Any]]:
    """The sequence numbers and entries of the messages matching `key`; off the loop."""
    if key == ("ALL",):
        # what clients send nearly always: every entry, taken in one pass over the listing
        entries = view.all()
        return list(range(1, len(entries) + 1)), entries
    everything = view.entries()
    seqs = search_view(ctx, view, key, recent).seqs
    return seqs, [everything[s - 1] for s in seqs]


def _listed(view: View) -> Callable[[], Iterable[int]]:
    return lambda: [*view.base_uids, *view.tail_uids]


def _kept(view: View, key: SearchKey) -> object | None:
    """What an answer over the view's messages can be kept against: its listing, when the
    answer depends on nothing else (every message, no flag test, nothing since SELECT)."""
    return view.base_uids if key == ("ALL",) and not view.tail_uids else None


def _sorted(
    ctx: Context, view: View, cmd: Command, recent: set[int]
) -> tuple[list[int], list[int]]:
    """(sequence numbers, UIDs) of the matching messages in sort order; off the loop.

    A SORT of every message is kept (`sort.Sorted`) with the UIDs it covered: asked again
    over the same messages it is the answer, and over those plus new ones (mail that came
    in since) the new ones are put in place rather than the folder sorted again."""
    assert cmd.search is not None
    if cmd.search != ("ALL",):
        return _sort(ctx, view, cmd, recent)
    cache = sort_keys_of(ctx)
    current = view.base_uids
    if view.tail_uids or not isinstance(current, array):
        current = array("I", current)
        current.extend(view.tail_uids)
    asked = ("SORT", tuple(cmd.sort_criteria))
    kept = cache.kept(view.folder, asked)
    done: sort.Sorted | None = None
    if kept is not None:
        covered, done = kept
        assert isinstance(covered, array) and isinstance(done, sort.Sorted)
        if covered is not current and covered != current:
            n = len(covered)
            if len(current) > n and current[:n] == covered:
                entries = view.entries()[n:]
                done = done.extended(cmd.sort_criteria, *_columns(ctx, view, cmd, entries))
            else:
                done = None
            if done is not None:
                cache.keep(view.folder, asked, current, done)
    if done is None:
        done = sort.Sorted.of(cmd.sort_criteria, *_columns(ctx, view, cmd, view.all()))
        cache.keep(view.folder, asked, current, done)
    return [p + 1 for p in done.perm], list(map(current.__getitem__, done.perm))


def _columns(
    ctx: Context, view: View, cmd: Command, entries: Sequence[Any]
) -> tuple[list[sort.SortKeys], list[int], list[float]]:
    """What the criteria need of `entries`: keys (only if a criterion reads the header),
    sizes and internal dates."""
    keys: list[sort.SortKeys] = []
    if any(name in _HEADER_KEYS for name, _ in cmd.sort_criteria):
        keys = sort_keys_of(ctx).keys(view.folder, [e.uid for e in entries], _listed(view))
    return keys, [e.size for e in entries], [float(e.internal_date) for e in entries]


def _sort(ctx: Context, view: View, cmd: Command, recent: set[int]) -> tuple[list[int], list[int]]:
    assert cmd.search is not None
    seqs, entries = _chosen(ctx, view, cmd.search, recent)
    perm = sort.sort_order(cmd.sort_criteria, *_columns(ctx, view, cmd, entries))
    return [seqs[p] for p in perm], [entries[p].uid for p in perm]


async def do_sort(session: Session, cmd: Command) -> str | None:
    """SORT and UID SORT (RFC 5256 3), with RETURN (RFC 5267 3) and SAVE (RFC 5182)."""
    view = session._view()
    try:
        seqs, uids = await session.ctx.run_io(_sorted, session.ctx, view, cmd, set(view.recent))
    except Exception:
        if "SAVE" in cmd.result_opts:
            session.saved_uids = []
        raise
    if cmd.esearch:
        _answer(session, cmd, seqs, uids, ordered=True)
        return None
    found = uids if cmd.uid else seqs
    session.conn.write(b"* SORT" + b"".join(b" %d" % n for n in found) + b"\r\n")
    return None


def _threads(ctx: Context, view: View, cmd: Command, recent: set[int]) -> bytes:
    assert cmd.search is not None
    listing = _kept(view, cmd.search)
    if listing is None:
        return _thread(ctx, view, cmd, recent)
    asked = ("THREAD", cmd.algorithm, cmd.uid)
    return sort_keys_of(ctx).answer(
        view.folder, listing, asked, lambda: _thread(ctx, view, cmd, recent)
    )


def _thread(ctx: Context, view: View, cmd: Command, recent: set[int]) -> bytes:
    assert cmd.search is not None
    with sort.paused_gc():  # the keys of a folder, and a node per message: no cycles to find
        if cmd.search == ("ALL",):
            uids = [*view.base_uids, *view.tail_uids]
            seqs: Sequence[int] = range(1, len(uids) + 1)
            keys = sort_keys_of(ctx).keys(view.folder, uids, _listed(view))
            arrivals = _thread_arrivals(view.entries(), keys)
        else:
            seqs, entries = _chosen(ctx, view, cmd.search, recent)
            uids = [e.uid for e in entries]
            keys = sort_keys_of(ctx).keys(view.folder, uids, _listed(view))
            arrivals = [float(e.internal_date) for e in entries]
        if cmd.algorithm == "ORDEREDSUBJECT":
            return sort.thread_orderedsubject(keys, arrivals, uids if cmd.uid else seqs)
        items = [
            sort.Item(s, u, 0, a, k) for s, u, a, k in zip(seqs, uids, arrivals, keys, strict=True)
        ]
        return sort.render_threads(sort.thread_references(items), cmd.uid)


def _thread_arrivals(entries: Sequence[Any], keys: Sequence[sort.SortKeys]) -> list[float]:
    """The internal dates THREAD reads: a message's only where its Date is unusable (RFC
    5256 2.2 takes the internal date then), 0.0 for the rest, which thread by their sent
    date. THREAD of every message so makes no index entry per message, only UIDs."""
    arrivals = [0.0] * len(keys)
    for i, k in enumerate(keys):
        if k.sent is None:
            arrivals[i] = float(entries[i].internal_date)
    return arrivals


async def do_thread(session: Session, cmd: Command) -> str | None:
    """THREAD and UID THREAD (RFC 5256 3, 4): ``* THREAD`` with one thread-list each."""
    view = session._view()
    data = await session.ctx.run_io(_threads, session.ctx, view, cmd, set(view.recent))
    session.conn.write(b"* THREAD" + (b" " + data if data else b"") + b"\r\n")
    return None


# --- "$" (RFC 5182 2.1) ---------------------------------------------------------------------


def _as_set(numbers: Iterable[int]) -> SequenceSet:
    nums = sorted(set(numbers))
    ranges: list[tuple[int | None, int | None]] = []
    for n in nums:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return SequenceSet(tuple(ranges))


def _resolve_key(key: SearchKey, saved: SequenceSet) -> SearchKey:
    name = key[0]
    if name in ("SEQ", "UID") and key[1].saved:
        return ("UID", saved)  # "$" names the saved messages, however it is prefixed
    if name == "NOT":
        return ("NOT", _resolve_key(key[1], saved))
    if name == "OR":
        return ("OR", _resolve_key(key[1], saved), _resolve_key(key[2], saved))
    if name == "AND":
        return ("AND", tuple(_resolve_key(k, saved) for k in key[1]))
    return key


def resolve_saved(session: Session, cmd: Command) -> None:
    """Replace ``$`` in a command by the saved result (RFC 5182 2.1): UIDs for UID
    commands and search keys, the messages' current numbers otherwise, so an expunged
    message drops out of it."""
    view = session.view
    uids = session.saved_uids if view is not None else []
    if cmd.sequence is not None and cmd.sequence.saved:
        if cmd.uid:
            cmd.sequence = _as_set(uids)
        else:
            assert view is not None or not uids
            seqs = [] if view is None else [view.seq_of(u) for u in uids]
            cmd.sequence = _as_set(s for s in seqs if s is not None)
    if cmd.search is not None:
        cmd.search = _resolve_key(cmd.search, _as_set(uids))
