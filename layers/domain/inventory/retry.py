"""Trying again with jittered exponential backoff: the one way this service retries its own work
(the SDK retries each AWS request by itself, in its standard mode).

Each policy says how often a step is tried and how long to wait between tries: a random time up to
`first_wait_s * 2**attempt`, never more than `most_wait_s`, so that callers racing for the same item
spread out rather than collide again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from inventory.errors import TemporarilyUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    attempts: int
    first_wait_s: float
    most_wait_s: float

    def wait(self, attempt: int) -> None:
        """After attempt `attempt` (from 0) failed."""
        time.sleep(random.random() * min(self.most_wait_s, self.first_wait_s * 2**attempt))  # noqa: S311 - jitter


# A conditional write that lost a race for its item: read again, decide again (16 callers racing for
# one product settle well within 40 attempts).
LOST_RACE = Backoff(attempts=40, first_wait_s=0.001, most_wait_s=0.05)
# What DynamoDB left unprocessed of a batch (throttled): asked again, up to 10 calls of one batch.
UNPROCESSED = Backoff(attempts=10, first_wait_s=0.05, most_wait_s=2.0)


def retried(step: Callable[[], T | None], policy: Backoff, gave_up: str) -> T:
    """Run `step` until it returns a result (None: not done yet, try again after a wait); after the
    policy's last attempt, TemporarilyUnavailable with `gave_up` (the caller or its queue retries)."""
    for attempt in range(policy.attempts):
        result = step()
        if result is not None:
            return result
        policy.wait(attempt)
    raise TemporarilyUnavailable(gave_up)


def until_written(step: Callable[[], T | None], what: str) -> T:
    """Run a read-decide-write `step` until its write is accepted; None means its write lost a race:
    read again, decide again, so that each decision is made on the figures it is written against."""
    return retried(step, LOST_RACE, f"{what}: the product changed on every attempt; try again")
