"""The stock location types through the real handlers, on dynalite and moto, each test on a table of
its own (the configuration is one item for the whole table): the routes, their refusals, and
imports into configured types as GET .../stock and .../availability show them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.types import MAX_STOCK_LOCATIONS
from local.stack import LocalAws
from tests.conftest import load_handler
from tests.integration.test_stock_imports import call, drain_import_queue
from tests.unit.test_stock_locations import DEFAULT_NAMES

pytestmark = pytest.mark.integration


@pytest.fixture
def handlers(own_table: DynamoDbRepository) -> dict[str, Any]:
    return {name: load_handler(name) for name in ("stock_locations", "stock_imports", "stock_import_worker", "stock")}


def listed(handlers: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    status, page = call(handlers["stock_locations"], "GET", "/stock-locations")
    assert (status, page["next_cursor"]) == (200, None)
    return [(t["name"], t["salable"], t["in_use"]) for t in page["items"]]


def put(handlers: dict[str, Any], name: str, salable: Any) -> tuple[int, Any]:
    return call(handlers["stock_locations"], "PUT", f"/stock-locations/{name}", {"salable": salable})


def imported(local_aws: LocalAws, handlers: dict[str, Any], import_id: str, kind: str, items: list[Any]) -> None:
    body = {"import_id": import_id, "kind": kind, "location_type": "store", "items": items}
    assert call(handlers["stock_imports"], "POST", "/locations/sl-store/stock-imports", body)[0] == 202
    drain_import_queue(local_aws, handlers["stock_import_worker"])
    status, done = call(handlers["stock_imports"], "GET", f"/locations/sl-store/stock-imports/{import_id}")
    assert (status, done["status"]) == (200, "completed"), done


def test_the_defaults_then_a_new_type_created_and_repeated(handlers: dict[str, Any]) -> None:
    assert listed(handlers) == [(name, name == "main", False) for name in DEFAULT_NAMES]

    assert put(handlers, "backroom", True) == (201, {"name": "backroom", "salable": True, "in_use": False})
    assert put(handlers, "backroom", True) == (200, {"name": "backroom", "salable": True, "in_use": False})
    assert put(handlers, "display", True) == (200, {"name": "display", "salable": True, "in_use": False})

    assert listed(handlers) == [
        ("main", True, False),
        ("backroom", True, False),
        ("damaged", False, False),
        ("display", True, False),
        ("returns", False, False),
    ]


def test_every_refusal_answers_its_code_and_changes_nothing(handlers: dict[str, Any]) -> None:
    for n in range(MAX_STOCK_LOCATIONS - len(DEFAULT_NAMES)):
        assert put(handlers, f"bin_{n}", False)[0] == 201
    before = listed(handlers)

    refusals = [
        (put(handlers, "main", False), 409, "main_always_salable"),
        (put(handlers, "one_more", True), 409, "too_many_stock_locations"),
        (put(handlers, "Back-Room", True), 422, "validation_error"),
        (put(handlers, "bin_1", "yes"), 422, "validation_error"),
        (
            call(handlers["stock_locations"], "PUT", "/stock-locations/bin_1", {"salable": True, "x": 1}),
            422,
            "validation_error",
        ),
        (
            call(handlers["stock_locations"], "GET", "/stock-locations", query={"cursor": "abc"}),
            422,
            "validation_error",
        ),
    ]

    for (status, body), expected_status, code in refusals:
        assert (status, body["error"]["code"]) == (expected_status, code), body
    assert listed(handlers) == before


def test_an_import_into_new_types_shows_in_the_stock_and_the_salable_one_counts(
    local_aws: LocalAws, handlers: dict[str, Any]
) -> None:
    """Given a salable type and one that is not, when an inline import and a file put stock in them,
    then GET .../stock shows every stock location with its flag, stock on hand and availability
    count the salable ones, and neither type can change `salable` any more."""
    put(handlers, "backroom", True)
    put(handlers, "quarantine", False)
    imported(
        local_aws,
        handlers,
        "i1",
        "initial",
        [
            {"product_id": "P/1", "quantity": 3},
            {"product_id": "P/1", "quantity": 4, "stock_location": "backroom"},
            {"product_id": "P/1", "quantity": 5, "stock_location": "quarantine"},
            {"product_id": "P/1", "quantity": 0, "stock_location": "returns"},
        ],
    )
    bucket = local_aws.name("ImportBucket")
    local_aws.client("s3").put_object(
        Bucket=bucket, Key="uploads/sl.csv", Body=b"product_id,quantity,stock_location\nP/2,6,backroom\nP/2,1,main\n"
    )
    file_import = {"import_id": "i2", "kind": "partial", "source": f"s3://{bucket}/uploads/sl.csv"}
    assert call(handlers["stock_imports"], "POST", "/locations/sl-store/stock-imports", file_import)[0] == 202
    drain_import_queue(local_aws, handlers["stock_import_worker"])
    assert call(handlers["stock_imports"], "GET", "/locations/sl-store/stock-imports/i2")[1]["status"] == "completed"

    status, product = call(handlers["stock"], "GET", "/locations/sl-store/stock/P%2F1")
    assert (status, product["stock_on_hand"]) == (200, 7)
    assert [(s["stock_location"], s["quantity"], s["salable"]) for s in product["stock_locations"]] == [
        ("main", 3, True),
        ("backroom", 4, True),
        ("quarantine", 5, False),
        ("returns", 0, False),
    ]
    listed_stock = call(handlers["stock"], "GET", "/locations/sl-store/stock")[1]["items"]
    assert {(p["product_id"], p["stock_on_hand"]) for p in listed_stock} == {("P/1", 7), ("P/2", 7)}
    availability = call(handlers["stock"], "GET", "/locations/sl-store/availability")[1]["items"]
    assert {(p["product_id"], p["stock_on_hand"], p["available"]) for p in availability} == {
        ("P/1", 7, 7),
        ("P/2", 7, 7),
    }

    for name, salable in (("backroom", False), ("quarantine", True)):
        status, refused = put(handlers, name, salable)
        assert (status, refused["error"]["code"]) == (409, "stock_location_in_use")
    assert [(n, s, u) for n, s, u in listed(handlers) if u] == [
        ("main", True, True),
        ("backroom", True, True),
        ("quarantine", False, True),
    ]  # returns only took a 0: not in use


def test_an_import_naming_a_type_that_is_not_configured_is_refused_or_fails(
    local_aws: LocalAws, handlers: dict[str, Any]
) -> None:
    items = [{"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 1, "stock_location": "attic"}]
    body = {"import_id": "i1", "kind": "initial", "location_type": "store", "items": items}

    status, refused = call(handlers["stock_imports"], "POST", "/locations/sl-store/stock-imports", body)

    assert status == 422
    assert [(d["field"], d["code"]) for d in refused["error"]["details"]] == [
        ("body.items[1].stock_location", "unknown_stock_location")
    ]
    bucket = local_aws.name("ImportBucket")
    rows = "\n".join(json.dumps(item) for item in items)
    local_aws.client("s3").put_object(Bucket=bucket, Key="uploads/attic.jsonl", Body=rows.encode())
    body = {
        "import_id": "i2",
        "kind": "initial",
        "location_type": "store",
        "source": f"s3://{bucket}/uploads/attic.jsonl",
    }
    assert call(handlers["stock_imports"], "POST", "/locations/sl-store/stock-imports", body)[0] == 202
    drain_import_queue(local_aws, handlers["stock_import_worker"])
    status, failed = call(handlers["stock_imports"], "GET", "/locations/sl-store/stock-imports/i2")
    assert (failed["status"], [(e["line"], e["code"]) for e in failed["errors"]]) == (
        "failed",
        [(2, "unknown_stock_location")],
    )

    put(handlers, "attic", False)  # once configured, the same file imports
    local_aws.client("s3").put_object(Bucket=bucket, Key="uploads/attic.jsonl", Body=rows.encode())
    body["import_id"] = "i3"
    assert call(handlers["stock_imports"], "POST", "/locations/sl-store/stock-imports", body)[0] == 202
    drain_import_queue(local_aws, handlers["stock_import_worker"])
    status, product = call(handlers["stock"], "GET", "/locations/sl-store/stock/b")
    assert (product["stock_on_hand"], product["stock_locations"][-1]) == (
        0,
        {"stock_location": "attic", "quantity": 1, "salable": False, "base": product["stock_locations"][-1]["base"]},
    )
