"""Hand-made hostile input, sent the way API Gateway delivers it (its routing, its decoded paths,
its payload limits) to the real handlers on the local backends: awkward ids on every route that
names one, bodies at and past the limits, JSON that a lax parser would take, and import files
built to hurt the worker. Every refusal is a 4xx in the contract's error shape that leaves no
trace; nothing is ever a 5xx."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.gateway import Gateway

pytestmark = pytest.mark.integration

_names = (f"hostile-{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def api(local_aws: Any) -> Gateway:
    return Gateway(local_aws.template)


def new_location(api: Gateway, **fields: Any) -> str:
    location_id = next(_names)
    assert api.call("PUT", f"/locations/{location_id}", {"type": "store", **fields})[0] == 201
    return location_id


def import_stock(api: Gateway, location_id: str, items: list[dict[str, Any]], kind: str = "initial") -> Any:
    import_id = next(_names)
    body = {"import_id": import_id, "kind": kind, "items": items}
    status, accepted = api.call("POST", f"/locations/{location_id}/stock-imports", body)
    assert status == 202, accepted
    return api.run_import(location_id, import_id)


def refusal(answer: tuple[int, Any]) -> tuple[int, str, list[tuple[str, str]]]:
    """(status, code, [(field, code) of each detail]) of an error answer in the contract's shape."""
    status, body = answer
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    details = [(d.get("field"), d["code"]) for d in body["error"]["details"]]
    return status, body["error"]["code"], details


def path_of(product_id: str) -> str:
    return quote(product_id, safe="")


# ------------------------------------------------------------------ product ids on every route


PRODUCT_IDS = [
    "A/P",
    "/leading",
    "trailing/",
    "a//b",
    "a/b/c/d",
    "SKU#1",  # the key delimiter
    "#",
    "P#SKU",  # a whole key prefix
    "name",  # DynamoDB reserved words
    "status",
    "size",
    "%2F",  # already percent-encoded: the product's id is these three characters
    "100%",
    "a+b c",
    "~!*'();:@&=$,[]",
    '"quoted" \\ back',
    "é€😀",
    "\u200b\u2028\u00a0",  # zero-width space, line separator, no-break space: not control characters
    "=cmd|' /C calc'!A0",
    "x" * 128,
]


@pytest.fixture(scope="module")
def stocked(api: Gateway) -> str:
    """A location whose import holds every product of PRODUCT_IDS, 3 units each, and "other"."""
    location_id = new_location(api)
    items = [{"product_id": product_id, "quantity": 3} for product_id in [*PRODUCT_IDS, "other"]]
    done = import_stock(api, location_id, items)
    assert (done["status"], done["counts"]["applied"]) == ("completed", len(items)), done
    return location_id


@pytest.mark.parametrize("product_id", PRODUCT_IDS)
def test_a_product_id_names_the_same_product_on_every_route_that_takes_one(
    api: Gateway, stocked: str, product_id: str
) -> None:
    # When the product is read by its percent-encoded id, and by its id with the slashes left raw
    encoded = api.call("GET", f"/locations/{stocked}/stock/{path_of(product_id)}")
    raw = api.call("GET", f"/locations/{stocked}/stock/{quote(product_id, safe='/')}")
    available = api.call("GET", f"/locations/{stocked}/availability", query={"product_id": product_id})

    # Then both paths name it (API Gateway decodes %2F before it routes: the rest of the path is the id)
    assert encoded[0] == 200, encoded
    assert (encoded[1]["product_id"], encoded[1]["stock_on_hand"]) == (product_id, 3)
    if all(product_id.split("/")):  # whether API Gateway keeps an empty segment (`//`) is not known here
        assert raw == encoded
    assert [(row["product_id"], row["available"]) for row in available[1]["items"]] == [(product_id, 3)]

    # And it is allocated, read back and released under the same id
    allocation_id = next(_names)
    allocation = {
        "allocation_id": allocation_id,
        "order_id": "o-1",
        "items": [{"product_id": product_id, "quantity": 2}],
    }
    created = api.call("POST", f"/locations/{stocked}/allocations", allocation)
    assert created[0] == 201, created
    read = api.call("GET", f"/locations/{stocked}/allocations/{allocation_id}")[1]
    assert read["items"][0]["product_id"] == product_id
    after = api.call("GET", f"/locations/{stocked}/availability", query={"product_id": product_id})[1]["items"]
    assert [(row["allocated"], row["available"]) for row in after] == [(2, 1)]
    assert api.call("DELETE", f"/locations/{stocked}/allocations/{allocation_id}")[1]["status"] == "released"


def test_products_are_listed_once_each_across_pages_whatever_their_ids(api: Gateway, stocked: str) -> None:
    # When the stock list of a location holding every awkward id is read 2 products a page
    seen, cursor = [], None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = api.call("GET", f"/locations/{stocked}/stock", query=query)[1]
        seen += [row["product_id"] for row in page["items"]]
        if not (cursor := page["next_cursor"]):
            break

    # Then each product comes exactly once
    assert sorted(seen) == sorted([*PRODUCT_IDS, "other"])


CONTROL_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_product_id_with_a_control_character_is_422_on_every_route_and_writes_nothing(
    api: Gateway, control: str
) -> None:
    location_id = new_location(api)
    product_id = f"SKU{control}1"
    before = api.call("GET", f"/locations/{location_id}")[1]

    read = api.call("GET", f"/locations/{location_id}/stock/{path_of(product_id)}")
    filtered = api.call("GET", f"/locations/{location_id}/availability", query={"product_id": product_id})
    imported = api.call(
        "POST",
        f"/locations/{location_id}/stock-imports",
        {"import_id": "i-1", "kind": "initial", "items": [{"product_id": product_id, "quantity": 1}]},
    )
    allocated = api.call(
        "POST",
        f"/locations/{location_id}/allocations",
        {"allocation_id": "a-1", "order_id": "o-1", "items": [{"product_id": product_id, "quantity": 1}]},
    )

    assert refusal(read)[:2] == (422, "validation_error")
    assert refusal(read)[2][0][0] == "path.product_id"
    assert refusal(filtered)[2][0][0] == "query.product_id"
    assert refusal(imported)[2] == [("body.items[0].product_id", "string_pattern_mismatch")]
    assert refusal(allocated)[2] == [("body.items[0].product_id", "string_pattern_mismatch")]
    assert api.call("GET", f"/locations/{location_id}") == (200, before)
    assert api.call("GET", f"/locations/{location_id}/stock-imports/i-1")[0] == 404
    assert api.call("GET", f"/locations/{location_id}/allocations/a-1")[0] == 404


@pytest.mark.parametrize("word", ["name", "status", "size", "type", "count", "key", "data"])
def test_dynamodb_reserved_words_are_ordinary_ids(api: Gateway, word: str) -> None:
    created = api.call("PUT", f"/locations/{word}", {"type": "store", "name": word})
    assert created[0] in (200, 201)
    imported = api.call(
        "POST",
        f"/locations/{word}/stock-imports",
        {"import_id": word, "kind": "partial", "items": [{"product_id": word, "quantity": 4}]},
    )
    assert imported[0] in (200, 202), imported
    assert api.run_import(word, word)["status"] == "completed"
    allocation = {"allocation_id": word, "order_id": word, "items": [{"product_id": word, "quantity": 1}]}
    assert api.call("POST", f"/locations/{word}/allocations", allocation)[0] in (200, 201)

    assert api.call("GET", f"/locations/{word}")[1]["name"] == word
    assert api.call("GET", f"/locations/{word}/stock/{word}")[1]["stock_on_hand"] == 4
    assert api.call("GET", f"/locations/{word}/allocations/{word}")[1]["order_id"] == word
