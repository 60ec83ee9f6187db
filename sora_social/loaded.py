"""Things built at most once per process, by name: video backends, face engines.

They load model weights when constructed, so each is built once and shared; the lock stops two
threads from both building one. A failed build is not remembered: the next call tries again
(and fails again, with the same message, until the configuration is fixed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoadedOnce(Generic[T]):
    def __init__(self, kind: str, names: tuple[str, ...], build: Callable[[str], T]) -> None:
        self.kind = kind
        self.names = names
        self._build = build
        self._built: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> T:
        if name not in self.names:
            valid = ", ".join(self.names)
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {valid}")
        with self._lock:
            instance = self._built.get(name)
            if instance is None:
                instance = self._build(name)
                self._built[name] = instance
            return instance
