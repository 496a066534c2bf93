"""Failure paths that used to lose work or leave traces, through the real handlers on the local
backends, with faults injected at the DynamoDB client's boundary (tests/faults.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from inventory import wiring
from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler, sqs_event
from tests.faults import Faults, faults_on, item_key

pytestmark = pytest.mark.integration


@pytest.fixture
def faults(local_aws: LocalAws) -> Iterator[Faults]:
    """Faults on the DynamoDB client every handler of this process shares."""
    with faults_on(wiring.repository().client) as armed:
        yield armed


def call(handler: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = handler.lambda_handler(http_event(method, path, body), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def import_steps(local_aws: LocalAws, import_id: str) -> list[dict[str, Any]]:
    """The import queue's messages for one import, taken off the queue (as Lambda's poller would)."""
    sqs = local_aws.client("sqs")
    url = local_aws.queue_url("ImportQueue")
    taken = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if import_id in message["Body"]:
                taken.append(message)
            else:  # another test's: back on the queue
                sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
        if taken:
            return taken
    return taken


def ends_import_at(location_id: str) -> Any:
    """The write that ends an import on its location: releases the claim, makes the rows visible."""

    def match(params: Mapping[str, Any]) -> bool:
        names = set(params.get("ExpressionAttributeNames", {}).values())
        return item_key(params) == (f"LOC#{location_id}", "LOCATION") and {"running_import_id", "last_import"} <= names

    return match


@pytest.mark.parametrize("fault", ["throttled", "timeout"])
def test_an_import_whose_location_write_fails_at_completion_completes_on_redelivery(
    local_aws: LocalAws, faults: Faults, fault: Any
) -> None:
    """Given an import whose record is marked completed but whose location write (the claim released,
    the rows visible) is throttled or times out, the queue's redelivery finishes it: the rows are
    visible, the location takes the next import, and `Stock Imported` is recorded once."""
    location_id = f"end-fails-{fault}"
    imports, worker, stock = load_handler("stock_imports"), load_handler("import_worker"), load_handler("stock")
    body = {
        "import_id": "load-1",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "p1", "quantity": 7}],
    }
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    (step,) = import_steps(local_aws, "load-1")
    event = sqs_event([step], local_aws.arn("ImportQueue"))
    armed = faults.inject("UpdateItem", fault, match=ends_import_at(location_id))

    with pytest.raises(Exception, match="failed processing"):  # the batch failed: the queue delivers it again
        worker.lambda_handler(event, FakeContext(remaining_ms=300_000))
    assert armed.fired == 1
    status_after_fault = call(imports, "GET", f"/locations/{location_id}/stock-imports/load-1")[1]["status"]
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert worker.lambda_handler(event, FakeContext(remaining_ms=300_000)) == {"batchItemFailures": []}

    assert status_after_fault == "completed"
    assert call(stock, "GET", f"/locations/{location_id}/stock/p1")[1]["stock_on_hand"] == 7
    location = call(load_handler("locations"), "GET", f"/locations/{location_id}")[1]
    assert (location["last_import"]["import_id"], location["last_import"]["status"]) == ("load-1", "completed")
    body["import_id"] = "load-2"
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    assert [e.event_id for e in outbox_events("Stock Imported", location_id)] == [imported_event_id(location_id)]


def outbox_events(detail_type: str, location_id: str) -> list[Any]:
    """The events of one type and location still in the outbox (no relay runs in these tests)."""
    repo = wiring.repository()
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
    imports, worker, stock = load_handler("stock_imports"), load_handler("import_worker"), load_handler("stock")
    body = {
        "import_id": "load-1",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "p1", "quantity": 4}],
    }
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
    (step,) = import_steps(local_aws, "load-1")
    event = sqs_event([step], local_aws.arn("ImportQueue"))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    faults.inject("UpdateItem", "throttled", match=ends_import_at(location_id))

    with pytest.raises(Exception, match="failed processing"):
        worker.lambda_handler(event, FakeContext(remaining_ms=300_000))

    done = call(imports, "GET", f"/locations/{location_id}/stock-imports/load-1")[1]
    assert (done["status"], done["errors"]) == ("completed", [])
    assert call(stock, "GET", f"/locations/{location_id}/stock/p1")[1]["stock_on_hand"] == 4
    body["import_id"] = "load-2"
    assert call(imports, "POST", f"/locations/{location_id}/stock-imports", body)[0] == 202
