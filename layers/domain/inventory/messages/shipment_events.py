"""Shipment events from the bus (SPEC.md section 5), as EventBridge delivers them through the
fulfilment queue, and the queue's messages: the shipment events and the allocation events that share
the queue (`inventory.messages.allocation_events`), one model per `detail-type`, told apart by it."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, PrivateAttr, TypeAdapter, ValidationError, model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from inventory.errors import InvalidInput
from inventory.messages import SOURCE, DetailType
from inventory.messages.allocation_events import (
    AllocationCreated,
    AllocationCreatedDetail,
    AllocationReleased,
    AllocationReleasedDetail,
)
from inventory.messages.bus import BusEvent, Inbound
from inventory.messages.parsing import field_path
from inventory.types import (
    MAX_SHIPMENT_LINES,
    ClientId,
    ExternalId,
    LocationId,
    LogicalTimestamp,
    PositiveQuantity,
    ProductId,
)


# ---------------------------------------------------------------- details
class ShipmentLineIn(Inbound):
    product_id: ProductId
    quantity: PositiveQuantity
    allocation_id: ClientId | None = None


class ShipmentDetail(Inbound):
    """Units that left the location, shipped or handed over in store: each line leaves main stock once
    and closes the allocation it names, or else the product's oldest open allocations."""

    event_id: ExternalId
    location_id: LocationId
    shipment_id: ExternalId
    logical_timestamp: LogicalTimestamp
    occurred_at: AwareDatetime  # with its time zone: compared with the service's clock
    items: Annotated[list[ShipmentLineIn], Field(min_length=1, max_length=MAX_SHIPMENT_LINES)]


# ---------------------------------------------------------------- the events, as the queue holds them
def body_hash(detail_type: str, detail: Any) -> str:
    """What an event id is held to: its detail as it came (fields this service ignores included)."""
    canonical = json.dumps([detail_type, detail], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ShipmentEvent(BusEvent):
    detail_type: str = Field(alias="detail-type")  # narrowed to one value by each kind
    detail: ShipmentDetail
    _body_hash: str = PrivateAttr(default="")

    @property
    def body_hash(self) -> str:
        return self._body_hash

    @model_validator(mode="wrap")
    @classmethod
    def _hash_body(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        event = handler(data)
        if isinstance(event, ShipmentEvent) and isinstance(data, dict):
            event._body_hash = body_hash(event.detail_type, data.get("detail"))
        return event


class ItemsShipped(ShipmentEvent):
    detail_type: Literal[DetailType.ITEMS_SHIPPED] = Field(alias="detail-type")


class ItemsHandedOver(ShipmentEvent):
    detail_type: Literal[DetailType.ITEMS_HANDED_OVER] = Field(alias="detail-type")


# Every event the fulfilment queue carries to the shipment events function.
QueuedEvent = ItemsShipped | ItemsHandedOver | AllocationCreated | AllocationReleased
_MESSAGE: TypeAdapter[QueuedEvent] = TypeAdapter(Annotated[QueuedEvent, Field(discriminator="detail_type")])
DETAILS: dict[DetailType, type[Inbound]] = {  # each detail type's `detail`, for its JSON Schema
    DetailType.ITEMS_SHIPPED: ShipmentDetail,
    DetailType.ITEMS_HANDED_OVER: ShipmentDetail,
    DetailType.ALLOCATION_CREATED: AllocationCreatedDetail,
    DetailType.ALLOCATION_RELEASED: AllocationReleasedDetail,
}


def parse_queued_event(body: str) -> QueuedEvent:
    """An SQS message body of the fulfilment queue, holding one of the bus events it carries, or
    InvalidInput naming each field that is wrong (`event.<field>` for the envelope, `detail.<field>`
    for the detail)."""
    try:
        raw: Any = json.loads(body)
    except ValueError as error:
        raise InvalidInput("the message is not JSON") from error
    if isinstance(raw, dict) and raw.get("source") == SOURCE:
        raise InvalidInput(f"{raw.get('detail-type')!r} is this service's own event")
    try:
        return _MESSAGE.validate_python(raw)
    except ValidationError as error:
        raise _invalid(error, raw) from error


def _invalid(error: ValidationError, raw: Any) -> InvalidInput:
    details = []
    for problem in error.errors():
        if problem["type"] == "union_tag_invalid":
            return InvalidInput(
                f"{raw.get('detail-type')!r} from {raw.get('source')!r} is not an event this service applies"
            )
        if problem["type"] == "union_tag_not_found":
            details.append({"field": "event.detail-type", "code": "missing", "message": "Field required"})
            continue
        location = problem["loc"][1:]  # after the detail type that chose the model
        if location[:1] == ("detail",) and len(location) > 1:
            field = field_path("detail", location[1:])
        else:
            field = field_path("event", location)
        details.append({"field": field, "code": problem["type"], "message": problem["msg"]})
    return InvalidInput("the event is not valid", details=details)
