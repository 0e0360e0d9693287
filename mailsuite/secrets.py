"""Secrets kept at rest: external-account passwords, encrypted with Fernet.

The key file (`paths.secret_key`) holds one Fernet key per line, newest first; it is created
with mode 0600 on first use. Encryption always uses the newest key; decryption tries every
key, so a rotation can be interrupted at any point without losing a password:

1. `rotate` writes a new key in front of the old ones (atomically, mode 0600),
2. re-encrypts every stored secret with the new key (the caller's transaction),
3. rewrites the file with the new key alone.

A crash after 1 or 2 leaves both keys in the file and every secret readable. The key never
leaves this module and nothing here logs a secret.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

MAX_KEYS = 8


class SecretError(Exception):
    """A secret cannot be read: the key file is missing, damaged, or the wrong one."""


class SecretBox:
    """Encrypts and decrypts short secrets with the key file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: list[bytes] | None = None
        self._stamp: tuple[int, int] | None = None

    def ensure_key(self) -> None:
        """Create the key file now if it is missing (serve calls this at start), and check
        that an existing one is readable; SecretError otherwise."""
        with self._lock:
            self._load_locked()

    def encrypt(self, plain: str) -> bytes:
        return self._fernet().encrypt(plain.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet().decrypt(bytes(token)).decode()
        except InvalidToken:
            raise SecretError(
                f"a stored password cannot be decrypted with the keys in {self.path}; "
                "was the key file replaced?"
            ) from None

    def rotate(self, reencrypt: Callable[[Callable[[bytes], bytes]], int]) -> int:
        """Make a new key, have `reencrypt(convert)` rewrite every stored token with
        `convert` (old token -> new token), then drop the old keys. Returns what it returned.
        `reencrypt` must not call this box's other methods (the key file is locked).
        """
        with self._lock:
            old = self._load_locked()
            new = Fernet.generate_key()
            self._write_locked([new, *old][:MAX_KEYS])
            multi = MultiFernet([Fernet(k) for k in self._keys or []])

            def convert(token: bytes) -> bytes:
                try:
                    return multi.rotate(bytes(token))
                except InvalidToken:
                    raise SecretError(
                        f"a stored password cannot be decrypted with the keys in {self.path}"
                    ) from None

            count = reencrypt(convert)
            self._write_locked([new])
            return count

    # -- key file ---------------------------------------------------------------------------

    def _fernet(self) -> MultiFernet:
        with self._lock:
            keys = self._load_locked()
        return MultiFernet([Fernet(k) for k in keys])

    def _load_locked(self) -> list[bytes]:
        """The keys, re-read whenever the file was replaced (a rotation by another process)."""
        try:
            info = self.path.stat()
            if self._keys is not None and self._stamp == (info.st_ino, info.st_mtime_ns):
                return self._keys
            text = self.path.read_bytes()
            self._stamp = (info.st_ino, info.st_mtime_ns)
        except FileNotFoundError:
            self._write_locked([Fernet.generate_key()], create=True)
            assert self._keys is not None
            return self._keys
        keys = [line.strip() for line in text.splitlines() if line.strip()]
        try:
            for key in keys:
                Fernet(key)
        except ValueError:
            raise SecretError(f"{self.path} is not a key file (one Fernet key per line)") from None
        if not keys:
            raise SecretError(f"{self.path} holds no key")
        self._keys = keys
        return keys

    def _write_locked(self, keys: list[bytes], *, create: bool = False) -> None:
        """Replace the key file atomically; it is never readable by anyone else."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(tmp, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, b"".join(k + b"\n" for k in keys))
            os.fsync(fd)
        finally:
            os.close(fd)
        if create:
            try:
                os.link(tmp, self.path)  # two processes starting at once keep one key
            except FileExistsError:
                os.unlink(tmp)
                self._keys = None
                self._keys = self._load_locked()
                return
            os.unlink(tmp)
        else:
            os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._keys = list(keys)
        info = self.path.stat()
        self._stamp = (info.st_ino, info.st_mtime_ns)
