"""Cycle counts (`keys.count_key`). An open mispick count is also flagged on its location
(`open_mispick_count_ids`), where the switch and the imports guard on it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import count_key, location_key
from inventory.adapters.dynamodb.table import TableItems
from inventory.errors import Conflict, CountIdReused, NotFound
from inventory.models import CountReason, CountStatus, iso
from inventory.models.counts import CycleCount


def cycle_count_of(item: Mapping[str, Any]) -> CycleCount:
    fields = {name: item[name] for name in CycleCount.model_fields if name in item}
    return CycleCount.model_validate(fields)


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
            **count.model_dump(mode="json"),
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
