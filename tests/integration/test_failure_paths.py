"""Failure paths that used to lose work or leave traces, through the real handlers on the local
backends, with faults injected at the DynamoDB client's boundary (tests/faults.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import pytest

from inventory.adapters.dynamodb.keys import location_key, location_pk
from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler, sqs_event
from tests.faults import Faults, item_key
from tests.integration.conftest import shared_repository

pytestmark = pytest.mark.integration


def call(
    handler: Any, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = handler.lambda_handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def import_steps(local_aws: LocalAws, wanted: str, seconds: float = 30) -> list[dict[str, Any]]:
    """The import queue's messages whose body names `wanted`, taken off the queue (as Lambda's
    poller would); other tests' messages are left there."""
    sqs = local_aws.client("sqs")
    url = local_aws.queue_url("ImportQueue")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        taken = [m for m in messages if wanted in unquote_plus(m["Body"])]  # S3 encodes the keys it names
        for message in messages:
            if message in taken:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        if taken:
            return taken
    return []


def started_import(local_aws: LocalAws, location_id: str, quantity: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """An initial import of one product accepted at a new store; its body, and the delivery of its
    first step to the worker (taken off the queue)."""
    body = {
        "import_id": "load-1",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "p1", "quantity": quantity}],
    }
    assert call(load_handler("stock_imports"), "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    (step,) = import_steps(local_aws, f'"location_id":"{location_id}"')
    return body, sqs_event([step], local_aws.arn("ImportQueue"))


def ends_import_at(location_id: str) -> Any:
    """The write that ends an import on its location: releases the claim, makes the rows visible."""

    def match(params: Mapping[str, Any]) -> bool:
        names = set(params.get("ExpressionAttributeNames", {}).values())
        location = location_key(location_id)
        return item_key(params) == (location["pk"], location["sk"]) and {"running_import_id", "last_import"} <= names

    return match


@pytest.mark.parametrize("fault", ["throttled", "timeout"])
def test_an_import_whose_location_write_fails_at_completion_completes_on_redelivery(
    local_aws: LocalAws, faults: Faults, fault: Any
) -> None:
    """Given an import whose record is marked completed but whose location write (the claim released,
    the rows visible) is throttled or times out, the queue's redelivery finishes it: the rows are
    visible, the location takes the next import, and `Stock Imported` is recorded once."""
    location_id = f"end-fails-{fault}"
    imports, worker, stock = load_handler("stock_imports"), load_handler("stock_import_worker"), load_handler("stock")
    body, event = started_import(local_aws, location_id, quantity=7)
    armed = faults.inject("UpdateItem", fault, match=ends_import_at(location_id))

    with pytest.raises(Exception, match="failed processing"):  # the batch failed: the queue delivers it again
        worker.lambda_handler(event, FakeContext(remaining_ms=300_000))
    assert armed.fired == 1
    status_after_fault = call(imports, "GET", f"/locations/{location_id}/stock-imports/load-1")[1]["status"]
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert worker.lambda_handler(event, FakeContext(remaining_ms=300_000)) == {"batchItemFailures": []}

    # Until the location's write makes its rows visible, a reader is told the import still runs (a
    # timed-out write was applied: its rows are visible, and it is completed).
    assert status_after_fault == ("completed" if fault == "timeout" else "running")
    assert call(stock, "GET", f"/locations/{location_id}/stock/p1")[1]["stock_on_hand"] == 7
    location = call(load_handler("locations"), "GET", f"/locations/{location_id}")[1]
    assert (location["last_import"]["import_id"], location["last_import"]["status"]) == ("load-1", "completed")
    body["import_id"] = "load-2"
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    assert import_steps(local_aws, location_id)  # taken off the queue: nobody runs it
    assert [e.event_id for e in outbox_events("Stock Imported", location_id)] == [imported_event_id(location_id)]


def outbox_events(detail_type: str, location_id: str) -> list[Any]:
    """The events of one type and location still in the outbox (no relay runs in these tests)."""
    repo = shared_repository()
    keys: list[tuple[str, str]] = []
    for shard in range(repo.shards):
        after: tuple[str, str] | None = None
        while True:
            page, after = repo.pending_keys(shard, 1000, after)
            keys += page
            if after is None:
                break
    return [
        event
        for events, _ in repo.read_pending(keys).values()
        for event in events
        if event.detail_type == detail_type and event.detail["location_id"] == location_id
    ]


def imported_event_id(location_id: str, import_id: str = "load-1") -> str:
    from inventory.models import OutboxEvent

    key = f"{location_id}/{import_id}"
    return OutboxEvent.of("Stock Imported", location_id, datetime.now(UTC), {}, key=key).event_id


def test_an_import_abandoned_after_its_record_completed_is_finished_not_failed(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given the completion's location write failing on the queue's last delivery too, the give-up
    path finishes the completion rather than failing an import whose rows are all written."""
    location_id = "end-fails-last"
    imports, worker, stock = load_handler("stock_imports"), load_handler("stock_import_worker"), load_handler("stock")
    body, event = started_import(local_aws, location_id, quantity=4)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    faults.inject("UpdateItem", "throttled", match=ends_import_at(location_id))

    answer = worker.lambda_handler(event, FakeContext(remaining_ms=300_000))

    assert answer == {"batchItemFailures": []}  # nothing to dead-letter: the import is complete
    done = call(imports, "GET", f"/locations/{location_id}/stock-imports/load-1")[1]
    assert (done["status"], done["errors"]) == ("completed", [])
    assert call(stock, "GET", f"/locations/{location_id}/stock/p1")[1]["stock_on_hand"] == 4
    body["import_id"] = "load-2"
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    assert import_steps(local_aws, location_id)  # taken off the queue: nobody runs it


def dead_letters(local_aws: LocalAws, queue: str, wanted: Any, seconds: float = 3) -> list[dict[str, Any]]:
    """The dead-letter queue's messages whose record `wanted(body)` picks, taken off the queue."""
    from tests.integration.test_shipments import receive

    found = []
    for message in receive(local_aws, queue, 100, seconds=seconds):
        dead = json.loads(message["Body"])
        if not isinstance(dead, dict) or "reason" not in dead:
            dead = {"reason": None, "body": message["Body"]}  # moved by the queue's redrive, as it came
        if wanted(dead["body"]):
            found.append(dead)
    return found


def shipped(event_id: str, location: str, occurred_at: str = "2026-11-27T09:00:00Z") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "location_id": location,
        "shipment_id": f"shipment-{event_id}",
        "logical_timestamp": 5,
        "occurred_at": occurred_at,
        "items": [{"product_id": "p1", "quantity": 1}],
    }


def test_a_shipment_dated_without_a_time_zone_is_dead_lettered_at_once_with_its_field(local_aws: LocalAws) -> None:
    """Given an `occurred_at` with no time zone (it used to raise TypeError when compared with the
    clock, and reach the dead-letter queue by redrive five deliveries later, without a reason)."""
    from tests.integration.test_allocations import QUEUE_ARN, from_bus, load

    load("naive-time", {"p1": 3})
    record = from_bus("Fulfillment Items Shipped", shipped("naive-1", "naive-time", "2026-11-27T09:00:00"))

    answer = load_handler("shipment_events").lambda_handler(
        sqs_event([record], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )

    assert answer == {"batchItemFailures": []}
    (dead,) = dead_letters(local_aws, "FulfillmentDeadLetterQueue", lambda body: "naive-1" in body)
    assert dead["reason"]["code"] == "validation_error"
    assert [d["field"] for d in dead["reason"]["details"]] == ["detail.occurred_at"]


def test_a_shipment_throttled_on_its_last_delivery_is_dead_lettered_with_the_reason(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given DynamoDB throttling every write of a shipment, the first deliveries are retried, and the
    last one moves the record to the dead-letter queue itself, saying why (a redrive would not)."""
    from tests.integration.test_allocations import QUEUE_ARN, from_bus, load

    load("throttled-store", {"p1": 3})
    record = from_bus("Fulfillment Items Shipped", shipped("throttled-1", "throttled-store"))
    event = sqs_event([record], QUEUE_ARN)
    faults.inject("PutItem", "throttled", times=10**6)
    handler = load_handler("shipment_events")

    retried = handler.lambda_handler(event, FakeContext(remaining_ms=60_000))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    last = handler.lambda_handler(event, FakeContext(remaining_ms=60_000))

    assert retried == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert last == {"batchItemFailures": []}
    (dead,) = dead_letters(local_aws, "FulfillmentDeadLetterQueue", lambda body: "throttled-1" in body)
    assert dead["reason"]["code"] == "temporarily_unavailable"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"shipments-included-through": "twelve"}, "metadata.shipments-included-through"),
        ({"location-type": "warehouse"}, "metadata.location-type"),
        ({"force": "maybe"}, "metadata.force"),
    ],
)
def test_a_dropped_file_with_malformed_metadata_is_dead_lettered_at_once_and_imports_nothing(
    local_aws: LocalAws, metadata: dict[str, str], field: str
) -> None:
    """Given object metadata the worker cannot read (it used to raise ValueError five times over)."""
    worker = load_handler("stock_import_worker")
    location_id = f"meta-{field.rsplit('.', 1)[1]}"
    call(load_handler("locations"), "PUT", f"/locations/{location_id}", {"type": "store"})
    bucket, key = local_aws.name("ImportBucket"), f"imports/{location_id}/partial/meta-1.csv"
    local_aws.client("s3").put_object(Bucket=bucket, Key=key, Body=b"product_id,quantity\np1,4\n", Metadata=metadata)
    (notification,) = import_steps(local_aws, key)

    answer = worker.lambda_handler(sqs_event([notification], local_aws.arn("ImportQueue")), FakeContext())

    assert answer == {"batchItemFailures": []}
    (dead,) = dead_letters(local_aws, "ImportDeadLetterQueue", lambda body: key in unquote_plus(body))
    assert dead["reason"]["code"] == "validation_error"
    assert [d["field"] for d in dead["reason"]["details"]] == [field]
    assert call(load_handler("stock_imports"), "GET", f"/locations/{location_id}/stock-imports/meta-1")[0] == 404


@pytest.mark.parametrize(
    "body",
    ["not json", "[1]", '{"location_id": "x"}', '{"Records": [{"s3": {"bucket": {}}}]}'],
)
def test_an_import_queue_message_that_is_not_one_is_dead_lettered_at_once(local_aws: LocalAws, body: str) -> None:
    worker = load_handler("stock_import_worker")
    message = {"MessageId": "bad-1", "ReceiptHandle": "r", "Body": body, "MD5OfBody": "0"}

    answer = worker.lambda_handler(sqs_event([message], local_aws.arn("ImportQueue")), FakeContext())

    assert answer == {"batchItemFailures": []}
    (dead,) = dead_letters(local_aws, "ImportDeadLetterQueue", lambda dead_body: dead_body == body)
    assert dead["reason"]["code"] == "validation_error"


def test_an_import_whose_claim_is_throttled_creates_no_location_and_no_file(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given an import that would create its location, and the claim of the location throttled:
    503, and nothing a client can see (the location, the inline file) is left behind."""
    imports = load_handler("stock_imports")
    body = {
        "import_id": "i-1",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "p", "quantity": 1}],
    }

    def claims(params: Mapping[str, Any]) -> bool:
        return item_key(params)[0] == location_pk("claim-throttled")

    faults.inject("UpdateItem", "throttled", match=claims)
    status, answer = call(imports, "POST", "/locations/claim-throttled/stock-imports", body)

    assert (status, answer["error"]["code"]) == (503, "temporarily_unavailable")
    assert call(load_handler("locations"), "GET", "/locations/claim-throttled")[0] == 404
    files = local_aws.client("s3").list_objects_v2(
        Bucket=local_aws.name("ImportBucket"), Prefix="inline/claim-throttled/"
    )
    assert files.get("KeyCount", 0) == 0
    assert faults.writes() == ["UpdateItem"]  # the refused claim, and nothing else
    assert call(imports, "POST", "/locations/claim-throttled/stock-imports", body)[0] == 202  # the retry
    assert import_steps(local_aws, "claim-throttled")


def test_an_allocation_short_on_the_first_read_writes_nothing(local_aws: LocalAws, faults: Faults) -> None:
    """Given 2 units and an API allocation of 3 with another product that has enough: 409, and no
    write at all (no pending record, no counters opened and released)."""
    from tests.integration.test_allocations import load

    load("short-first", {"few": 2, "many": 50})
    allocations = load_handler("allocations")
    body = {
        "allocation_id": "a-1",
        "order_id": "o-1",
        "items": [{"product_id": "many", "quantity": 1}, {"product_id": "few", "quantity": 3}],
    }
    faults.calls.clear()

    status, answer = call(allocations, "POST", "/locations/short-first/allocations", body)

    assert (status, answer["error"]["code"]) == (409, "insufficient_stock")
    assert [(d["product_id"], d["available"]) for d in answer["error"]["details"]] == [("few", 2)]
    assert faults.writes() == []
    assert call(allocations, "GET", "/locations/short-first/allocations/a-1")[0] == 404


def test_a_location_put_again_unchanged_writes_nothing(local_aws: LocalAws, faults: Faults) -> None:
    locations = load_handler("locations")
    body = {"type": "store", "name": "Main Street", "default_safety_stock": 2}
    status, created = call(locations, "PUT", "/locations/put-twice", body)
    faults.calls.clear()

    again = call(locations, "PUT", "/locations/put-twice", body)
    partial = call(locations, "PUT", "/locations/put-twice", {"type": "store", "name": "Main Street"})

    assert status == 201
    assert again == (200, created)
    assert partial == (200, created)
    assert faults.writes() == []
    changed = call(locations, "PUT", "/locations/put-twice", {"type": "store", "name": "High Street"})
    assert (changed[0], changed[1]["name"], faults.writes()) == (200, "High Street", ["UpdateItem"])


def test_an_import_whose_row_batches_come_back_half_unprocessed_writes_every_row_once(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given DynamoDB answering every `BatchWriteItem` of an import with half its rows unprocessed
    (as it does for a partition over its throughput), the worker writes the rest again until none is
    left: the import completes with every row, each with its own quantity."""
    location_id = "unprocessed-rows"
    rows = [{"product_id": f"p{n:03d}", "quantity": n} for n in range(240)]
    body = {"import_id": "load-1", "kind": "initial", "location_type": "store", "items": rows}
    assert call(load_handler("stock_imports"), "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    (step,) = import_steps(local_aws, f'"location_id":"{location_id}"')
    armed = faults.inject("BatchWriteItem", "unprocessed", times=10**6)

    answer = load_handler("stock_import_worker").lambda_handler(
        sqs_event([step], local_aws.arn("ImportQueue")), FakeContext(remaining_ms=300_000)
    )

    faults.disarm()
    assert answer == {"batchItemFailures": []}
    assert armed.fired >= 240 // 25  # every batch, and the batches of what came back
    record = call(load_handler("stock_imports"), "GET", f"/locations/{location_id}/stock-imports/load-1")[1]
    assert (record["status"], record["counts"]["rows"], record["counts"]["applied"]) == ("completed", 240, 240)
    stock = load_handler("stock")
    for n in (0, 1, 24, 25, 26, 199, 239):
        assert call(stock, "GET", f"/locations/{location_id}/stock/p{n:03d}")[1]["stock_on_hand"] == n


def test_an_allocation_whose_reads_come_back_half_unprocessed_opens_once_with_the_right_figures(
    local_aws: LocalAws, faults: Faults
) -> None:
    """Given every `BatchGetItem` answered with half its keys unprocessed, an allocation of four
    products reads the rest again: it opens once, and each product's availability is right."""
    from tests.integration.test_allocations import load

    products = {"u1": 5, "u2": 6, "u3": 7, "u4": 8}
    load("unprocessed-keys", products)
    allocations, stock = load_handler("allocations"), load_handler("stock")
    body = {
        "allocation_id": "a-1",
        "order_id": "o-1",
        "items": [{"product_id": product, "quantity": 2} for product in products],
    }
    armed = faults.inject("BatchGetItem", "unprocessed", times=10**6)

    status, answer = call(allocations, "POST", "/locations/unprocessed-keys/allocations", body)
    availability = {
        product: call(stock, "GET", "/locations/unprocessed-keys/availability", query={"product_id": product})
        for product in products
    }

    faults.disarm()
    assert status == 201, answer
    assert armed.fired >= 1
    assert call(allocations, "GET", "/locations/unprocessed-keys/allocations/a-1")[1]["status"] == "open"
    for product, quantity in products.items():
        (row,) = availability[product][1]["items"]
        assert (row["stock_on_hand"], row["allocated"]) == (quantity, 2), product
