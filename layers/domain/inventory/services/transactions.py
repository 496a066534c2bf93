"""Inventory transactions: receiving, transfers out and in, adjustments and returns (SPEC.md
section 4), all items or none, without a multi-item transaction (docs/data-design.md, "Platform
master: inventory transactions"):

1. what is refused on the first read (an unknown stock location, a stock location that would go
   below 0 under platform master) is refused before anything is written;
2. the record is put `pending` (under an ERP master, the location is marked first, so that the
   switch waits for the next import), with the master the transaction applies under;
3. each item is one ledger entry in its product's hot item, guarded by the product's `version`;
4. a stock location found short half-way (another change took the units after the first read) is
   compensated before the answer: the entries written are taken out again and the record deleted;
5. the record is completed with its `Inventory Transaction Completed` event, in one write.

A repeat of the request, or the sweep of abandoned requests, completes a pending transaction the
same way: entries already in their products' buffers are not written again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inventory.backoff import until_written
from inventory.errors import InsufficientStock, InvalidInput, NotFound, TransactionIdReused
from inventory.figures import availability
from inventory.ledger import EVERY_LINE, folded_sums
from inventory.messages import DetailType
from inventory.models import ABANDONED_AFTER, InventoryMaster, Location, OutboxEvent, Page, iso
from inventory.models.counters import CountersChange, LedgerEntry
from inventory.models.stock_locations import StockLocations
from inventory.models.transactions import (
    InventoryTransaction,
    ItemFigures,
    TransactionItem,
    TransactionRequest,
    TransactionStatus,
    TransactionType,
)
from inventory.services.ledger_moves import BUFFER_ENTRIES, EntryMover
from inventory.services.stock_locations import mark_in_use
from inventory.types import MAIN

if TYPE_CHECKING:
    from inventory.ports import Clock, TransactionRepositories
    from inventory.services.stock import ProductReading, StockService

ABANDONED_CALLER = "abandoned-transactions"


class TransactionService:
    def __init__(self, repository: TransactionRepositories, stock: StockService, clock: Clock) -> None:
        self._repo = repository
        self._stock = stock
        self._clock = clock
        self._mover = EntryMover(repository, clock)

    # ------------------------------------------------------------------ reading
    def get(self, location_id: str, transaction_id: str) -> InventoryTransaction:
        self._stock.location(location_id)
        found = self._repo.get_transaction(location_id, transaction_id)
        if found is None:
            raise NotFound(f"inventory transaction {transaction_id!r} does not exist at location {location_id!r}")
        return found

    def page(self, location_id: str, limit: int, cursor: str | None) -> Page[InventoryTransaction]:
        self._stock.location(location_id)
        return self._repo.list_transactions(location_id, limit, cursor)

    # ------------------------------------------------------------------ recording
    def record(self, location_id: str, request: TransactionRequest, caller: str) -> tuple[InventoryTransaction, bool]:
        """Apply the transaction whole or refuse it; (record, False) for a repeat of the same request."""
        location = self._stock.location(location_id)
        types = self._repo.stock_locations()
        _check(location, request, types)
        body_hash = request.body_hash()
        while True:
            existing = self._repo.get_transaction(location_id, request.transaction_id)
            if existing is not None:
                if existing.content_hash != body_hash:
                    raise TransactionIdReused(
                        f"inventory transaction {request.transaction_id!r} exists with other content"
                    )
                if existing.status is TransactionStatus.PENDING:  # an earlier attempt stopped half-way
                    return self._apply(self._stock.location(location_id), existing), False
                return existing, False
            readings: dict[str, ProductReading] = {}
            if location.inventory_master is InventoryMaster.PLATFORM:
                readings = self._stock.read_many(location, {i.product_id for i in request.items})
                if shortages := _shortages(request.type, request.items, readings):
                    raise _insufficient(shortages)  # known from the first read: nothing is written
                # every type it moves stock in holds a quantity other than 0 from now on
                mark_in_use(self._repo, _touched(request.type, request.items), types)
            elif not self._repo.mark_erp_transaction(location_id):
                location = self._stock.location(location_id)  # switched meanwhile: platform master now
                continue
            now = self._clock.now()
            pending = InventoryTransaction(
                **request.model_dump(),
                location_id=location_id,
                status=TransactionStatus.PENDING,
                content_hash=body_hash,
                master=location.inventory_master,
                caller=caller,
                created_at=now,
                abandon_at=now + ABANDONED_AFTER,
            )
            if self._repo.put_transaction(pending):
                return self._apply(location, pending, readings), True
            # another request with this id came first: decide on what it wrote

    def complete_abandoned(self, limit: int = 100) -> list[InventoryTransaction]:
        """Complete (or, short, undo) the transactions still pending past their `abandon_at`: the
        request that began them stopped half-way and was not repeated."""
        ended = []
        for transaction in self._repo.abandoned_transactions(self._clock.now(), limit):
            location = self._stock.location(transaction.location_id)
            try:
                ended.append(self._apply(location, transaction))
            except InsufficientStock:
                continue  # undone: the record is gone, as a refused request leaves nothing
        return ended

    def _apply(
        self, location: Location, record: InventoryTransaction, readings: dict[str, ProductReading] | None = None
    ) -> InventoryTransaction:
        unused = dict(readings or {})
        for index, item in enumerate(record.items):
            shortage = self._apply_item(location, record, index, item, unused.pop(item.product_id, None))
            if shortage is not None:
                self._undo(location, record)
                self._repo.forget_transaction(record)
                raise _insufficient([shortage])
        after = self._stock.read_many(location, {i.product_id for i in record.items})
        completed = record.model_copy(
            update={
                "status": TransactionStatus.COMPLETED,
                "completed_at": self._clock.now(),
                "abandon_at": None,
                "results": tuple(
                    _figures(location, record.type, item, after[item.product_id]) for item in record.items
                ),
            }
        )
        if not self._repo.complete_transaction(completed, _event(completed)):
            current = self._repo.get_transaction(record.location_id, record.transaction_id)
            if current is None:  # undone by another attempt meanwhile: take out what this one wrote since
                self._undo(location, record)
                raise _insufficient([])
            return current
        for product_id, reading in after.items():
            if reading.counters.buffered > BUFFER_ENTRIES:
                self._mover.move_out(location, product_id)
        return completed

    def _apply_item(
        self,
        location: Location,
        record: InventoryTransaction,
        index: int,
        item: TransactionItem,
        first: ProductReading | None,
    ) -> dict[str, Any] | None:
        """Write item `index`'s entry, unless an earlier attempt did; the shortage when the stock
        location it takes from would go below 0 under platform master."""
        entry_id = record.entry_id(index)
        stock_location, quantity, other_end = item.movement(record.type)
        platform = record.master is InventoryMaster.PLATFORM
        layers = (EVERY_LINE, *sorted(location.announced())) if platform else ()
        unused = [first] if first else []

        def step() -> dict[str, Any] | bool | None:
            reading = unused.pop() if unused else self._stock.read(location, item.product_id)
            counters = reading.counters
            if counters.entry(entry_id, record.content_hash) is not None:
                return True  # written by an earlier attempt
            if platform and quantity < 0:
                held = reading.quantity_at(stock_location)
                if held + quantity < 0:
                    return {
                        "product_id": item.product_id,
                        "stock_location": stock_location,
                        "requested": -quantity,
                        "available": max(held, 0),
                    }
            entry = LedgerEntry(
                entry_id=entry_id,
                kind=record.type.kind,
                quantity=quantity,
                stock_location=stock_location,
                to_stock_location=other_end,
                applied_at=self._clock.now(),
                reference=record.reference,
                source_hash=record.content_hash,
                epoch=location.import_seq,
                pending_import=not platform,
                layers=layers,
            )
            change = CountersChange(
                expected=counters,
                entry=entry,
                moved={(s, n): delta for s, delta in entry.moves().items() for n in layers},
                fold=folded_sums(location, counters.ledger) if counters.legacy else None,
            )
            return True if self._repo.change_counters(location.location_id, change) else None

        result = until_written(step, f"applying {item.product_id!r}")
        return result if isinstance(result, dict) else None

    def _undo(self, location: Location, record: InventoryTransaction) -> None:
        """Take every entry of the transaction out of its product's buffer again, newest first."""
        for index in reversed(range(len(record.items))):
            product_id, entry_id = record.items[index].product_id, record.entry_id(index)

            def step(product_id: str = product_id, entry_id: str = entry_id) -> bool | None:
                counters = self._stock.read(location, product_id).counters
                entry = counters.entry(entry_id, record.content_hash)
                if entry is None:
                    return True  # never written, or taken out already
                moved = {(s, n): -delta for s, delta in entry.moves().items() for n in entry.layers}
                change = CountersChange(expected=counters, pruned=(entry,), moved=moved)
                return True if self._repo.change_counters(location.location_id, change) else None

            until_written(step, f"undoing {product_id!r}")


def _touched(kind: TransactionType, items: tuple[TransactionItem, ...]) -> set[str]:
    """The stock locations the items move stock in."""
    ends = (item.movement(kind) for item in items)
    return {name for at, _, other in ends for name in (at, other) if name is not None}


def _check(location: Location, request: TransactionRequest, types: StockLocations) -> None:
    """What the body's schema cannot say: the stock locations each type takes, and the other location."""
    problems: list[dict[str, str]] = []

    def problem(field: str, code: str, message: str) -> None:
        problems.append({"field": f"body.{field}", "code": code, "message": message})

    kind = request.type
    if request.destination_location_id is not None and kind is not TransactionType.TRANSFER_OUT:
        problem("destination_location_id", "not_allowed", "only a transfer_out names a destination")
    if request.source_location_id is not None and kind is not TransactionType.TRANSFER_IN:
        problem("source_location_id", "not_allowed", "only a transfer_in names a source")
    if kind is TransactionType.TRANSFER_OUT and request.destination_location_id is None:
        problem("destination_location_id", "missing", "a transfer_out names its destination_location_id")
    for field in ("destination_location_id", "source_location_id"):
        if getattr(request, field) == location.location_id:
            problem(field, "same_location", "a transfer goes to or comes from another location")
    if kind is TransactionType.ADJUSTMENT and request.reason is None:
        problem("reason", "missing", "an adjustment says why (reason)")
    for i, item in enumerate(request.items):
        at = f"items[{i}]"
        for field in ("from_stock_location", "to_stock_location"):
            name = getattr(item, field)
            if name is not None and not types.known(name):
                problem(
                    f"{at}.{field}",
                    "unknown_stock_location",
                    f"unknown stock location {name!r}; known: {', '.join(types.names)}",
                )
        if item.from_stock_location is not None and kind in _INTO_THE_STORE:
            problem(f"{at}.from_stock_location", "not_allowed", f"a {kind.value} only brings stock in")
        if item.to_stock_location is not None and kind is TransactionType.TRANSFER_OUT:
            problem(f"{at}.to_stock_location", "not_allowed", "a transfer_out only takes stock out")
        if kind is TransactionType.RECEIVING and item.to_stock_location not in (None, MAIN):
            problem(f"{at}.to_stock_location", "not_allowed", "receiving goes into main stock")
        if kind is TransactionType.ADJUSTMENT:
            if item.from_stock_location is None and item.to_stock_location is None:
                problem(f"{at}", "missing", "an adjustment names from_stock_location, to_stock_location, or both")
            elif item.from_stock_location == item.to_stock_location:
                problem(f"{at}.to_stock_location", "same_stock_location", "a move goes to another stock location")
    if problems:
        raise InvalidInput("the inventory transaction is not valid", details=problems)


_INTO_THE_STORE = (TransactionType.RECEIVING, TransactionType.TRANSFER_IN, TransactionType.RETURN)


def _shortages(
    kind: TransactionType, items: tuple[TransactionItem, ...], readings: dict[str, ProductReading]
) -> list[dict[str, Any]]:
    """Every stock location the items, applied in order to the figures read, would take below 0."""
    held: dict[tuple[str, str], int] = {}
    shortages = []
    for item in items:
        stock_location, quantity, other_end = item.movement(kind)
        at = (item.product_id, stock_location)
        if at not in held:
            held[at] = readings[item.product_id].quantity_at(stock_location)
        if quantity < 0 and held[at] + quantity < 0:
            shortages.append(
                {
                    "product_id": item.product_id,
                    "stock_location": stock_location,
                    "requested": -quantity,
                    "available": max(held[at], 0),
                }
            )
        held[at] += quantity
        if other_end is not None:
            end = (item.product_id, other_end)
            held[end] = held.get(end, readings[item.product_id].quantity_at(other_end)) - quantity
    return shortages


def _insufficient(shortages: list[dict[str, Any]]) -> InsufficientStock:
    return InsufficientStock(
        "not enough stock for the inventory transaction",
        details=[
            {
                "field": "body.items",
                "code": "insufficient_stock",
                "message": f"{s['product_id']!r} at {s['stock_location']}: {s['requested']} requested, "
                f"{s['available']} held",
                **s,
            }
            for s in shortages
        ],
    )


def _figures(location: Location, kind: TransactionType, item: TransactionItem, reading: ProductReading) -> ItemFigures:
    stock = reading.stock()
    figures = availability(location, stock, reading.counters)
    stock_location, _, other_end = item.movement(kind)
    touched = {stock_location} | ({other_end} if other_end else set())
    return ItemFigures(
        product_id=item.product_id,
        stock_on_hand=stock.stock_on_hand,
        stock_locations={f.stock_location: f.quantity for f in stock.stock_locations if f.stock_location in touched}
        | {s: 0 for s in touched if s not in {f.stock_location for f in stock.stock_locations}},
        available=figures.available,
        version=figures.version,  # the published version (figures.published_version)
    )


def _event(record: InventoryTransaction) -> OutboxEvent:
    assert record.completed_at is not None
    return OutboxEvent.of(
        DetailType.TRANSACTION_COMPLETED,
        record.location_id,
        record.completed_at,
        {
            "transaction_id": record.transaction_id,
            "type": record.type.value,
            "reason": record.reason,
            "reference": record.reference,
            "destination_location_id": record.destination_location_id,
            "source_location_id": record.source_location_id,
            "inventory_master": record.master.value,
            "pending_import": record.master is InventoryMaster.ERP,
            "recorded_by": record.caller,
            "recorded_at": iso(record.created_at),
            "items": [
                {**item.model_dump(mode="json"), **result.model_dump(mode="json", exclude={"product_id"})}
                for item, result in zip(record.items, record.results, strict=True)
            ],
        },
        key=f"{record.location_id}/{record.transaction_id}",
    )
