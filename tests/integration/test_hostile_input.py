"""Hand-made hostile input, sent the way API Gateway delivers it (its routing, its decoded paths,
its payload limits) to the real handlers on the local backends: awkward ids on every route that
names one, bodies at and past the limits, JSON that a lax parser would take, and import files
built to hurt the worker. Every refusal is a 4xx in the contract's error shape that leaves no
trace; nothing is ever a 5xx."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from inventory.adapters.dynamodb.keys import PRODUCT_PREFIX
from tests.integration.gateway import Gateway

pytestmark = pytest.mark.integration

_names = (f"hostile-{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def api(local_aws: Any) -> Iterator[Gateway]:
    gateway = Gateway(local_aws.template)
    yield gateway
    gateway.publish_outbox()


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
    PRODUCT_PREFIX + "SKU",  # a whole key prefix
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
    "😀" * 128,  # 1,536 bytes percent-encoded: longer than a DynamoDB sort key
    "中" * 128,
    "😀" * 127 + " ",  # below '#' after a long id
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


# ------------------------------------------------------------------ bodies: size and JSON

BODY_ROUTES = [
    ("PUT", "/locations/{location_id}"),
    ("PUT", "/locations/{location_id}/inventory-master"),
    ("POST", "/locations/{location_id}/stock-imports"),
    ("POST", "/locations/{location_id}/allocations"),
]
MB = 1024 * 1024


def padded(body: bytes, size: int) -> bytes:
    """`body`, a JSON object, padded with spaces inside it to exactly `size` bytes."""
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize(("method", "route"), BODY_ROUTES)
def test_a_body_over_5_mb_is_413_on_every_route_that_takes_one_and_writes_nothing(
    api: Gateway, method: str, route: str
) -> None:
    location_id = next(_names)
    body = padded(b'{"type": "store"}', 5 * MB + 1)

    answer = api.call(method, route.format(location_id=location_id), raw=body)

    assert refusal(answer) == (413, "payload_too_large", [])
    assert refusal(api.call("GET", f"/locations/{location_id}"))[:2] == (404, "not_found")


@pytest.mark.parametrize("size", [5 * MB, 6 * MB + 1, 10 * MB + 1])
def test_bodies_at_and_past_lambdas_and_api_gateways_limits(api: Gateway, size: int) -> None:
    # Given a valid location body, padded with spaces to the size
    location_id = next(_names)

    status, answer = api.call("PUT", f"/locations/{location_id}", raw=padded(b'{"type": "store"}', size))

    # Then 5 MB exactly is taken; past Lambda's 6 MB or API Gateway's 10 MB the gateway refuses it
    # before any handler runs, in the same shape
    if size == 5 * MB:
        assert status == 201, answer
    else:
        assert refusal((status, answer))[:2] == (413, "payload_too_large")
        assert api.call("GET", f"/locations/{location_id}")[0] == 404


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a": ' * depth + leaf + "}" * depth


HOSTILE_JSON = [
    # (what, body, the detail's code)
    ("the same key twice", '{"type": "store", "type": "dc"}', "duplicate_key"),
    ("the same key twice, nested", '{"type": "store", "name": {"a": 1, "a": 1}}', "duplicate_key"),
    ("10,000 arrays deep", "[" * 10_000 + "]" * 10_000, "json_too_deep"),
    ("10,000 objects deep", nested(10_000), "json_too_deep"),
    ("10,000 deep inside a field", '{"type": "store", "name": ' + "[" * 10_000 + "]" * 10_000 + "}", "json_too_deep"),
    ("a 5,000-digit number", '{"type": "store", "default_safety_stock": ' + "9" * 5000 + "}", "number_too_long"),
    ("NaN", '{"type": "store", "default_safety_stock": NaN}', "json_invalid"),
    ("Infinity", '{"type": "store", "default_safety_stock": -Infinity}', "json_invalid"),
    ("not JSON", "type=store", "json_invalid"),
    ("cut short", '{"type": "store"', "json_invalid"),
    ("two documents", '{"type": "store"} {"type": "dc"}', "json_invalid"),
]


@pytest.mark.parametrize(("body", "code"), [case[1:] for case in HOSTILE_JSON], ids=[case[0] for case in HOSTILE_JSON])
def test_json_a_lax_parser_would_take_is_422_naming_the_body_and_writes_nothing(
    api: Gateway, body: str, code: str
) -> None:
    location_id = next(_names)

    answer = api.call("PUT", f"/locations/{location_id}", raw=body.encode())

    assert refusal(answer) == (422, "validation_error", [("body", code)])
    assert api.call("GET", f"/locations/{location_id}")[0] == 404


@pytest.mark.parametrize(("method", "route"), BODY_ROUTES)
def test_the_same_key_twice_is_422_on_every_route_that_takes_a_body(api: Gateway, method: str, route: str) -> None:
    """SPEC.md section 4: which of the two values would count is anybody's guess, so neither does."""
    location_id = new_location(api)
    body = '{"inventory_master": "platform", "import_id": "d-1", "kind": "initial", "x": 1, "x": 2}'

    answer = api.call(method, route.format(location_id=location_id), raw=body.encode())

    assert refusal(answer) == (422, "validation_error", [("body", "duplicate_key")])


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "multipart/form-data", "application/xml"],
)
def test_a_body_is_json_whatever_its_content_type_says(api: Gateway, content_type: str) -> None:
    """A form or multipart body used to be read as a form (and could create a location); an unknown
    type was a 500."""
    location_id = next(_names)
    form = b'--x\r\nContent-Disposition: form-data; name="type"\r\n\r\nstore\r\n--x--\r\n'

    status, _, payload = api.send("PUT", f"/locations/{location_id}", form, [("Content-Type", content_type)])
    as_json = api.send("PUT", f"/locations/{location_id}", b'{"type": "store"}', [("Content-Type", content_type)])

    assert (status, json.loads(payload)["error"]["details"][0]["code"]) == (422, "json_invalid")
    assert as_json[0] == 201


LARGE_NUMBERS = [2**63, 2**64, 10**38, 10**39, -1]


@pytest.mark.parametrize("number", LARGE_NUMBERS)
def test_numbers_past_2_63_are_422_where_a_field_has_no_smaller_limit(api: Gateway, number: int) -> None:
    """`shipments_included_through` had no upper bound: 2^200 was a 500 (DynamoDB refuses past 38
    digits) and 10^37 was stored, a figure no ERP sends."""
    location_id = new_location(api)
    body = {
        "import_id": "big",
        "kind": "partial",
        "shipments_included_through": number,
        "items": [{"product_id": "p", "quantity": 1}],
    }

    answer = api.call("POST", f"/locations/{location_id}/stock-imports", body)

    assert refusal(answer)[2] == [
        ("body.shipments_included_through", "less_than" if number > 0 else "greater_than_equal")
    ]
    assert api.call("GET", f"/locations/{location_id}/stock-imports/big")[0] == 404


def test_the_largest_logical_timestamp_is_taken(api: Gateway) -> None:
    location_id = new_location(api)
    body = {
        "import_id": "edge",
        "kind": "partial",
        "shipments_included_through": 2**63 - 1,
        "items": [{"product_id": "p", "quantity": 1}],
    }

    status, accepted = api.call("POST", f"/locations/{location_id}/stock-imports", body)

    assert (status, accepted["shipments_included_through"]) == (202, 2**63 - 1)
    assert api.run_import(location_id, "edge")["status"] == "completed"


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", 2**63), ("quantity", 10**39), ("quantity", -(2**63) - 1), ("quantity", 1.0), ("quantity", True)],
)
def test_quantities_out_of_range_or_of_another_type_are_422(api: Gateway, field: str, value: Any) -> None:
    location_id = new_location(api)
    item = {"product_id": "p", "quantity": 1} | {field: value}

    imported = api.call(
        "POST", f"/locations/{location_id}/stock-imports", {"import_id": "q", "kind": "partial", "items": [item]}
    )
    allocated = api.call(
        "POST", f"/locations/{location_id}/allocations", {"allocation_id": "q", "order_id": "o", "items": [item]}
    )

    assert refusal(imported)[2][0][0] == f"body.items[0].{field}"
    assert refusal(allocated)[2][0][0] == f"body.items[0].{field}"


# ------------------------------------------------------------------ text: unicode yes, control characters no


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_names_and_order_ids_refuse_control_characters(api: Gateway, control: str) -> None:
    """A location's name and an order id are shown and exported: a NUL, an escape or a newline in
    them was stored as sent."""
    location_id = next(_names)
    stocked_at = new_location(api, allow_backorders=True)

    named = api.call("PUT", f"/locations/{location_id}", {"type": "store", "name": f"Main{control}Street"})
    ordered = api.call(
        "POST",
        f"/locations/{stocked_at}/allocations",
        {"allocation_id": "c-1", "order_id": f"o{control}1", "items": [{"product_id": "p", "quantity": 1}]},
    )

    assert refusal(named)[2] == [("body.name", "string_pattern_mismatch")]
    assert refusal(ordered)[2] == [("body.order_id", "string_pattern_mismatch")]
    assert api.call("GET", f"/locations/{location_id}")[0] == 404
    assert api.call("GET", f"/locations/{stocked_at}/allocations/c-1")[0] == 404


def test_unicode_beyond_ascii_is_kept_exactly(api: Gateway) -> None:
    name = "Zürich Hauptbahnhof 🚉 \u200b中央 \u2028 \U0001d518\U0001d52b\U0001d526"  # Fraktur letters
    location_id = next(_names)

    created = api.call("PUT", f"/locations/{location_id}", {"type": "store", "name": name})

    assert (created[0], created[1]["name"]) == (201, name)
    assert api.call("GET", f"/locations/{location_id}")[1]["name"] == name


# ------------------------------------------------------------------ import files built to hurt the worker

FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","y")', "\t=1"]


def import_file(api: Gateway, local_aws: Any, location_id: str, name: str, data: bytes) -> Any:
    bucket = local_aws.name("ImportBucket")
    local_aws.client("s3").put_object(Bucket=bucket, Key=f"uploads/{location_id}/{name}", Body=data)
    import_id = next(_names)
    body = {"import_id": import_id, "kind": "partial", "source": f"s3://{bucket}/uploads/{location_id}/{name}"}
    status, accepted = api.call("POST", f"/locations/{location_id}/stock-imports", body)
    assert status == 202, accepted
    return api.run_import(location_id, import_id)


def csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_formula_cells_as_product_ids_are_stored_as_plain_text(api: Gateway, local_aws: Any, file_format: str) -> None:
    """Nothing this service writes is a spreadsheet (answers are JSON, exports JSON Lines), so a
    cell that a spreadsheet would run is an ordinary product id: stored and shown exactly as sent."""
    location_id = new_location(api)
    ids = [formula for formula in FORMULAS if not formula.startswith("\t")]
    if file_format == "csv":
        data = "product_id,quantity\n" + "".join(f"{csv_cell(pid)},{n}\n" for n, pid in enumerate(ids, 1))
    else:
        data = "".join(json.dumps({"product_id": pid, "quantity": n}) + "\n" for n, pid in enumerate(ids, 1))

    done = import_file(api, local_aws, location_id, f"formulas.{file_format}", data.encode())

    assert done["status"] == "completed", done
    for n, product_id in enumerate(ids, 1):
        product = api.call("GET", f"/locations/{location_id}/stock/{path_of(product_id)}")[1]
        assert (product["product_id"], product["stock_on_hand"]) == (product_id, n)


BAD_FILES = [
    # (what, file name, content, the line and code of the first error)
    ("a NUL byte in a CSV cell", "nul.csv", b"product_id,quantity\nok,1\nSKU\x001,2\n", (3, "invalid_product_id")),
    (
        "a NUL byte in a JSON line",
        "nul.jsonl",
        b'{"product_id": "ok", "quantity": 1}\n{"product_id": "a\x00b", "quantity": 2}\n',
        (2, "invalid_json"),
    ),
    (
        "an escaped NUL in a JSON line",
        "nul-escaped.jsonl",
        b'{"product_id": "ok", "quantity": 1}\n{"product_id": "a\\u0000b", "quantity": 2}\n',
        (2, "invalid_product_id"),
    ),
    ("a tab-led formula", "tab.csv", b'product_id,quantity\nok,1\n"\t=1",2\n', (3, "invalid_product_id")),
    (
        "a lone surrogate",
        "surrogate.jsonl",
        b'{"product_id": "ok", "quantity": 1}\n{"product_id": "\\ud800", "quantity": 2}\n',
        (2, "invalid_product_id"),
    ),
    (
        "a 1 MB line",
        "long.jsonl",
        b'{"product_id": "ok", "quantity": 1}\n{"product_id": "' + b"x" * (1 << 20) + b'", "quantity": 2}\n',
        (2, "line_too_long"),
    ),
    ("a 1 MB CSV line", "long.csv", b"product_id,quantity\nok,1\n" + b"y" * (1 << 20) + b",2\n", (3, "line_too_long")),
    (
        "the same key twice",
        "twice.jsonl",
        b'{"product_id": "ok", "quantity": 1}\n{"product_id": "p", "quantity": 1, "quantity": 5}\n',
        (2, "duplicate_key"),
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "first_error"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_a_hostile_line_fails_the_import_naming_it_and_changes_nothing(
    api: Gateway, local_aws: Any, name: str, data: bytes, first_error: tuple[int, str]
) -> None:
    location_id = new_location(api)
    import_stock(api, location_id, [{"product_id": "ok", "quantity": 7}])

    done = import_file(api, local_aws, location_id, name, data)

    assert done["status"] == "failed", done
    assert (done["errors"][0]["line"], done["errors"][0]["code"]) == first_error
    assert api.call("GET", f"/locations/{location_id}/stock/ok")[1]["stock_on_hand"] == 7


def gzip_bomb(line: bytes, gigabytes: int) -> bytes:
    member = gzip.compress(line * ((64 << 20) // len(line)), 9)  # 64 MiB inflated, about 64 KiB
    return member * (gigabytes * 16)


@pytest.mark.parametrize(
    ("line", "code", "errors"),
    [
        (b"product_id,quantity\n", "invalid_header", 1),
        (b"not,valid,row\n", "invalid_row", 100),
        (b"\n", "inflation_limit", 1),
    ],
    ids=["invalid rows", "bad header", "blank lines"],
)
def test_a_gzip_bomb_stops_being_read_at_its_100th_invalid_row_or_its_inflation(
    api: Gateway, local_aws: Any, line: bytes, code: str, errors: int
) -> None:
    # Given a location with stock, and a 4 MB file that inflates to 4 GiB
    location_id = new_location(api)
    import_stock(api, location_id, [{"product_id": "ok", "quantity": 7}])
    header = b"product_id,quantity\n" if line != b"product_id,quantity\n" else b"bad header\n"
    bomb = gzip.compress(header) + gzip_bomb(line, 4)

    # When it is imported
    done = import_file(api, local_aws, location_id, "bomb.csv.gz", bomb)

    # Then the import failed at once, saying why, and nothing changed
    assert done["status"] == "failed", done
    assert {e["code"] for e in done["errors"]} == {code}
    assert len(done["errors"]) == errors
    assert api.call("GET", f"/locations/{location_id}/stock/ok")[1]["stock_on_hand"] == 7


SOURCES = [
    # (what, the source given, the key written in the import bucket (None: no file), the answer)
    ("a bracket in the bucket", "s3://bucket[/x.csv", None, 422),
    ("an IPv6 host", "s3://[::1]/x.csv", None, 422),
    ("upper case in the bucket", "s3://Imports/x.csv", None, 422),
    ("'#', '?' and brackets in the key", "s3://{bucket}/up/a#b?c[d].jsonl", "up/a#b?c[d].jsonl", 202),
    ("a NUL in the key", "s3://{bucket}/nul\x00key.csv", None, 422),
    ("a key longer than S3 takes", "s3://{bucket}/" + "k" * 2000, None, 422),
]


@pytest.mark.parametrize(("source", "key", "status"), [case[1:] for case in SOURCES], ids=[case[0] for case in SOURCES])
def test_a_source_is_the_object_it_names_or_a_422(
    api: Gateway, local_aws: Any, source: str, key: str | None, status: int
) -> None:
    """`source` was read as a URL: a '[' was a 500 (urlparse's "Invalid IPv6 URL"), and a key
    holding '#' or '?' named another object (what precedes them)."""
    location_id = new_location(api)
    bucket = local_aws.name("ImportBucket")
    if key is not None:
        local_aws.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"product_id": "p", "quantity": 3}\n')

    answer = api.call(
        "POST",
        f"/locations/{location_id}/stock-imports",
        {"import_id": "src", "kind": "partial", "source": source.format(bucket=bucket)},
    )

    if status == 422:
        assert refusal(answer)[:2] == (422, "validation_error")
        assert api.call("GET", f"/locations/{location_id}/stock-imports/src")[0] == 404
    else:
        assert answer[0] == 202, answer
        assert api.run_import(location_id, "src")["status"] == "completed"
        assert api.call("GET", f"/locations/{location_id}/stock/p")[1]["stock_on_hand"] == 3
