"""Changing a product's counters: read, decide, write on the condition that nothing changed since.

Every change of a product's ledger or open allocations is one conditional write on its counters
item (docs/data-design.md). When the condition fails, another change came first: the caller
reads again and decides again, so each decision is made on the figures it is written against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from inventory.backoff import backoff_seconds
from inventory.errors import TemporarilyUnavailable
from inventory.models import CountersChange
from inventory.ports import CountersRepository

T = TypeVar("T")
MAX_ATTEMPTS = 40  # 16 callers racing for one product settle well within this


def until_written(step: Callable[[], T | None], what: str) -> T:
    """Run `step` until it returns a result; None means its write lost a race: read again, decide again."""
    for attempt in range(MAX_ATTEMPTS):
        result = step()
        if result is not None:
            return result
        time.sleep(backoff_seconds(attempt, base=0.001, cap=0.05))
    raise TemporarilyUnavailable(f"{what}: the product changed on every attempt; try again")


def close_allocation(repo: CountersRepository, location_id: str, product_id: str, allocation_id: str) -> None:
    """Free what `allocation_id` still holds of one product (nothing when it holds nothing)."""

    def step() -> bool | None:
        counters = repo.counters_of(location_id, product_id)
        if counters.allocation(allocation_id) is None:
            return True
        change = CountersChange(expected=counters, allocations={allocation_id: None})
        return True if repo.change_counters(location_id, change) else None

    until_written(step, f"releasing {allocation_id!r} of {product_id!r}")
