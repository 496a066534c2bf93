"""Allocations and availability through the real handlers on dynalite; and the races of I3 and I2
with callers in processes of their own that really run at once (dynalite applies concurrent
conditional writes correctly: docs/data-design.md has the measurements)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from inventory.adapters.dynamodb.keys import PRODUCT_PREFIX
from inventory.errors import TemporarilyUnavailable
from inventory.figures import CHANGES_PER_EPOCH
from inventory.settings import TableSettings, settings_of
from inventory.settings.shipment_events import ShipmentEventsSettings
from inventory.settings.stock_import_worker import StockImportWorkerSettings
from tests.conftest import FakeContext, http_event, load_handler, sqs_event
from tests.integration.conftest import shared_repository
from tests.integration.test_outbox_relay import received

pytestmark = [pytest.mark.integration, pytest.mark.long]
CALLERS = 16


def call(
    function: str, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = load_handler(function).lambda_handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def load(location: str, stock: dict[str, int], **settings: Any) -> None:
    """A store whose initial import, run by the real worker, gave it `stock`."""
    assert call("locations", "PUT", f"/locations/{location}", {"type": "store", **settings})[0] in (200, 201)
    body = {
        "import_id": "load",
        "kind": "initial",
        "items": [{"product_id": p, "quantity": q} for p, q in stock.items()],
    }
    status, record = call("stock_imports", "POST", f"/locations/{location}/stock-imports", body)
    if status == 200:  # loaded by an earlier test of this module
        return
    assert status == 202, record
    from inventory import wiring

    worker = wiring.import_runner(settings_of(StockImportWorkerSettings))  # the worker's, on the same backends
    assert worker.run(location, "load", lambda: 10**9).value == "completed"


def availability(location: str, product: str) -> dict[str, Any]:
    status, page = call("stock", "GET", f"/locations/{location}/availability", query={"product_id": product})
    assert status == 200, page
    (row,) = page["items"]
    return dict(row)


def test_allocate_read_and_release_over_the_handlers() -> None:
    load("alloc-api", {"a": 5, "b": 1})
    body = {"allocation_id": "al-1", "order_id": "o-1", "items": [{"product_id": "a", "quantity": 2}]}

    created = call("allocations", "POST", "/locations/alloc-api/allocations", body)
    repeated = call("allocations", "POST", "/locations/alloc-api/allocations", body)
    reused = call("allocations", "POST", "/locations/alloc-api/allocations", {**body, "order_id": "o-2"})
    short = call(
        "allocations",
        "POST",
        "/locations/alloc-api/allocations",
        {
            "allocation_id": "al-2",
            "order_id": "o-2",
            "items": [{"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 2}],
        },
    )

    assert created[0] == 201
    assert created[1]["status"] == "open"
    assert created[1]["items"] == [{"product_id": "a", "quantity": 2, "open": 2}]
    assert repeated == (200, created[1])
    assert (reused[0], reused[1]["error"]["code"]) == (409, "allocation_id_reused")
    assert (short[0], short[1]["error"]["code"]) == (409, "insufficient_stock")
    assert short[1]["error"]["details"][0]["product_id"] == "b"
    assert call("allocations", "GET", "/locations/alloc-api/allocations/al-2")[0] == 404  # a refusal leaves nothing
    assert availability("alloc-api", "a") == {
        "product_id": "a",
        "stock_on_hand": 5,
        "allocated": 2,
        "safety_stock": 0,
        "available": 3,
        "uncounted": False,
        "version": CHANGES_PER_EPOCH + 1,  # epoch 1 (the initial import), one write (the opening)
    }

    released = call("allocations", "DELETE", "/locations/alloc-api/allocations/al-1")
    assert released[0] == 200
    assert released[1]["status"] == "released"
    assert released[1]["items"][0]["open"] == 0
    assert availability("alloc-api", "a")["available"] == 5
    assert call("allocations", "DELETE", "/locations/alloc-api/allocations/nope")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allocation_id": "x", "order_id": "o", "items": []}, "body.items"),
        (
            {"allocation_id": "x", "order_id": "o", "items": [{"product_id": "a", "quantity": 0}]},
            "body.items[0].quantity",
        ),
        (
            {"allocation_id": "x", "order_id": "o", "items": [{"product_id": "a", "quantity": "1"}]},
            "body.items[0].quantity",
        ),
        (
            {"allocation_id": "bad id", "order_id": "o", "items": [{"product_id": "a", "quantity": 1}]},
            "body.allocation_id",
        ),
        ({"allocation_id": "x", "order_id": "o", "items": [{"product_id": "a", "quantity": 1}] * 2}, "body.items"),
        (
            {"allocation_id": "x", "order_id": "o", "items": [{"product_id": "a", "quantity": 1}], "extra": 1},
            "body.extra",
        ),
    ],
)
def test_invalid_allocations_are_a_422_naming_the_field_and_write_nothing(body: dict[str, Any], field: str) -> None:
    load("alloc-bad", {"a": 5})
    status, answer = call("allocations", "POST", "/locations/alloc-bad/allocations", body)

    assert status == 422
    assert answer["error"]["code"] == "validation_error"
    assert field in [d["field"] for d in answer["error"]["details"]]
    assert availability("alloc-bad", "a")["allocated"] == 0


QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:local-fulfillmentqueue"


def from_bus(detail_type: str, detail: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    """The SQS message the shipment events rule delivers for an event fulfilment put on the bus."""
    body = json.dumps({"version": "0", "id": "e", "detail-type": detail_type, "source": "oms", "detail": detail})
    md5 = hashlib.md5(body.encode()).hexdigest()
    return {"MessageId": message_id, "ReceiptHandle": "r", "Body": body, "MD5OfBody": md5}


def _allocate_one(location: str, n: int, barrier: Any) -> int:
    barrier.wait()
    body = {"allocation_id": f"race-{n}", "order_id": f"o-{n}", "items": [{"product_id": "last", "quantity": 1}]}
    return call("allocations", "POST", f"/locations/{location}/allocations", body)[0]


def _deliver(shipment: dict[str, Any], barrier: Any) -> dict[str, Any]:
    message = from_bus("Fulfillment Items Shipped", shipment, str(uuid.uuid4()))
    barrier.wait()
    return dict(
        load_handler("shipment_events").lambda_handler(
            sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000)
        )
    )


def test_sixteen_allocations_for_ten_units_at_once_then_one_shipment_sixteen_times_at_once(
    handler_environment: dict[str, str],
) -> None:
    location = f"race-{uuid.uuid4().hex[:8]}"
    load(location, {"last": 10, "free": 10})
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda sandboxes are
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(CALLERS, mp_context=context) as pool:
        barrier = manager.Barrier(CALLERS)
        statuses = list(pool.map(_allocate_one, [location] * CALLERS, range(CALLERS), [barrier] * CALLERS))

        assert sorted(statuses) == [201] * 10 + [409] * 6
        assert availability(location, "last")["allocated"] == 10

        shipment = {
            "event_id": f"ship-{location}",
            "location_id": location,
            "shipment_id": "s-1",
            "logical_timestamp": 1,
            "occurred_at": "2026-11-27T09:00:00Z",
            # "free" has nothing allocated: the first delivery writes its line without reading,
            # racing the redeliveries that read before they write.
            "items": [{"product_id": "last", "quantity": 3}, {"product_id": "free", "quantity": 2}],
        }
        barrier = manager.Barrier(CALLERS)
        answers = list(pool.map(_deliver, [shipment] * CALLERS, [barrier] * CALLERS))

    assert all(answer == {"batchItemFailures": []} for answer in answers)
    figures = availability(location, "last")
    assert (figures["stock_on_hand"], figures["allocated"], figures["available"]) == (7, 7, 0)
    assert availability(location, "free")["stock_on_hand"] == 8
    for product in ("last", "free"):
        status, explained = call("stock", "GET", f"/locations/{location}/stock/{product}")
        assert status == 200
        assert len(explained["ledger"]["items"]) == 1


def relayed(queue: tuple[Any, str], wanted: int) -> list[dict[str, Any]]:
    """Run the relay until `wanted` events reached `queue` (after any backlog), then wait for more."""
    relay, got = load_handler("outbox_relay"), []
    for _ in range(60):
        relay.lambda_handler({}, FakeContext(remaining_ms=5_300))
        got += received(queue, wanted - len(got), seconds=0.5)
        if len(got) >= wanted:
            break
    return got + received(queue, 1, seconds=2)  # and no more


def test_a_refusal_from_the_bus_is_an_allocation_refused_event(listen: Any) -> None:
    load("alloc-bus", {"a": 1})
    refusals = listen("Allocation Refused", "alloc-bus")
    detail = {
        "event_id": "c-1",
        "location_id": "alloc-bus",
        "allocation_id": "bus-1",
        "order_id": "o",
        "items": [{"product_id": "a", "quantity": 2}],
    }
    message = from_bus("Allocation Created", detail)
    handler = load_handler("shipment_events")

    assert handler.lambda_handler(
        sqs_event([message, {**message, "MessageId": "m-2"}], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    ) == {"batchItemFailures": []}
    refused = relayed(refusals, 1)
    assert len(refused) == 1
    assert refused[0]["detail"]["shortages"] == [
        {"product_id": "a", "requested": 2, "available": 1, "uncounted": False}
    ]
    assert call("allocations", "GET", "/locations/alloc-bus/allocations/bus-1")[1]["status"] == "refused"


def test_shipment_applied_is_published_with_the_figures_and_version_of_its_publication(listen: Any) -> None:
    """A line that closes an allocation (read, decide, write) and one of a product nobody imported
    (written without a read): the relay adds each product's figures as it publishes."""
    load("alloc-pub", {"a": 5})
    assert (
        call(
            "allocations",
            "POST",
            "/locations/alloc-pub/allocations",
            {"allocation_id": "al-1", "order_id": "o-1", "items": [{"product_id": "a", "quantity": 2}]},
        )[0]
        == 201
    )
    applied = listen("Shipment Applied", "alloc-pub")
    detail = {
        "event_id": "pub-1",
        "location_id": "alloc-pub",
        "shipment_id": "s-1",
        "logical_timestamp": 1,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": "a", "quantity": 1}, {"product_id": "ghost", "quantity": 1}],
    }
    handler = load_handler("shipment_events")
    message = from_bus("Fulfillment Items Shipped", detail)
    assert handler.lambda_handler(sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000)) == {
        "batchItemFailures": []
    }

    parts = sorted(relayed(applied, 2), key=lambda e: e["detail"]["part"])

    assert [(p["detail"]["part"], p["detail"]["parts"], p["detail"]["source_event_id"]) for p in parts] == [
        (1, 2, "pub-1"),
        (2, 2, "pub-1"),
    ]
    a, ghost = (p["detail"]["products"][0] for p in parts)
    now = availability("alloc-pub", "a")
    assert (a["quantity"], a["stock_on_hand"], a["allocated"], a["available"], a["warnings"]) == (-1, 4, 1, 3, [])
    assert a["version"] == now["version"]
    assert (ghost["stock_on_hand"], ghost["available"]) == (-1, 0)
    assert ghost["warnings"] == ["unknown_product", "negative_stock_on_hand"]


def test_a_record_is_not_started_with_too_little_time_left_and_the_queue_delivers_it_again() -> None:
    load("alloc-late", {"a": 3})
    detail = {
        "event_id": "late-1",
        "location_id": "alloc-late",
        "shipment_id": "s-1",
        "logical_timestamp": 1,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": "a", "quantity": 1}],
    }
    handler = load_handler("shipment_events")
    event = sqs_event([from_bus("Fulfillment Items Shipped", detail, "m-late")], QUEUE_ARN)

    assert handler.lambda_handler(event, FakeContext(remaining_ms=5_000)) == {
        "batchItemFailures": [{"itemIdentifier": "m-late"}]
    }
    assert availability("alloc-late", "a")["stock_on_hand"] == 3
    assert handler.lambda_handler(event, FakeContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert availability("alloc-late", "a")["stock_on_hand"] == 2


def test_a_batch_reads_the_allocations_its_lines_close_in_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines that close allocations must read first: the handler reads them all at once for its batch.
    A read ahead that fails, or that a change made stale, costs time, never a wrong figure."""
    from inventory import wiring

    location = f"ahead-{uuid.uuid4().hex[:8]}"
    load(location, {f"p{n}": 10 for n in range(4)})
    for n in range(4):
        allocation = {
            "allocation_id": f"al-{n}",
            "order_id": f"o-{n}",
            "items": [{"product_id": f"p{n}", "quantity": 2}],
        }
        assert call("allocations", "POST", f"/locations/{location}/allocations", allocation)[0] == 201

    def record(event: str, product: str, quantity: int, allocation: str, at: str = location) -> dict[str, Any]:
        items = [{"product_id": product, "quantity": quantity, "allocation_id": allocation}]
        detail = {"event_id": event, "location_id": at, "shipment_id": event, "logical_timestamp": 1,
                  "occurred_at": "2026-11-27T09:00:00Z", "items": items}  # fmt: skip
        return from_bus("Fulfillment Items Shipped", detail, event)

    handler, reads, counting = load_handler("shipment_events"), [], [True]
    client = shared_repository().client

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if not counting[0]:
            return
        keys = (
            [params["Key"]]
            if "Key" in params
            else [k for t in params.get("RequestItems", {}).values() for k in t["Keys"]]
        )
        if any(key["sk"]["S"].startswith(PRODUCT_PREFIX) for key in keys):
            reads.append(model.name)

    client.meta.events.register("provide-client-params.dynamodb.GetItem", count)
    client.meta.events.register("provide-client-params.dynamodb.BatchGetItem", count)
    try:
        batch = [
            record("e-0", "p0", 2, "al-0"),
            record("e-1", "p1", 1, "al-1"),
            record("e-x", "p0", 1, "al-0", "nowhere"),
        ]
        assert handler.lambda_handler(sqs_event(batch, QUEUE_ARN), FakeContext(remaining_ms=60_000)) == {
            "batchItemFailures": []  # the record of a location that does not exist is dead-lettered
        }
        assert reads == ["BatchGetItem"]

        # A change between the read ahead and the line's write: the write is refused, the line reads again.
        service = wiring.shipment_service(settings_of(ShipmentEventsSettings))  # the handler's
        read_ahead = service.read_ahead

        def then_allocate(shipments: Any) -> None:
            read_ahead(shipments)
            more = {"allocation_id": "al-9", "order_id": "o-9", "items": [{"product_id": "p2", "quantity": 1}]}
            counting[0] = False  # the allocation's own reads
            assert call("allocations", "POST", f"/locations/{location}/allocations", more)[0] == 201
            counting[0] = True

        monkeypatch.setattr(service, "read_ahead", then_allocate)
        reads.clear()
        assert handler.lambda_handler(
            sqs_event([record("e-2", "p2", 1, "al-2")], QUEUE_ARN), FakeContext(remaining_ms=60_000)
        ) == {"batchItemFailures": []}
        assert reads == ["BatchGetItem", "GetItem"]

        def unavailable(shipments: Any) -> None:
            raise TemporarilyUnavailable("throttled")

        monkeypatch.setattr(service, "read_ahead", unavailable)
        reads.clear()
        assert handler.lambda_handler(
            sqs_event([record("e-3", "p3", 2, "al-3")], QUEUE_ARN), FakeContext(remaining_ms=60_000)
        ) == {"batchItemFailures": []}
        assert reads == ["GetItem"]  # the line read for itself
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.GetItem", count)
        client.meta.events.unregister("provide-client-params.dynamodb.BatchGetItem", count)

    figures = [availability(location, f"p{n}") for n in range(4)]
    assert [(f["stock_on_hand"], f["allocated"]) for f in figures] == [(8, 0), (9, 1), (9, 2), (8, 0)]


def test_the_abandoned_requests_run_releases_what_an_api_request_left_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inventory import wiring
    from inventory.models.allocations import AllocationLine
    from inventory.services import allocations
    from inventory.services.allocations import AllocationRequest

    location = f"abandon-{uuid.uuid4().hex[:8]}"
    load(location, {"a": 5})
    repo = wiring.allocation_store(settings_of(TableSettings).table_name)  # what the allocation service writes to

    def time_out(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the function timed out before the allocation was settled")

    monkeypatch.setattr(allocations, "ABANDONED_AFTER", timedelta(0))  # abandoned as soon as it is left
    monkeypatch.setattr(repo, "settle_allocation", time_out)
    request = AllocationRequest("ab-1", "o-1", (AllocationLine(product_id="a", quantity=2),))
    with pytest.raises(ConnectionError):
        wiring.allocation_service(settings_of(TableSettings)).create(location, request, "tester")
    monkeypatch.undo()
    assert availability(location, "a")["allocated"] == 2

    result = load_handler("abandoned_requests").lambda_handler({}, FakeContext(remaining_ms=60_000))

    assert result["released_allocations"] >= 1  # ours, and any other test left
    assert availability(location, "a")["allocated"] == 0
    status, allocation = call("allocations", "GET", f"/locations/{location}/allocations/ab-1")
    assert (status, allocation["status"]) == (200, "released")
    again = load_handler("abandoned_requests").lambda_handler({}, FakeContext(remaining_ms=60_000))
    assert again["released_allocations"] == 0
