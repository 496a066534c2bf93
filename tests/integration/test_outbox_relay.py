"""The switch's event goes from the location's outbox to the bus, through the relay handler."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from inventory.adapters.dynamodb.keys import counters_key, location_key
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.models import ImportKind, ImportStatus, OutboxEvent
from inventory.models.counters import LedgerEntry
from inventory.models.imports import ImportCounts, ImportRecord
from tests.conftest import FakeContext, http_event, load_handler, shipment_entry

pytestmark = pytest.mark.integration


def received(bus_queue: Any, wanted: int, seconds: float = 10) -> list[dict[str, Any]]:
    sqs, url = bus_queue
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while len(messages) < wanted and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def drained(bus_queue: Any) -> list[dict[str, Any]]:
    """Every message the queue holds now (until a receive comes back empty)."""
    sqs, url = bus_queue
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def test_a_switch_is_published_once_and_leaves_the_outbox(own_table: DynamoDbRepository, bus_queue: Any) -> None:
    """Given a ready store, when it switches and the relay runs twice,
    then the bus carries one Inventory Master Switched event and the outbox is empty."""
    repo = own_table
    locations, switch, relay = load_handler("locations"), load_handler("master_switch"), load_handler("outbox_relay")
    assert locations.lambda_handler(http_event("PUT", "/locations/relay-store", {"type": "store"}), FakeContext())[
        "statusCode"
    ] in (200, 201)
    record = ImportRecord(
        location_id="relay-store",
        import_id="i1",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=datetime.now(UTC),
    )
    repo.begin_import(record)
    repo.complete_import("relay-store", "i1", completed_at=record.accepted_at, counts=ImportCounts())
    answer = switch.lambda_handler(
        http_event("PUT", "/locations/relay-store/inventory-master", {"inventory_master": "platform"}), FakeContext()
    )
    assert answer["statusCode"] == 200, answer["body"]

    # On a table of its own, the relay has this event only: it runs until it is out (and once more),
    # as the schedule would run it.
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not events and time.monotonic() < deadline:
        relay.lambda_handler({}, FakeContext(remaining_ms=5_300))
        events += [e for e in drained(bus_queue) if e["detail"]["location_id"] == "relay-store"]
    relay.lambda_handler({}, FakeContext(remaining_ms=5_300))
    events += [e for e in drained(bus_queue) if e["detail"]["location_id"] == "relay-store"]

    assert len(events) == 1
    assert events[0]["detail-type"] == "Inventory Master Switched"
    assert events[0]["source"] == "inventory-master"
    assert events[0]["detail"]["switched_by"] == "arn:aws:iam::123456789012:user/tester"
    assert events[0]["detail"]["event_id"]
    key = location_key("relay-store")
    item = (key["pk"], key["sk"])
    assert repo.read_pending([item])[item][0] == []
    assert item not in {key for shard in range(repo.shards) for key in repo.pending_keys(shard, 1000)[0]}


def test_an_event_recorded_after_the_relay_read_keeps_the_item_in_the_outbox(repo: DynamoDbRepository) -> None:
    """The relay takes an item out of the outbox index only if no event was recorded since it read."""

    def line(n: int) -> tuple[LedgerEntry, OutboxEvent]:
        now = datetime.now(UTC)
        return shipment_entry(f"seq-{n}:0", n, now), OutboxEvent.of(
            "Shipment Applied", "seq-store", now, {"n": n}, key=f"seq-{n}"
        )

    key = tuple(counters_key("seq-store", "p").values())

    def indexed() -> bool:
        return key in {k for shard in range(repo.shards) for k in repo.pending_keys(shard, 1000)[0]}

    assert repo.append_entry("seq-store", "p", *line(1))
    (first,), version = repo.read_pending([key])[key]
    assert repo.append_entry("seq-store", "p", *line(2))  # while the relay publishes the first

    repo.mark_published(key, [first.event_id], version)

    (second,), later = repo.read_pending([key])[key]
    assert (second.detail["n"], later, indexed()) == (2, version + 1, True)
    repo.mark_published(key, [second.event_id], later)
    assert (repo.read_pending([key])[key][0], indexed()) == ([], False)
    assert [e.entry_id for e in repo.counters_of("seq-store", "p").ledger] == ["seq-1:0", "seq-2:0"]
