"""What every event in from the bus shares: the envelope EventBridge delivers through a queue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Inbound(BaseModel):
    # Producers may add fields over time; what this service needs is checked strictly.
    model_config = ConfigDict(extra="ignore", frozen=True)


class BusEvent(Inbound):
    source: str  # any but this service's own
