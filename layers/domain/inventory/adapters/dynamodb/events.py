"""Applied-event records (`keys.event_key`): that an event from the bus is being applied, with the
hash of its body, kept (TTL `expires_at`) longer than any redelivery; and, once every line of it
is applied, `done` (by the delivery that claimed it first, `first`, or by a later one, at
`done_at`), which lets its entries leave the product's buffer (docs/data-design.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.keys import event_key
from inventory.adapters.dynamodb.table import BATCH_WRITE_ITEMS, TableItems
from inventory.models import epoch_ms, from_epoch_ms
from inventory.models.events import EventClaim


def _claim_of(item: Mapping[str, Any]) -> EventClaim:
    done_at = item.get("done_at")
    return EventClaim(
        body_hash=str(item["body_hash"]),
        keep_until=datetime.fromtimestamp(int(item["expires_at"]), tz=UTC),
        done=bool(item.get("done", False)),
        first=bool(item.get("first", False)),
        done_at=from_epoch_ms(int(done_at)) if done_at is not None else None,
    )


class AppliedEventRecords(TableItems):
    """Implements AppliedEvents."""

    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        key = event_key(location_id, event_id)
        # expires_at is the table's TTL attribute: DynamoDB deletes the record some time after it.
        if self._table.put_new({**key, "body_hash": body_hash, "expires_at": int(keep_until.timestamp())}):
            return None
        item = self._table.get(key)
        return str(item["body_hash"]) if item else None

    def event_claims(self, location_id: str, event_ids: Sequence[str]) -> dict[str, EventClaim]:
        wanted = {event_key(location_id, e)["sk"]: e for e in dict.fromkeys(event_ids)}
        items = self._table.get_many([event_key(location_id, e) for e in wanted.values()])
        return {wanted[item["sk"]["S"]]: _claim_of(from_ddb(item)) for item in items}

    def mark_events_done(self, location_id: str, claims: Mapping[str, EventClaim]) -> None:
        # BatchWriteItem can only put: the record is written whole again, with what it held.
        requests = []
        for event_id, claim in claims.items():
            item: dict[str, Any] = {
                **event_key(location_id, event_id),
                "body_hash": claim.body_hash,
                "expires_at": int(claim.keep_until.timestamp()),
                "done": True,
                "first": claim.first,
            }
            if claim.done_at is not None:
                item["done_at"] = epoch_ms(claim.done_at)
            requests.append({"PutRequest": {"Item": to_ddb(item)}})
        for start in range(0, len(requests), BATCH_WRITE_ITEMS):
            self._table.write_batch(
                requests[start : start + BATCH_WRITE_ITEMS], "DynamoDB kept part of the events' completion unprocessed"
            )
