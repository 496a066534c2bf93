"""Allocation records (`keys.allocation_key`).

What an open allocation holds of each product is in that product's hot item (held) or its
allocation line (`allocation_lines`); the record says how far the allocation is (pending, open,
refused, released). A record pending from the API is listed in gsi1 (`keys.pending_index_keys`),
by when it would be abandoned, until it settles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    PENDING_SHARDS,
    abandoned_before,
    allocation_key,
    pending_index_keys,
    pending_partition,
)
from inventory.adapters.dynamodb.outbox import record_event
from inventory.adapters.dynamodb.table import TableItems
from inventory.models import AllocationStatus, OutboxEvent, iso
from inventory.models.allocations import Allocation


def allocation_of(item: Mapping[str, Any]) -> Allocation:
    fields = {name: item[name] for name in Allocation.model_fields if name in item}
    return Allocation.model_validate(fields)


class Allocations(TableItems):
    """Implements AllocationRepository."""

    def get_allocation(self, location_id: str, allocation_id: str) -> Allocation | None:
        item = self._table.get(allocation_key(location_id, allocation_id))
        return allocation_of(item) if item else None

    def allocations_of(self, location_id: str, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        keys = [allocation_key(location_id, a) for a in dict.fromkeys(allocation_ids)]
        found = [allocation_of(from_ddb(item)) for item in self._table.get_many(keys)]
        return {a.allocation_id: a for a in found}

    def put_allocation(self, allocation: Allocation) -> bool:
        stored = allocation.model_dump(mode="json", exclude_none=True)
        key = allocation_key(allocation.location_id, allocation.allocation_id)
        if allocation.status is AllocationStatus.PENDING and allocation.abandon_at is not None:
            # Listed by when it would be abandoned, until it settles (which removes these).
            stored |= pending_index_keys(allocation.location_id, allocation.allocation_id, allocation.abandon_at)
        return self._table.put_new({**key, **stored})

    def abandoned_allocations(self, now: datetime, limit: int) -> list[Allocation]:
        found: list[Allocation] = []
        for shard in range(PENDING_SHARDS):
            items, _ = self._table.query(
                IndexName="gsi1",
                KeyConditionExpression="#p = :p AND #s < :now",
                ExpressionAttributeNames={"#p": "gsi1pk", "#s": "gsi1sk"},
                ExpressionAttributeValues=to_ddb({":p": pending_partition(shard), ":now": abandoned_before(now)}),
                Limit=limit,
            )
            found += [allocation_of(from_ddb(item)) for item in items]
        abandoned = [a for a in found if a.status is AllocationStatus.PENDING]  # settled since: not yet unlisted
        return sorted(abandoned, key=lambda a: (a.abandon_at, a.allocation_id))[:limit]

    def settle_allocation(
        self,
        allocation: Allocation,
        *,
        status: AllocationStatus,
        expected: AllocationStatus,
        event: OutboxEvent | None = None,
    ) -> bool:
        key = allocation_key(allocation.location_id, allocation.allocation_id)
        update = Update().set("status", status.value).set("updated_at", iso(allocation.updated_at))
        update.remove("gsi1pk").remove("gsi1sk")  # no longer pending
        if allocation.refused:
            update.set("refused", [dict(r) for r in allocation.refused])
        if event:
            record_event(update, key["pk"], event)
        return self._table.update(update, key, update.equals("status", expected.value), returns="NONE") is not None

    def forget_allocation(self, allocation: Allocation, *, expected: AllocationStatus) -> bool:
        return self._table.delete(
            allocation_key(allocation.location_id, allocation.allocation_id),
            "#status = :expected",
            names={"#status": "status"},
            values={":expected": expected.value},
        )
