"""Inventory transaction records (`keys.transaction_key`). The items' effects are entries in the
products' hot items (`counters`); the record says how far the transaction is: `pending` (listed in
gsi1 by when the sweep takes it over, `keys.pending_index_keys`), then `completed` with its event,
or deleted when it was refused half-way and undone (docs/data-design.md, "Platform master")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    PENDING_TRANSACTIONS,
    TRANSACTION_PREFIX,
    pending_index_keys,
    transaction_key,
)
from inventory.adapters.dynamodb.outbox import record_event
from inventory.adapters.dynamodb.records import pending_before, records_page
from inventory.adapters.dynamodb.table import TableItems
from inventory.models import OutboxEvent, Page, iso
from inventory.models.transactions import InventoryTransaction, TransactionStatus


def transaction_of(item: Mapping[str, Any]) -> InventoryTransaction:
    fields = {name: item[name] for name in InventoryTransaction.model_fields if name in item}
    return InventoryTransaction.model_validate(fields)


class Transactions(TableItems):
    """Implements TransactionRepository."""

    def get_transaction(self, location_id: str, transaction_id: str) -> InventoryTransaction | None:
        item = self._table.get(transaction_key(location_id, transaction_id))
        return transaction_of(item) if item else None

    def transaction_states(self, location_id: str, transaction_ids: Sequence[str]) -> dict[str, TransactionStatus]:
        keys = [transaction_key(location_id, t) for t in dict.fromkeys(transaction_ids)]
        found = [from_ddb(item) for item in self._table.get_many(keys)] if keys else []
        return {item["transaction_id"]: TransactionStatus(item["status"]) for item in found}

    def put_transaction(self, transaction: InventoryTransaction) -> bool:
        stored = transaction.model_dump(mode="json", exclude_none=True)
        key = transaction_key(transaction.location_id, transaction.transaction_id)
        if transaction.abandon_at is not None:  # listed until it completes (which removes these)
            stored |= pending_index_keys(
                transaction.location_id, transaction.transaction_id, transaction.abandon_at, PENDING_TRANSACTIONS
            )
        return self._table.put_new({**key, **stored})

    def complete_transaction(self, transaction: InventoryTransaction, event: OutboxEvent) -> bool:
        key = transaction_key(transaction.location_id, transaction.transaction_id)
        update = Update().set("status", TransactionStatus.COMPLETED.value)
        assert transaction.completed_at is not None
        update.set("completed_at", iso(transaction.completed_at))
        update.set("results", [r.model_dump(mode="json") for r in transaction.results])
        update.remove("gsi1pk").remove("gsi1sk", "abandon_at")
        record_event(update, key["pk"], event)
        condition = update.equals("status", TransactionStatus.PENDING.value)
        return self._table.update(update, key, condition, returns="NONE") is not None

    def forget_transaction(self, transaction: InventoryTransaction) -> bool:
        return self._table.delete(
            transaction_key(transaction.location_id, transaction.transaction_id),
            "#status = :pending",
            names={"#status": "status"},
            values={":pending": TransactionStatus.PENDING.value},
        )

    def abandoned_transactions(self, now: datetime, limit: int) -> list[InventoryTransaction]:
        found = [transaction_of(item) for item in pending_before(self._table, PENDING_TRANSACTIONS, now, limit)]
        pending = [t for t in found if t.status is TransactionStatus.PENDING]
        return sorted(pending, key=lambda t: (t.abandon_at or now, t.transaction_id))[:limit]

    def list_transactions(self, location_id: str, limit: int, cursor: str | None) -> Page[InventoryTransaction]:
        items, next_cursor = records_page(
            self._table, location_id, (TRANSACTION_PREFIX, transaction_key), limit, cursor
        )
        return Page(items=[transaction_of(item) for item in items], next_cursor=next_cursor)
