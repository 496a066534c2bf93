"""Allocation events from the bus (SPEC.md section 5): units promised to an order at a location,
and their release. They come on the fulfilment queue with the shipment events
(`inventory.messages.shipment_events` parses the queue's messages)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from inventory.messages import DetailType
from inventory.messages.bus import BusEvent, Inbound
from inventory.types import (
    MAX_ALLOCATION_ITEMS,
    ClientId,
    EachProductOnce,
    ExternalId,
    LocationId,
    PositiveQuantity,
    ProductId,
)


class AllocationItemIn(Inbound):
    product_id: ProductId
    quantity: PositiveQuantity


class AllocationCreatedDetail(Inbound):
    """Units promised to an order, each product once: opened whole, or refused with an `Allocation
    Refused` event when more is asked than is available."""

    event_id: ExternalId
    location_id: LocationId
    allocation_id: ClientId
    order_id: ExternalId
    items: Annotated[list[AllocationItemIn], Field(min_length=1, max_length=MAX_ALLOCATION_ITEMS), EachProductOnce]


class AllocationReleasedDetail(Inbound):
    """Frees what the allocation still holds; a release that comes before its creation is remembered.
    Its order and items, when given, are checked, not used."""

    event_id: ExternalId
    location_id: LocationId
    allocation_id: ClientId
    order_id: ExternalId | None = None
    items: Annotated[list[AllocationItemIn], Field(min_length=1, max_length=MAX_ALLOCATION_ITEMS)] | None = None


class AllocationCreated(BusEvent):
    detail_type: Literal[DetailType.ALLOCATION_CREATED] = Field(alias="detail-type")
    detail: AllocationCreatedDetail


class AllocationReleased(BusEvent):
    detail_type: Literal[DetailType.ALLOCATION_RELEASED] = Field(alias="detail-type")
    detail: AllocationReleasedDetail
