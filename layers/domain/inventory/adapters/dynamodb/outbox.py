"""The outbox: events kept in the item whose change they report, until the relay publishes them.

An event is an attribute of the item (`keys.event_attribute`), written by the same conditional write as the
change; that write also adds 1 to the item's `version` and sets `outbox_pk`, which puts the item in
the sparse `outbox` index (keyed by `outbox_pk` and the item's own `sk`). The relay takes the item
out of the index only when it did not change after the relay's read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    EVENT_PREFIX,
    OUTBOX_SHARDS,
    event_attribute,
    event_id_of,
    outbox_partition,
    outbox_pk_of,
)
from inventory.adapters.dynamodb.table import TableItems
from inventory.models import OutboxEvent, iso


def record_event(update: Update, pk: str, event: OutboxEvent) -> Update:
    """Put `event` in the outbox of the item at `pk`, in `update`'s write, and the item in the outbox index."""
    update.set(event_attribute(event.event_id), encode_event(event))
    update.increment("version")  # the relay's guard: the item leaves the index only if unchanged
    update.set("outbox_pk", outbox_pk_of(pk))  # the same for every write of the item
    return update


def event_attributes(pk: str, event: OutboxEvent | None) -> dict[str, Any]:
    """What `record_event` sets, for an item written whole (which sets its own `version`)."""
    if event is None:
        return {}
    return {
        event_attribute(event.event_id): encode_event(event),
        "outbox_pk": outbox_pk_of(pk),
    }


def encode_event(event: OutboxEvent) -> dict[str, str]:
    detail = {"event_id": event.event_id, **event.detail}
    return {
        "detail_type": event.detail_type,
        "occurred_at": iso(event.occurred_at),
        "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
    }


def decode_event(event_id: str, stored: Mapping[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        event_id=event_id,
        detail_type=stored["detail_type"],
        occurred_at=datetime.fromisoformat(stored["occurred_at"]),
        detail=json.loads(stored["detail"]),
    )


class Outbox(TableItems):
    """Implements OutboxStore."""

    shards = OUTBOX_SHARDS

    def pending_keys(
        self, shard: int, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        partition = outbox_partition(shard)
        request: dict[str, Any] = {
            "IndexName": "outbox",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "outbox_pk"},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_ddb({"outbox_pk": partition, "pk": after[0], "sk": after[1]})
        items, last = self._table.query(**request)
        keys = [(item["pk"]["S"], item["sk"]["S"]) for item in items]
        return keys, keys[-1] if keys and last is not None else None

    def read_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[OutboxEvent], int]]:
        found = {
            (item["pk"]["S"], item["sk"]["S"]): from_ddb(item)
            for item in self._table.get_many([{"pk": pk, "sk": sk} for pk, sk in dict.fromkeys(keys)])
        }
        pending = {}
        for key in keys:
            item = found.get(key, {})
            events = [
                decode_event(event_id_of(name), stored)
                for name, stored in item.items()
                if name.startswith(EVENT_PREFIX)
            ]
            pending[key] = (events, int(item.get("version", 0)))
        return pending

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        item_key = {"pk": key[0], "sk": key[1]}

        def removal(leave_index: bool) -> Update:
            update = Update()
            for event_id in event_ids:
                update.remove(event_attribute(event_id))
            if leave_index:
                update.remove("outbox_pk")
            return update

        if version is not None:
            # Everything read was published: leave the index, unless the item changed meanwhile.
            update = removal(leave_index=True)
            name = update.name("version")
            condition = f"{update.exists('pk')} AND (attribute_not_exists({name}) OR {name} = {update.value(version)})"
            if self._table.update(update, item_key, condition, returns="NONE") is not None:
                return
        if event_ids:
            update = removal(leave_index=False)
            self._table.update(update, item_key, update.exists("pk"), returns="NONE")
