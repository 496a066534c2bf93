"""Publishes outbox events to the service's EventBridge bus.

Events go out in as few `PutEvents` calls as the bus allows (10 entries, 256 KB a call). An event
larger than the bus takes goes out in parts (`OutboxEvent.part`), which share out the list its
model names (`Splittable.split_on`). A call the bus refuses (throttled, an outage, a request it
finds invalid) fails its own events only: they are not accepted, so they stay in the outbox for the
next round, and the other calls go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.messages import SOURCE
from inventory.models import OutboxEvent
from inventory.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

MAX_ENTRIES = 10  # PutEvents accepts at most 10 entries
MAX_REQUEST_BYTES = 256 * 1024  # and at most 256 KB in one request
# An entry also fits the bus's 256 KB, but what a target receives is the entry in EventBridge's
# envelope (about 200 bytes more), and an SQS queue subscribed with the default 256 KB limit would
# refuse a full one: entries, and so the parts of a split event, stay 8 KB below the limit.
MAX_ENTRY_BYTES = MAX_REQUEST_BYTES - 8 * 1024


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def entry_size(entry: dict[str, Any]) -> int:
    """The size EventBridge charges an entry (its documented calculation)."""
    size = 14  # the Time field
    for field in ("Source", "DetailType", "Detail"):
        size += len(entry[field].encode())
    return size + sum(len(resource.encode()) for resource in entry.get("Resources", []))


def split_field(detail_type: str) -> str | None:
    """The list that parts of an event of `detail_type` share out; None when it has no parts."""
    # Imported here, for the rare event too large for the bus: the models cost the relay's cold
    # start about 50 ms, and it never needs them otherwise.
    from inventory.messages.published import PUBLISHED, Splittable

    model = {str(t): m for t, m in PUBLISHED.items()}.get(detail_type)
    return model.split_on if model is not None and issubclass(model, Splittable) else None


@dataclass(frozen=True)
class _Entry:
    event_id: str  # of the outbox event
    entry_id: str  # of the event this entry publishes: the outbox event's, or its part's
    entry: dict[str, Any]


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
            "Detail": _json({"event_id": event.event_id, **event.detail}),
            "EventBusName": self._bus,
            "Time": event.occurred_at,
        }

    def parts(self, event: OutboxEvent) -> list[OutboxEvent] | None:
        """`event` alone when the bus takes it whole; else its parts, each as large as fits, in
        order; None when it cannot be split to fit (no list to share out, or one element too large)."""
        if entry_size(self._entry(event)) <= MAX_ENTRY_BYTES:
            return [event]
        field = split_field(event.detail_type)
        elements = event.detail.get(field) if field is not None else None
        if field is None or not isinstance(elements, list) or not elements:
            return None
        # Room for the elements: what a part holds besides them, with part numbers as wide as any.
        most = len(elements)
        room = MAX_ENTRY_BYTES - entry_size(self._entry(event.part(most, most, {**event.detail, field: []})))
        shares: list[list[Any]] = [[]]
        used = 0  # by the elements of the last share, with the commas between them
        for element in elements:
            size = len(_json(element).encode())
            if size > room:
                return None
            if shares[-1] and used + 1 + size > room:
                shares.append([])
                used = 0
            used += size + (1 if shares[-1] else 0)
            shares[-1].append(element)
        parts = [event.part(n, len(shares), {**event.detail, field: share}) for n, share in enumerate(shares, 1)]
        return parts if all(entry_size(self._entry(p)) <= MAX_ENTRY_BYTES for p in parts) else None

    def _batches(self, entries: Sequence[_Entry]) -> Iterator[list[_Entry]]:
        batch: list[_Entry] = []
        size = 0
        for entry in entries:
            entry_bytes = entry_size(entry.entry)
            if batch and (len(batch) == MAX_ENTRIES or size + entry_bytes > MAX_REQUEST_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(entry)
            size += entry_bytes
        if batch:
            yield batch

    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        """Publish; returns the ids of the events that the bus accepted whole (every part of theirs).
        What a refused call held, or an entry the bus did not accept, is not in the answer."""
        waiting: dict[str, int] = {}  # by event id: its entries the bus has not accepted yet
        entries: list[_Entry] = []
        for event in events:
            parts = self.parts(event)
            if parts is None:
                logger.error(
                    "event too large for the bus, and it cannot be split to fit: it stays in the outbox",
                    extra={"event_id": event.event_id, "detail_type": event.detail_type},
                )
                continue
            waiting[event.event_id] = len(parts)
            entries += [_Entry(event.event_id, part.event_id, self._entry(part)) for part in parts]
        for batch in self._batches(entries):
            try:
                response = self.client.put_events(Entries=[e.entry for e in batch])  # type: ignore[misc]
            except (ClientError, BotoCoreError) as error:
                code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
                logger.warning(
                    "the bus refused a request: its events wait in the outbox for the next round",
                    extra={"error": type(error).__name__, "error_code": code, "entries": len(batch)},
                )
                continue
            for sent, result in zip(batch, response.get("Entries", []), strict=False):
                if result.get("EventId"):
                    waiting[sent.event_id] -= 1
                else:
                    logger.warning(
                        "event not accepted by the bus",
                        extra={"event_id": sent.entry_id, "error_code": result.get("ErrorCode")},
                    )
        return [event_id for event_id, left in waiting.items() if left == 0]
