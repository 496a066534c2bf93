"""Fulfilment's events, a queue batch at a time: shipments and in-store pickup handovers leave main
stock and close allocations once per event line; allocations are opened (or refused, with an
`Allocation Refused` event) and released once per allocation id."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from inventory.messages import DetailType
from inventory.messages.fulfillment import (
    AllocationCreated,
    AllocationReleased,
    FulfillmentEvent,
    ItemsHandedOver,
    ItemsShipped,
    ShipmentEvent,
)
from inventory.models import AllocationLine, LedgerKind
from inventory.observability import logger
from inventory.services.allocations import AllocationRequest, AllocationService
from inventory.services.outcomes import APPLIED, Outcome, outcome_of
from inventory.services.shipments import Shipment, ShipmentLine, ShipmentService

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


class FulfillmentService:
    def __init__(self, shipments: ShipmentService, allocations: AllocationService) -> None:
        self._shipments = shipments
        self._allocations = allocations

    def apply(
        self, records: Mapping[str, FulfillmentEvent | Exception], remaining_ms: Callable[[], int]
    ) -> BatchApplied:
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

    def _apply(self, message: FulfillmentEvent, shipment: Shipment | None, done: BatchApplied) -> Outcome:
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
