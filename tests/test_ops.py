"""What admins see and do on a running server: status, SIGHUP reload, DNS records."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time

import yaml

from .conftest import Suite


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_status_shows_listeners_and_counters(suite: Suite) -> None:
    result = suite.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["listeners"]["imap"][1] == suite.port("imap")
    assert report["pid"] == suite.proc.pid
    assert "loop_lag_ms" in report
    assert report["queue"] == {"queued": 0, "delivering": 0}
    assert report["fetcher"]["errors"] == 0
    text = suite.cli("status").stdout
    assert "listeners:" in text and f"127.0.0.1:{suite.port('smtp')}" in text
    assert "queue:" in text and "queued" in text and "fetcher:" in text


def test_status_without_a_server_says_so(suite_factory) -> None:  # type: ignore[no-untyped-def]
    idle = suite_factory(start=False)
    result = idle.cli("status")
    assert result.returncode == 1
    assert "no running server answers" in result.stderr


def test_dns_records_for_a_domain(suite: Suite) -> None:
    assert suite.cli("dkim", "keygen", "example.test").returncode == 0
    out = suite.cli("dns", "example.test").stdout
    assert "IN\tMX\t10 mail.example.test." in out
    assert '"v=spf1 mx -all"' in out
    assert "_dmarc" in out and "v=DMARC1" in out
    assert "mail._domainkey.example.test." in out and "v=DKIM1; k=rsa; p=" in out
    assert (
        f"_imaps._tcp\t3600\tIN\tSRV\t0 1 {suite.config['listen']['imaps'].rpartition(':')[2]}"
        in out
    )
    assert "autoconfig" in out and "autodiscover" in out
    assert suite.cli("dns", "elsewhere.test").returncode == 1


def imap_line(sock: socket.socket, buffer: bytearray, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    while b"\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\r\n")
    buffer[:] = rest
    return line


def test_sighup_reloads_config_and_certificate_without_dropping_idle(suite_factory) -> None:  # type: ignore[no-untyped-def]
    s = suite_factory()
    s.add_user("idle@example.test", "Secret123")
    sock = socket.create_connection(("127.0.0.1", s.port("imap")))
    buf = bytearray()
    assert imap_line(sock, buf).startswith(b"* OK")
    sock.sendall(b"a LOGIN idle@example.test Secret123\r\n")
    while not imap_line(sock, buf).startswith(b"a OK"):
        pass
    sock.sendall(b"b SELECT INBOX\r\n")
    while not imap_line(sock, buf).startswith(b"b OK"):
        pass
    sock.sendall(b"c IDLE\r\n")
    assert imap_line(sock, buf).startswith(b"+")

    # A new certificate and a changed setting, then SIGHUP.
    cert_before = ssl.get_server_certificate(("127.0.0.1", s.port("imaps")))
    (s.tmp / "var" / "tls" / "cert.pem").unlink()
    from mailsuite.tls import generate_self_signed

    generate_self_signed(
        s.tmp / "var" / "tls" / "cert.pem",
        s.tmp / "var" / "tls" / "key.pem",
        "renewed.example.test",
    )
    config = yaml.safe_load(s.config_path.read_text())
    config["limits"] = {"recipients": 7}
    s.config_path.write_text(yaml.safe_dump(config))
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reloaded" in s.log()), s.log()
    assert ssl.get_server_certificate(("127.0.0.1", s.port("imaps"))) != cert_before

    # The IDLE session survived and still hears about new mail.
    from mailsuite.store import Store

    Store(s.tmp / "maildirs").deliver(["idle@example.test"], b"Subject: after reload\r\n\r\nhi\r\n")
    assert imap_line(sock, buf).endswith(b"EXISTS")
    sock.sendall(b"DONE\r\n")
    while not (line := imap_line(sock, buf)).startswith(b"c "):
        assert line.startswith(b"* "), line
    assert line.startswith(b"c OK")
    sock.close()


def test_sighup_with_a_broken_config_keeps_running(suite_factory) -> None:  # type: ignore[no-untyped-def]
    s = suite_factory()
    s.config_path.write_text(s.config_path.read_text() + "\nbogus_key: 1\n")
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in s.log()), s.log()
    assert "bogus_key: unknown key" in s.log()
    assert s.proc.poll() is None
    socket.create_connection(("127.0.0.1", s.port("imap")), timeout=5).close()
