"""Inbound events (SPEC.md section 5): parsed and validated before they reach a service."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from inventory.api.http import field_path
from inventory.api.schemas import ClientId, LogicalTimestamp, ProductId
from inventory.errors import InvalidInput
from inventory.models import LOCATION_ID_PATTERN, AllocationLine
from inventory.services.allocations import AllocationRequest
from inventory.services.shipments import KIND_OF, Shipment, ShipmentLine

EVENT_ALLOCATION_CREATED = "Allocation Created"
EVENT_ALLOCATION_RELEASED = "Allocation Released"

SOURCE = "inventory-master"  # our own events never come back in


class Inbound(BaseModel):
    # Producers may add fields over time; what this service needs is checked strictly.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ShipmentLineIn(Inbound):
    product_id: ProductId
    quantity: Annotated[StrictInt, Field(gt=0, le=1_000_000_000)]
    allocation_id: ClientId | None = None


class ShipmentDetail(Inbound):
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    location_id: Annotated[StrictStr, Field(pattern=LOCATION_ID_PATTERN)]
    shipment_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    logical_timestamp: LogicalTimestamp
    occurred_at: AwareDatetime  # with its time zone: compared with the service's clock
    items: Annotated[list[ShipmentLineIn], Field(min_length=1, max_length=1000)]


class BusEvent(Inbound):
    detail_type: str = Field(alias="detail-type")
    source: str
    detail: dict[str, Any]


def _invalid(error: ValidationError, prefix: str) -> InvalidInput:
    details = [
        {"field": field_path((prefix, *problem["loc"])), "code": problem["type"], "message": problem["msg"]}
        for problem in error.errors()
    ]
    return InvalidInput("the event is not valid", details=details)


class AllocationItemIn(Inbound):
    product_id: ProductId
    quantity: Annotated[StrictInt, Field(gt=0, le=1_000_000_000)]


class AllocationDetail(Inbound):
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    location_id: Annotated[StrictStr, Field(pattern=LOCATION_ID_PATTERN)]
    allocation_id: ClientId
    order_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    items: Annotated[list[AllocationItemIn], Field(min_length=1, max_length=100)] | None = None


@dataclass(frozen=True)
class AllocationCreated:
    event_id: str
    location_id: str
    request: AllocationRequest


@dataclass(frozen=True)
class AllocationReleased:
    event_id: str
    location_id: str
    allocation_id: str


FulfillmentEvent = Shipment | AllocationCreated | AllocationReleased


def parse_fulfillment_event(body: str) -> FulfillmentEvent:
    """An SQS message body holding one of fulfilment's bus events (SPEC.md section 5)."""
    try:
        event = BusEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as error:
        if isinstance(error, ValidationError):
            raise _invalid(error, "event") from error
        raise InvalidInput("the message is not JSON") from error
    if event.source == SOURCE:
        raise InvalidInput(f"{event.detail_type!r} is this service's own event")
    if event.detail_type in KIND_OF:
        return _shipment(event)
    if event.detail_type in (EVENT_ALLOCATION_CREATED, EVENT_ALLOCATION_RELEASED):
        return _allocation(event)
    raise InvalidInput(f"{event.detail_type!r} from {event.source!r} is not an event this service applies")


def _allocation(event: BusEvent) -> AllocationCreated | AllocationReleased:
    try:
        detail = AllocationDetail.model_validate(event.detail)
    except ValidationError as error:
        raise _invalid(error, "detail") from error
    if event.detail_type == EVENT_ALLOCATION_RELEASED:
        return AllocationReleased(detail.event_id, detail.location_id, detail.allocation_id)
    missing = [name for name in ("order_id", "items") if getattr(detail, name) is None]
    if missing:
        raise InvalidInput(
            "an allocation's creation names its order and items",
            details=[{"field": f"detail.{name}", "code": "missing", "message": "Field required"} for name in missing],
        )
    products = [item.product_id for item in detail.items or ()]
    if len(set(products)) != len(products):
        raise InvalidInput(
            "each product may appear once in an allocation",
            details=[{"field": "detail.items", "code": "duplicate_product", "message": "a product is listed twice"}],
        )
    request = AllocationRequest(
        allocation_id=detail.allocation_id,
        order_id=detail.order_id or "",
        items=tuple(AllocationLine(product_id=i.product_id, quantity=i.quantity) for i in detail.items or ()),
    )
    return AllocationCreated(detail.event_id, detail.location_id, request)


def _shipment(event: BusEvent) -> Shipment:
    try:
        detail = ShipmentDetail.model_validate(event.detail)
    except ValidationError as error:
        raise _invalid(error, "detail") from error
    return Shipment(
        event_id=detail.event_id,
        kind=KIND_OF[event.detail_type],
        location_id=detail.location_id,
        shipment_id=detail.shipment_id,
        logical_timestamp=detail.logical_timestamp,
        occurred_at=detail.occurred_at,
        lines=tuple(ShipmentLine(i.product_id, i.quantity, i.allocation_id) for i in detail.items),
        body_hash=Shipment.hash_of(event.detail_type, event.detail),
    )
