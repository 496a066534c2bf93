"""The outbox relay's settings."""

from __future__ import annotations

from pydantic import Field

from inventory.settings import TableSettings


class OutboxRelaySettings(TableSettings):
    event_bus_name: str = Field(min_length=1)
    relay_poll_interval_ms: int = Field(ge=10, le=60_000)
