"""Shipment events from the fulfilment queue, a batch at a time, and the shipments they carry.

A batch (`ShipmentEventService`): each record is dispatched on its event's type, and what one record
fails with fails that record alone. Shipments and in-store pickup handovers go to the shipment rules
(`ShipmentService`): each line leaves the location's main stock at once, exactly once per event line,
in both inventory-master modes, and closes allocations. The allocation events that share the queue go
to the allocation service: opened (or refused, with an `Allocation Refused` event) and released, once
per allocation id.

A line is one conditional write of its product's hot item: its entry into the buffer, its quantity
into the sums of the import layers that do not include it, its part of `Shipment Applied`, and the
allocations it closes. Entries leave the buffer for ledger pages once every line of their event is
applied (the event's record is `done`, written at the end of the batch), so that the item stays a
few KB however long the history (`ledger_moves`; docs/data-design.md, "Bounded history").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from inventory.backoff import until_written
from inventory.errors import EventIdReused, EventTooOld, InvalidInput, TemporarilyUnavailable, UnknownLocation
from inventory.ledger import folded_sums, late_layers, late_layers_excluding, layers_for
from inventory.messages import DetailType
from inventory.messages.allocation_events import AllocationCreated, AllocationReleased
from inventory.messages.shipment_events import ItemsHandedOver, ItemsShipped, QueuedEvent, ShipmentEvent
from inventory.models import AllocationStatus, LedgerKind, Location, OutboxEvent
from inventory.models.allocations import Allocation, AllocationLine
from inventory.models.counters import CountersChange, LedgerEntry, ProductCounters
from inventory.models.events import EventClaim
from inventory.models.imports import StockRow
from inventory.observability import logger
from inventory.services.allocation_lines import (
    HELD_ALLOCATIONS,
    AllocationHolders,
    AllocationMover,
    apply_closes,
    closes_of,
    closing_from,
)
from inventory.services.allocations import AllocationRequest, AllocationService
from inventory.services.ledger_moves import BUFFER_ENTRIES, SETTLED_AFTER, EntryMover, applied_key, entry_id_of
from inventory.services.outcomes import APPLIED, Outcome, outcome_of
from inventory.types import MAIN

if TYPE_CHECKING:
    from inventory.ports import Clock, ShipmentRepositories
    from inventory.services.stock import StockService

# ---------------------------------------------------------------- a batch of the queue
# The caller recorded on allocations from the bus: the value records have always held.
CALLER = "fulfillment-events"
# A line decides by the product's main rows in the layers it is late for (`late_layers_excluding`):
# those are the rows it reads.
_MAIN_ROWS = (MAIN,)
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
        try:
            for record_id, message in records.items():
                if remaining_ms() < MIN_REMAINING_MS:
                    done.outcomes[record_id] = outcome_of(TimeoutError("too little time left to start the record"))
                elif isinstance(message, Exception):
                    done.outcomes[record_id] = outcome_of(message)
                else:
                    done.outcomes[record_id] = self._apply(message, shipments.get(record_id), done)
        finally:
            # The events whose every line is applied are recorded `done` together (their entries may
            # then leave the buffer). Those whose record could not be written fail: delivered again,
            # they repeat their lines, all applied, and record it.
            unrecorded = self._shipments.end_batch()
        for record_id, shipment in shipments.items():
            if shipment.event_id in unrecorded and done.outcomes.get(record_id) is APPLIED:
                done.outcomes[record_id] = outcome_of(
                    TemporarilyUnavailable(f"recording that {shipment.event_id!r} is applied failed")
                )
        return done

    def _read_ahead(self, shipments: list[Shipment]) -> None:
        """One read for what the batch's shipment lines would each read; only a saving, so whatever it
        fails with leaves each line to read for itself (and fail, if it must, with its own record)."""
        try:
            self._shipments.read_ahead(shipments)
        except Exception:  # logged; the lines read again
            logger.warning("reading ahead failed: each line reads for itself", exc_info=True)
            self._shipments.begin_batch()

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


@dataclass(frozen=True)
class Applied:
    lines: int  # lines applied now
    repeated: int  # lines applied by an earlier delivery


@dataclass
class _Batch:
    """What one batch of events shares: each location as read once, strongly consistently, at its
    start (the order in which lines and import claims happened is that read), what was read ahead,
    and the events whose every line is applied (recorded `done` together at its end)."""

    locations: dict[str, Location] = field(default_factory=dict)
    ahead: dict[tuple[str, str], tuple[ProductCounters, dict[int, list[StockRow]]]] = field(default_factory=dict)
    done: dict[str, dict[str, EventClaim]] = field(default_factory=dict)  # by location, by event id


class ShipmentService:
    def __init__(
        self,
        repository: ShipmentRepositories,
        stock: StockService,
        clock: Clock,
        retention_days: int = 35,
        settled_after: timedelta = SETTLED_AFTER,
    ) -> None:
        self._repo = repository
        self._clock = clock
        self._stock = stock
        self._retention = timedelta(days=retention_days)
        self._mover = EntryMover(repository, clock, settled_after)
        self._allocation_mover = AllocationMover(repository, clock)
        self._batch: _Batch | None = None
        self._holders = AllocationHolders(clock)  # read ahead rather than written blind

    # ------------------------------------------------------------------ batches
    def read_ahead(self, shipments: Sequence[Shipment]) -> None:
        """Begin a batch of these shipments: read each location once, and at once what their lines
        would each read before writing (the product's counters when a line names an allocation):
        one request for a batch of events instead of one per such line. Each line takes what was
        read for it once: when the product changed since, its conditional write fails and it reads
        again, as after any lost race. A shipment that cannot be applied is left for `apply` to refuse."""
        self._batch = _Batch()
        wanted: dict[str, dict[str, Sequence[int]]] = {}
        for shipment in shipments:
            try:
                self._location(shipment.location_id)
            except InvalidInput:
                continue
            products = wanted.setdefault(shipment.location_id, {})
            late = late_layers(self._location(shipment.location_id), shipment.logical_timestamp)
            for line in shipment.lines:
                # lines that read first (with their rows in the layers they are late for)
                if line.allocation_id or late or self._holders.holds(shipment.location_id, line.product_id):
                    products[line.product_id] = tuple(sorted({*products.get(line.product_id, ()), *late}))
        self._batch.ahead = {
            (location_id, product_id): state
            for location_id, products in wanted.items()
            if products
            for product_id, state in self._repo.product_states(location_id, products, _MAIN_ROWS).items()
        }

    def begin_batch(self) -> None:
        """Begin a batch without reading ahead."""
        self._batch = _Batch()

    def end_batch(self) -> set[str]:
        """Record `done` the events of the batch whose every line is applied (one BatchWriteItem per
        25); the ids of those whose record could not be written (their deliveries should fail: a
        redelivery repeats their lines, all applied, and records it)."""
        batch, self._batch = self._batch, None
        failed: set[str] = set()
        if batch is None:
            return failed
        for location_id, claims in batch.done.items():
            try:
                self._repo.mark_events_done(location_id, claims)
            except Exception:  # logged; each of its records fails by itself
                logger.warning("recording applied events failed", exc_info=True, extra={"events": len(claims)})
                failed |= claims.keys()
        return failed

    # ------------------------------------------------------------------ applying
    def apply(self, shipment: Shipment) -> Applied:
        """Apply every line not applied yet; a retry after a crash completes the rest. Outside a batch
        (`read_ahead` ... `end_batch`), the event is a batch of its own.

        Each line is one conditional write on its product's counters: the entry (keyed by the event
        id and line, which makes it exactly once), its quantity into the sums of the import layers
        that do not include it, the allocations it closes, and its part of the `Shipment Applied`
        event, together. A line that names no allocation, of a product that has nothing allocated,
        is written without reading the counters first.
        """
        if self._batch is not None:
            return self._apply(shipment)
        self._batch = _Batch()
        try:
            applied = self._apply(shipment)
        except BaseException:
            self._batch = None
            raise
        if self.end_batch():
            raise TemporarilyUnavailable(f"the lines of {shipment.event_id!r} are applied; recording it failed")
        return applied

    def _apply(self, shipment: Shipment) -> Applied:
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
        if redelivered and self._done(shipment):
            return Applied(0, len(shipment.lines))  # every line applied, and maybe moved out of the buffer
        into = layers_for(location, shipment.logical_timestamp)
        late = late_layers(location, shipment.logical_timestamp)
        applied = repeated = 0
        for index, line in enumerate(shipment.lines):
            entry = self._entry(shipment, index, line, location)
            event = self._applied_event(shipment, index, line)
            held: int | None = None
            reads_first = redelivered or line.allocation_id or late
            if not (reads_first or self._holders.holds(shipment.location_id, line.product_id)):  # most lines
                held = self._repo.append_entry(shipment.location_id, line.product_id, entry, event, into)
                if held is None:  # refused: most often, the product holds allocations the line must close
                    self._holders.found(shipment.location_id, line.product_id)
            if held is not None:
                applied += 1
            else:
                now_applied, held = self._apply_line(shipment, line, entry, event, location, redelivered=redelivered)
                applied += now_applied
                repeated += not now_applied
            if held > BUFFER_ENTRIES:
                self._mover.move_out(location, line.product_id)
        assert self._batch is not None
        self._batch.done.setdefault(shipment.location_id, {})[shipment.event_id] = EventClaim(
            body_hash=shipment.body_hash,
            keep_until=keep_until,
            done=True,
            first=not redelivered,
            done_at=self._clock.now(),
        )
        return Applied(applied, repeated)

    def _done(self, shipment: Shipment) -> bool:
        claim = self._repo.event_claims(shipment.location_id, [shipment.event_id]).get(shipment.event_id)
        return claim is not None and claim.done

    def _location(self, location_id: str) -> Location:
        """The location as this batch read it, strongly consistently, once: the import layers it
        announces then are those the batch's lines add themselves to. An import claimed after that
        read includes the batch's lines (it names no watermark) or sums them itself when it
        completes, which it starts no earlier than a batch can last (docs/data-design.md)."""
        batch = self._batch
        cached = batch.locations.get(location_id) if batch is not None else None
        if cached is None:
            cached = self._repo.get_location(location_id)
            if cached is None:
                raise UnknownLocation(f"location {location_id!r} does not exist")
            if batch is not None:
                batch.locations[location_id] = cached
        return cached

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
        self,
        shipment: Shipment,
        line: ShipmentLine,
        entry: LedgerEntry,
        event: OutboxEvent,
        location: Location,
        *,
        redelivered: bool,
    ) -> tuple[bool, int]:
        """Read, decide, write: whether the line was applied now (False: an earlier delivery applied
        it), and how many entries the product's buffer holds after."""
        remembered = False
        timestamp = shipment.logical_timestamp
        into, late = layers_for(location, timestamp), late_layers(location, timestamp)
        location_id, product_id = shipment.location_id, line.product_id

        def step() -> tuple[bool, int] | None:
            nonlocal remembered
            ahead = self._ahead(location_id, product_id)  # its first attempt only
            line_into = into
            if late:  # whether it adds itself to those layers' sums follows from its rows there
                with_rows = ahead if ahead and all(n in ahead[1] for n in late) else None
                counters, rows = (
                    with_rows or self._repo.product_states(location_id, {product_id: late}, _MAIN_ROWS)[product_id]
                )
                line_into = tuple(sorted({*into, *late_layers_excluding(location, timestamp, rows)}))
            else:
                counters = ahead[0] if ahead else self._repo.counters_of(location_id, product_id)
            if not counters.allocated:
                self._holders.cleared(location_id, product_id)  # its next line writes blind again
            written = counters.entry(entry.entry_id, entry.source_hash)
            if written is not None:  # applied by an earlier delivery: complete what it closed of lines
                apply_closes(self._repo, location_id, product_id, written)
                return False, counters.buffered
            # Not in the buffer. A delivery that did not claim the event first asks its record again,
            # after this read: once `done`, the entry may have left the buffer (never before).
            if redelivered and self._done(shipment):
                return False, counters.buffered
            candidates, read = closing_from(self._repo, location_id, counters, line.quantity, line.allocation_id)
            if candidates is None:
                if remembered:
                    candidates = []
                else:
                    self._remember_shipped_allocation(shipment, line.allocation_id or "")
                    remembered = True
                    return None  # read again: the allocation may have opened meanwhile
            held_changes, closes = closes_of(candidates, {a.allocation_id for a in counters.allocations}, line.quantity)
            closing = entry.model_copy(update={"closes": closes})
            change = CountersChange(
                expected=counters,
                entry=closing,
                into=line_into,
                fold=folded_sums(location, counters.ledger) if counters.legacy else None,
                allocations=held_changes,
                lines_delta=-sum(c.quantity for c in closes),
                event=event,
            )
            if not self._repo.change_counters(location_id, change):
                return None
            apply_closes(self._repo, location_id, product_id, closing, read=read, prune_with=counters)
            if len(counters.allocations) > HELD_ALLOCATIONS:
                self._allocation_mover.move_held(location_id, product_id)
            return True, counters.buffered + 1

        return until_written(step, f"applying {entry.entry_id!r}")

    def _ahead(self, location_id: str, product_id: str) -> tuple[ProductCounters, dict[int, list[StockRow]]] | None:
        return self._batch.ahead.pop((location_id, product_id), None) if self._batch is not None else None

    def _entry(self, shipment: Shipment, index: int, line: ShipmentLine, location: Location) -> LedgerEntry:
        return LedgerEntry(
            entry_id=_entry_id(shipment, index),
            kind=shipment.kind,
            quantity=-line.quantity,
            stock_location=MAIN,
            logical_timestamp=shipment.logical_timestamp,
            applied_at=self._clock.now(),
            reference=shipment.shipment_id,
            source_hash=shipment.body_hash,
            epoch=location.import_seq,
        )

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
            key=applied_key(shipment.location_id, _entry_id(shipment, index)),
        )


def _entry_id(shipment: Shipment, index: int) -> str:
    return entry_id_of(shipment.event_id, index)
