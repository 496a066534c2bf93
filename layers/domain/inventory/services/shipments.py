"""Shipments and in-store pickup handovers: each line leaves the location's main stock at once,
exactly once per event line, in both inventory-master modes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from inventory.errors import Conflict, InvalidInput
from inventory.models import MAIN, LedgerEntry, LedgerKind
from inventory.ports import Clock, LedgerRepository, LocationRepository

EVENT_SHIPPED = "Fulfillment Items Shipped"
EVENT_HANDED_OVER = "Fulfillment Items Handed Over"
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


class EventIdReused(Conflict):
    code = "event_id_reused"


class ShipmentRepositories(LocationRepository, LedgerRepository, Protocol):
    """What applying shipments needs of storage (the DynamoDB adapter is both)."""


@dataclass(frozen=True)
class Applied:
    lines: int  # lines applied now
    repeated: int  # lines applied by an earlier delivery


class ShipmentService:
    def __init__(self, repository: ShipmentRepositories, clock: Clock) -> None:
        self._repo = repository
        self._clock = clock

    def apply(self, shipment: Shipment) -> Applied:
        """Apply every line not applied yet; a retry after a crash completes the rest."""
        if self._repo.get_location(shipment.location_id) is None:
            raise InvalidInput(f"location {shipment.location_id!r} does not exist")
        applied = repeated = 0
        for index, line in enumerate(shipment.lines):
            entry = LedgerEntry(
                entry_id=f"{shipment.event_id}:{index}",
                kind=shipment.kind,
                quantity=-line.quantity,
                stock_location=MAIN,
                logical_timestamp=shipment.logical_timestamp,
                applied_at=self._clock.now(),
                reference=shipment.shipment_id,
                source_hash=shipment.body_hash,
            )
            if self._repo.record_ledger_entry(shipment.location_id, line.product_id, entry):
                applied += 1
                continue
            earlier = next(
                (
                    e
                    for e in self._repo.ledger_of(shipment.location_id, line.product_id)
                    if e.entry_id == entry.entry_id
                ),
                None,
            )
            if earlier is None or earlier.source_hash != shipment.body_hash:
                raise EventIdReused(f"event {shipment.event_id!r} was applied with another body")
            repeated += 1
        return Applied(applied, repeated)
