"""The service's one backoff rule: a wait that doubles with every failed attempt up to a cap, drawn
at random below that ceiling (full jitter), so that callers who failed together do not all come
back together. Every retry loop of the service takes its waits from here, with its own base and cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 60  # past this the ceiling is the cap anyway; 2**attempt must not overflow a float


def backoff_seconds(attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """The wait after failed attempt `attempt` (0 for the first): at random below min(cap, base * 2**attempt)."""
    return rand() * min(cap, base * 2.0 ** min(attempt, _MAX_DOUBLINGS))


class Backoff:
    """The waits of a loop that goes on after failures: each failure in a row waits longer (by the
    rule above), and a success starts again from the first."""

    def __init__(self, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        self._base, self._cap, self._rand = base, cap, rand
        self.failures = 0  # in a row, since the last success

    def failed(self) -> float:
        """Count a failure; returns how long to wait before trying again."""
        wait = backoff_seconds(self.failures, base=self._base, cap=self._cap, rand=self._rand)
        self.failures += 1
        return wait

    def succeeded(self) -> None:
        self.failures = 0
