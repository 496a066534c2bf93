"""Shipments and in-store pickup handovers: each line leaves the location's main stock at once,
exactly once per event line, in both inventory-master modes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from inventory.errors import EventIdReused, EventTooOld, InvalidInput
from inventory.models import (
    MAIN,
    Allocation,
    AllocationStatus,
    CountersChange,
    LedgerEntry,
    LedgerKind,
    Location,
    OpenAllocation,
    OutboxEvent,
    ProductCounters,
)
from inventory.ports import AppliedEvents, Clock
from inventory.services.allocations import AllocationRepositories
from inventory.services.counters import until_written
from inventory.services.stock import ProductAvailability, ProductStock, StockService, availability

EVENT_SHIPPED = "Fulfillment Items Shipped"
EVENT_HANDED_OVER = "Fulfillment Items Handed Over"
EVENT_APPLIED = "Shipment Applied"
PRUNE_PER_WRITE = 50
KIND_OF = {EVENT_SHIPPED: LedgerKind.SHIPMENT, EVENT_HANDED_OVER: LedgerKind.HANDOVER}


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
    body_hash: str

    @staticmethod
    def hash_of(detail_type: str, detail: dict[str, Any]) -> str:
        canonical = json.dumps([detail_type, detail], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


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

    def apply(self, shipment: Shipment) -> Applied:
        """Apply every line not applied yet; a retry after a crash completes the rest.

        Each line is one conditional write on its product's counters: the ledger entry (keyed by the
        event id and line, which makes it exactly once), the allocations it closes, and its part of
        the `Shipment Applied` event, together.
        """
        location = self._repo.get_location(shipment.location_id)
        if location is None:
            raise InvalidInput(f"location {shipment.location_id!r} does not exist")
        if shipment.occurred_at < self._clock.now() - self._retention:
            raise EventTooOld(
                f"event {shipment.event_id!r} occurred over {self._retention.days} days ago: whether it was "
                "applied can no longer be told, so it is not applied"
            )
        # One record per event, before any line: the same id with another body is refused whole,
        # whatever products either body names. A retry after a crash finds its own record and
        # completes the lines (each line is exactly once by itself).
        first = self._repo.claim_event(
            shipment.location_id, shipment.event_id, shipment.body_hash, self._clock.now() + self._retention
        )
        if first is not None and first != shipment.body_hash:
            raise EventIdReused(f"event {shipment.event_id!r} was applied with another body")
        applied = repeated = 0
        for index, line in enumerate(shipment.lines):
            if self._apply_line(location, shipment, index, line):
                applied += 1
            else:
                repeated += 1
        return Applied(applied, repeated)

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

    def _apply_line(self, location: Location, shipment: Shipment, index: int, line: ShipmentLine) -> bool:
        """Whether the line was applied now (False: an earlier delivery applied it)."""
        entry_id = f"{shipment.event_id}:{index}"
        remembered = False

        def step() -> bool | None:
            nonlocal remembered
            reading = self._stock.read(location, line.product_id)
            stock, counters = reading.stock(), reading.counters
            earlier = counters.entry(entry_id)
            if earlier is not None:
                if earlier.source_hash != shipment.body_hash:
                    raise EventIdReused(f"event {shipment.event_id!r} was applied with another body")
                return False
            if line.allocation_id and counters.allocation(line.allocation_id) is None and not remembered:
                self._remember_shipped_allocation(shipment, line.allocation_id)
                remembered = True
                return None  # read again: the allocation may have opened meanwhile
            now = self._clock.now()
            entry = LedgerEntry(
                entry_id=entry_id,
                kind=shipment.kind,
                quantity=-line.quantity,
                stock_location=MAIN,
                logical_timestamp=shipment.logical_timestamp,
                applied_at=now,
                reference=shipment.shipment_id,
                source_hash=shipment.body_hash,
            )
            closing = allocations_closed(counters.allocations, line)
            after = counters.model_copy(
                update={
                    "version": counters.version + 1,
                    "ledger": (*counters.ledger, entry),
                    "allocations": tuple(
                        closing.get(a.allocation_id, a) for a in counters.allocations if closing.get(a.allocation_id, a)
                    ),
                }
            )
            figures = availability(location, reading.stock(after), after)
            known = counters.exists or stock.imported
            event = self._applied_event(shipment, index, line, figures, known, now)
            change = CountersChange(
                expected=counters,
                entry=entry,
                allocations=closing,
                event=event,
                pruned=self._prunable(counters, stock, now),
            )
            return True if self._repo.change_counters(location.location_id, change) else None

        return until_written(step, f"applying {entry_id!r}")

    def _prunable(self, counters: ProductCounters, stock: ProductStock, now: datetime) -> tuple[str, ...]:
        """Entries a base has made part of itself (they no longer count) and that are older than the
        retention: removed in the same write, so that the item stays small (at most PRUNE_PER_WRITE)."""
        counting = {e.entry_id for e in stock.ledger}
        cutoff = now - self._retention
        old = [e.entry_id for e in counters.ledger if e.applied_at < cutoff and e.entry_id not in counting]
        return tuple(old[:PRUNE_PER_WRITE])

    @staticmethod
    def _applied_event(  # noqa: PLR0917 - one part of one event, from what the line's write computed
        shipment: Shipment, index: int, line: ShipmentLine, figures: ProductAvailability, known: bool, now: datetime
    ) -> OutboxEvent:
        warnings = [] if known else ["unknown_product"]
        if figures.stock_on_hand < 0:
            warnings.append("negative_stock_on_hand")
        return OutboxEvent.of(
            EVENT_APPLIED,
            shipment.location_id,
            now,
            {
                "source_event_id": shipment.event_id,
                "kind": shipment.kind.value,
                "shipment_id": shipment.shipment_id,
                "logical_timestamp": shipment.logical_timestamp,
                "part": index + 1,  # one part per line: each is written with the line it reports
                "parts": len(shipment.lines),
                "products": [
                    {
                        "product_id": line.product_id,
                        "quantity": -line.quantity,
                        "stock_on_hand": figures.stock_on_hand,
                        "allocated": figures.allocated,
                        "safety_stock": figures.safety_stock,
                        "available": figures.available,
                        "uncounted": figures.uncounted,
                        "version": figures.version,
                        "warnings": warnings,
                    }
                ],
            },
            key=f"{shipment.location_id}/{shipment.event_id}/{index}",
        )


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
