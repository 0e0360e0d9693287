"""The connection counting every listener shares."""

from __future__ import annotations

import pytest

from mailsuite.netlimits import ConnectionCounter, is_loopback


def test_limits_in_total_and_per_address_and_release_is_idempotent() -> None:
    counts: ConnectionCounter[str] = ConnectionCounter()
    assert counts.admit("a", "10.0.0.1", total=3, per_ip=2) is None
    assert counts.admit("b", "10.0.0.1", total=3, per_ip=2) is None
    assert counts.admit("c", "10.0.0.1", total=3, per_ip=2) == "ip"
    assert counts.admit("d", "10.0.0.2", total=3, per_ip=2) is None
    assert counts.admit("e", "10.0.0.3", total=3, per_ip=2) == "total"
    assert counts.release("c") is False  # refused connections were never counted
    assert counts.release("a") is True
    assert counts.release("a") is False
    assert counts.by_ip == {"10.0.0.1": 1, "10.0.0.2": 1}
    assert counts.admit("f", "10.0.0.1", total=3, per_ip=2) is None
    for conn in ("b", "d", "f"):
        counts.release(conn)
    assert not counts.live and not counts.by_ip


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::1%lo", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_loopback(ip: str, expected: bool) -> None:
    assert is_loopback(ip) is expected
