"""Password hashing and temporary passwords.

bcrypt costs 67 ms (cost 10) to 268 ms (cost 12) of CPU, so every hash and check runs in a
small bounded thread pool (bcrypt releases the GIL): the event loop never waits on it and a
flood of logins queues instead of starving the other protocols. Passwords over 72 bytes are
refused before bcrypt sees them, since bcrypt would raise (or, in old versions, silently cut).

A login that names no account is checked against a dummy hash of the configured cost, made
once in the pool on first use, so it takes as long as a wrong password for a real account.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

MAX_PASSWORD_BYTES = 72
# Temporary passwords avoid look-alikes (0/O, 1/l/I) because users type them from a letter.
_TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class PasswordTooLong(ValueError):
    pass


def _encode(password: str) -> bytes:
    data = password.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong(f"passwords are limited to {MAX_PASSWORD_BYTES} bytes")
    return data


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_encode(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password_sync(
    password: str, password_hash: str | None, dummy: bytes | None = None
) -> bool:
    """Constant-time check. For a missing hash, `dummy` (the login path passes
    `Hasher.dummy_hash()`, as costly as real hashes) still costs one bcrypt, so timing reveals
    nothing; callers whose timing nobody sees may leave it out."""
    try:
        data = _encode(password)
    except PasswordTooLong:
        return False
    if not password_hash:
        if dummy is not None:
            bcrypt.checkpw(data, dummy)
        return False
    try:
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except ValueError:
        return False


def generate_temporary(length: int = 12) -> str:
    """A temporary password with upper, lower and digits, so it passes the usual policies."""
    while True:
        candidate = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(length))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate


class Hasher:
    """bcrypt in a bounded worker pool, for code running on the event loop."""

    def __init__(self, rounds: int, workers: int) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._dummy: bytes | None = None
        self._dummy_lock = threading.Lock()
        self._pool.submit(self.dummy_hash)  # made now, in the pool, before the first login

    def dummy_hash(self) -> bytes:
        """The hash an unknown login is checked against: `rounds` like a real account's.
        Blocking (one bcrypt the first time); call it in the pool."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = bcrypt.hashpw(
                    b"no account has this password", bcrypt.gensalt(self.rounds)
                )
            return self._dummy

    def _verify(self, password: str, password_hash: str | None) -> bool:
        return verify_password_sync(password, password_hash, self.dummy_hash())

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, hash_password_sync, password, self.rounds)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify, password, password_hash)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
