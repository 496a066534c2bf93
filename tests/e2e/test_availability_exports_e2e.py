"""Availability exports over HTTP against the running local stack: a day at three stores (one under
its ERP, one switched with uncounted stock, one switched and counted that receives and moves
stock), a full export of them whose files hold what SPEC.md section 3 gives, a delta right after
(empty), a delta after one shipment (that product alone), `Availability Exported` on the bus (held
to its schema file), and an export of 50 locations fanned out one unit per location."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, drain
from tests.e2e.test_shipment_events_e2e import eventually, put
from tests.e2e.test_switch_journey_e2e import imported

pytestmark = pytest.mark.e2e
ERP, UNCOUNTED, COUNTED = "e2e-exp-erp", "e2e-exp-uncounted", "e2e-exp-counted"


def exported(stack: RunningStack, mode: str, *locations: str) -> dict[str, Any]:
    status, answer = stack.api.call("POST", "/availability-exports", {"mode": mode, "location_ids": list(locations)})
    assert status == 202, answer
    path = f"/availability-exports/{answer['export_id']}"
    eventually(lambda: stack.api.call("GET", path)[1]["status"] in ("completed", "failed"), seconds=120)
    done = stack.api.call("GET", path)[1]
    assert done["status"] == "completed", done
    return dict(done)


def rows_of(stack: RunningStack, done: dict[str, Any], location: str) -> dict[str, tuple[int, int, int, int, bool]]:
    """A location's file of the export, read from the export bucket: (stock on hand, allocated,
    safety stock, available, uncounted) per product, after checking its checksum and row count."""
    (entry,) = [e for e in done["locations"] if e["location_id"] == location]
    bucket, _, key = entry["uri"].removeprefix("s3://").partition("/")
    data = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    rows = [json.loads(line) for line in gzip.decompress(data).splitlines()]
    assert len(rows) == entry["rows"]
    assert {r["location_id"] for r in rows} <= {location}
    return {
        r["product_id"]: (r["stock_on_hand"], r["allocated"], r["safety_stock"], r["available"], r["uncounted"])
        for r in rows
    }


def ship(stack: RunningStack, location: str, event_id: str, timestamp: int, **lines: int) -> None:
    put(
        stack,
        {
            "event_id": event_id,
            "location_id": location,
            "shipment_id": event_id,
            "logical_timestamp": timestamp,
            "occurred_at": "2026-12-02T09:00:00Z",
            "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
        },
    )


def soh(stack: RunningStack, location: str, product: str) -> int:
    (row,) = stack.api.call("GET", f"/locations/{location}/availability?product_id={product}")[1]["items"]
    return int(row["stock_on_hand"])


def test_a_day_at_three_stores_exported_in_full_then_in_deltas(stack: RunningStack, bus_queue: Any) -> None:
    api = stack.api
    # Under its ERP: imported, one shipment, one allocation, a safety stock of its own.
    imported(stack, ERP, {"P1": 10, "P2": 5, "P3": 0}, default_safety_stock=1)
    ship(stack, ERP, "exp-ship-1", 1, P1=2)
    eventually(lambda: soh(stack, ERP, "P1") == 8)
    allocation = {"allocation_id": "o-1", "order_id": "o-1", "items": [{"product_id": "P2", "quantity": 1}]}
    assert api.call("POST", f"/locations/{ERP}/allocations", allocation)[0] == 201
    assert (
        api.call("PUT", f"/locations/{ERP}/safety-stock", {"items": [{"product_id": "P3", "safety_stock": 0}]})[0]
        == 200
    )
    # Switched with stock above 0 and no count: uncounted.
    imported(stack, UNCOUNTED, {"Q1": 6})
    assert api.call("PUT", f"/locations/{UNCOUNTED}/inventory-master", {"inventory_master": "platform"})[0] == 200
    # Switched at 0, counted, received, moved to damaged.
    imported(stack, COUNTED, {"R1": 0})
    assert api.call("PUT", f"/locations/{COUNTED}/inventory-master", {"inventory_master": "platform"})[0] == 200
    count = {"count_id": "c-1", "reason": "initial", "product_ids": ["R1"]}
    assert api.call("POST", f"/locations/{COUNTED}/cycle-counts", count)[0] == 201
    results = {"items": [{"product_id": "R1", "counted": 10}]}
    assert api.call("POST", f"/locations/{COUNTED}/cycle-counts/c-1/results", results)[0] == 200
    receiving = {"transaction_id": "rcv-1", "type": "receiving", "items": [{"product_id": "R1", "quantity": 5}]}
    assert api.call("POST", f"/locations/{COUNTED}/inventory-transactions", receiving)[0] == 201
    move = {
        "transaction_id": "adj-1",
        "type": "adjustment",
        "reason": "dropped",
        "items": [{"product_id": "R1", "quantity": 2, "from_stock_location": "main", "to_stock_location": "damaged"}],
    }
    assert api.call("POST", f"/locations/{COUNTED}/inventory-transactions", move)[0] == 201

    full = exported(stack, "full", ERP, UNCOUNTED, COUNTED)

    # SPEC.md section 3: available = max(0, SOH - safety stock - allocated), 0 while uncounted.
    assert rows_of(stack, full, ERP) == {
        "P1": (8, 0, 1, 7, False),
        "P2": (5, 1, 1, 3, False),
        "P3": (0, 0, 0, 0, False),
    }
    assert rows_of(stack, full, UNCOUNTED) == {"Q1": (6, 0, 0, 0, True)}
    assert rows_of(stack, full, COUNTED) == {"R1": (13, 0, 0, 13, False)}
    assert all(e["since_export_id"] is None for e in full["locations"])

    right_after = exported(stack, "delta", ERP, UNCOUNTED, COUNTED)
    assert [(e["rows"], e["since_export_id"]) for e in right_after["locations"]] == [(0, full["export_id"])] * 3

    ship(stack, ERP, "exp-ship-2", 2, P2=1)
    eventually(lambda: soh(stack, ERP, "P2") == 4)
    after_one = exported(stack, "delta", ERP, UNCOUNTED, COUNTED)
    assert rows_of(stack, after_one, ERP) == {"P2": (4, 0, 1, 3, False)}  # it closed the oldest allocation
    assert [rows_of(stack, after_one, other) for other in (UNCOUNTED, COUNTED)] == [{}, {}]

    mine = {full["export_id"], right_after["export_id"], after_one["export_id"]}

    def all_three(events: list[dict[str, Any]]) -> bool:
        return {e["detail"].get("export_id") for e in events if e["detail-type"] == "Availability Exported"} >= mine

    events = drain(bus_queue, all_three, seconds=90)  # each checked against its schema file
    published = [e["detail"] for e in events if e["detail-type"] == "Availability Exported"]
    by_export = {d["export_id"]: d for d in published if d["export_id"] in mine}
    assert len([d for d in published if d["export_id"] in mine]) == 3  # once per export
    assert sorted(f["location_id"] for f in by_export[after_one["export_id"]]["locations"]) == sorted(
        [ERP, UNCOUNTED, COUNTED]
    )
    assert by_export[full["export_id"]]["manifest_uri"] == full["manifest_uri"]


def test_an_export_of_50_locations_fans_out_one_unit_per_location(stack: RunningStack) -> None:
    locations = [f"e2e-exp-fan-{n:02d}" for n in range(50)]
    for location in locations:
        assert stack.api.call("PUT", f"/locations/{location}", {"type": "store"})[0] == 201

    done = exported(stack, "full", *locations)

    assert sorted(e["location_id"] for e in done["locations"]) == locations
    assert {(e["status"], e["rows"]) for e in done["locations"]} == {("completed", 0)}
    bucket, _, key = done["manifest_uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [m["location_id"] for m in manifest["locations"]] == locations
    assert len({m["uri"] for m in manifest["locations"]}) == 50  # a file of its own each
