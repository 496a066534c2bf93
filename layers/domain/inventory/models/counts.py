"""Cycle counts: opened with their products, completed by their results (docs/data-design.md,
"Platform master: cycle counts")."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from inventory.models import CountReason, CountStatus, Frozen, InventoryMaster
from inventory.types import MAIN


class CountResult(Frozen):
    """One item of a count's results: the figure counted for a product in one stock location."""

    product_id: str
    stock_location: str = MAIN
    counted: int


class CountedFigure(CountResult):
    """A result as applied: the system figure of that moment, and the variance."""

    system: int
    variance: int


class CycleCount(Frozen):
    location_id: str
    count_id: str
    reason: CountReason
    product_ids: list[str]
    status: CountStatus = CountStatus.OPEN
    content_hash: str
    opened_at: datetime
    closed_at: datetime | None = None
    caller: str | None = None
    # Once submitted: the results, their hash, the master they apply under, and (while submitting)
    # when the sweep completes them if nobody repeats the request.
    submitted: tuple[CountResult, ...] = ()
    results_hash: str | None = None
    master: InventoryMaster | None = None
    abandon_at: datetime | None = None
    # Once completed: per result, the system figure and the variance.
    results: tuple[CountedFigure, ...] = ()

    def entry_id(self, index: int) -> str:
        """The ledger entry id of result `index`."""
        return f"{COUNT_ENTRY_PREFIX}{self.count_id}:{index}"


COUNT_ENTRY_PREFIX = "cc:"


def count_of_entry(entry_id: str) -> str:
    """The count id of a count result's entry id."""
    return entry_id.removeprefix(COUNT_ENTRY_PREFIX).rpartition(":")[0]


def count_hash(reason: CountReason, product_ids: list[str]) -> str:
    body = json.dumps([reason.value, product_ids], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def results_hash(results: tuple[CountResult, ...]) -> str:
    body = json.dumps([[r.product_id, r.stock_location, r.counted] for r in results], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
