"""kill -9 during a stream of deliveries: what got 250 is stored once, and nothing partial."""

from __future__ import annotations

import re
import smtplib
import threading
import time

from tests.test_smtp import messages

TRAILER = b"-- end of message --\r\n"


def body(n: int) -> bytes:
    filler = b"".join(
        b"line %05d of a message that is long enough to span writes\r\n" % i for i in range(300)
    )
    return (
        f"Subject: crash {n}\r\nMessage-ID: <crash-{n}@remote.test>\r\n\r\n".encode()
        + filler
        + TRAILER
    )


def test_acknowledged_mail_survives_kill_9(suite_factory) -> None:  # type: ignore[no-untyped-def]
    suite = suite_factory()
    suite.add_user("crash@example.test")
    port = suite.port("smtp")
    acknowledged: set[int] = set()
    lock = threading.Lock()
    counter = iter(range(10**6))
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    while not stop.is_set():
                        with lock:
                            n = next(counter)
                        smtp.sendmail("x@remote.test", ["crash@example.test"], body(n))
                        with lock:
                            acknowledged.add(n)
            except (OSError, smtplib.SMTPException):
                if stop.is_set():
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    suite.kill()  # SIGKILL in the middle of the stream
    with lock:
        acked = set(acknowledged)
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(acked) >= 150

    seen: dict[int, int] = {}
    for path in messages(suite, "crash@example.test"):
        data = path.read_bytes()
        # Nothing partial is visible: every file is a whole message of the size in its name.
        assert data.endswith(TRAILER), path.name
        size = re.search(r",S=(\d+)", path.name)
        assert size is None or int(size.group(1)) == len(data)
        n = int(re.search(rb"Subject: crash (\d+)", data).group(1))
        seen[n] = seen.get(n, 0) + 1
    assert all(count == 1 for count in seen.values())
    missing = acked - set(seen)
    assert not missing, f"{len(missing)} acknowledged message(s) lost"

    # The server starts again on the same Maildir and keeps delivering.
    suite.start()
    with smtplib.SMTP("127.0.0.1", suite.port("smtp")) as smtp:
        assert smtp.sendmail("x@remote.test", ["crash@example.test"], body(10**6)) == {}
