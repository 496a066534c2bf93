"""Shipment events from the bus, through the rule and the queue the template declares, to the real
handler on dynalite: applied once, and a poison record dead-lettered with its reason while its
batch-mates apply."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler, sqs_event

pytestmark = pytest.mark.integration


def put_on_bus(local_aws: LocalAws, detail: dict[str, Any], detail_type: str = "Fulfillment Items Shipped") -> None:
    result = local_aws.client("events").put_events(
        Entries=[
            {
                "Source": "fulfilment",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": local_aws.name("InventoryBus"),
            }
        ]
    )
    assert result["FailedEntryCount"] == 0


def receive(local_aws: LocalAws, logical_id: str, wanted: int, seconds: float = 10) -> list[dict[str, Any]]:
    sqs, url = local_aws.client("sqs"), local_aws.queue_url(logical_id)
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while len(messages) < wanted and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += batch
    return messages


def detail(event_id: str, quantity: Any = 1, product: str = "ship-a", location: str = "ship-store") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "location_id": location,
        "shipment_id": f"shipment-{event_id}",
        "logical_timestamp": 50,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": [{"product_id": product, "quantity": quantity}],
    }


def soh(product: str) -> int:
    response = load_handler("stock").lambda_handler(
        http_event("GET", f"/locations/ship-store/stock/{product}"), FakeContext()
    )
    return int(json.loads(response["body"])["stock_on_hand"])


def test_shipments_from_the_bus_apply_once_and_a_poison_record_is_dead_lettered_with_its_reason(
    local_aws: LocalAws,
) -> None:
    imports, worker = load_handler("stock_imports"), load_handler("stock_import_worker")
    body = {
        "import_id": "ship-load",
        "kind": "initial",
        "location_type": "store",
        "shipments_included_through": 10,
        "items": [{"product_id": "ship-a", "quantity": 10}, {"product_id": "ship-b", "quantity": 10}],
    }
    assert (
        imports.lambda_handler(http_event("POST", "/locations/ship-store/stock-imports", body), FakeContext())[
            "statusCode"
        ]
        == 202
    )
    ours = False  # other tests may have left their import messages on the queue (they ran theirs directly)
    for _ in range(10):
        for message in receive(local_aws, "ImportQueue", 1):
            worker.lambda_handler(sqs_event([message], local_aws.arn("ImportQueue")), FakeContext(remaining_ms=300_000))
            ours = ours or json.loads(message["Body"]).get("import_id") == "ship-load"
        if ours:
            break
    assert ours
    shipments = load_handler("shipment_events")

    put_on_bus(local_aws, detail("e1", 3))
    put_on_bus(local_aws, detail("e2", 0, product="ship-b"))  # quantity 0: can never succeed
    put_on_bus(local_aws, detail("e3", 2, product="ship-b"), "Fulfillment Items Handed Over")
    batch = receive(local_aws, "FulfillmentQueue", 3)
    assert len(batch) == 3
    event = sqs_event(batch, local_aws.arn("FulfillmentQueue"))

    assert shipments.lambda_handler(event, FakeContext(remaining_ms=60_000)) == {"batchItemFailures": []}
    assert shipments.lambda_handler(event, FakeContext(remaining_ms=60_000)) == {
        "batchItemFailures": []
    }  # delivered again

    assert (soh("ship-a"), soh("ship-b")) == (7, 8)
    dead = [
        m  # once per delivery of the poison record (other tests' records may be there too)
        for m in receive(local_aws, "FulfillmentDeadLetterQueue", 3, seconds=3)
        if json.loads(json.loads(m["Body"])["body"])["detail"]["event_id"] == "e2"
    ]
    assert len(dead) == 2
    for message in dead:
        reason = json.loads(message["Body"])["reason"]
        assert reason["code"] == "validation_error"
        assert reason["details"][0]["field"] == "detail.items[0].quantity"


def test_a_line_that_would_overfill_its_product_record_is_dead_lettered_with_its_reason(local_aws: LocalAws) -> None:
    from inventory.adapters.dynamodb.keys import counters_key
    from inventory.settings import TableSettings, settings_of
    from tests.integration.test_allocations import QUEUE_ARN, availability, from_bus, load

    location = f"full-{uuid.uuid4().hex[:8]}"
    load(location, {"full": 5, "fine": 5})
    key = counters_key(location, "full")
    item = {"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}, "version": {"N": "1"}, "stock_version": {"N": "0"}}
    # as if years of entries filled it: the next write would pass 400 KB
    local_aws.client("dynamodb").put_item(
        TableName=settings_of(TableSettings).table_name, Item={**item, "filler": {"S": "x" * 409_100}}
    )
    records = [
        from_bus("Fulfillment Items Shipped", {**detail("full-1", 1, "full", location)}, "m-full"),
        from_bus("Fulfillment Items Shipped", {**detail("fine-1", 1, "fine", location)}, "m-fine"),
    ]

    answer = load_handler("shipment_events").lambda_handler(
        sqs_event(records, QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )

    assert answer == {"batchItemFailures": []}  # dead-lettered at once: no retry can make room
    assert (availability(location, "full")["stock_on_hand"], availability(location, "fine")["stock_on_hand"]) == (5, 4)
    dead = [
        json.loads(m["Body"])
        for m in receive(local_aws, "FulfillmentDeadLetterQueue", 5, seconds=3)
        if json.loads(json.loads(m["Body"])["body"])["detail"]["event_id"] == "full-1"
    ]
    assert [d["reason"]["code"] for d in dead] == ["item_too_large"]
