"""Stock imports through the real handlers, on dynalite and moto (S3 and SQS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler, record_ledger_entry, shipment_entry, sqs_event

pytestmark = pytest.mark.integration


def drain_import_queue(local_aws: LocalAws, worker: Any) -> int:
    """Deliver the import queue to the worker as Lambda would, until it is empty."""
    sqs = local_aws.client("sqs")
    url, arn = local_aws.queue_url("ImportQueue"), local_aws.arn("ImportQueue")
    delivered = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return delivered
        result = worker.lambda_handler(sqs_event(messages, arn), FakeContext(remaining_ms=300_000))
        assert result == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        delivered += 1


def call(
    handler: Any, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = handler.lambda_handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_an_inline_import_runs_through_the_queue_and_becomes_visible(local_aws: LocalAws) -> None:
    imports, worker, stock = load_handler("stock_imports"), load_handler("stock_import_worker"), load_handler("stock")
    body = {
        "import_id": "inline-1",
        "kind": "initial",
        "location_type": "store",
        "items": [
            {"product_id": "SKU/ä 1", "quantity": 5},
            {"product_id": "sku-2", "quantity": 2, "stock_location": "damaged"},
        ],
    }

    status, accepted = call(imports, "POST", "/locations/imp-store/stock-imports", body)
    assert (status, accepted["status"]) == (202, "accepted")
    assert call(stock, "GET", "/locations/imp-store/stock/SKU%2F%C3%A4%201")[1]["stock_on_hand"] == 0

    drain_import_queue(local_aws, worker)

    status, done = call(imports, "GET", "/locations/imp-store/stock-imports/inline-1")
    assert (status, done["status"], done["counts"]) == (200, "completed", {"rows": 2, "applied": 2, "zeroed": 0})
    status, product = call(stock, "GET", "/locations/imp-store/stock/SKU%2F%C3%A4%201")
    assert (status, product["product_id"], product["stock_on_hand"]) == (200, "SKU/ä 1", 5)
    assert product["stock_locations"][0]["base"]["import_id"] == "inline-1"
    listed = call(stock, "GET", "/locations/imp-store/stock")[1]
    assert {(i["product_id"], i["stock_on_hand"]) for i in listed["items"]} == {("SKU/ä 1", 5), ("sku-2", 0)}
    assert call(imports, "POST", "/locations/imp-store/stock-imports", body)[0] == 200
    body["items"][0]["quantity"] = 6
    status, refused = call(imports, "POST", "/locations/imp-store/stock-imports", body)
    assert (status, refused["error"]["code"]) == (409, "import_id_reused")


def test_invalid_inline_items_are_refused_with_their_index_and_write_nothing(local_aws: LocalAws) -> None:
    imports = load_handler("stock_imports")
    body = {
        "import_id": "bad-1",
        "kind": "partial",
        "location_type": "store",
        "items": [
            {"product_id": "a", "quantity": 1},
            {"product_id": "b", "quantity": 1.5},
            {"product_id": "c", "quantity": 1, "stock_location": "attic"},
        ],
    }

    status, refused = call(imports, "POST", "/locations/imp-bad/stock-imports", body)

    assert status == 422
    assert {d["field"] for d in refused["error"]["details"]} == {"body.items[1].quantity"}
    # The fields' forms first; then whether each stock location is one of the configured types.
    body["items"][1]["quantity"] = 2
    status, refused = call(imports, "POST", "/locations/imp-bad/stock-imports", body)
    assert status == 422
    assert [(d["field"], d["code"]) for d in refused["error"]["details"]] == [
        ("body.items[2].stock_location", "unknown_stock_location")
    ]
    assert call(load_handler("locations"), "GET", "/locations/imp-bad")[0] == 404


def test_a_file_dropped_in_the_bucket_starts_its_import(local_aws: LocalAws) -> None:
    worker, stock = load_handler("stock_import_worker"), load_handler("stock")
    s3 = local_aws.client("s3")
    bucket = local_aws.name("ImportBucket")
    call(load_handler("locations"), "PUT", "/locations/drop-store", {"type": "store"})
    lines = "product_id,quantity\n" + "".join(f"drop-{n},{n}\n" for n in range(1, 201))

    s3.put_object(
        Bucket=bucket,
        Key="imports/drop-store/full_count/count-7.csv",
        Body=lines.encode(),
        Metadata={"shipments-included-through": "12"},
    )
    drain_import_queue(local_aws, worker)

    status, done = call(load_handler("stock_imports"), "GET", "/locations/drop-store/stock-imports/count-7")
    assert (status, done["status"], done["shipments_included_through"]) == (200, "completed", 12)
    assert call(stock, "GET", "/locations/drop-store/stock/drop-150")[1]["stock_on_hand"] == 150


def test_a_file_with_a_bad_row_near_its_end_fails_with_that_line_and_changes_nothing(local_aws: LocalAws) -> None:
    imports, worker, stock = load_handler("stock_imports"), load_handler("stock_import_worker"), load_handler("stock")
    s3 = local_aws.client("s3")
    bucket = local_aws.name("ImportBucket")
    call(
        imports,
        "POST",
        "/locations/bad-file/stock-imports",
        {
            "import_id": "first",
            "kind": "initial",
            "location_type": "store",
            "items": [{"product_id": "keep", "quantity": 3}],
        },
    )
    drain_import_queue(local_aws, worker)
    rows = [json.dumps({"product_id": f"r{n}", "quantity": n}) for n in range(12_000)]
    rows[11_990] = json.dumps({"product_id": "r11990", "quantity": "many"})
    s3.put_object(Bucket=bucket, Key="uploads/bad.jsonl", Body="\n".join(rows).encode())

    status, _ = call(
        imports,
        "POST",
        "/locations/bad-file/stock-imports",
        {"import_id": "second", "kind": "full_count", "source": f"s3://{bucket}/uploads/bad.jsonl"},
    )
    assert status == 202
    drain_import_queue(local_aws, worker)

    failed = call(imports, "GET", "/locations/bad-file/stock-imports/second")[1]
    assert failed["status"] == "failed"
    assert [(e["line"], e["code"]) for e in failed["errors"]] == [(11_991, "invalid_quantity")]
    assert call(stock, "GET", "/locations/bad-file/stock/keep")[1]["stock_on_hand"] == 3
    assert call(stock, "GET", "/locations/bad-file/stock/r5")[1]["stock_on_hand"] == 0
    location = call(load_handler("locations"), "GET", "/locations/bad-file")[1]
    assert location["last_import"]["import_id"] == "second"
    assert location["last_import"]["status"] == "failed"


def test_an_import_step_that_fails_on_every_delivery_fails_the_import_and_frees_the_location(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the import bucket's file vanishing under a running import's feet (S3 answers with an
    error every time), on the queue's last delivery the import fails visibly and another can start."""
    imports, worker = load_handler("stock_imports"), load_handler("stock_import_worker")
    body = {
        "import_id": "doomed",
        "kind": "initial",
        "location_type": "store",
        "items": [{"product_id": "a", "quantity": 1}],
    }
    assert call(imports, "POST", "/locations/doomed-store/stock-imports", body)[0] == 202
    sqs = local_aws.client("sqs")
    url, arn = local_aws.queue_url("ImportQueue"), local_aws.arn("ImportQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    step = next(m for m in messages if "doomed" in m["Body"])
    from inventory import wiring
    from inventory.errors import TemporarilyUnavailable
    from inventory.settings import settings_of
    from inventory.settings.stock_import_worker import StockImportWorkerSettings

    def unreachable(uri: str, size: int = 1024) -> bytes:
        raise TemporarilyUnavailable("S3 is down")

    monkeypatch.setattr(wiring.import_runner(settings_of(StockImportWorkerSettings))._files, "head", unreachable)
    event = sqs_event([step], arn)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "4"
    with pytest.raises(BatchProcessingError):  # the whole batch failed: the queue delivers it again
        worker.lambda_handler(event, FakeContext())
    assert call(imports, "GET", "/locations/doomed-store/stock-imports/doomed")[1]["status"] == "running"

    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    # the last delivery moves it to the dead-letter queue itself, with the reason
    assert worker.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}

    failed = call(imports, "GET", "/locations/doomed-store/stock-imports/doomed")[1]
    assert (failed["status"], failed["errors"][0]["code"]) == ("failed", "abandoned")
    location = call(load_handler("locations"), "GET", "/locations/doomed-store")[1]
    assert location["last_import"]["status"] == "failed"
    monkeypatch.undo()
    body["import_id"] = "next"
    assert call(imports, "POST", "/locations/doomed-store/stock-imports", body)[0] == 202


def test_under_an_erp_shipments_after_the_import_lower_stock_and_are_explained(
    local_aws: LocalAws, repo: DynamoDbRepository
) -> None:
    """Given shipments recorded through the adapter (as the shipment handler will), stock on hand is
    the import plus the shipments it did not include, by logical timestamp."""
    imports, worker, stock = load_handler("stock_imports"), load_handler("stock_import_worker"), load_handler("stock")
    now = datetime.now(UTC)

    def ship(entry_id: str, timestamp: int, quantity: int, product: str = "erp-1") -> bool:
        return record_ledger_entry(repo, "erp-store", product, shipment_entry(entry_id, timestamp, now, quantity))

    body = {
        "import_id": "erp-load",
        "kind": "initial",
        "location_type": "store",
        "shipments_included_through": 100,
        "items": [{"product_id": "erp-1", "quantity": 20}],
    }
    assert call(imports, "POST", "/locations/erp-store/stock-imports", body)[0] == 202
    assert ship("s-99", 99, 3)  # included in the import
    assert ship("s-101", 101, 2)  # processed while the import ran, after what it includes
    assert not ship("s-101", 101, 2)  # the same entry again: once
    drain_import_queue(local_aws, worker)
    assert ship("s-102", 102, 1)
    assert ship("s-107", 107, 4, product="never-imported")

    status, explained = call(stock, "GET", "/locations/erp-store/stock/erp-1")

    assert (status, explained["stock_on_hand"]) == (200, 17)
    assert explained["stock_locations"][0]["base"] == {
        "import_id": "erp-load",
        "kind": "initial",
        "quantity": 20,
        "shipments_included_through": 100,
    }
    assert [e["entry_id"] for e in explained["ledger"]["items"]] == ["s-101", "s-102"]
    first_page = call(stock, "GET", "/locations/erp-store/stock/erp-1", query={"limit": "1"})[1]["ledger"]
    assert [e["logical_timestamp"] for e in first_page["items"]] == [101]
    query = {"limit": "1", "cursor": first_page["next_cursor"]}
    second_page = call(stock, "GET", "/locations/erp-store/stock/erp-1", query=query)[1]["ledger"]
    assert ([e["logical_timestamp"] for e in second_page["items"]], second_page["next_cursor"]) == ([102], None)
    listed = {i["product_id"]: i["stock_on_hand"] for i in call(stock, "GET", "/locations/erp-store/stock")[1]["items"]}
    assert listed == {"erp-1": 17, "never-imported": -4}


def test_an_import_is_completed_for_readers_only_once_its_rows_are_visible(faults: Any) -> None:
    """Stopped between the two writes of its completion (the record says completed, the location
    still shows the earlier import): its status says running, and the stock read says the earlier
    figures; the worker's run again makes both say the new ones."""
    from inventory import wiring
    from inventory.adapters.dynamodb.keys import import_key
    from inventory.settings import settings_of
    from inventory.settings.stock_import_worker import StockImportWorkerSettings
    from tests.faults import Crash
    from tests.integration.test_allocations import call, load

    location = "visible-on-completion"
    load(location, {"a": 5})
    body = {"import_id": "count-2", "kind": "full_count", "items": [{"product_id": "b", "quantity": 2}]}
    assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", body)[0] == 202
    runner = wiring.import_runner(settings_of(StockImportWorkerSettings))

    def record_completed(params: Any) -> bool:
        values = json.dumps(params.get("ExpressionAttributeValues", {}))
        return params["Key"]["sk"]["S"] == import_key(location, "count-2")["sk"] and '"completed"' in values

    faults.inject("UpdateItem", "crash", match=record_completed, when="after")
    with pytest.raises(Crash):
        runner.run(location, "count-2", lambda: 10**9)
    faults.disarm()

    status = call("stock_imports", "GET", f"/locations/{location}/stock-imports/count-2")[1]
    assert (status["status"], status["completed_at"]) == ("running", None)
    assert call("stock", "GET", f"/locations/{location}/stock/a")[1]["stock_on_hand"] == 5

    assert runner.run(location, "count-2", lambda: 10**9).value == "completed"
    status = call("stock_imports", "GET", f"/locations/{location}/stock-imports/count-2")[1]
    assert status["status"] == "completed"
    assert call("stock", "GET", f"/locations/{location}/stock/a")[1]["stock_on_hand"] == 0
