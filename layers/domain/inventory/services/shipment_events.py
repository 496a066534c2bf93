"""Shipment events from the fulfilment queue, a batch at a time, and the shipments they carry.

A batch (`ShipmentEventService`): each record is dispatched on its event's type, and what one record
fails with fails that record alone. Shipments and in-store pickup handovers go to the shipment rules
(`ShipmentService`): each line leaves the location's main stock at once, exactly once per event line,
in both inventory-master modes, and closes allocations. The allocation events that share the queue go
to the allocation service: opened (or refused, with an `Allocation Refused` event) and released, once
per allocation id.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from inventory.backoff import until_written
from inventory.errors import EventIdReused, EventTooOld, InvalidInput, UnknownLocation
from inventory.messages import DetailType
from inventory.messages.allocation_events import AllocationCreated, AllocationReleased
from inventory.messages.shipment_events import ItemsHandedOver, ItemsShipped, QueuedEvent, ShipmentEvent
from inventory.models import (
    Allocation,
    AllocationLine,
    AllocationStatus,
    CountersChange,
    LedgerEntry,
    LedgerKind,
    Location,
    OpenAllocation,
    OutboxEvent,
    ProductCounters,
    StockRow,
)
from inventory.observability import logger
from inventory.ports import AppliedEvents, Clock
from inventory.services.allocations import AllocationRepositories, AllocationRequest, AllocationService
from inventory.services.outcomes import APPLIED, Outcome, outcome_of
from inventory.services.stock import ProductReading, ProductStock, StockService, availability
from inventory.types import MAIN

PRUNE_PER_WRITE = 50
# Most lines are written without reading their product, so they cannot prune its ledger. One line in
# PRUNING_SAMPLE (chosen by a hash of its entry id, so a redelivery chooses the same) reads the
# product whole and prunes it: a product's ledger keeps about PRUNING_SAMPLE entries past retention.
PRUNING_SAMPLE = 64
LOCATION_CACHE = timedelta(minutes=1)


# ---------------------------------------------------------------- a batch of the queue
# The caller recorded on allocations from the bus: the value records have always held.
CALLER = "fulfillment-events"
# A record is not started with less time left than this: the longest (1,000 lines) takes a few seconds.
MIN_REMAINING_MS = 10_000
KIND_OF: dict[str, LedgerKind] = {
    DetailType.ITEMS_SHIPPED: LedgerKind.SHIPMENT,
    DetailType.ITEMS_HANDED_OVER: LedgerKind.HANDOVER,
}


@dataclass
class BatchApplied:
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by record id
    shipments: int = 0
    lines: int = 0  # shipment lines applied now
    repeated: int = 0  # shipment lines an earlier delivery had applied


class ShipmentEventService:
    def __init__(self, shipments: ShipmentService, allocations: AllocationService) -> None:
        self._shipments = shipments
        self._allocations = allocations

    def apply(self, records: Mapping[str, QueuedEvent | Exception], remaining_ms: Callable[[], int]) -> BatchApplied:
        """Apply a batch's records, in order, each by itself: what one record fails with fails that
        record alone. A record that could not be parsed comes as what parsing raised (InvalidInput:
        refused). A record is not started with less than MIN_REMAINING_MS left: it fails for now,
        rather than be cut off by the timeout with the rest of the batch (the queue delivers it
        again; each line is applied once, so a cut-off record would be safe too, only slower)."""
        shipments = {
            record_id: shipment_of(message)
            for record_id, message in records.items()
            if isinstance(message, ShipmentEvent)
        }
        self._read_ahead(list(shipments.values()))
        done = BatchApplied()
        for record_id, message in records.items():
            if remaining_ms() < MIN_REMAINING_MS:
                done.outcomes[record_id] = outcome_of(TimeoutError("too little time left to start the record"))
            elif isinstance(message, Exception):
                done.outcomes[record_id] = outcome_of(message)
            else:
                done.outcomes[record_id] = self._apply(message, shipments.get(record_id), done)
        return done

    def _read_ahead(self, shipments: list[Shipment]) -> None:
        """One read for what the batch's shipment lines would each read; only a saving, so whatever it
        fails with leaves each line to read for itself (and fail, if it must, with its own record)."""
        try:
            self._shipments.read_ahead(shipments)
        except Exception:  # logged; the lines read again
            logger.warning("reading ahead failed: each line reads for itself", exc_info=True)

    def _apply(self, message: QueuedEvent, shipment: Shipment | None, done: BatchApplied) -> Outcome:
        """Dispatch on the event's type; `shipment`: a shipment event as the domain takes it."""
        try:
            match message:
                case ItemsShipped() | ItemsHandedOver():
                    assert shipment is not None
                    applied = self._shipments.apply(shipment)
                    done.shipments += 1
                    done.lines += applied.lines
                    done.repeated += applied.repeated
                    # Per record at DEBUG (the ledger keeps what each event did); the batch has one INFO line.
                    logger.debug(
                        "shipment applied",
                        extra={"event_id": shipment.event_id, "lines": applied.lines, "repeated": applied.repeated},
                    )
                case AllocationCreated():
                    detail = message.detail
                    view, _ = self._allocations.create(
                        detail.location_id, allocation_request_of(message), CALLER, from_bus=True
                    )
                    logger.info(
                        "allocation created",
                        extra={
                            "event_id": detail.event_id,
                            "allocation_id": detail.allocation_id,
                            "status": view.allocation.status,
                        },
                    )
                case AllocationReleased():
                    released = message.detail
                    self._allocations.release(released.location_id, released.allocation_id, CALLER, from_bus=True)
                    logger.info(
                        "allocation released",
                        extra={"event_id": released.event_id, "allocation_id": released.allocation_id},
                    )
        except Exception as error:  # the record's outcome, not the batch's
            return outcome_of(error)
        return APPLIED


def shipment_of(message: ShipmentEvent) -> Shipment:
    detail = message.detail
    return Shipment(
        event_id=detail.event_id,
        kind=KIND_OF[message.detail_type],
        location_id=detail.location_id,
        shipment_id=detail.shipment_id,
        logical_timestamp=detail.logical_timestamp,
        occurred_at=detail.occurred_at,
        lines=tuple(ShipmentLine(i.product_id, i.quantity, i.allocation_id) for i in detail.items),
        body_hash=message.body_hash,
    )


def allocation_request_of(message: AllocationCreated) -> AllocationRequest:
    detail = message.detail
    return AllocationRequest(
        allocation_id=detail.allocation_id,
        order_id=detail.order_id,
        items=tuple(AllocationLine(product_id=i.product_id, quantity=i.quantity) for i in detail.items),
    )


# ---------------------------------------------------------------- a shipment
@dataclass(frozen=True)
class ShipmentLine:
    product_id: str
    quantity: int
    allocation_id: str | None = None


@dataclass(frozen=True)
class Shipment:
    event_id: str
    kind: LedgerKind
    location_id: str
    shipment_id: str
    logical_timestamp: int
    occurred_at: datetime
    lines: tuple[ShipmentLine, ...]
    body_hash: str  # of the event's detail as it came: the same event id with another body is refused


class ShipmentRepositories(AllocationRepositories, AppliedEvents, Protocol):
    """What applying shipments needs of storage (the DynamoDB adapter is all of it)."""


@dataclass(frozen=True)
class Applied:
    lines: int  # lines applied now
    repeated: int  # lines applied by an earlier delivery


class ShipmentService:
    def __init__(self, repository: ShipmentRepositories, clock: Clock, retention_days: int = 35) -> None:
        self._repo = repository
        self._clock = clock
        self._stock = StockService(repository)
        self._retention = timedelta(days=retention_days)
        self._locations: dict[str, tuple[Location, datetime]] = {}  # location id: (location, when read)
        self._ahead: dict[tuple[str, str], tuple[ProductCounters, dict[int, list[StockRow]]]] = {}

    def read_ahead(self, shipments: Sequence[Shipment]) -> None:
        """Read at once what the lines of these shipments would each read before writing (their
        product's counters when they name an allocation; its rows too when they prune): one request
        for a batch of events instead of one per such line. Each line takes what was read for it
        once: when the product changed since, its conditional write fails and it reads again, as
        after any lost race. A shipment that cannot be applied is left for `apply` to refuse."""
        wanted: dict[str, dict[str, Sequence[int]]] = {}
        for shipment in shipments:
            try:
                location = self._location(shipment.location_id)
            except InvalidInput:
                continue
            seqs = [v.seq for v in location.visible_imports]
            products = wanted.setdefault(shipment.location_id, {})
            for index, line in enumerate(shipment.lines):
                if _prunes(_entry_id(shipment, index)):
                    products[line.product_id] = seqs
                elif line.allocation_id:
                    products.setdefault(line.product_id, ())
        self._ahead = {
            (location_id, product_id): state
            for location_id, products in wanted.items()
            if products
            for product_id, state in self._repo.product_states(location_id, products).items()
        }

    def apply(self, shipment: Shipment) -> Applied:
        """Apply every line not applied yet; a retry after a crash completes the rest.

        Each line is one conditional write on its product's counters: the ledger entry (keyed by the
        event id and line, which makes it exactly once), the allocations it closes, and its part of
        the `Shipment Applied` event, together. A line that names no allocation, of a product that
        has nothing allocated, is written without reading the counters first.
        """
        location = self._location(shipment.location_id)
        if shipment.occurred_at < self._clock.now() - self._retention:
            raise EventTooOld(
                f"event {shipment.event_id!r} occurred over {self._retention.days} days ago: whether it was "
                "applied can no longer be told, so it is not applied"
            )
        # One record per event, before any line: the same id with another body is refused whole,
        # whatever products either body names. A retry after a crash finds its own record and
        # completes the lines (each line is exactly once by itself).
        # Kept while a redelivery is not too old: past the retention from when it occurred, for an
        # event dated ahead of this clock.
        keep_until = max(self._clock.now(), shipment.occurred_at) + self._retention
        first = self._repo.claim_event(shipment.location_id, shipment.event_id, shipment.body_hash, keep_until)
        if first is not None and first != shipment.body_hash:
            raise EventIdReused(f"event {shipment.event_id!r} was applied with another body")
        redelivered = first is not None  # its lines may be applied already: read before writing
        applied = repeated = 0
        for index, line in enumerate(shipment.lines):
            entry, event = self._entry(shipment, index, line), self._applied_event(shipment, index, line)
            prunes = _prunes(entry.entry_id)
            blind = not (redelivered or prunes or line.allocation_id)  # no read: most lines
            if blind and self._repo.append_entry(shipment.location_id, line.product_id, entry, event):
                applied += 1
                continue
            if self._apply_line(shipment, line, entry, event, location if prunes else None):
                applied += 1
            else:
                repeated += 1
        return Applied(applied, repeated)

    def _location(self, location_id: str) -> Location:
        """The location as read at most LOCATION_CACHE ago. Lines only need it to exist (locations are
        never deleted) and, to prune, its visible imports: an entry pruned is older than the
        retention, and a minute-old view of the imports counts every such entry the current view
        counts, as long as imports' `shipments_included_through` does not go back (the assumption
        pruning makes anyway: docs/data-design.md)."""
        now = self._clock.now()
        cached = self._locations.get(location_id)
        if cached is None or now - cached[1] > LOCATION_CACHE:
            location = self._repo.get_location(location_id)
            if location is None:
                raise UnknownLocation(f"location {location_id!r} does not exist")
            cached = self._locations[location_id] = (location, now)
        return cached[0]

    def _remember_shipped_allocation(self, shipment: Shipment, allocation_id: str) -> None:
        """A shipment can overtake the creation of the allocation it names (events are unordered):
        the allocation is then recorded as released, so that its late creation opens nothing."""
        if self._repo.get_allocation(shipment.location_id, allocation_id) is None:
            now = self._clock.now()
            self._repo.put_allocation(
                Allocation(
                    location_id=shipment.location_id,
                    allocation_id=allocation_id,
                    status=AllocationStatus.RELEASED,
                    created_at=now,
                    updated_at=now,
                    caller=f"shipment {shipment.shipment_id}",
                )
            )  # False: created meanwhile, and then the line closes what it opened

    def _apply_line(
        self, shipment: Shipment, line: ShipmentLine, entry: LedgerEntry, event: OutboxEvent, pruning: Location | None
    ) -> bool:
        """Read, decide, write; whether the line was applied now (False: an earlier delivery applied it).
        With `pruning` (the location), the read takes the product's stock too, and the write prunes."""
        remembered = False

        def step() -> bool | None:
            nonlocal remembered
            pruned: tuple[LedgerEntry, ...] = ()
            ahead = self._ahead.pop((shipment.location_id, line.product_id), None)  # its first attempt only
            if pruning is None:
                counters = ahead[0] if ahead else self._repo.counters_of(shipment.location_id, line.product_id)
            else:
                if ahead and ahead[1].keys() == {v.seq for v in pruning.visible_imports}:
                    reading = ProductReading(pruning, *ahead)
                else:
                    reading = self._stock.read(pruning, line.product_id)
                counters = reading.counters
                pruned = self._prunable(counters, reading.stock(), self._clock.now())
            if counters.entry(entry.entry_id, entry.source_hash) is not None:
                return False  # applied by an earlier delivery
            if line.allocation_id and counters.allocation(line.allocation_id) is None and not remembered:
                self._remember_shipped_allocation(shipment, line.allocation_id)
                remembered = True
                return None  # read again: the allocation may have opened meanwhile
            change = CountersChange(
                expected=counters,
                entry=entry,
                allocations=allocations_closed(counters.allocations, line),
                event=event,
                pruned=pruned,
            )
            return True if self._repo.change_counters(shipment.location_id, change) else None

        return until_written(step, f"applying {entry.entry_id!r}")

    def _entry(self, shipment: Shipment, index: int, line: ShipmentLine) -> LedgerEntry:
        return LedgerEntry(
            entry_id=_entry_id(shipment, index),
            kind=shipment.kind,
            quantity=-line.quantity,
            stock_location=MAIN,
            logical_timestamp=shipment.logical_timestamp,
            applied_at=self._clock.now(),
            reference=shipment.shipment_id,
            source_hash=shipment.body_hash,
        )

    def _prunable(self, counters: ProductCounters, stock: ProductStock, now: datetime) -> tuple[LedgerEntry, ...]:
        """Entries a base has made part of itself (they no longer count) and that are older than the
        retention: removed in the same write, so that the item stays small (at most PRUNE_PER_WRITE)."""
        counting = set(stock.ledger)
        cutoff = now - self._retention
        old = [e for e in counters.ledger if e.applied_at < cutoff and e not in counting]
        return tuple(old[:PRUNE_PER_WRITE])

    def _applied_event(self, shipment: Shipment, index: int, line: ShipmentLine) -> OutboxEvent:
        """The line's part of the `Shipment Applied` event; the relay adds the product's figures
        (`ShipmentFigures`) when it publishes it."""
        return OutboxEvent.of(
            DetailType.SHIPMENT_APPLIED,
            shipment.location_id,
            self._clock.now(),
            {
                "source_event_id": shipment.event_id,
                "kind": shipment.kind.value,
                "shipment_id": shipment.shipment_id,
                "logical_timestamp": shipment.logical_timestamp,
                "part": index + 1,  # one part per line: each is written with the line it reports
                "parts": len(shipment.lines),
                "products": [{"product_id": line.product_id, "quantity": -line.quantity}],
            },
            key=f"{shipment.location_id}/{shipment.event_id}/{index}",
        )


class ShipmentFigures:
    """Completes a `Shipment Applied` event as the relay publishes it: each product's figures and
    `version` as one consistent read gives them at that moment (they include the line, and any
    change after it, with the version of the last), and what went wrong.

    The line's write does not carry them: most lines are written without reading the product."""

    def __init__(self, stock: StockService) -> None:
        self._stock = stock

    def __call__(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        products: dict[str, set[str]] = {}  # by location: each product read once, with the others
        for event in events:
            products.setdefault(event.detail["location_id"], set()).update(
                product["product_id"] for product in event.detail["products"]
            )
        figures: dict[tuple[str, str], dict[str, Any]] = {}
        for location_id, product_ids in products.items():
            for product_id, reading in self._stock.read_many(self._stock.location(location_id), product_ids).items():
                figures[(location_id, product_id)] = self._figures(reading)
        finished = []
        for event in events:
            location_id = event.detail["location_id"]
            completed = [
                {"product_id": p["product_id"], "quantity": p["quantity"], **figures[(location_id, p["product_id"])]}
                for p in event.detail["products"]
            ]
            finished.append(event.model_copy(update={"detail": {**event.detail, "products": completed}}))
        return finished

    def _figures(self, reading: ProductReading) -> dict[str, Any]:
        location, stock, counters = reading.location, reading.stock(), reading.counters
        figures = availability(location, stock, counters)
        known = stock.imported or any(e.quantity > 0 for e in counters.ledger)
        warnings = [] if known else ["unknown_product"]
        if figures.stock_on_hand < 0:
            warnings.append("negative_stock_on_hand")
        return {
            "stock_on_hand": figures.stock_on_hand,
            "allocated": figures.allocated,
            "safety_stock": figures.safety_stock,
            "available": figures.available,
            "uncounted": figures.uncounted,
            "version": figures.version,
            "warnings": warnings,
        }


def _entry_id(shipment: Shipment, index: int) -> str:
    return f"{shipment.event_id}:{index}"


def _prunes(entry_id: str) -> bool:
    """Whether the line of this entry is one of those that prune (a redelivery chooses the same)."""
    return zlib.crc32(entry_id.encode()) % PRUNING_SAMPLE == 0


def allocations_closed(
    open_allocations: Sequence[OpenAllocation], line: ShipmentLine
) -> dict[str, OpenAllocation | None]:
    """What a line removes: up to its quantity from the allocation it names, or else from the
    product's oldest open allocations; the new open quantity of each (None: nothing left)."""
    if line.allocation_id is not None:
        targets = [a for a in open_allocations if a.allocation_id == line.allocation_id]
    else:
        targets = sorted(open_allocations, key=lambda a: (a.received, a.allocation_id))
    left, changes = line.quantity, {}
    for allocation in targets:
        if left <= 0:
            break
        taken = min(left, allocation.quantity)
        left -= taken
        rest = allocation.quantity - taken
        changes[allocation.allocation_id] = allocation.model_copy(update={"quantity": rest}) if rest else None
    return changes
