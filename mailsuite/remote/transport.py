"""What the IMAP and POP3 clients share: connection security, TLS contexts and error mapping."""

from __future__ import annotations

import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from mailsuite.remote.errors import ConnectError, RemoteError, TLSError

SECURITIES = ("tls", "starttls", "plain")
"""`tls`: TLS from the first byte (993, 995); `starttls`: plain, then STARTTLS / STLS before
login (143, 110); `plain`: no TLS at all (only for servers on a trusted network)."""


def check_security(security: str) -> str:
    if security not in SECURITIES:
        raise ValueError(f"security must be one of {', '.join(SECURITIES)}, not {security!r}")
    return security


def tls_context(verify: bool) -> ssl.SSLContext:
    """The system's trusted CAs with host name checks; `verify=False` accepts any certificate
    (the per-account "accept self-signed" switch)."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def translated(host: str, port: int, timeout: float) -> Iterator[None]:
    """Turn socket and TLS exceptions raised inside into ConnectError or TLSError."""
    where = f"{host}:{port}"
    try:
        yield
    except RemoteError:
        raise
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or "not trusted"
        raise TLSError(
            f"the certificate of {where} could not be verified ({reason}); if the server "
            'uses a self-signed certificate, turn on "accept self-signed"'
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(f"TLS with {where} failed ({exc.reason or exc})") from None
    except socket.gaierror:
        raise ConnectError(f"the server name {host!r} is not known (check the host)") from None
    except TimeoutError:
        raise ConnectError(f"{where} did not answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise ConnectError(f"{where} refused the connection (check the host and port)") from None
    except (ConnectionResetError, BrokenPipeError, EOFError):
        raise ConnectError(f"{where} closed the connection unexpectedly") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None


class RemoteSession(ABC):
    """What every read-only remote session shares: its settings, and use as a context
    manager so the session always ends (logout or QUIT). Subclasses provide open/close."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        user: str,
        password: str,
        timeout: float,
        verify: bool = True,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.security = check_security(security)
        self.user = user
        self._password = password
        self.timeout = float(timeout)
        self.verify = verify

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host}:{self.port}, {self.security}, {self.user!r})"

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Connect and log in (done on first use when not called)."""

    @abstractmethod
    def close(self) -> None:
        """End the session politely; never raises."""
