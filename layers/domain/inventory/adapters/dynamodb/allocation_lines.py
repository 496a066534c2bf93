"""Open allocation lines (`keys.allocation_line_key`): an allocation's open part of one product once
it has left the product's hot item, sorted by the order the service received the allocation in, so
that the oldest open ones are read from the front of the product's range (docs/data-design.md,
"Open allocations").

A line is put only by the holder of a claim on the allocation held in the hot item (`A#<id>.m`,
taken by a write guarded by the item's `version`), and only while it is held there; the commit
then removes it from the hot item on the condition that it is still as the line was put. After
that the line is the truth: shipment lines close it (each close guarded by its entry, `c#<entry
id>`), a release deletes it once the hot item holds its tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    CLOSE_PREFIX,
    allocation_attribute,
    allocation_line_key,
    allocation_lines_partition,
    allocation_lines_prefix,
    close_attribute,
    close_entry_of,
    counters_key,
    product_shard,
)
from inventory.adapters.dynamodb.table import TableItems
from inventory.models.allocations import AllocationMove
from inventory.models.counters import OpenAllocation


def _line_of(item: Mapping[str, Any]) -> OpenAllocation:
    return OpenAllocation(
        allocation_id=item["a"],
        order_id=item.get("o"),
        quantity=int(item["q"]),
        received=int(item["r"]),
        claim=item.get("m"),
        closed_by={close_entry_of(n): int(v) for n, v in item.items() if n.startswith(CLOSE_PREFIX)},
    )


def _stored_line(location_id: str, product_id: str, line: OpenAllocation, token: str) -> dict[str, Any]:
    key = allocation_line_key(location_id, product_id, line.received, line.allocation_id)
    stored = {**key, "a": line.allocation_id, "q": line.quantity, "r": line.received, "m": token}
    if line.order_id is not None:
        stored["o"] = line.order_id
    return stored


class AllocationLines(TableItems):
    """Implements AllocationLineRepository (inventory.ports)."""

    def allocation_lines(
        self, location_id: str, product_id: str, after: OpenAllocation | None, limit: int
    ) -> tuple[list[OpenAllocation], bool]:
        request: dict[str, Any] = {
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": to_ddb(
                {
                    ":pk": allocation_lines_partition(location_id, product_shard(product_id)),
                    ":prefix": allocation_lines_prefix(product_id),
                }
            ),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_ddb(
                allocation_line_key(location_id, product_id, after.received, after.allocation_id)
            )
        items, last = self._table.query(**request)
        return [_line_of(from_ddb(item)) for item in items], last is not None

    def allocation_line(
        self, location_id: str, product_id: str, received: int, allocation_id: str
    ) -> OpenAllocation | None:
        item = self._table.get(allocation_line_key(location_id, product_id, received, allocation_id))
        return _line_of(item) if item else None

    def close_allocation_line(
        self,
        location_id: str,
        product_id: str,
        line: OpenAllocation,
        *,
        entry_id: str,
        quantity: int,
        prune: Sequence[str] = (),
    ) -> bool:
        key = allocation_line_key(location_id, product_id, line.received, line.allocation_id)
        update = Update()
        condition = f"{update.equals('q', line.quantity)} AND {update.absent(close_attribute(entry_id))}"
        if line.quantity - quantity <= 0:  # nothing left: the line goes (no mover can put it again)
            return self._table.delete(key, condition, update.names, update.values)
        update.increment("q", -quantity).set(close_attribute(entry_id), quantity)
        for gone in prune:
            if gone != entry_id:
                update.remove(close_attribute(gone))
        return self._table.update(update, key, condition, returns="NONE") is not None

    def move_allocations(self, location_id: str, move: AllocationMove) -> bool:
        expected, token = move.expected, move.token
        hot = counters_key(location_id, expected.product_id)
        product_id = expected.product_id
        to_claim = [a for a in move.moved if a.claim != token]
        if to_claim:  # (1) the claim: only its holder puts these lines
            claim = Update()
            for allocation in to_claim:
                claim.set_path([allocation_attribute(allocation.allocation_id), "m"], token)
            claim.increment("version")
            if self._table.update(claim, hot, claim.equals("version", expected.version), returns="NONE") is None:
                return False
        claims = [token, *move.taken_over]
        for allocation in move.moved:  # (2) the lines, as held
            line = _stored_line(location_id, product_id, allocation, token)
            names = {"#pk": "pk", "#m": "m"}
            values = {f":m{i}": c for i, c in enumerate(claims)}
            condition = f"attribute_not_exists(#pk) OR #m IN ({', '.join(values)})"
            if not self._table.put_if(line, condition, names, values):
                return False  # put by another claim: this one is no longer the allocation's mover
        if move.cleared:  # (3) a tombstone's line, if a release or a mover stopped before deleting it
            deletes = [
                {
                    "DeleteRequest": {
                        "Key": to_ddb(allocation_line_key(location_id, product_id, a.received, a.allocation_id))
                    }
                }
                for a in move.cleared
            ]
            for start in range(0, len(deletes), 25):
                self._table.write_batch(deletes[start : start + 25], "deleting closed allocation lines failed")
        commit = Update()  # (4) out of the hot item, each on the condition that it is as read
        conditions = []
        for allocation in move.moved:
            name = allocation_attribute(allocation.allocation_id)
            conditions.append(f"{commit.name(name, 'quantity')} = {commit.value(allocation.quantity)}")
            conditions.append(f"{commit.name(name, 'm')} = {commit.value(token)}")
            commit.remove(name)
        for allocation in move.cleared:
            name = allocation_attribute(allocation.allocation_id)
            conditions.append(f"{commit.name(name, 'quantity')} = {commit.value(0)}")
            if allocation.claim is None:
                conditions.append(f"attribute_not_exists({commit.name(name, 'm')})")
            else:
                conditions.append(f"{commit.name(name, 'm')} = {commit.value(allocation.claim)}")
            commit.remove(name)
        commit.increment("version")
        return self._table.update(commit, hot, " AND ".join(conditions), returns="NONE") is not None
