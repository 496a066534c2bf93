"""Cycle counts through the real handlers on dynalite: open, list, cancel, results under both
masters, uncounted stock per stock location, the mispick guard, every refusal with a read-back,
and a count submitted while shipments of the same product arrive, in processes of their own that
really run at once (dynalite applies concurrent conditional writes correctly: docs/data-design.md)."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from tests.conftest import FakeContext, load_handler, sqs_event
from tests.integration.test_allocations import QUEUE_ARN, call, from_bus, load
from tests.integration.test_transactions import platform_store, stock

pytestmark = [pytest.mark.integration, pytest.mark.long]


def counts(location: str, method: str, path: str = "", body: Any = None, query: Any = None) -> tuple[int, Any]:
    return call("cycle_counts", method, f"/locations/{location}/cycle-counts{path}", body, query)


def availability(location: str, product: str) -> dict[str, Any]:
    (row,) = call("stock", "GET", f"/locations/{location}/availability", query={"product_id": product})[1]["items"]
    return dict(row)


def test_a_count_over_the_handlers(handler_environment: dict[str, str]) -> None:
    location = f"cc-{uuid.uuid4().hex[:8]}"
    assert call("locations", "PUT", f"/locations/{location}", {"type": "store"})[0] == 201
    imported = {
        "import_id": "load",
        "kind": "initial",
        "items": [
            {"product_id": "a", "quantity": 5},
            {"product_id": "a", "quantity": 2, "stock_location": "damaged"},
            {"product_id": "b", "quantity": 3},
        ],
    }
    assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", imported)[0] == 202
    from inventory import wiring
    from inventory.settings import settings_of
    from inventory.settings.stock_import_worker import StockImportWorkerSettings

    assert (
        wiring.import_runner(settings_of(StockImportWorkerSettings)).run(location, "load", lambda: 10**9).value
        == "completed"
    )
    assert (
        call("master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})[0]
        == 200
    )
    assert availability(location, "a")["uncounted"] is True

    opened = counts(location, "POST", body={"count_id": "c1", "reason": "scheduled", "product_ids": ["a", "b"]})
    assert opened[0] == 201, opened
    assert counts(location, "POST", body={"count_id": "c1", "reason": "scheduled", "product_ids": ["a", "b"]})[0] == 200
    before = (stock(location, "a"), stock(location, "b"))
    refusals = [
        ({"items": [{"product_id": "x", "counted": 1}]}, 422),
        ({"items": [{"product_id": "a", "counted": -1}]}, 422),
        ({"items": [{"product_id": "a", "stock_location": "shelf", "counted": 1}]}, 422),
        ({"items": [{"product_id": "a", "counted": 1}, {"product_id": "a", "counted": 2}]}, 422),
    ]
    for body, status in refusals:
        assert counts(location, "POST", "/c1/results", body)[0] == status, body
    assert counts(location, "POST", "/nope/results", {"items": [{"product_id": "a", "counted": 1}]})[0] == 404
    assert (stock(location, "a"), stock(location, "b")) == before

    status, done = counts(location, "POST", "/c1/results", {"items": [{"product_id": "a", "counted": 8}]})
    assert status == 200, done
    assert done["status"] == "completed"
    assert done["results"] == [{"product_id": "a", "stock_location": "main", "counted": 8, "system": 5, "variance": 3}]
    assert stock(location, "a") == {"main": 8, "damaged": 2, "soh": 8}
    assert availability(location, "a")["uncounted"] is False  # main, its only salable stock, counted
    assert availability(location, "a")["available"] == 8
    assert availability(location, "b")["uncounted"] is True  # listed, not reported
    again = counts(location, "POST", "/c1/results", {"items": [{"product_id": "a", "counted": 8}]})
    other = counts(location, "POST", "/c1/results", {"items": [{"product_id": "a", "counted": 9}]})
    assert again == (200, done)
    assert other[0] == 409
    assert other[1]["error"]["code"] == "count_not_open"
    assert counts(location, "DELETE", "/c1")[1]["error"]["code"] == "count_not_open"

    # a mispick count holds imports back until it is cancelled
    counts(location, "POST", body={"count_id": "m1", "reason": "mispick", "product_ids": ["b"]})
    full = {"import_id": "full-1", "kind": "full_count", "items": [{"product_id": "b", "quantity": 1}]}
    blocked = call("stock_imports", "POST", f"/locations/{location}/stock-imports", full)
    assert blocked[0] == 409
    assert blocked[1]["error"]["code"] == "open_mispick_counts"
    assert counts(location, "DELETE", "/m1")[1]["status"] == "cancelled"
    assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", full)[0] == 202

    first = counts(location, "GET", query={"limit": "1"})[1]
    rest = counts(location, "GET", query={"limit": "1", "cursor": first["next_cursor"]})[1]
    assert [c["count_id"] for c in first["items"] + rest["items"]] == ["c1", "m1"]


def test_under_an_erp_master_results_are_recorded_and_move_nothing(handler_environment: dict[str, str]) -> None:
    location = f"cc-{uuid.uuid4().hex[:8]}"
    load(location, {"a": 5})
    counts(location, "POST", body={"count_id": "c1", "reason": "scheduled", "product_ids": ["a"]})
    status, done = counts(location, "POST", "/c1/results", {"items": [{"product_id": "a", "counted": 9}]})
    assert status == 200
    assert (done["inventory_master"], done["pending_import"], done["results"][0]["variance"]) == ("erp", True, 4)
    assert stock(location, "a")["soh"] == 5


def test_refusals_of_opening_and_of_a_cancelled_count(handler_environment: dict[str, str]) -> None:
    location = f"cc-{uuid.uuid4().hex[:8]}"
    platform_store(location, {"a": 5})
    too_many = {"count_id": "c1", "reason": "scheduled", "product_ids": [f"p-{n}" for n in range(5001)]}
    twice = {"count_id": "c1", "reason": "scheduled", "product_ids": ["a", "a"]}
    unknown_reason = {"count_id": "c1", "reason": "weekly", "product_ids": ["a"]}
    for body in (too_many, twice, unknown_reason):
        assert counts(location, "POST", body=body)[0] == 422
    assert counts("nowhere", "POST", body={"count_id": "c1", "reason": "scheduled", "product_ids": ["a"]})[0] == 404
    assert counts(location, "GET")[1]["items"] == []
    counts(location, "POST", body={"count_id": "c1", "reason": "scheduled", "product_ids": ["a"]})
    assert counts(location, "DELETE", "/c1")[1]["status"] == "cancelled"
    refused = counts(location, "POST", "/c1/results", {"items": [{"product_id": "a", "counted": 1}]})
    assert (refused[0], refused[1]["error"]["code"]) == (409, "count_not_open")
    assert stock(location, "a")["soh"] == 5
    assert counts(location, "GET", "/c1")[1]["results"] == []


def _submit(location: str, barrier: Any) -> Any:
    barrier.wait()
    return counts(location, "POST", "/race/results", {"items": [{"product_id": "hot", "counted": 40}]})


def _ship(location: str, n: int, barrier: Any) -> Any:
    detail = {
        "event_id": f"ship-{n}",
        "location_id": location,
        "shipment_id": f"s-{n}",
        "logical_timestamp": n,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": "hot", "quantity": 1}],
    }
    message = from_bus("Fulfillment Items Shipped", detail, str(uuid.uuid4()))
    barrier.wait()
    return load_handler("shipment_events").lambda_handler(
        sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )


def test_a_count_submitted_while_shipments_arrive_loses_none_of_them(handler_environment: dict[str, str]) -> None:
    location = f"cc-race-{uuid.uuid4().hex[:8]}"
    platform_store(location, {"hot": 50})
    counts(location, "POST", body={"count_id": "race", "reason": "scheduled", "product_ids": ["hot"]})
    shipments = 4
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda sandboxes are
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(shipments + 1, mp_context=context) as pool:
        barrier = manager.Barrier(shipments + 1)
        counted = pool.submit(_submit, location, barrier)
        shipped = [pool.submit(_ship, location, n, barrier) for n in range(1, shipments + 1)]
        status, count = counted.result()
        assert all(s.result() == {"batchItemFailures": []} for s in shipped)
    assert status == 200, count
    (result,) = count["results"]
    # The reference: the shipments applied before the count's result are in the figure it
    # replaced (the system figure), those after it leave the counted figure; none is lost.
    entries = call("stock", "GET", f"/locations/{location}/stock/hot")[1]["ledger"]["items"]
    assert [e["kind"] for e in entries].count("shipment") == shipments
    before = 50 - result["system"]
    assert 0 <= before <= shipments
    assert result["variance"] == 40 - result["system"]
    assert stock(location, "hot")["soh"] == 40 - (shipments - before)
