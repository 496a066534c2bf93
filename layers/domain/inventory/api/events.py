"""Inbound events (SPEC.md section 5): parsed and validated before they reach a service."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from inventory.api.http import field_path
from inventory.api.schemas import ClientId, ProductId
from inventory.errors import InvalidInput
from inventory.models import LOCATION_ID_PATTERN
from inventory.services.shipments import KIND_OF, Shipment, ShipmentLine

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
    logical_timestamp: Annotated[StrictInt, Field(ge=0)]
    occurred_at: datetime
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


def parse_shipment(body: str) -> Shipment:
    """An SQS message body holding a `Fulfillment Items Shipped` or `... Handed Over` bus event."""
    try:
        event = BusEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as error:
        if isinstance(error, ValidationError):
            raise _invalid(error, "event") from error
        raise InvalidInput("the message is not JSON") from error
    if event.detail_type not in KIND_OF or event.source == SOURCE:
        raise InvalidInput(f"{event.detail_type!r} from {event.source!r} is not a shipment or handover")
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
