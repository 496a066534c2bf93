"""The switch journey over HTTP against the running local stack, as SPEC.md section 1 recommends
it: a store under its ERP is imported with every quantity 0, switched, counted, receives goods,
moves two units to damaged stock, allocates and ships; stock on hand, availability and every
published event are checked at each step (each event against its schema file). Then the pitfall:
a store imported with stock above 0 and switched without a count shows it as available 0 and
uncounted, unless it trusts imported stock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, drain
from tests.e2e.test_shipment_events_e2e import eventually, put

pytestmark = pytest.mark.e2e
STORE = "e2e-journey"


def imported(stack: RunningStack, location: str, items: dict[str, int], **location_fields: Any) -> None:
    if location_fields:
        assert stack.api.call("PUT", f"/locations/{location}", {"type": "store", **location_fields})[0] == 201
    body: dict[str, Any] = {
        "import_id": "initial",
        "kind": "initial",
        "items": [{"product_id": p, "quantity": q} for p, q in items.items()],
    }
    if not location_fields:
        body["location_type"] = "store"
    assert stack.api.call("POST", f"/locations/{location}/stock-imports", body)[0] == 202
    done = f"/locations/{location}/stock-imports/initial"
    eventually(lambda: stack.api.call("GET", done)[1]["status"] == "completed")


def row(stack: RunningStack, location: str, product: str) -> tuple[int, int, int, bool]:
    """(stock on hand, allocated, available, uncounted)."""
    (found,) = stack.api.call("GET", f"/locations/{location}/availability?product_id={product}")[1]["items"]
    return found["stock_on_hand"], found["allocated"], found["available"], found["uncounted"]


class Journey:
    """The store's events, drained step by step, in the order they reach a consumer."""

    def __init__(self, stack: RunningStack, bus_queue: Any) -> None:
        self.stack, self.bus_queue = stack, bus_queue
        self.seen: list[dict[str, Any]] = []

    def expect(self, *detail_types: str) -> list[dict[str, Any]]:
        """Wait for the store's next events, of these types (in any order within the step)."""
        wanted = sorted(detail_types)
        mine: list[dict[str, Any]] = []

        def arrived(events: list[dict[str, Any]]) -> bool:
            mine[:] = [e for e in events if e["detail"].get("location_id") == STORE]
            return len(mine) >= len(wanted)

        drain(self.bus_queue, arrived, seconds=90)
        assert sorted(e["detail-type"] for e in mine) == wanted
        self.seen += mine
        return mine


def test_the_recommended_switch_journey(stack: RunningStack, bus_queue: Any) -> None:
    api, journey = stack.api, Journey(stack, bus_queue)
    imported(stack, STORE, {"P1": 0, "P2": 0})
    (event,) = journey.expect("Stock Imported")
    assert event["detail"]["counts"]["rows"] == 2

    assert api.call("PUT", f"/locations/{STORE}/inventory-master", {"inventory_master": "platform"})[0] == 200
    journey.expect("Inventory Master Switched")
    assert row(stack, STORE, "P1") == (0, 0, 0, False)  # imported as 0: nothing uncounted

    count = {"count_id": "first-count", "reason": "initial", "product_ids": ["P1", "P2"]}
    assert api.call("POST", f"/locations/{STORE}/cycle-counts", count)[0] == 201
    status, done = api.call(
        "POST",
        f"/locations/{STORE}/cycle-counts/first-count/results",
        {"items": [{"product_id": "P1", "counted": 10}, {"product_id": "P2", "counted": 4}]},
    )
    assert status == 200
    assert [(r["product_id"], r["system"], r["variance"]) for r in done["results"]] == [("P1", 0, 10), ("P2", 0, 4)]
    parts = journey.expect("Cycle Count Completed", "Cycle Count Completed")
    assert sorted((p["detail"]["product_id"], p["detail"]["counted"], p["detail"]["stock_on_hand"]) for p in parts) == [
        ("P1", 10, 10),
        ("P2", 4, 4),
    ]
    assert row(stack, STORE, "P1") == (10, 0, 10, False)

    receiving = {
        "transaction_id": "rcv-1",
        "type": "receiving",
        "reference": "PO-1",
        "items": [{"product_id": "P1", "quantity": 5}],
    }
    assert api.call("POST", f"/locations/{STORE}/inventory-transactions", receiving)[0] == 201
    (event,) = journey.expect("Inventory Transaction Completed")
    assert event["detail"]["items"][0]["stock_on_hand"] == 15
    assert row(stack, STORE, "P1") == (15, 0, 15, False)

    damaged = {
        "transaction_id": "adj-1",
        "type": "adjustment",
        "reason": "dropped",
        "items": [{"product_id": "P1", "quantity": 2, "from_stock_location": "main", "to_stock_location": "damaged"}],
    }
    assert api.call("POST", f"/locations/{STORE}/inventory-transactions", damaged)[0] == 201
    (event,) = journey.expect("Inventory Transaction Completed")
    assert event["detail"]["items"][0]["stock_locations"] == {"main": 13, "damaged": 2}
    stock = api.call("GET", f"/locations/{STORE}/stock/P1")[1]
    assert {s["stock_location"]: (s["quantity"], s["salable"]) for s in stock["stock_locations"]} == {
        "main": (13, True),
        "damaged": (2, False),
    }
    assert row(stack, STORE, "P1") == (13, 0, 13, False)

    allocation = {"allocation_id": "ord-1", "order_id": "ord-1", "items": [{"product_id": "P1", "quantity": 3}]}
    assert api.call("POST", f"/locations/{STORE}/allocations", allocation)[0] == 201
    assert row(stack, STORE, "P1") == (13, 3, 10, False)

    put(
        stack,
        {
            "event_id": "ship-1",
            "location_id": STORE,
            "shipment_id": "s-1",
            "logical_timestamp": 1,
            "occurred_at": "2026-11-27T09:00:00Z",
            "items": [{"product_id": "P1", "quantity": 3, "allocation_id": "ord-1"}],
        },
    )
    (event,) = journey.expect("Shipment Applied")
    (product,) = event["detail"]["products"]
    assert (product["stock_on_hand"], product["allocated"], product["available"]) == (10, 0, 10)
    assert row(stack, STORE, "P1") == (10, 0, 10, False)
    print("published, in the order received:", [e["detail-type"] for e in journey.seen])


def test_a_store_switched_without_a_count_holds_imported_stock_back(stack: RunningStack) -> None:
    imported(stack, "e2e-uncounted", {"P1": 6}, name="switched without a count")
    imported(stack, "e2e-trusting", {"P1": 6}, trust_imported_stock=True)
    for location in ("e2e-uncounted", "e2e-trusting"):
        answer = stack.api.call("PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})
        assert answer[0] == 200, answer
    assert row(stack, "e2e-uncounted", "P1") == (6, 0, 0, True)
    assert row(stack, "e2e-trusting", "P1") == (6, 0, 6, False)
    # a count covers it: available from then on
    count = {"count_id": "late-count", "reason": "scheduled", "product_ids": ["P1"]}
    assert stack.api.call("POST", "/locations/e2e-uncounted/cycle-counts", count)[0] == 201
    results = {"items": [{"product_id": "P1", "counted": 5}]}
    assert stack.api.call("POST", "/locations/e2e-uncounted/cycle-counts/late-count/results", results)[0] == 200
    assert row(stack, "e2e-uncounted", "P1") == (5, 0, 5, False)
