"""The service's one backoff rule: a wait that doubles with every failed attempt up to a cap, drawn
at random below that ceiling (full jitter), so that callers who failed together do not all come
back together. Every retry loop of the service takes its waits from here, with its own base and cap;
the loops that give up after a number of attempts are `retried` below, with their policies.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from inventory.errors import TemporarilyUnavailable

T = TypeVar("T")

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


# ---------------------------------------------------------------- loops that give up
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    base: float
    cap: float


# A conditional write that lost a race for its item: read again, decide again (16 callers racing for
# one product settle well within 40 attempts).
LOST_RACE = RetryPolicy(attempts=40, base=0.001, cap=0.05)
# What DynamoDB left unprocessed of a batch (throttled): asked again, up to 10 calls of one batch.
UNPROCESSED = RetryPolicy(attempts=10, base=0.05, cap=2.0)


def retried(step: Callable[[], T | None], policy: RetryPolicy, gave_up: str) -> T:
    """Run `step` until it returns a result (None: not done yet, wait and try again); after the
    policy's last attempt, TemporarilyUnavailable with `gave_up` (the caller or its queue retries)."""
    for attempt in range(policy.attempts):
        result = step()
        if result is not None:
            return result
        time.sleep(backoff_seconds(attempt, base=policy.base, cap=policy.cap))
    raise TemporarilyUnavailable(gave_up)


def until_written(step: Callable[[], T | None], what: str) -> T:
    """Run a read-decide-write `step` until its write is accepted; None means its write lost a race:
    read again, decide again, so that each decision is made on the figures it is written against."""
    return retried(step, LOST_RACE, f"{what}: the product changed on every attempt; try again")
