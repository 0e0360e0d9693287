"""Concurrent DATA commands are committed in groups: each still gets its own verdict."""

from __future__ import annotations

import os
import re
import smtplib
import threading

from tests.test_smtp import messages

GOOD = "good@example.test"
BROKEN = "broken@example.test"


def body(tag: str) -> bytes:
    return f"Subject: {tag}\r\nMessage-ID: <{tag}@remote.test>\r\n\r\nbatch test\r\n".encode()


def send_all(port: int, jobs: list[tuple[str, list[str]]]) -> dict[str, str]:
    """Send every (tag, recipients) job from 8 concurrent sessions; tag -> reply code."""
    verdicts: dict[str, str] = {}
    lock = threading.Lock()
    pending = list(jobs)

    def session() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            while True:
                with lock:
                    if not pending:
                        return
                    tag, rcpts = pending.pop()
                try:
                    smtp.sendmail("x@remote.test", rcpts, body(tag))
                    verdict = "250"
                except smtplib.SMTPDataError as exc:
                    verdict = str(exc.smtp_code)
                with lock:
                    verdicts[tag] = verdict

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return verdicts


def tags_in(suite, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    found = []
    for path in messages(suite, address):
        match = re.search(rb"^Subject: (\S+)", path.read_bytes(), re.MULTILINE)
        assert match is not None
        found.append(match.group(1).decode())
    return sorted(found)


def test_many_sessions_to_one_mailbox_each_land_once(suite_factory) -> None:  # type: ignore[no-untyped-def]
    suite = suite_factory()
    suite.add_user(GOOD)
    jobs = [(f"m{n:03d}", [GOOD]) for n in range(120)]
    verdicts = send_all(suite.port("smtp"), jobs)
    assert verdicts == {tag: "250" for tag, _ in jobs}
    assert tags_in(suite, GOOD) == sorted(tag for tag, _ in jobs)


def test_a_failing_mailbox_fails_only_its_own_messages(suite_factory) -> None:  # type: ignore[no-untyped-def]
    suite = suite_factory()
    suite.add_user(GOOD)
    suite.add_user(BROKEN)
    port = suite.port("smtp")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("x@remote.test", [GOOD, BROKEN], body("warm"))  # both folders open
    new = suite.maildir(BROKEN) / "new"
    os.rename(new, new.with_name("new.saved"))
    new.write_bytes(b"")  # links into new/ now fail: ENOTDIR

    jobs = [(f"good{n:02d}", [GOOD]) for n in range(40)]
    jobs += [(f"broken{n:02d}", [BROKEN]) for n in range(10)]
    jobs += [(f"both{n:02d}", [GOOD, BROKEN]) for n in range(10)]
    verdicts = send_all(port, jobs)

    assert {tag: v for tag, v in verdicts.items() if tag.startswith("good")} == {
        f"good{n:02d}": "250" for n in range(40)
    }
    assert {v for tag, v in verdicts.items() if not tag.startswith("good")} == {"451"}
    # What got 451 reached nobody: the copies for GOOD were taken back.
    assert tags_in(suite, GOOD) == sorted(["warm"] + [f"good{n:02d}" for n in range(40)])

    new.unlink()
    os.rename(new.with_name("new.saved"), new)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        assert smtp.sendmail("x@remote.test", [GOOD, BROKEN], body("after")) == {}
    assert tags_in(suite, BROKEN) == ["after", "warm"]
