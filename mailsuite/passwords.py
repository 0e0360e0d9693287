"""Password hashing and temporary passwords.

bcrypt costs 67 ms (cost 10) to 268 ms (cost 12) of CPU, so every hash and check runs in a
small bounded thread pool (bcrypt releases the GIL): the event loop never waits on it and a
flood of logins queues instead of starving the other protocols. Passwords over 72 bytes are
refused before bcrypt sees them, since bcrypt would raise (or, in old versions, silently cut).
"""

from __future__ import annotations

import asyncio
import secrets
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


def verify_password_sync(password: str, password_hash: str | None) -> bool:
    """Constant-time check; a missing hash still costs one bcrypt so timing reveals nothing."""
    try:
        data = _encode(password)
    except PasswordTooLong:
        return False
    if not password_hash:
        bcrypt.checkpw(data, _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except ValueError:
        return False


_DUMMY_HASH = bcrypt.hashpw(b"no account has this password", bcrypt.gensalt(10))


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

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, hash_password_sync, password, self.rounds)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verify_password_sync, password, password_hash)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
