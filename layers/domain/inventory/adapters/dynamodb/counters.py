"""A product's hot item at a location (`keys.counters_key`): the running sums of its ledger
(`after#<import seq>`: the lines each import layer does not include), the buffer of its recent
entries (`B#<entry id>#<source>`), what its open allocations hold (and their total `allocated`,
absent when nothing is allocated), `version`, `stock_version`, the product's own safety stock
(`ss`; absent: the location's default), and where its moved entries are (`pages`, `seg#<segment>`,
`ep#<epoch>`; the pages themselves: `ledger_pages`).

Entries, sums and allocations are attributes of their own, not maps, so that one write can create
the item as well as extend it: every change of a product is one conditional write, together with
the event it causes.

An item of the earlier shape (no `layout`) holds every entry that still counts as `L#<entry
id>#<source hash>` and no sums: it is read as before (its figures from its entries), and the first
write of an entry to it folds it (`CountersChange.fold`): it gets the sums, and its entries stay in
it as the buffer, to be moved out like any other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.imports import stock_row_of
from inventory.adapters.dynamodb.keys import (
    ALLOCATION_PREFIX,
    BUFFER_PREFIX,
    CHANGE_MARK,
    COUNTED_PREFIX,
    EPOCH_PREFIX,
    EVENT_PREFIX,
    LEDGER_PREFIX,
    MOVED_PREFIX,
    SEGMENT_PREFIX,
    SUM_PREFIX,
    allocation_attribute,
    allocation_id_of,
    buffer_attribute,
    buffer_entry_of,
    change_mark_of,
    counted_attribute,
    counters_key,
    counters_partition,
    entry_of,
    event_id_of,
    import_row_key,
    import_seq_of,
    moved_attribute,
    moved_of,
    number_of,
    order_of,
    past_product,
    product_of,
    sum_attribute,
)
from inventory.adapters.dynamodb.ledger_pages import entry_name, entry_of_stored, stored_entry
from inventory.adapters.dynamodb.outbox import decode_event, event_attributes, record_event
from inventory.adapters.dynamodb.table import SCAN_PAGE_ITEMS, TableItems
from inventory.models import OutboxEvent
from inventory.models.counters import CountersChange, LedgerEntry, OpenAllocation, ProductCounters
from inventory.models.imports import StockRow

_UNREAD_BY_SCANS = (BUFFER_PREFIX, EVENT_PREFIX, ALLOCATION_PREFIX)  # an item of this shape's figures need none
LAYOUT = 2  # the hot item's shape with sums and a buffer; an item without `layout` is of the earlier one
SAFETY_STOCK = "ss"  # the product's own safety stock; absent: the location's default applies


def _stored_legacy_entry(entry: LedgerEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"entry_id", "source_hash", "epoch", "legacy"}, exclude_none=True)


def _stored_allocation(allocation: OpenAllocation) -> dict[str, Any]:
    """A held allocation as the item keeps it (as before lines existed), with its mover's claim as `m`."""
    stored = allocation.model_dump(mode="json", include={"order_id", "quantity", "received"}, exclude_none=True)
    if allocation.claim is not None:
        stored["m"] = allocation.claim
    return stored


def held_allocation_of(allocation_id: str, value: Mapping[str, Any]) -> OpenAllocation:
    fields = {k: v for k, v in value.items() if k != "m"}
    return OpenAllocation.model_validate({"allocation_id": allocation_id, "claim": value.get("m"), **fields})


def counters_of_item(item: Mapping[str, Any], *, entries: bool = True) -> ProductCounters:
    """The counters an item holds. Without `entries`, an item of this shape is read without its
    buffer's entries and outbox events (its figures come from its sums): what the export reads of
    every product, at a fraction of the cost."""
    legacy = "layout" not in item
    entries = entries or legacy
    ledger, allocations = [], []
    sums: dict[int, int] = {}
    moved: dict[tuple[str, int], int] = {}
    counted: set[str] = set()
    segments: dict[int, int] = {}
    epochs: dict[int, int] = {}
    pending: dict[str, OutboxEvent] = {}
    for name, value in item.items():
        if name.startswith(BUFFER_PREFIX):
            if entries:
                ledger.append(entry_of_stored(*buffer_entry_of(name), value))
        elif name.startswith(LEDGER_PREFIX):
            entry_id, source_hash = entry_of(name)
            stored = {"entry_id": entry_id, "source_hash": source_hash, "legacy": True, **value}
            ledger.append(LedgerEntry.model_validate(stored))
        elif name.startswith(ALLOCATION_PREFIX) and entries:
            allocations.append(held_allocation_of(allocation_id_of(name), value))
        elif name.startswith(SUM_PREFIX):
            sums[number_of(name, SUM_PREFIX)] = int(value)
        elif name.startswith(MOVED_PREFIX):
            moved[moved_of(name)] = int(value)
        elif name.startswith(COUNTED_PREFIX):
            counted.add(name.removeprefix(COUNTED_PREFIX))
        elif name.startswith(SEGMENT_PREFIX):
            segments[number_of(name, SEGMENT_PREFIX)] = int(value)
        elif name.startswith(EPOCH_PREFIX):
            epochs[number_of(name, EPOCH_PREFIX)] = int(value)
        elif name.startswith(EVENT_PREFIX) and entries:
            event_id = event_id_of(name)
            pending[event_id] = decode_event(event_id, value)
    return ProductCounters(
        product_id=product_of(item["sk"]),
        exists=True,
        version=item.get("version", 0),
        stock_version=item.get("stock_version", 0),
        ledger=tuple(sorted(ledger, key=lambda e: (e.applied_at, e.entry_id))),
        allocations=tuple(sorted(allocations, key=lambda a: (a.received, a.allocation_id))),
        allocated_total=int(item.get("allocated", 0)),
        legacy=legacy,
        sums=sums,
        moved=moved,
        counted=frozenset(counted),
        buffered=len(ledger) if legacy else int(item.get("nbuf", 0)),
        pages=int(item.get("pages", 0)),
        segments=segments,
        epochs=epochs,
        segment_cut=int(item.get("segcut", 0)),
        epoch_cut=int(item.get("epcut", 0)),
        pending=pending,
        safety_stock=None if item.get(SAFETY_STOCK) is None else int(item[SAFETY_STOCK]),
    )


class Counters(TableItems):
    """Implements CountersRepository (its ledger pages: LedgerPages)."""

    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        item = self._table.get(counters_key(location_id, product_id))
        return counters_of_item(item) if item else ProductCounters(product_id=product_id)

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]], stock_locations: Collection[str]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        """Each wanted product's counters and its rows in the imports listed for it, by consistent
        BatchGetItem (their keys are all known: one row per stock location type asked for and import)."""
        counters_of: dict[tuple[str, str], str] = {}  # the key of each counters item: its product
        keys = []
        for product_id, seqs in wanted.items():
            counters = counters_key(location_id, product_id)
            counters_of[(counters["pk"], counters["sk"])] = product_id
            keys.append(counters)
            keys += [
                import_row_key(location_id, seq, product_id, stock_location)
                for seq in seqs
                for stock_location in stock_locations
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

    def counters_of_shard(self, location_id: str, shard: int) -> Iterator[tuple[str, ProductCounters]]:
        """Every product's counters in one shard, in key order, each with its product's key form
        (`product_order`), read strongly consistently, without their buffers' entries and outbox
        events (undecoded: see `counters_of_item`)."""
        items = self._table.query_all(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues=to_ddb({":pk": counters_partition(location_id, shard)}),
            ConsistentRead=True,
            Limit=SCAN_PAGE_ITEMS,
        )
        for item in items:
            read = {k: v for k, v in item.items() if not k.startswith(_UNREAD_BY_SCANS)} if "layout" in item else item
            yield order_of(item["sk"]["S"]), counters_of_item(from_ddb(read), entries=False)

    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        expected, entry = change.expected, change.entry
        key = counters_key(location_id, expected.product_id)
        allocated_delta = change.lines_delta + sum(
            (new.quantity if new else 0) - (old.quantity if (old := expected.allocation(allocation_id)) else 0)
            for allocation_id, new in change.allocations.items()
        )
        if not expected.exists:  # the product's first change writes the whole item
            item: dict[str, Any] = {
                **key,
                "layout": LAYOUT,
                "version": 1,
                "stock_version": 1 if entry or change.moved else 0,
                "allocated": allocated_delta or None,  # absent when nothing is allocated (see append_entry)
                CHANGE_MARK: change_mark_of(location_id, expected.product_id),
                **{allocation_attribute(a): _stored_allocation(new) for a, new in change.allocations.items() if new},
                **event_attributes(key["pk"], change.event),
            }
            if entry:
                item[buffer_attribute(entry.entry_id, entry.source_hash)] = stored_entry(entry)
                item["nbuf"] = 1
                item |= {sum_attribute(n): entry.quantity for n in change.into}
            item |= {moved_attribute(s, n): delta for (s, n), delta in change.moved.items()}
            item |= {counted_attribute(s): 1 for s in change.counted}
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
        pruned_from_buffer = sum(1 for p in change.pruned if not expected.legacy or not p.legacy)
        if entry:
            update.set(buffer_attribute(entry.entry_id, entry.source_hash), stored_entry(entry))
        if entry or change.moved:  # (an entry taken out again changes the stock too)
            update.increment("stock_version")
        if expected.legacy and change.fold is not None:  # folded: the sums, and its entries are its buffer
            into = set(change.into) if entry else set()
            update.set("layout", LAYOUT)
            for n in sorted(set(change.fold) | into):
                update.set(sum_attribute(n), change.fold.get(n, 0) + (entry.quantity if entry and n in into else 0))
            held = len(expected.ledger) + (1 if entry else 0) - len(change.pruned)
            update.set("nbuf", held)
        elif not expected.legacy:
            if entry:
                for n in change.into:
                    update.increment(sum_attribute(n), entry.quantity)
            held = (1 if entry else 0) - pruned_from_buffer
            if held:
                update.increment("nbuf", held)
        # (an item of the earlier shape written without a fold keeps no sums: its entries are its figures)
        for (stock_location, n), delta in change.moved.items():
            update.increment(moved_attribute(stock_location, n), delta)
        for stock_location in change.counted:
            update.set(counted_attribute(stock_location), 1)
        for allocation_id, new in change.allocations.items():
            if new:
                update.set(allocation_attribute(allocation_id), _stored_allocation(new))
            else:
                update.remove(allocation_attribute(allocation_id))
        for pruned in change.pruned:
            update.remove(entry_name(pruned))
        if change.open_limit is None and allocated_delta and expected.allocated + allocated_delta == 0:
            update.remove("allocated")  # the version guard makes the total exact
        elif allocated_delta:
            update.increment("allocated", allocated_delta)
        update.set(CHANGE_MARK, change_mark_of(location_id, expected.product_id))  # for the next delta export
        if change.event:
            record_event(update, key["pk"], change.event)  # which adds 1 to `version`
        else:
            update.increment("version")
        return self._table.update(update, key, " AND ".join(conditions), returns="NONE") is not None

    def append_entry(
        self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent, into: Sequence[int] = ()
    ) -> int | None:
        key = counters_key(location_id, product_id)
        name = buffer_attribute(entry.entry_id, entry.source_hash)
        update = Update().set(name, stored_entry(entry)).increment("stock_version").increment("nbuf")
        for n in into:
            update.increment(sum_attribute(n), entry.quantity)
        update.set("layout", LAYOUT).set(CHANGE_MARK, change_mark_of(location_id, product_id))
        record_event(update, key["pk"], event)  # which adds 1 to `version`
        # The entry once: its attribute absent (an SDK retry of a write that applied, or a racing
        # redelivery, is refused, so the sums never take a line twice). `allocated` is absent exactly
        # when nothing of the product is allocated. And the item is new or of this shape (an item of
        # the earlier shape is read, and folded, first).
        shaped = f"({update.absent('version')} OR {update.exists('layout')})"
        condition = f"{update.absent(name)} AND {update.absent('allocated')} AND {shaped}"
        written = self._table.update(update, key, condition, returns="UPDATED_NEW")
        return None if written is None else int(written["nbuf"])

    def settle_layer(self, location_id: str, expected: ProductCounters, seq: int, total: int) -> bool:
        if not expected.exists:
            return True  # no line of the product: nothing to sum
        update = Update().set(sum_attribute(seq), total)
        condition = update.equals("version", expected.version)
        key = counters_key(location_id, expected.product_id)
        return self._table.update(update, key, condition, returns="NONE") is not None

    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        key = counters_key(location_id, expected.product_id)
        if not expected.exists:  # the product's first change writes the whole item, as change_counters does
            if safety_stock is None:
                return True  # no item, no figure of its own: nothing to change
            item = {**key, "layout": LAYOUT, "version": 1, "stock_version": 1, SAFETY_STOCK: safety_stock}
            item[CHANGE_MARK] = change_mark_of(location_id, expected.product_id)
            return self._table.put_new(item)
        update = Update()
        if safety_stock is None:
            update.remove(SAFETY_STOCK)
        else:
            update.set(SAFETY_STOCK, safety_stock)
        # `stock_version` too: an opening checked against the figure it replaces must not be written.
        update.increment("version").increment("stock_version")
        update.set(CHANGE_MARK, change_mark_of(location_id, expected.product_id))
        condition = update.equals("version", expected.version)
        return self._table.update(update, key, condition, returns="NONE") is not None
