"""What an SMTP session does cheaply, checked against the slow way and over the wire.

`simple_path` takes the plain `<local@domain> PARAMS` form off aiosmtpd's parser (the email
package's `get_angle_addr`, a tenth of a message's CPU); every other form is left to that
parser. Each line of the table is checked against it, and a session over the wire shows
the server using it. Replies to pipelined commands may share one write, in order.
"""

from __future__ import annotations

import smtplib
import socket
from email._header_value_parser import get_angle_addr

import pytest

from mailsuite.smtp.server import simple_path

from .conftest import Suite

SPLIT = [
    "<a@b.c>",
    "<a@b.c> SIZE=10",
    "<a@b.c>   SIZE=10 BODY=8BITMIME",
    "<a@b.c>\tSIZE=10",
    "<a@b.c> ",
    "<a@b.c> SIZE=10 ",
    "<a@b.c> SIZE=10 (comment later)",
    "<a.b+c=d@x-y.example.org> BODY=8BITMIME SMTPUTF8",
    "<Ala_Kot!#$%&'*/=?^`{|}~-@EXAMPLE.ORG>",
    "<a@b.c> X=\x01",
]
LEFT_TO_THE_PARSER = [
    "<>",
    "< a@b.c>",
    "<a..b@c>",
    "<.a@c>",
    "<a.@c>",
    '<"q u"@c>',
    "<a@[192.0.2.1]>",
    "<@relay.example:a@b.c>",
    "<a@b.c>x",
    "<a@b.c> (comment) SIZE=1",
    "<żółw@example.org>",
    "<a@b..c>",
    "<a@.b>",
    "a@b.c",
    "<a@b.c",
    "",
]


@pytest.mark.parametrize("arg", SPLIT)
def test_plain_paths_split_as_the_email_parser_does(arg: str) -> None:
    address, rest = get_angle_addr(arg)
    assert simple_path(arg) == (address.addr_spec, rest)


@pytest.mark.parametrize("arg", LEFT_TO_THE_PARSER)
def test_other_paths_are_left_to_the_email_parser(arg: str) -> None:
    assert simple_path(arg) is None


def test_a_session_takes_plain_and_other_paths(suite: Suite) -> None:
    suite.add_user("paths@example.test")
    with smtplib.SMTP("127.0.0.1", suite.port("smtp"), timeout=10) as client:
        client.ehlo("paths.test")
        assert client.docmd("MAIL FROM:<a.b+c@remote.test> SIZE=100")[0] == 250
        assert client.docmd("RCPT TO:<paths@example.test>")[0] == 250
        assert client.docmd("RSET")[0] == 250
        assert client.docmd('MAIL FROM:<"quoted sender"@remote.test>')[0] == 250
        assert client.docmd("RCPT TO:<@relay.test:paths@example.test>")[0] == 250
        assert client.docmd("RSET")[0] == 250
        assert client.docmd("MAIL FROM:<a@b.c> SIZE=")[0] == 501  # RFC 1869: bad parameter


def test_pipelined_commands_get_every_reply_in_order(suite: Suite) -> None:
    """RFC 2920 3.1: replies to a pipelined group come in the order of the commands; the
    server may send them together (it holds a 250 while the next command is already in),
    and a command sent alone is answered alone, at once."""
    suite.add_user("pipe@example.test")
    with socket.create_connection(("127.0.0.1", suite.port("smtp")), timeout=10) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"220")
        sock.sendall(b"EHLO pipe.test\r\n")
        while (line := stream.readline())[3:4] == b"-":
            pass
        assert line.startswith(b"250 ")
        sock.sendall(
            b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<pipe@example.test>\r\n"
            b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<pipe@example.test>\r\nDATA\r\n"
        )
        codes = [stream.readline()[:3] for _ in range(5)]
        assert codes == [b"250", b"250", b"550", b"250", b"354"]
        sock.sendall(b"Subject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nRSET\r\n")
        assert [stream.readline()[:3] for _ in range(3)] == [b"250", b"250", b"250"]
        sock.sendall(b"NOOP\r\n")  # alone: nothing waits behind it, so it is not held
        assert stream.readline().startswith(b"250")
        sock.sendall(b"QUIT\r\n")
        assert stream.readline().startswith(b"221")
