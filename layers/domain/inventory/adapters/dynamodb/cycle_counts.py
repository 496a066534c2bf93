"""Cycle counts (`keys.count_key`). An open mispick count is also flagged on its location
(`open_mispick_count_ids`), where the switch and the imports guard on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    COUNT_PREFIX,
    PENDING_COUNTS,
    count_key,
    location_key,
    pending_index_keys,
)
from inventory.adapters.dynamodb.records import pending_before, records_page
from inventory.adapters.dynamodb.table import TableItems
from inventory.errors import Conflict, CountIdReused, NotFound
from inventory.models import CountReason, CountStatus, Page, iso
from inventory.models.counts import CountedFigure, CountResult, CycleCount
from inventory.types import MAIN

_COMPACT = {"submitted", "results"}  # stored by product index, as `sub` and `res`


def cycle_count_of(item: Mapping[str, Any]) -> CycleCount:
    fields = {name: item[name] for name in CycleCount.model_fields if name in item and name not in _COMPACT}
    products = item.get("product_ids", [])
    fields["submitted"] = [
        CountResult(product_id=products[int(i)], stock_location=s or MAIN, counted=int(c))
        for i, s, c in item.get("sub", [])
    ]
    fields["results"] = [
        CountedFigure(
            product_id=products[int(i)],
            stock_location=s or MAIN,
            counted=int(c),
            system=int(y),
            variance=int(c) - int(y),
        )
        for i, s, c, y in item.get("res", [])
    ]
    return CycleCount.model_validate(fields)


def _indexes(count: CycleCount) -> dict[str, int]:
    return {product_id: n for n, product_id in enumerate(count.product_ids)}


def _compact_submitted(count: CycleCount) -> list[list[Any]]:
    index = _indexes(count)
    return [
        [index[r.product_id], None if r.stock_location == MAIN else r.stock_location, r.counted]
        for r in count.submitted
    ]


def _compact_results(count: CycleCount) -> list[list[Any]]:
    index = _indexes(count)
    return [
        [index[r.product_id], None if r.stock_location == MAIN else r.stock_location, r.counted, r.system]
        for r in count.results
    ]


class CycleCounts(TableItems):
    """Implements CycleCountRepository."""

    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        location = location_key(count.location_id)
        mispick = count.reason is CountReason.MISPICK
        if mispick:
            # Flag the location first: a crash in between leaves the switch and imports blocked
            # (safe, and a retry completes it), never an open mispick count that nothing sees.
            flag = Update().add_to_set("open_mispick_count_ids", {count.count_id})
            if self._table.update(flag, location, flag.exists("pk")) is None:
                raise NotFound(f"location {count.location_id!r} does not exist")
        elif self._table.get(location) is None:  # locations are never deleted: found once, it stays
            raise NotFound(f"location {count.location_id!r} does not exist")
        item = {
            **count_key(count.location_id, count.count_id),
            "entity": "cycle_count",
            **count.model_dump(mode="json", exclude=_COMPACT, exclude_none=True),
        }
        if self._table.put_new(item):
            return count
        existing = self.get_cycle_count(count.location_id, count.count_id)
        if mispick and not (
            existing is not None and existing.reason is CountReason.MISPICK and existing.status is CountStatus.OPEN
        ):
            # The id is taken by a count that is closed, or that is not a mispick count: the flag just
            # added would keep the location blocked, with no open count whose close clears it.
            unflag = Update().delete_from_set("open_mispick_count_ids", {count.count_id})
            self._table.update(unflag, location, unflag.exists("pk"))
        if existing is None or existing.content_hash != count.content_hash:
            raise CountIdReused(f"cycle count {count.count_id!r} exists with other content")
        return existing

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount:
        key = count_key(location_id, count_id)
        update = Update().set("status", status.value).set("closed_at", iso(closed_at))
        item = self._table.update(update, key, update.equals("status", CountStatus.OPEN.value))
        if item is None:
            item = self._table.get(key)
            if item is None:
                raise NotFound(f"cycle count {count_id!r} does not exist")
            if item["status"] != status.value:
                raise Conflict(f"cycle count {count_id!r} is already {item['status']}")
        count = cycle_count_of(item)
        if count.reason is CountReason.MISPICK:
            unflag = Update().delete_from_set("open_mispick_count_ids", {count_id})
            self._table.update(unflag, location_key(location_id))
        return count

    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None:
        item = self._table.get(count_key(location_id, count_id))
        return cycle_count_of(item) if item else None

    def submit_cycle_count(self, count: CycleCount) -> bool:
        """The count `submitting` with its results, on the condition that it is open."""
        key = count_key(count.location_id, count.count_id)
        update = Update().set("status", CountStatus.SUBMITTING.value).set("sub", _compact_submitted(count))
        assert count.results_hash is not None
        assert count.master is not None
        assert count.abandon_at is not None
        update.set("results_hash", count.results_hash).set("master", count.master.value)
        update.set("abandon_at", iso(count.abandon_at))
        for name, value in pending_index_keys(
            count.location_id, count.count_id, count.abandon_at, PENDING_COUNTS
        ).items():
            update.set(name, value)
        return (
            self._table.update(update, key, update.equals("status", CountStatus.OPEN.value), returns="NONE") is not None
        )

    def complete_cycle_count(self, count: CycleCount) -> bool:
        """The count `completed` with its results as applied, on the condition that it is submitting;
        then a mispick count's flag leaves its location (again, for a count completed before)."""
        key = count_key(count.location_id, count.count_id)
        assert count.closed_at is not None
        update = Update().set("status", CountStatus.COMPLETED.value).set("closed_at", iso(count.closed_at))
        update.set("res", _compact_results(count)).remove("gsi1pk", "gsi1sk", "abandon_at")
        condition = update.equals("status", CountStatus.SUBMITTING.value)
        completed = self._table.update(update, key, condition, returns="NONE") is not None
        if count.reason is CountReason.MISPICK:
            unflag = Update().delete_from_set("open_mispick_count_ids", {count.count_id})
            self._table.update(unflag, location_key(count.location_id))
        return completed

    def count_states(self, location_id: str, count_ids: Sequence[str]) -> dict[str, CountStatus]:
        keys = [count_key(location_id, c) for c in dict.fromkeys(count_ids)]
        found = [from_ddb(item) for item in self._table.get_many(keys)] if keys else []
        return {item["count_id"]: CountStatus(item["status"]) for item in found}

    def abandoned_counts(self, now: datetime, limit: int) -> list[CycleCount]:
        found = [cycle_count_of(item) for item in pending_before(self._table, PENDING_COUNTS, now, limit)]
        submitting = [c for c in found if c.status is CountStatus.SUBMITTING]
        return sorted(submitting, key=lambda c: (c.abandon_at or now, c.count_id))[:limit]

    def list_cycle_counts(self, location_id: str, limit: int, cursor: str | None) -> Page[CycleCount]:
        items, next_cursor = records_page(self._table, location_id, (COUNT_PREFIX, count_key), limit, cursor)
        return Page(items=[cycle_count_of(item) for item in items], next_cursor=next_cursor)
