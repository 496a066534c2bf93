"""Shipment and allocation events over the running local stack: events put on the bus change stock
on hand and availability, allocations made over HTTP are closed by the shipments that name them, and
a poison record lands in the dead-letter queue with its reason while its batch-mates apply. Every event put
on the bus and every event the service publishes fits its schema file (schemas/events)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, drain, schema_errors

pytestmark = pytest.mark.e2e


def put(
    stack: RunningStack,
    detail: dict[str, Any],
    source: str = "fulfilment",
    detail_type: str = "Fulfillment Items Shipped",
    fits: bool = True,
) -> None:
    """Put fulfilment's event on the bus: one that fits its schema, unless told otherwise."""
    assert bool(schema_errors(detail_type, detail)) is not fits
    entry = {
        "Source": source,
        "DetailType": detail_type,
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


def eventually(check: Any, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def load(stack: RunningStack, location: str, product: str, quantity: int) -> None:
    """A new store whose initial import gave `product` `quantity` units."""
    body = {
        "import_id": "load",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": product, "quantity": quantity}],
    }
    assert stack.api.call("POST", f"/locations/{location}/stock-imports", body)[0] == 202
    done = f"/locations/{location}/stock-imports/load"
    seen: list[Any] = []
    try:
        eventually(lambda: seen.append(stack.api.call("GET", done)[1]) or seen[-1]["status"] == "completed")
    except AssertionError as late:
        raise AssertionError(f"the import is still {seen[-1]}") from late


def applied_parts(events: list[dict[str, Any]], *source_event_ids: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["detail-type"] == "Shipment Applied" and e["detail"]["source_event_id"] in source_event_ids
    ]


def test_an_event_on_the_bus_moves_stock_and_a_poison_record_is_dead_lettered(
    stack: RunningStack, bus_queue: Any
) -> None:
    load(stack, "e2e-ships", "x", 9)

    put(stack, shipped("ok-1", "x", 2))
    put(stack, shipped("poison-1", "x", -4), fits=False)
    put(stack, shipped("ok-2", "x", 1))
    put(stack, shipped("own-1", "x", 5), source="inventory-master")  # this service's own: ignored

    eventually(lambda: soh(stack, "x") == 6)
    sqs = stack.client("sqs")
    dead_letters = stack.queue_url("FulfillmentDeadLetterQueue")
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
    # what the service published of it, each event checked against its schema file as it arrives
    published = drain(bus_queue, lambda seen: len(applied_parts(seen, "ok-1", "ok-2")) == 2, seconds=60)
    parts = sorted(applied_parts(published, "ok-1", "ok-2"), key=lambda e: e["detail"]["source_event_id"])
    assert [(p["detail"]["source_event_id"], p["detail"]["products"][0]["quantity"]) for p in parts] == [
        ("ok-1", -2),
        ("ok-2", -1),
    ]


def available(stack: RunningStack, product: str) -> tuple[int, int, int]:
    status, page = stack.api.call("GET", f"/locations/e2e-alloc/availability?product_id={product}")
    assert status == 200, page
    row = page["items"][0]
    return row["stock_on_hand"], row["allocated"], row["available"]


def test_allocations_over_http_and_from_the_bus_are_closed_by_the_shipments_that_name_them(
    stack: RunningStack,
) -> None:
    load(stack, "e2e-alloc", "y", 8)

    order = {"allocation_id": "web-1", "order_id": "o-1", "items": [{"product_id": "y", "quantity": 3}]}
    assert stack.api.call("POST", "/locations/e2e-alloc/allocations", order)[0] == 201
    too_much = {"allocation_id": "web-2", "order_id": "o-2", "items": [{"product_id": "y", "quantity": 6}]}
    status, refused = stack.api.call("POST", "/locations/e2e-alloc/allocations", too_much)
    assert (status, refused["error"]["code"]) == (409, "insufficient_stock")
    assert available(stack, "y") == (8, 3, 5)

    created = {
        "event_id": "c-1",
        "location_id": "e2e-alloc",
        "allocation_id": "bus-1",
        "order_id": "o-3",
        "items": [{"product_id": "y", "quantity": 2}],
    }
    put(stack, created, detail_type="Allocation Created")
    eventually(lambda: available(stack, "y") == (8, 5, 3))

    shipment = {**shipped("s-1", "y", 3), "location_id": "e2e-alloc"}
    shipment["items"][0]["allocation_id"] = "web-1"
    put(stack, shipment)
    eventually(lambda: available(stack, "y") == (5, 2, 3))
    status, allocation = stack.api.call("GET", "/locations/e2e-alloc/allocations/web-1")
    assert (status, allocation["items"][0]["open"]) == (200, 0)

    put(
        stack,
        {"event_id": "r-1", "location_id": "e2e-alloc", "allocation_id": "bus-1"},
        detail_type="Allocation Released",
    )
    eventually(lambda: available(stack, "y") == (5, 0, 5))
    assert stack.api.call("GET", "/locations/e2e-alloc/stock/y")[1]["stock_on_hand"] == 5
