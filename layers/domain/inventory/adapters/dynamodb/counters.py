"""A product's counters at a location (`keys.counters_key`): its ledger entries between bases,
what its open allocations hold (and their total `allocated`, absent when nothing is allocated),
`version` and `stock_version`.

Entries and allocations are attributes of their own, not maps, so that one write can create the
item as well as extend it: every change of a product is one conditional write, together with the
event it causes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.imports import stock_row_of
from inventory.adapters.dynamodb.keys import (
    ALLOCATION_PREFIX,
    LEDGER_PREFIX,
    allocation_attribute,
    allocation_id_of,
    counters_key,
    counters_partition,
    entry_attribute,
    entry_of,
    import_row_key,
    import_seq_of,
    past_product,
    product_of,
)
from inventory.adapters.dynamodb.outbox import event_attributes, record_event
from inventory.adapters.dynamodb.table import Table
from inventory.models import (
    CountersChange,
    LedgerEntry,
    OpenAllocation,
    OutboxEvent,
    ProductCounters,
    StockRow,
)
from inventory.types import STOCK_LOCATIONS


def _entry_name(entry: LedgerEntry) -> str:
    return entry_attribute(entry.entry_id, entry.source_hash)


def _stored_entry(entry: LedgerEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"entry_id", "source_hash"}, exclude_none=True)


def _stored_allocation(allocation: OpenAllocation) -> dict[str, Any]:
    return allocation.model_dump(mode="json", exclude={"allocation_id"}, exclude_none=True)


def counters_of_item(item: Mapping[str, Any]) -> ProductCounters:
    ledger, allocations = [], []
    for name, value in item.items():
        if name.startswith(LEDGER_PREFIX):
            entry_id, source_hash = entry_of(name)
            stored = {"entry_id": entry_id, "source_hash": source_hash, **value}
            ledger.append(LedgerEntry.model_validate(stored))
        elif name.startswith(ALLOCATION_PREFIX):
            allocations.append(OpenAllocation.model_validate({"allocation_id": allocation_id_of(name), **value}))
    return ProductCounters(
        product_id=product_of(item["sk"]),
        exists=True,
        version=item.get("version", 0),
        stock_version=item.get("stock_version", 0),
        ledger=tuple(sorted(ledger, key=lambda e: (e.applied_at, e.entry_id))),
        allocations=tuple(sorted(allocations, key=lambda a: (a.received, a.allocation_id))),
    )


class Counters:
    """Implements CountersRepository."""

    _table: Table

    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        item = self._table.get(counters_key(location_id, product_id))
        return counters_of_item(item) if item else ProductCounters(product_id=product_id)

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        """Each wanted product's counters and its rows in the imports listed for it, by consistent
        BatchGetItem (their keys are all known: one row per stock location type and import)."""
        counters_of: dict[tuple[str, str], str] = {}  # the key of each counters item: its product
        keys = []
        for product_id, seqs in wanted.items():
            counters = counters_key(location_id, product_id)
            counters_of[(counters["pk"], counters["sk"])] = product_id
            keys.append(counters)
            keys += [
                import_row_key(location_id, seq, product_id, stock_location)
                for seq in seqs
                for stock_location in STOCK_LOCATIONS
            ]
        items = self._table.get_many(keys)
        found: dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]] = {
            product_id: (ProductCounters(product_id=product_id), {seq: [] for seq in seqs})
            for product_id, seqs in wanted.items()
        }
        for item in items:
            counters_product = counters_of.get((item["pk"]["S"], item["sk"]["S"]))
            if counters_product is not None:
                found[counters_product] = (counters_of_item(from_ddb(item)), found[counters_product][1])
            else:
                row = stock_row_of(item)
                found[row.product_id][1][import_seq_of(item["pk"]["S"])].append(row)
        for _, rows in found.values():
            for seq_rows in rows.values():
                seq_rows.sort(key=lambda r: r.stock_location)
        return found

    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        after = past_product(after_product) if after_product is not None else None
        items, more = self._table.partition_after(counters_partition(location_id, shard), after, limit)
        return [counters_of_item(from_ddb(item)) for item in items], more

    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        expected, entry = change.expected, change.entry
        key = counters_key(location_id, expected.product_id)
        allocated_delta = sum(
            (new.quantity if new else 0) - (old.quantity if (old := expected.allocation(allocation_id)) else 0)
            for allocation_id, new in change.allocations.items()
        )
        if not expected.exists:  # the product's first change writes the whole item
            item: dict[str, Any] = {
                **key,
                "version": 1,
                "stock_version": 1 if entry else 0,
                "allocated": allocated_delta or None,  # absent when nothing is allocated (see append_entry)
                **{allocation_attribute(a): _stored_allocation(new) for a, new in change.allocations.items() if new},
                **({_entry_name(entry): _stored_entry(entry)} if entry else {}),
                **event_attributes(key["pk"], change.event),
            }
            return self._table.put_new(item)
        update = Update()
        if change.open_limit is not None:  # an opening: concurrent openings do not refuse each other
            allocated = update.name("allocated")
            conditions = [
                update.equals("stock_version", expected.stock_version),
                f"(attribute_not_exists({allocated}) OR {allocated} <= {update.value(change.open_limit)})",
                *(update.absent(allocation_attribute(a)) for a in change.allocations),
            ]
        else:
            conditions = [update.equals("version", expected.version)]
        if entry:
            update.set(_entry_name(entry), _stored_entry(entry)).increment("stock_version")
        for allocation_id, new in change.allocations.items():
            if new:
                update.set(allocation_attribute(allocation_id), _stored_allocation(new))
            else:
                update.remove(allocation_attribute(allocation_id))
        for pruned in change.pruned:
            update.remove(_entry_name(pruned))
        if change.open_limit is None and allocated_delta and expected.allocated + allocated_delta == 0:
            update.remove("allocated")  # the version guard makes the total exact
        elif allocated_delta:
            update.increment("allocated", allocated_delta)
        if change.event:
            record_event(update, key["pk"], change.event)  # which adds 1 to `version`
        else:
            update.increment("version")
        return self._table.update(update, key, " AND ".join(conditions), returns="NONE") is not None

    def append_entry(self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent) -> bool:
        key = counters_key(location_id, product_id)
        update = Update().set(_entry_name(entry), _stored_entry(entry)).increment("stock_version")
        record_event(update, key["pk"], event)  # which adds 1 to `version`
        # `allocated` is absent exactly when nothing of the product is allocated. The entry needs no
        # guard of its own: written again, it is the same attribute (see the port), and the same id
        # with another body is another attribute.
        condition = update.absent("allocated")
        return self._table.update(update, key, condition, returns="NONE") is not None
