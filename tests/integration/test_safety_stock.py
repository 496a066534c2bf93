"""Products' own safety stock through the real handlers on dynalite: the answer and the reads after
it, the refusals (each of which changes nothing), allocations checked against it, the figure a
published `Shipment Applied` carries, a request of the most products it takes, and first writes
racing from processes of their own."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from inventory.figures import CHANGES_PER_EPOCH
from inventory.types import MAX_SAFETY_STOCK_ITEMS
from tests.conftest import FakeContext, load_handler, sqs_event
from tests.integration.test_allocations import QUEUE_ARN, _deliver, availability, call, from_bus, load, relayed

pytestmark = pytest.mark.integration
RACERS = 6
# A loaded store's products' epoch: its initial import (every product's base, a row or its 0), 1
LOADED = CHANGES_PER_EPOCH


def put(location: str, **figures: int | None) -> tuple[int, Any]:
    body = {"items": [{"product_id": p, "safety_stock": f} for p, f in figures.items()]}
    return call("safety_stock", "PUT", f"/locations/{location}/safety-stock", body)


def new_location(stock: dict[str, int], **settings: Any) -> str:
    location = f"ss-{uuid.uuid4().hex[:8]}"
    load(location, stock, **settings)
    return location


def test_set_read_and_clear_products_safety_stock_over_the_handlers() -> None:
    location = new_location({"a": 10, "b": 3}, default_safety_stock=1)

    status, answer = put(location, a=4, b=None, c=2)

    assert status == 200
    assert answer["items"] == [
        {"product_id": p, "stock_on_hand": q, "allocated": 0, "safety_stock": s, "available": v, "uncounted": False}
        | {"version": version}
        for p, q, s, v, version in (("a", 10, 4, 6, LOADED + 1), ("b", 3, 1, 2, LOADED), ("c", 0, 2, 0, LOADED + 1))
    ]
    assert [availability(location, p) for p in ("a", "b", "c")] == answer["items"]
    assert put(location, a=4, b=None, c=2) == (200, answer)  # the same again: nothing written, no version moved
    cleared = put(location, a=None, c=0)[1]["items"]
    assert [(r["safety_stock"], r["available"], r["version"]) for r in cleared] == [
        (1, 9, LOADED + 2),
        (0, 0, LOADED + 2),
    ]


def items(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"product_id": p, "safety_stock": f} for p, f in pairs]


TOO_MANY = items(*((f"p{n}", 1) for n in range(MAX_SAFETY_STOCK_ITEMS + 1)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": items(("a", 5), ("b", -1))}, "body.items[1].safety_stock"),
        ({"items": TOO_MANY}, "body.items"),
        ({"items": items(("a", 5), ("a", 6))}, "body.items"),
        ({"items": items(("a", 5)), "extra": True}, "body.extra"),
    ],
)
def test_an_invalid_request_is_a_422_naming_the_field_and_changes_nothing(body: dict[str, Any], field: str) -> None:
    location = new_location({"a": 10, "b": 3})
    before = [availability(location, p) for p in ("a", "b")]

    status, answer = call("safety_stock", "PUT", f"/locations/{location}/safety-stock", body)

    assert (status, answer["error"]["code"]) == (422, "validation_error")
    assert field in [d["field"] for d in answer["error"]["details"]]
    assert [availability(location, p) for p in ("a", "b")] == before


def test_an_unknown_location_is_a_404() -> None:
    status, answer = put(f"nowhere-{uuid.uuid4().hex[:8]}", a=1)

    assert (status, answer["error"]["code"]) == (404, "not_found")


def test_an_allocation_refused_for_a_products_own_safety_stock_is_accepted_once_it_is_null() -> None:
    location = new_location({"a": 10}, default_safety_stock=1)
    body = {"allocation_id": "al-1", "order_id": "o-1", "items": [{"product_id": "a", "quantity": 6}]}
    assert put(location, a=5)[0] == 200

    refused = call("allocations", "POST", f"/locations/{location}/allocations", body)
    cleared = put(location, a=None)
    accepted = call("allocations", "POST", f"/locations/{location}/allocations", body)

    assert (refused[0], refused[1]["error"]["code"]) == (409, "insufficient_stock")
    assert refused[1]["error"]["details"][0]["available"] == 5
    assert cleared[1]["items"][0]["available"] == 9
    assert (accepted[0], accepted[1]["status"]) == (201, "open")
    assert availability(location, "a")["available"] == 3


def test_shipment_applied_carries_the_products_own_safety_stock(listen: Any) -> None:
    location = new_location({"a": 10}, default_safety_stock=1)
    applied = listen("Shipment Applied", location)
    put(location, a=3)
    shipment = {
        "event_id": f"ev-{location}",
        "location_id": location,
        "shipment_id": "s-1",
        "logical_timestamp": 1,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": "a", "quantity": 2}],
    }
    shipped = load_handler("shipment_events").lambda_handler(
        sqs_event([from_bus("Fulfillment Items Shipped", shipment)], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )
    assert shipped == {"batchItemFailures": []}

    (event,) = relayed(applied, 1)
    (product,) = event["detail"]["products"]

    assert (product["stock_on_hand"], product["safety_stock"], product["available"]) == (8, 3, 5)
    assert product["version"] == availability(location, "a")["version"]


def test_a_request_of_the_most_products_it_takes_sets_them_all() -> None:
    location = new_location({f"p{n}": 5 for n in range(0, MAX_SAFETY_STOCK_ITEMS, 10)})
    figures = {f"p{n}": n % 3 for n in range(MAX_SAFETY_STOCK_ITEMS)}

    started = time.monotonic()
    status, answer = put(location, **figures)
    took = time.monotonic() - started

    assert status == 200
    assert [(r["product_id"], r["safety_stock"]) for r in answer["items"]] == list(figures.items())
    assert availability(location, "p10") == {**answer["items"][10], "available": 5 - 10 % 3}
    print(f"\n{MAX_SAFETY_STOCK_ITEMS} products' safety stock set in {took:.1f} s")


def _set_at_once(location: str, product: str, figure: int, barrier: Any) -> int:
    barrier.wait()
    return put(location, **{product: figure})[0]


def test_first_writes_racing_for_a_new_product_are_each_kept(handler_environment: dict[str, str]) -> None:
    """Given a product with no hot item yet, when three requests set its safety stock (each another
    figure) while three shipment lines of it arrive, all at once from processes of their own, then
    every one of them is applied: its version counts six changes, its ledger three lines."""
    location = new_location({"other": 1})
    product = "new"
    shipments = [
        {
            "event_id": f"ev-{location}-{n}",
            "location_id": location,
            "shipment_id": f"s-{n}",
            "logical_timestamp": n + 1,
            "occurred_at": "2026-11-27T09:00:00Z",
            "items": [{"product_id": product, "quantity": 1}],
        }
        for n in range(RACERS // 2)
    ]
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda sandboxes are
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(RACERS, mp_context=context) as pool:
        barrier = manager.Barrier(RACERS)
        puts = [pool.submit(_set_at_once, location, product, n + 1, barrier) for n in range(RACERS // 2)]
        delivered = [pool.submit(_deliver, shipment, barrier) for shipment in shipments]
        statuses = [f.result() for f in puts]
        answers = [f.result() for f in delivered]

    assert statuses == [200] * (RACERS // 2)
    assert answers == [{"batchItemFailures": []}] * (RACERS // 2)
    row = availability(location, product)
    assert (row["stock_on_hand"], row["version"]) == (-(RACERS // 2), LOADED + RACERS)
    assert row["safety_stock"] in range(1, RACERS // 2 + 1)
    status, explained = call("stock", "GET", f"/locations/{location}/stock/{product}")
    assert (status, len(explained["ledger"]["items"])) == (200, RACERS // 2)
