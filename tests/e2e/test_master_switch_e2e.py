"""The switch over HTTP against the running local stack, the way a client uses it."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.models import ImportKind, ImportStatus
from inventory.models.imports import ImportCounts, ImportRecord
from tests.e2e.conftest import Api, RunningStack, drain

pytestmark = pytest.mark.e2e


def seed_completed_import(stack: RunningStack, location_id: str, kind: ImportKind = ImportKind.INITIAL) -> None:
    """What the stock-import pipeline records when an import completes, written through the adapter."""
    client = stack.client("dynamodb")
    repo = DynamoDbRepository(stack.table, client=client)
    now = datetime.now(UTC)
    repo.begin_import(
        ImportRecord(
            location_id=location_id,
            import_id=f"{location_id}-i1",
            kind=kind,
            status=ImportStatus.ACCEPTED,
            content_hash="h",
            accepted_at=now,
        )
    )
    repo.complete_import(location_id, f"{location_id}-i1", completed_at=now, counts=ImportCounts(rows=3, applied=3))


def switch_events(events: list[dict[str, Any]], location_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["detail-type"] == "Inventory Master Switched" and e["detail"]["location_id"] == location_id
    ]


def test_a_store_switches_once_after_an_import_and_never_back(stack: RunningStack, bus_queue: Any) -> None:
    api = stack.api
    assert api.call("PUT", "/locations/e2e-store", {"type": "store", "name": "Main Street"})[0] == 201
    assert api.call("PUT", "/locations/e2e-dc", {"type": "dc"})[0] == 201

    status, body = api.call("PUT", "/locations/e2e-dc/inventory-master", {"inventory_master": "platform"})
    assert (status, body["error"]["code"]) == (409, "location_is_dc")

    status, body = api.call("PUT", "/locations/e2e-store/inventory-master", {"inventory_master": "platform"})
    assert (status, body["error"]["code"]) == (409, "not_ready")
    assert [d["code"] for d in body["error"]["details"]] == ["no_completed_import"]

    seed_completed_import(stack, "e2e-store")
    status, readiness = api.call("GET", "/locations/e2e-store/inventory-master/readiness")
    assert (status, readiness["ready"], readiness["reasons"]) == (200, True, [])

    status, switched = api.call("PUT", "/locations/e2e-store/inventory-master", {"inventory_master": "platform"})
    assert (status, switched["inventory_master"]) == (200, "platform")
    assert switched["master_switched_by"].startswith("arn:aws:iam::")
    status, again = api.call("PUT", "/locations/e2e-store/inventory-master", {"inventory_master": "platform"})
    assert (status, again["master_switched_at"]) == (200, switched["master_switched_at"])
    status, body = api.call("PUT", "/locations/e2e-store/inventory-master", {"inventory_master": "erp"})
    assert (status, body["error"]["code"]) == (409, "switch_irreversible")
    status, location = api.call("GET", "/locations/e2e-store")
    assert (location["inventory_master"], location["last_import"]["status"]) == ("platform", "completed")

    events = drain(bus_queue, lambda seen: switch_events(seen, "e2e-store"), seconds=90)
    [event] = switch_events(events, "e2e-store")
    assert event["source"] == "inventory-master"
    assert event["detail"]["master_switched_at"] == switched["master_switched_at"]


def _one_request(args: tuple[str, str, int]) -> tuple[int, str | None, str | None]:
    url, target, _ = args
    api = Api(url)
    status, body = api.call("PUT", "/locations/race-store/inventory-master", {"inventory_master": target})
    if status == 200:
        return status, body["inventory_master"], body["master_switched_at"]
    return status, body["error"]["code"], None


def test_fifty_concurrent_switch_and_revert_requests_switch_once(stack: RunningStack, bus_queue: Any) -> None:
    """Served by dynalite, which applies concurrent conditional writes correctly."""
    api = stack.api
    api.call("PUT", "/locations/race-store", {"type": "store"})
    seed_completed_import(stack, "race-store")
    requests = [(api.url, "platform" if n % 2 == 0 else "erp", n) for n in range(50)]

    with ProcessPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(_one_request, requests))

    switched_at = {at for status, master, at in answers if status == 200 and master == "platform"}
    assert len(switched_at) == 1
    assert {(status, code) for status, code, _ in answers if status != 200} <= {(409, "switch_irreversible")}
    assert api.call("GET", "/locations/race-store")[1]["inventory_master"] == "platform"
    events = drain(bus_queue, lambda seen: False, seconds=8)  # long enough for any duplicate to show
    assert len(switch_events(events, "race-store")) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/locations/bad%20id", {"type": "store"}, "path.location_id"),
        ("PUT", "/locations/" + "x" * 65, {"type": "store"}, "path.location_id"),
        ("PUT", "/locations/e2e-bad", {"type": "store", "colour": "red"}, "body.colour"),
        ("PUT", "/locations/e2e-bad", {"type": "store", "enabled": "yes"}, "body.enabled"),
        ("PUT", "/locations/e2e-bad", {"type": "store", "default_safety_stock": -1}, "body.default_safety_stock"),
        ("PUT", "/locations/e2e-bad", {"type": "store", "inventory_master": "platform"}, "body.inventory_master"),
        ("PUT", "/locations/e2e-bad", {"type": "shop"}, "body.type"),
        ("PUT", "/locations/e2e-bad/inventory-master", {"inventory_master": "sap"}, "body.inventory_master"),
        ("GET", "/locations?limit=0", None, "query.limit"),
        ("GET", "/locations?limit=1001", None, "query.limit"),
    ],
)
def test_invalid_input_is_a_422_naming_the_field_and_writes_nothing(
    stack: RunningStack, method: str, path: str, body: Any, field: str
) -> None:
    status, answer = stack.api.call(method, path, body)

    assert status == 422
    assert answer["error"]["code"] == "validation_error"
    assert field in {detail["field"] for detail in answer["error"]["details"]}
    assert stack.api.call("GET", "/locations/e2e-bad")[0] == 404


def test_malformed_json_is_a_422(stack: RunningStack) -> None:
    status, answer = stack.api.call("PUT", "/locations/e2e-bad", raw=b'{"type": "store",')

    assert (status, answer["error"]["code"]) == (422, "validation_error")
    assert answer["error"]["details"][0]["field"] == "body"


def test_a_body_over_5_mb_is_a_413_and_writes_nothing(stack: RunningStack) -> None:
    padding = "x" * (5 * 1024 * 1024)
    status, answer = stack.api.call(
        "PUT", "/locations/e2e-big", raw=('{"type": "store", "name": "' + padding + '"}').encode()
    )

    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
    assert stack.api.call("GET", "/locations/e2e-big")[0] == 404


def test_an_unknown_route_is_the_contract_404(stack: RunningStack) -> None:
    status, answer = stack.api.call("GET", "/warehouses")

    assert (status, answer["error"]["code"]) == (404, "not_found")


def test_the_openapi_document_is_served(stack: RunningStack) -> None:
    status, document = stack.api.call("GET", "/openapi.json")

    assert status == 200
    assert "/locations/{location_id}/inventory-master" in document["paths"]


def test_locations_list_pages(stack: RunningStack) -> None:
    for n in range(3):
        stack.api.call("PUT", f"/locations/page-{n}", {"type": "store"})
    seen: list[str] = []
    path = "/locations?limit=2"
    started = time.monotonic()
    while path and time.monotonic() - started < 30:
        status, page = stack.api.call("GET", path)
        assert status == 200
        seen += [item["location_id"] for item in page["items"]]
        path = f"/locations?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert {"page-0", "page-1", "page-2"} <= set(seen)
    assert len(seen) == len(set(seen))
