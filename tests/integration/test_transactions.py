"""Inventory transactions through the real handlers on dynalite: both masters, every refusal with
a read-back that nothing changed, pagination, the published event against its schema, and two
transactions racing for the last units in processes of their own that really run at once
(dynalite applies concurrent conditional writes correctly: docs/data-design.md)."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import ROOT, FakeContext, load_handler
from tests.integration.test_allocations import call, load
from tests.integration.test_outbox_relay import received

pytestmark = [pytest.mark.integration, pytest.mark.long]
SCHEMA = json.loads((ROOT / "schemas" / "events" / "inventory-transaction-completed.json").read_text())


def post(location: str, body: dict[str, Any]) -> tuple[int, Any]:
    return call("inventory_transactions", "POST", f"/locations/{location}/inventory-transactions", body)


def stock(location: str, product: str) -> dict[str, int]:
    status, found = call("stock", "GET", f"/locations/{location}/stock/{product}")
    assert status == 200, found
    return {s["stock_location"]: s["quantity"] for s in found["stock_locations"]} | {"soh": found["stock_on_hand"]}


def platform_store(location: str, stock_: dict[str, int]) -> None:
    load(location, stock_)
    status, answer = call(
        "master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"}
    )
    assert status == 200, answer


def seen(location: str, *products: str) -> Any:
    """What a client can read back: each product's stock, and the location's transactions."""
    listed = call("inventory_transactions", "GET", f"/locations/{location}/inventory-transactions")[1]
    return {p: stock(location, p) for p in products}, [t["transaction_id"] for t in listed["items"]]


def test_a_platform_store_receives_moves_and_sends_stock(handler_environment: dict[str, str]) -> None:
    location = f"tx-{uuid.uuid4().hex[:8]}"
    platform_store(location, {"a": 5})
    receiving = {
        "transaction_id": "rcv-1",
        "type": "receiving",
        "reference": "PO-1",
        "items": [{"product_id": "a", "quantity": 10}, {"product_id": "new", "quantity": 3}],
    }

    created, repeated = post(location, receiving), post(location, receiving)
    reused = post(location, {**receiving, "reference": "PO-2"})
    moved = post(
        location,
        {
            "transaction_id": "adj-1",
            "type": "adjustment",
            "reason": "dropped",
            "items": [
                {"product_id": "a", "quantity": 2, "from_stock_location": "main", "to_stock_location": "damaged"}
            ],
        },
    )
    sent = post(
        location,
        {
            "transaction_id": "out-1",
            "type": "transfer_out",
            "destination_location_id": "s-9",
            "items": [{"product_id": "a", "quantity": 4}],
        },
    )

    assert created[0] == 201
    assert repeated == (200, created[1])
    assert reused[0] == 409
    assert reused[1]["error"]["code"] == "transaction_id_reused"
    assert created[1]["items"][0]["stock_on_hand"] == 15
    assert created[1]["recorded_by"]
    assert moved[0] == 201
    assert moved[1]["items"][0]["stock_locations"] == {"main": 13, "damaged": 2}
    assert sent[0] == 201
    assert stock(location, "a") == {"main": 9, "damaged": 2, "soh": 9}
    assert stock(location, "new") == {"main": 3, "soh": 3}
    first = call(
        "inventory_transactions", "GET", f"/locations/{location}/inventory-transactions", query={"limit": "2"}
    )[1]
    rest = call(
        "inventory_transactions",
        "GET",
        f"/locations/{location}/inventory-transactions",
        query={"limit": "2", "cursor": first["next_cursor"]},
    )[1]
    assert [t["transaction_id"] for t in first["items"] + rest["items"]] == ["adj-1", "out-1", "rcv-1"]
    assert rest["next_cursor"] is None
    status, _explained = call("stock", "GET", f"/locations/{location}/stock/a")
    assert status == 200


def test_every_refusal_answers_its_code_and_changes_nothing(handler_environment: dict[str, str]) -> None:
    location = f"tx-{uuid.uuid4().hex[:8]}"
    platform_store(location, {"a": 5, "b": 1})
    before = seen(location, "a", "b")
    refusals = [
        (
            {
                "transaction_id": "t1",
                "type": "transfer_out",
                "destination_location_id": "s-2",
                "items": [{"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 2}],
            },
            409,
            "insufficient_stock",
        ),
        (
            {
                "transaction_id": "t2",
                "type": "adjustment",
                "reason": "x",
                "items": [{"product_id": "a", "quantity": 1, "from_stock_location": "shelf"}],
            },
            422,
            "validation_error",
        ),
        (
            {"transaction_id": "t3", "type": "receiving", "items": [{"product_id": "a", "quantity": 0}]},
            422,
            "validation_error",
        ),
        (
            {
                "transaction_id": "t4",
                "type": "transfer_out",
                "destination_location_id": location,
                "items": [{"product_id": "a", "quantity": 1}],
            },
            422,
            "validation_error",
        ),
        (
            {
                "transaction_id": "t5",
                "type": "receiving",
                "items": [{"product_id": f"p{n}", "quantity": 1} for n in range(101)],
            },
            422,
            "validation_error",
        ),
        (
            {"transaction_id": "t6", "type": "receiving", "items": [{"product_id": "a", "quantity": 1}], "extra": 1},
            422,
            "validation_error",
        ),
    ]
    for body, status, code in refusals:
        answered = post(location, body)
        assert (answered[0], answered[1]["error"]["code"]) == (status, code), body["transaction_id"]
    assert post("nowhere", refusals[2][0] | {"items": [{"product_id": "a", "quantity": 1}]})[0] == 404
    assert call("inventory_transactions", "GET", f"/locations/{location}/inventory-transactions/t1")[0] == 404
    assert seen(location, "a", "b") == before


def test_under_an_erp_master_a_transaction_is_recorded_and_the_switch_waits(
    handler_environment: dict[str, str], listen: Any
) -> None:
    location = f"tx-{uuid.uuid4().hex[:8]}"
    load(location, {"a": 5})
    bus = listen("Inventory Transaction Completed", location)
    status, record = post(
        location, {"transaction_id": "rcv-1", "type": "receiving", "items": [{"product_id": "a", "quantity": 10}]}
    )
    assert status == 201
    assert record["pending_import"] is True
    assert record["inventory_master"] == "erp"
    assert stock(location, "a")["soh"] == 5
    explained = call("stock", "GET", f"/locations/{location}/stock/a")[1]
    assert [(e["entry_id"], e.get("pending_import")) for e in explained["ledger"]["items"]] == [("tx:rcv-1:0", True)]
    readiness = call("master_switch", "GET", f"/locations/{location}/inventory-master/readiness")[1]
    assert [r["code"] for r in readiness["reasons"]] == ["transactions_since_import"]
    refused = call("master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})
    assert refused[0] == 409
    assert refused[1]["error"]["code"] == "not_ready"
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60  # other tests may have left events in the outbox: the relay runs until ours is out
    while not events and time.monotonic() < deadline:
        load_handler("outbox_relay").lambda_handler({}, FakeContext(remaining_ms=5_300))
        events += received(bus, 1, seconds=1)
    (event,) = events
    Draft202012Validator(SCHEMA).validate(event["detail"])
    assert event["detail"]["transaction_id"] == "rcv-1"
    assert event["detail"]["pending_import"] is True


def _take(location: str, n: int, barrier: Any) -> int:
    body = {
        "transaction_id": f"out-{n}",
        "type": "transfer_out",
        "destination_location_id": "s-9",
        "items": [{"product_id": "last", "quantity": 2}],
    }
    barrier.wait()
    return post(location, body)[0]


def test_transactions_racing_for_the_last_units_never_both_apply(handler_environment: dict[str, str]) -> None:
    location = f"tx-race-{uuid.uuid4().hex[:8]}"
    platform_store(location, {"last": 5})
    callers = 6
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda sandboxes are
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(callers, mp_context=context) as pool:
        barrier = manager.Barrier(callers)
        statuses = list(pool.map(_take, [location] * callers, range(callers), [barrier] * callers))
    assert sorted(statuses) == [201] * 2 + [409] * 4
    assert stock(location, "last") == {"main": 1, "soh": 1}
    listed = call("inventory_transactions", "GET", f"/locations/{location}/inventory-transactions")[1]
    assert len(listed["items"]) == 2  # the refused ones left no record
