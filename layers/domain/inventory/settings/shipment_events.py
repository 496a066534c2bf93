"""The shipment events function's settings."""

from __future__ import annotations

from pydantic import Field

from inventory.settings import TableSettings


class ShipmentEventsSettings(TableSettings):
    fulfillment_dead_letter_queue_url: str = Field(min_length=1)
    fulfillment_max_receives: int = Field(ge=1)  # the fulfilment queue's maxReceiveCount
