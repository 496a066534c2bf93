"""Publishes outbox events to the service's EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.errors import TemporarilyUnavailable
from inventory.messages import SOURCE
from inventory.models import OutboxEvent
from inventory.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

MAX_ENTRIES = 10  # PutEvents accepts at most 10 entries
MAX_REQUEST_BYTES = 256 * 1024  # and at most 256 KB in one request


def entry_size(entry: dict[str, Any]) -> int:
    """The size EventBridge charges an entry (its documented calculation)."""
    size = 14  # the Time field
    for field in ("Source", "DetailType", "Detail"):
        size += len(entry[field].encode())
    return size + sum(len(resource.encode()) for resource in entry.get("Resources", []))


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None) -> None:
        self._bus = bus_name
        self._client = client

    @property
    def client(self) -> EventBridgeClient:
        if self._client is None:
            config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=5)
            self._client = boto3.client("events", config=config)
        return self._client

    def _entry(self, event: OutboxEvent) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps({"event_id": event.event_id, **event.detail}, separators=(",", ":")),
            "EventBusName": self._bus,
            "Time": event.occurred_at,
        }

    def _batches(self, events: Sequence[OutboxEvent]) -> Iterator[list[tuple[OutboxEvent, dict[str, Any]]]]:
        batch: list[tuple[OutboxEvent, dict[str, Any]]] = []
        size = 0
        for event in events:
            entry = self._entry(event)
            entry_bytes = entry_size(entry)
            if batch and (len(batch) == MAX_ENTRIES or size + entry_bytes > MAX_REQUEST_BYTES):
                yield batch
                batch, size = [], 0
            batch.append((event, entry))
            size += entry_bytes
        if batch:
            yield batch

    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        accepted: list[str] = []
        for batch in self._batches(events):
            try:
                response = self.client.put_events(Entries=[entry for _, entry in batch])  # type: ignore[misc]
            except (ClientError, BotoCoreError) as error:
                raise TemporarilyUnavailable(f"EventBridge refused the batch ({type(error).__name__})") from error
            for (event, _), result in zip(batch, response.get("Entries", []), strict=False):
                if result.get("EventId"):
                    accepted.append(event.event_id)
                else:
                    logger.warning(
                        "event not accepted by the bus",
                        extra={"event_id": event.event_id, "error_code": result.get("ErrorCode")},
                    )
        return accepted
