"""Applied-event records (`keys.event_key`): that an event from the bus is being applied, with the
hash of its body, kept (TTL `expires_at`) longer than any redelivery."""

from __future__ import annotations

from datetime import datetime

from inventory.adapters.dynamodb.keys import event_key
from inventory.adapters.dynamodb.table import Table


class AppliedEventRecords:
    """Implements AppliedEvents."""

    _table: Table

    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        key = event_key(location_id, event_id)
        # expires_at is the table's TTL attribute: DynamoDB deletes the record some time after it.
        if self._table.put_new({**key, "body_hash": body_hash, "expires_at": int(keep_until.timestamp())}):
            return None
        item = self._table.get(key)
        return str(item["body_hash"]) if item else None
