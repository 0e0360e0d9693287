"""Counters of what the suite does, read by `mailsuite status` and /metrics.

Kept as plain in-process counters so protocol code can count without knowing how figures are
exported.
"""

from __future__ import annotations

import threading
from collections import Counter


class Events:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
