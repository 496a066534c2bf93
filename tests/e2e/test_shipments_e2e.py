"""Shipments over the running local stack: an event put on the bus changes stock on hand, and a
poison record lands in the dead-letter queue with its reason while its batch-mates apply."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def put(stack: RunningStack, detail: dict[str, Any], source: str = "fulfilment") -> None:
    entry = {
        "Source": source,
        "DetailType": "Fulfillment Items Shipped",
        "Detail": json.dumps(detail),
        "EventBusName": stack.bus,
    }
    assert stack.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def shipped(event_id: str, product: str, quantity: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "location_id": "e2e-ships",
        "shipment_id": f"shipment-{event_id}",
        "logical_timestamp": 5,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": product, "quantity": quantity}],
    }


def soh(stack: RunningStack, product: str) -> int:
    return int(stack.api.call("GET", f"/locations/e2e-ships/stock/{product}")[1]["stock_on_hand"])


def eventually(check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def test_an_event_on_the_bus_moves_stock_and_a_poison_record_is_dead_lettered(stack: RunningStack) -> None:
    body = {
        "import_id": "load",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "x", "quantity": 9}],
    }
    assert stack.api.call("POST", "/locations/e2e-ships/stock-imports", body)[0] == 202
    eventually(lambda: stack.api.call("GET", "/locations/e2e-ships/stock-imports/load")[1]["status"] == "completed")

    put(stack, shipped("ok-1", "x", 2))
    put(stack, shipped("poison-1", "x", -4))
    put(stack, shipped("ok-2", "x", 1))
    put(stack, shipped("own-1", "x", 5), source="inventory-master")  # this service's own: ignored

    eventually(lambda: soh(stack, "x") == 6)
    sqs = stack.client("sqs")
    dead_letters = stack.queue_url("ShipmentDeadLetterQueue")
    received: list[dict[str, Any]] = []
    eventually(
        lambda: (
            received.extend(sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=1).get("Messages", []))
            or received
        )
    )
    reason = json.loads(received[0]["Body"])
    assert json.loads(reason["body"])["detail"]["event_id"] == "poison-1"
    assert reason["reason"]["details"][0]["field"] == "detail.items[0].quantity"
    time.sleep(2)
    assert soh(stack, "x") == 6
