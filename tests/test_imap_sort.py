"""SORT, ESORT, SORT=DISPLAY, THREAD, ESEARCH, SEARCHRES and WITHIN: the ordering rules as
tables, then every command against the real server."""

from __future__ import annotations

import calendar
import random
import re
import time

import pytest

from mailsuite.imap import sort
from mailsuite.imap.results import CACHE_NAME, sequence_text
from mailsuite.store.maildir import unique_key
from tests.test_imap_server import Raw, deliver, reply, session, store, user
from tests.test_pop3_sizes import reads

__all__ = ["store", "user"]  # fixtures, imported so pytest finds them here

# --- tables: base subject (RFC 5256 2.1) ----------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "base", "is_reply"),
    [
        ("Hello", "Hello", False),
        ("Re: Hello", "Hello", True),
        ("RE: re: Hello", "Hello", True),
        ("Fwd: Hello", "Hello", True),
        ("Fw: Hello", "Hello", True),
        ("Re [list]: Hello", "Hello", True),
        ("[list] Re: Hello", "Hello", True),
        ("[list] Hello", "Hello", False),
        ("Hello (fwd)", "Hello", True),
        ("Hello (FWD) (fwd)  ", "Hello", True),
        ("[Fwd: Hello]", "Hello", True),
        ("[fwd: Re: Hello (fwd)]", "Hello", True),
        ("  Hello \t  world ", "Hello world", False),
        ("[only a blob]", "[only a blob]", False),  # (4): a blob stays when nothing follows
        ("Re: [a] [b] Hello", "Hello", True),
        ("Reply: Hello", "Reply: Hello", False),  # not a subj-refwd
        ("", "", False),
    ],
)
def test_base_subject(subject, base, is_reply):
    """RFC 5256 2.1 steps (1)-(6): leaders, blobs, trailers and the [fwd: ] wrapper go."""
    assert sort.base_subject(subject) == (base, is_reply)


def test_base_subject_of_an_encoded_subject():
    """RFC 5256 2.1 (1): encoded words are decoded before anything is removed."""
    raw = b"=?utf-8?q?Re=3A_Za=C5=BC=C3=B3=C5=82=C4=87?="
    assert sort.base_subject(sort.decode_words(raw)) == ("Zażółć", True)


# --- tables: i;unicode-casemap (RFC 5051) ---------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "ALICE"),
        ("żółw", "ŻÓŁW"),
        ("é", "e\u0301"),  # decomposed alike
        ("ǆ", "Ǆ"),  # both titlecase to ǅ
        ("ｚ", "Z"),  # the compatibility decomposition of a fullwidth letter
    ],
)
def test_casemap_equal(a, b):
    """RFC 5051 2: titlecase, then decomposition; case and composition do not count."""
    assert sort.casemap(a) == sort.casemap(b)


def test_casemap_orders_polish_names():
    """RFC 5051 2: accented letters sort beside their base letter; Ł (no decomposition)
    after the unaccented Latin letters, as the comparator's code-point order says."""
    names = ["Łukasz Żółtowski", "Zenon", "Alice Smith", "Ćwik", "Cezary", "żaneta", "Ola"]
    got = sorted(names, key=sort.casemap)
    assert got == ["Alice Smith", "Cezary", "Ćwik", "Ola", "Zenon", "żaneta", "Łukasz Żółtowski"]


def test_sequence_text():
    assert sequence_text([1, 2, 3, 5, 7, 8]) == b"1:3,5,7:8"
    assert sequence_text([4, 2, 3, 1, 9, 10], ordered=True) == b"4,2:3,1,9:10"


def _item(seq, subject="", mid="", refs=(), sent=None):
    base, reply_ = sort.base_subject(subject)
    keys = sort.SortKeys(subject=base, reply=reply_, message_id=mid, references=tuple(refs))
    keys.sent = float(sent if sent is not None else seq)
    return sort.Item(seq, seq * 10, 100, float(seq), keys)


def test_thread_references_table():
    """RFC 5256 2.2 REFERENCES: parents by References (then In-Reply-To), dummies for
    missing parents pruned, threads of one base subject gathered under a dummy."""
    items = [
        _item(1, "a", "<1>"),
        _item(2, "Re: a", "<2>", ["<1>"]),
        _item(3, "Re: a", "<3>", ["<1>", "<2>"]),
        _item(4, "Re: a", "<4>", ["<1>"]),
        _item(5, "b", "<5>"),
        _item(6, "Re: c", "<6>", ["<missing>"]),
        _item(7, "Re: c", "<7>", ["<missing>"]),
        _item(8, "Re: b", "<8>"),  # no reference: gathered by subject under 5
    ]
    roots = sort.thread_references(items)
    assert sort.render_threads(roots, uid=False) == b"(1 (2 3)(4))(5 8)((6)(7))"
    assert sort.render_threads(roots, uid=True) == b"(10 (20 30)(40))(50 80)((60)(70))"


def test_thread_references_survives_loops_and_duplicate_ids():
    """RFC 5256 2.2 (1)(A): no link makes a loop; a repeated Message-ID is the first's."""
    items = [
        _item(1, "x", "<1>", ["<2>"]),
        _item(2, "y", "<2>", ["<1>"]),
        _item(3, "z", "<1>"),
    ]
    out = sort.render_threads(sort.thread_references(items), uid=False)
    assert sorted(re.findall(rb"\d+", out)) == [b"1", b"2", b"3"]


@pytest.mark.parametrize(
    "criteria",
    [
        (("SUBJECT", False),),
        (("DATE", True),),
        (("DISPLAYFROM", False), ("SIZE", True)),
        (("FROM", True), ("SUBJECT", False), ("ARRIVAL", False)),
    ],
)
def test_sorted_takes_new_messages_as_a_full_sort_orders_them(criteria):
    """RFC 5256 3: messages appended to a kept SORT land where sorting all of them puts
    them, ties in sequence order, REVERSE or not (many equal keys here)."""
    rng = random.Random(5256)
    names = ["Ala", "ala", "Łukasz", "Żaneta", "zenon", ""]
    keys = [
        sort.SortKeys(
            subject=rng.choice(names),
            from_=rng.choice(names),
            display_from=rng.choice(names),
            sent=rng.choice([None, 1.0, 2.0, 3.0]),
        )
        for _ in range(300)
    ]
    sizes = [rng.choice([10, 20, 30]) for _ in keys]
    arrivals = [float(rng.choice([1, 2, 3, 4])) for _ in keys]
    whole = sort.sort_order(criteria, keys, sizes, arrivals)
    done = sort.Sorted.of(criteria, keys[:200], sizes[:200], arrivals[:200])
    for start, stop in ((200, 201), (201, 260), (260, 300)):
        done = done.extended(criteria, keys[start:stop], sizes[start:stop], arrivals[start:stop])
    assert list(done.perm) == whole


def test_thread_orderedsubject_table():
    """RFC 5256 2.1 ORDEREDSUBJECT: one thread per base subject, the first by date parent
    of the rest; threads by the date of their first."""
    items = [
        _item(1, "b", sent=5),
        _item(2, "a", sent=1),
        _item(3, "Re: b", sent=6),
        _item(4, "re: a", sent=3),
        _item(5, "A", sent=2),
        _item(6, "c", sent=4),
    ]
    keys, arrivals = [i.keys for i in items], [i.arrival for i in items]
    assert sort.thread_orderedsubject(keys, arrivals, [1, 2, 3, 4, 5, 6]) == b"(2 (5)(4))(6)(1 3)"
    uids = [10, 20, 30, 40, 50, 60]
    assert sort.thread_orderedsubject(keys, arrivals, uids) == b"(20 (50)(40))(60)(10 30)"


def test_keys_of_a_message():
    """RFC 5256 3: FROM is the addr-mailbox of the first From address; RFC 5957 3:
    DISPLAYFROM its decoded display name, else the address."""
    fields = {
        b"Subject": [b"Re: [l] =?utf-8?q?=C5=BB=C3=B3=C5=82w?="],
        b"From": [b"=?utf-8?q?=C5=81ukasz?= <lukasz@example.org>, b@example.org"],
        b"To": [b"Friends: <zed@example.org>;"],
        b"Cc": [b"cc@example.org"],
        b"Date": [b"Mon, 1 Jun 2026 10:00:00 +0200"],
        b"Message-ID": [b"<id@x>"],
        b"In-Reply-To": [b"<p@x> <q@x>"],
    }
    keys = sort.keys_of(lambda name: fields.get(name, []))
    assert (keys.subject, keys.reply) == ("Żółw", True)
    assert (keys.from_, keys.display_from) == ("lukasz", "Łukasz")
    assert (keys.to, keys.display_to, keys.cc) == ("zed", "zed@example.org", "cc")
    assert keys.sent == 1780300800.0
    assert (keys.message_id, keys.references) == ("id@x", ("p@x",))
    assert sort.unpack(sort.pack(keys)) == keys


# --- the real server --------------------------------------------------------------------


def message(
    subject: str, frm: str, to: str = "t@example.org", date: str = "", extra: str = ""
) -> bytes:
    head = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
    if date:
        head += f"Date: {date}\r\n"
    return (head + extra + "\r\nbody\r\n").encode()


def untagged(lines: list[bytes], name: bytes) -> list[bytes]:
    return [ln.rstrip(b"\r\n") for ln in lines if ln.startswith(b"* " + name)]


@pytest.fixture
def mailbox(suite, user, store) -> Raw:
    """Five messages: sizes grow with the number, dates and names in another order."""
    msgs = [
        message("Re: beta", "Zenon <zenon@example.org>", "c@x", "Tue, 3 Mar 2026 10:00:00 +0000"),
        message(
            "alpha",
            "=?utf-8?q?=C5=81ukasz_=C5=BB=C3=B3=C5=82towski?= <lz@example.org>",
            "a@x",
            "Sun, 1 Mar 2026 10:00:00 +0000",
            "X-Pad: 1\r\n",
        ),
        message(
            "[list] Beta",
            "Alice Smith <zz@example.org>",
            "b@x",
            "Mon, 2 Mar 2026 10:00:00 +0000",
            "X-Pad: 12345\r\n",
        ),
        message("Fwd: gamma", "bob@example.org", "d@x", "", "X-Pad: 1234567890\r\n"),
        message(
            "delta",
            "Ćwik <cwik@example.org>",
            "e@x",
            "Wed, 4 Mar 2026 10:00:00 +0000",
            "X-Pad: 123456789012345\r\n",
        ),
    ]
    fill = [
        m.replace(b"\r\n\r\n", b"\r\nX-Fill: %s\r\n\r\n" % (b"x" * 200 * i), 1)
        for i, m in enumerate(msgs, 1)
    ]
    deliver(store, user, *fill)
    return session(suite, user)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("SUBJECT", b"2 1 3 5 4"),  # alpha, beta (1 before 3: ties by number), delta, gamma
        ("FROM", b"4 5 2 1 3"),  # bob, cwik, lz, zenon, zz
        ("TO", b"2 3 1 4 5"),
        ("SIZE", b"1 2 3 4 5"),
        ("REVERSE SIZE", b"5 4 3 2 1"),
        ("ARRIVAL", b"1 2 3 4 5"),
        ("DISPLAYFROM", b"3 4 5 1 2"),  # Alice, bob@, Ćwik, Zenon, Łukasz
        ("DISPLAYTO", b"2 3 1 4 5"),
        ("REVERSE DISPLAYFROM", b"2 1 5 4 3"),
        ("SUBJECT REVERSE SIZE", b"2 3 1 5 4"),
    ],
)
def test_sort_criteria(mailbox, criteria, expected):
    """RFC 5256 3, RFC 5957 3: each key, REVERSE, and later keys breaking ties."""
    lines = mailbox.ok(f"SORT ({criteria}) UTF-8 ALL")
    assert untagged(lines, b"SORT") == [b"* SORT " + expected]


def test_sort_by_date_falls_back_to_the_internal_date(suite, user, store):
    """RFC 5256 2.2: a message without a usable Date sorts by its internal date."""
    st = store.mailbox(user).folder("INBOX")
    st.append(message("a", "a@x", date="Sun, 1 Mar 2026 10:00:00 +0000"), (), 1772400000.0)
    st.append(message("b", "b@x", date="nonsense"), (), 1600000000.0)  # 2020
    st.append(message("c", "c@x", date="Sun, 1 Feb 2026 10:00:00 -0500"), (), 1772400000.0)
    c = session(suite, user)
    assert untagged(c.ok("SORT (DATE) UTF-8 ALL"), b"SORT") == [b"* SORT 2 3 1"]
    assert untagged(c.ok("SORT (REVERSE DATE) US-ASCII ALL"), b"SORT") == [b"* SORT 1 3 2"]


def test_polish_sender_sorts_after_alice(mailbox):
    """The webmail case: "Łukasz Żółtowski" after "Alice Smith" by display name."""
    lines = mailbox.ok("SORT (DISPLAYFROM) UTF-8 FROM example.org")
    order = untagged(lines, b"SORT")[0].split()[2:]
    assert order.index(b"3") < order.index(b"2")  # Alice Smith, then Łukasz Żółtowski


def test_uid_sort_with_search_keys(mailbox):
    """RFC 5256 3: UID SORT answers UIDs; the search keys choose the messages."""
    uids = untagged(mailbox.ok("UID SEARCH ALL"), b"SEARCH")[0].split()[2:]
    lines = mailbox.ok("UID SORT (REVERSE ARRIVAL) UTF-8 LARGER 0 NOT 2")
    assert untagged(lines, b"SORT") == [
        b"* SORT " + b" ".join([uids[4], uids[3], uids[2], uids[0]])
    ]


def test_sort_bad_arguments(mailbox):
    """RFC 5256 3: an unknown key or no keys is BAD; an unknown charset NO [BADCHARSET]."""
    assert reply(mailbox.cmd("SORT (NAME) UTF-8 ALL")).startswith(b"BAD")
    assert reply(mailbox.cmd("SORT () UTF-8 ALL")).startswith(b"BAD")
    assert reply(mailbox.cmd("SORT (DATE) ALL")).startswith(b"NO [BADCHARSET")
    assert reply(mailbox.cmd("THREAD SOMETHING UTF-8 ALL")).startswith(b"BAD")


def test_sort_keys_are_kept_with_the_message(mailbox, user, store):
    """Keys are worked out once and kept in the store's cache, so a big folder is not
    read again for every SORT."""
    mailbox.ok("SORT (SUBJECT) UTF-8 ALL")
    folder = store.mailbox(user).folder("INBOX")
    for m in folder.messages():
        blob = folder.cache_get(m.uid, CACHE_NAME)
        assert blob is not None and sort.unpack(blob) is not None


def _thread_corpus(n: int) -> list[bytes]:
    """`n` messages in threads of three: a root, its reply and the reply's reply."""
    out = []
    for i in range(n):
        root, depth = i - i % 3, i % 3
        refs = " ".join(f"<m{root + d}@x>" for d in range(depth))
        extra = f"Message-ID: <m{i}@x>\r\n" + (f"References: {refs}\r\n" if refs else "")
        subject = ("Re: " * depth) + f"=?utf-8?q?W=C4=85tek_{root}?="
        date = f"Mon, 2 Mar 2026 10:{59 - i % 60:02d}:00 +0000"
        out.append(message(subject, f"Nadawca {i % 7} <n{i % 7}@x>", date=date, extra=extra))
    return out


def answers(c: Raw, commands: tuple[str, ...]) -> list[list[bytes]]:
    """The untagged lines of each command's answer."""
    return [c.ok(cmd)[:-1] for cmd in commands]


SORTS_AND_THREADS = (
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
)


def test_sort_after_delivery_reads_no_message_file(suite, user, store):
    """Delivery keeps each message's header block, so the first SORT and THREAD of the
    folder work out their keys without opening a message file, and later ones from the
    keys kept (the store counts every file it reads in /metrics)."""
    deliver(store, user, *_thread_corpus(30))
    c = session(suite, user)
    before = reads(suite)
    first = answers(c, SORTS_AND_THREADS)
    assert reads(suite) == before
    assert answers(c, SORTS_AND_THREADS) == first
    assert reads(suite) == before
    # RFC 5256 2.2: threads by the date of their first message, the later roots first here
    chains = b"".join(b"(%d %d %d)" % (r + 1, r + 2, r + 3) for r in range(27, -1, -3))
    assert first[3] == [b"* THREAD " + chains + b"\r\n"]


def test_sort_of_files_put_in_by_others_reads_each_once(suite, user, store):
    """Files another program put in the Maildir are read once, for their header block, by
    the first SORT; no later SORT or THREAD reads any (the keys are kept in the index)."""
    folder = store.mailbox(user).folder("INBOX")
    now = time.time() - 100
    for i, data in enumerate(_thread_corpus(12)):
        path = folder.path / "cur" / f"{unique_key(len(data), now + i)}:2,S"
        path.write_bytes(data)
    c = session(suite, user)
    before = reads(suite)
    first = answers(c, SORTS_AND_THREADS[:1])[0]
    assert reads(suite) == before + 12
    again = answers(c, SORTS_AND_THREADS)
    assert again[0] == first
    assert reads(suite) == before + 12
    # a new session of the same server, and the kept keys: still no file read
    other = session(suite, user)
    assert answers(other, SORTS_AND_THREADS) == again
    assert reads(suite) == before + 12


def test_sort_and_thread_answers_follow_the_folder(suite, user, store):
    """An answer kept for an unchanged folder is never given for a changed one: a message
    delivered by another process, an expunge, and a new session each get the order of
    the messages they see (RFC 5256 3: SORT covers the messages the search matched)."""
    deliver(store, user, *(message(s, "a@x") for s in ("bravo", "charlie", "delta")))
    c = session(suite, user)
    assert answers(c, ("SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 1 2 3\r\n"]]
    assert answers(c, ("SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 1 2 3\r\n"]]
    deliver(store, user, message("Re: alpha", "a@x"))
    c.ok("NOOP")
    assert answers(c, ("SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 4 1 2 3\r\n"]]
    assert c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (1)(2)(3)(4)\r\n"
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    assert answers(c, ("SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 3 1 2\r\n"]]
    assert c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == b"* THREAD (1)(2)(3)\r\n"
    other = session(suite, user)
    assert answers(other, ("SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 3 1 2\r\n"]]
    assert answers(other, ("UID SORT (SUBJECT) UTF-8 ALL",)) == [[b"* SORT 4 1 3\r\n"]]


def test_esort(mailbox):
    """RFC 5267 3.2: SORT RETURN answers ESEARCH; MIN and MAX are the first and last in sort
    order, ALL keeps the order."""
    lines = mailbox.ok("SORT RETURN (MIN MAX COUNT ALL) (DISPLAYFROM) UTF-8 ALL")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [
        f'* ESEARCH (TAG "{tag}") MIN 3 MAX 2 COUNT 5 ALL 3:5,1:2'.encode()
    ]
    assert untagged(lines, b"SORT") == []


def test_esearch_min_max_count_all(mailbox):
    """RFC 4731 3.1: the options asked for, UID when the numbers are UIDs, no MIN, MAX or
    ALL when nothing matched, and RETURN () as ALL."""
    lines = mailbox.ok("SEARCH RETURN (MIN MAX COUNT ALL) NOT 3")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [
        f'* ESEARCH (TAG "{tag}") MIN 1 MAX 5 COUNT 4 ALL 1:2,4:5'.encode()
    ]
    assert untagged(lines, b"SEARCH") == []
    uids = [int(u) for u in untagged(mailbox.ok("UID SEARCH ALL"), b"SEARCH")[0].split()[2:]]
    lines = mailbox.ok("UID SEARCH RETURN (COUNT MIN) ALL")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [
        f'* ESEARCH (TAG "{tag}") UID MIN {uids[0]} COUNT 5'.encode()
    ]
    lines = mailbox.ok("SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT nothing-like-this")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [f'* ESEARCH (TAG "{tag}") COUNT 0'.encode()]
    lines = mailbox.ok("SEARCH RETURN () 2:3")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [f'* ESEARCH (TAG "{tag}") ALL 2:3'.encode()]
    assert reply(mailbox.cmd("SEARCH RETURN (BOGUS) ALL")).startswith(b"BAD")


def test_searchres_save_and_dollar(mailbox):
    """RFC 5182 2.1: SAVE alone sends no ESEARCH; "$" then names the saved messages in
    FETCH, STORE, SEARCH and UID commands, and follows them past an expunge."""
    lines = mailbox.ok("SEARCH RETURN (SAVE) SUBJECT beta")
    assert untagged(lines, b"ESEARCH") == [] and untagged(lines, b"SEARCH") == []
    lines = mailbox.ok("FETCH $ (FLAGS)")
    assert [ln.split()[1] for ln in untagged(lines, b"")] == [b"1", b"3"]
    mailbox.ok("STORE $ +FLAGS (\\Flagged)")
    assert untagged(mailbox.ok("SEARCH FLAGGED"), b"SEARCH") == [b"* SEARCH 1 3"]
    assert untagged(mailbox.ok("SEARCH NOT $"), b"SEARCH") == [b"* SEARCH 2 4 5"]
    assert untagged(mailbox.ok("SEARCH UID $"), b"SEARCH") == [b"* SEARCH 1 3"]
    # an expunge renumbers; "$" still names the same messages
    mailbox.ok("STORE 2 +FLAGS (\\Deleted)")
    mailbox.ok("EXPUNGE")
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH 1 2"]
    lines = mailbox.ok("UID FETCH $ (UID)")
    assert len(untagged(lines, b"")) == 2


def test_searchres_min_max_save_only_those(mailbox):
    """RFC 5182 2.1: SAVE with MIN and MAX (no ALL or COUNT) saves just those two."""
    lines = mailbox.ok("SEARCH RETURN (MIN MAX SAVE) ALL")
    tag = lines[-1].split()[0].decode()
    assert untagged(lines, b"ESEARCH") == [f'* ESEARCH (TAG "{tag}") MIN 1 MAX 5'.encode()]
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH 1 5"]
    mailbox.ok("SORT RETURN (SAVE) (SIZE) UTF-8 2:3")
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH 2 3"]


def test_searchres_is_reset_by_select(mailbox):
    """RFC 5182 2.1: selecting a folder empties the saved result."""
    mailbox.ok("SEARCH RETURN (SAVE) ALL")
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH 1 2 3 4 5"]
    mailbox.ok("SELECT INBOX")
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH"]
    assert untagged(mailbox.ok("FETCH $ (FLAGS)"), b"") == []


def test_within_older_and_younger(suite, user, store):
    """RFC 5032 3: OLDER and YOUNGER count seconds back from now, by internal date."""
    folder = store.mailbox(user).folder("INBOX")
    now = time.time()
    folder.append(message("old", "a@x"), (), now - 7200)
    folder.append(message("new", "a@x"), (), now - 60)
    c = session(suite, user)
    assert untagged(c.ok("SEARCH OLDER 3600"), b"SEARCH") == [b"* SEARCH 1"]
    assert untagged(c.ok("SEARCH YOUNGER 3600"), b"SEARCH") == [b"* SEARCH 2"]
    assert untagged(c.ok("SEARCH YOUNGER 10"), b"SEARCH") == [b"* SEARCH"]
    assert reply(c.cmd("SEARCH OLDER 0")).startswith(b"BAD")  # RFC 5032 4: nz-number


def test_thread_references_on_the_server(suite, user, store):
    """RFC 5256 3, 4: THREAD REFERENCES and UID THREAD, threads as thread-lists."""
    uids = deliver(
        store,
        user,
        message(
            "topic", "a@x", date="Sun, 1 Mar 2026 10:00:00 +0000", extra="Message-ID: <t1@x>\r\n"
        ),
        message(
            "other", "b@x", date="Sun, 1 Mar 2026 11:00:00 +0000", extra="Message-ID: <o1@x>\r\n"
        ),
        message(
            "Re: topic",
            "c@x",
            date="Sun, 1 Mar 2026 12:00:00 +0000",
            extra="Message-ID: <t2@x>\r\nIn-Reply-To: <t1@x>\r\n",
        ),
        message(
            "Re: topic",
            "d@x",
            date="Sun, 1 Mar 2026 13:00:00 +0000",
            extra="Message-ID: <t3@x>\r\nReferences: <t1@x> <t2@x>\r\n",
        ),
        message(
            "Re: topic",
            "e@x",
            date="Sun, 1 Mar 2026 14:00:00 +0000",
            extra="Message-ID: <t4@x>\r\nReferences: <t1@x>\r\n",
        ),
    )
    c = session(suite, user)
    assert untagged(c.ok("THREAD REFERENCES UTF-8 ALL"), b"THREAD") == [b"* THREAD (1 (3 4)(5))(2)"]
    u = [str(x).encode() for x in uids]
    assert untagged(c.ok("UID THREAD REFERENCES UTF-8 ALL"), b"THREAD") == [
        b"* THREAD (%s (%s %s)(%s))(%s)" % (u[0], u[2], u[3], u[4], u[1])
    ]
    assert untagged(c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL"), b"THREAD") == [
        b"* THREAD (1 (3)(4)(5))(2)"
    ]
    assert untagged(c.ok("THREAD REFERENCES UTF-8 SUBJECT nothing-like-this"), b"THREAD") == [
        b"* THREAD"
    ]


def test_searchres_after_a_failed_search(mailbox):
    """RFC 5182 2.1: a SEARCH with SAVE answered NO empties the saved result; one answered
    BAD (not understood) leaves it as it was."""
    mailbox.ok("SEARCH RETURN (SAVE) 2:3")
    assert reply(mailbox.cmd("SEARCH RETURN (SAVE) FROZZLE")).startswith(b"BAD")
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH 2 3"]
    assert reply(mailbox.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")).startswith(
        b"NO [BADCHARSET"
    )
    assert untagged(mailbox.ok("SEARCH $"), b"SEARCH") == [b"* SEARCH"]


def test_capabilities_after_login(suite, user):
    """Each extension is announced once it is logged in."""
    c = session(suite, user, select=None)
    caps = untagged(c.ok("CAPABILITY"), b"CAPABILITY")[0].split()[2:]
    for name in (
        b"ESEARCH",
        b"SEARCHRES",
        b"WITHIN",
        b"SORT",
        b"SORT=DISPLAY",
        b"ESORT",
        b"THREAD=REFERENCES",
        b"THREAD=ORDEREDSUBJECT",
    ):
        assert name in caps


def test_store_cache_in_batches(tmp_path):
    """Many cache entries are read and written in few queries, for the UIDs asked for and
    the messages that still exist."""
    from mailsuite.store import Store

    folder = Store(tmp_path, fsync=False).mailbox("a@example.org").folder("INBOX")
    uids = [folder.append(message(f"s{i}", "a@x")) for i in range(1200)]
    folder.cache_put_many("k", [(u, b"v%d" % u) for u in uids] + [(99999, b"gone")])
    got = folder.cache_get_many([*uids[::2], 99999], "k")
    assert got == {u: b"v%d" % u for u in uids[::2]}
    assert folder.cache_get_many(uids[:3], "other") == {}


def test_thread_takes_the_internal_date_where_date_is_unusable(suite, user, store):
    """RFC 5256 2.2: a message without a usable Date threads by its internal date, over
    every message, after new mail and over a search alike."""
    folder = store.mailbox(user).folder("INBOX")
    day = calendar.timegm((2026, 3, 1, 0, 0, 0))
    folder.append(message("noon", "a@x", date="Sun, 1 Mar 2026 12:00:00 +0000"), (), day)
    folder.append(message("no date", "b@x"), (), day + 13 * 3600)
    folder.append(message("bad date", "c@x", date="someday, maybe"), (), day + 9 * 3600)
    c = session(suite, user)
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        assert untagged(c.ok(f"THREAD {algorithm} UTF-8 ALL"), b"THREAD") == [b"* THREAD (3)(1)(2)"]
        assert untagged(c.ok(f"THREAD {algorithm} UTF-8 NOT FROM zz"), b"THREAD") == [
            b"* THREAD (3)(1)(2)"
        ]
    folder.append(message("later", "d@x"), (), day + 10 * 3600)
    c.ok("NOOP")
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        assert untagged(c.ok(f"THREAD {algorithm} UTF-8 ALL"), b"THREAD") == [
            b"* THREAD (3)(4)(1)(2)"
        ]
