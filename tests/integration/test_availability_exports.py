"""Availability exports through the real handlers on the local backends (dynalite, moto's S3 and
SQS): the API, the worker's fan-out and units fed from the real export queue, the files read back
from the export bucket, and the crash points of a unit (docs/data-design.md, "Availability
exports")."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from inventory import wiring
from inventory.settings import settings_of
from inventory.settings.availability_exports import AvailabilityExportWorkerSettings
from inventory.settings.stock_import_worker import StockImportWorkerSettings
from tests.conftest import FakeContext, load_handler, sqs_event
from tests.faults import Crash, Faults, faults_on
from tests.integration.test_allocations import QUEUE_ARN, call, from_bus, load
from tests.integration.test_outbox_relay import drained
from tests.integration.test_relay_bus_faults import run_relay

pytestmark = pytest.mark.integration
EXPORT_QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:local-exportqueue"


def drain(max_rounds: int = 200) -> int:
    """Deliver every message of the export queue to the worker, as Lambda's poller would, until none
    is left; how many were delivered."""
    sqs = boto3.client("sqs")
    url = os.environ["EXPORT_QUEUE_URL"]
    worker, delivered = load_handler("availability_export_worker"), 0
    for _ in range(max_rounds):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return delivered
        for message in got:
            answer = worker.lambda_handler(sqs_event([message], EXPORT_QUEUE_ARN), FakeContext(remaining_ms=900_000))
            assert answer == {"batchItemFailures": []}, answer
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
    raise AssertionError("the export queue did not drain")


def export(mode: str, *locations: str, **extra: Any) -> dict[str, Any]:
    """Ask for an export, run it to its end, and read it back."""
    status, answer = call(
        "availability_exports",
        "POST",
        "/availability-exports",
        {"mode": mode, **extra} | ({"location_ids": list(locations)} if locations else {}),
    )
    assert status == 202, answer
    drain()
    status, done = call("availability_exports", "GET", f"/availability-exports/{answer['export_id']}")
    assert status == 200, done
    return dict(done)


def file_rows(uri: str) -> list[dict[str, Any]]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(data).splitlines()]


def the_file(done: dict[str, Any], location: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    (entry,) = [e for e in done["locations"] if e["location_id"] == location]
    assert entry["status"] == "completed", entry
    rows = file_rows(entry["uri"])
    assert len(rows) == entry["rows"]
    bucket, _, key = entry["uri"].removeprefix("s3://").partition("/")
    data = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    return entry, {row["product_id"]: row for row in rows}


def availability_page(location: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        query = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
        status, page = call("stock", "GET", f"/locations/{location}/availability", query=query)
        assert status == 200, page
        found |= {row["product_id"]: {"location_id": location, **row} for row in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def ship(location: str, product: str, quantity: int, timestamp: int) -> None:
    shipment = {
        "event_id": f"ev-{uuid.uuid4().hex[:10]}",
        "location_id": location,
        "shipment_id": f"s-{uuid.uuid4().hex[:8]}",
        "logical_timestamp": timestamp,
        "occurred_at": "2026-12-02T10:00:00Z",
        "items": [{"product_id": product, "quantity": quantity}],
    }
    message = from_bus("Fulfillment Items Shipped", shipment, str(uuid.uuid4()))
    answer = load_handler("shipment_events").lambda_handler(
        sqs_event([message], QUEUE_ARN), FakeContext(remaining_ms=60_000)
    )
    assert answer == {"batchItemFailures": []}


def new_store(stock: dict[str, int], **settings: Any) -> str:
    location = f"exp-{uuid.uuid4().hex[:8]}"
    load(location, stock, **settings)
    return location


def test_a_full_export_has_the_availability_of_every_product_and_a_delta_after_it_only_what_changed() -> None:
    stock = {f"p{n:03d}": n % 7 for n in range(250)} | {"a/b c": 4}
    location = new_store(stock, default_safety_stock=1)
    ship(location, "p001", 1, 1)
    alloc = {"allocation_id": "o1", "order_id": "o1", "items": [{"product_id": "p006", "quantity": 2}]}
    assert call("allocations", "POST", f"/locations/{location}/allocations", alloc)[0] == 201

    full = export("full", location)

    assert (full["status"], full["manifest_uri"].rsplit("/", 1)[-1]) == ("completed", "manifest.json")
    entry, rows = the_file(full, location)
    assert (entry["since_export_id"], entry["full"]) == (None, True)
    assert rows == availability_page(location)
    assert (rows["p006"]["allocated"], rows["p001"]["stock_on_hand"]) == (2, 0)

    empty = export("delta", location)
    entry, rows = the_file(empty, location)
    assert (entry["rows"], entry["since_export_id"], entry["full"]) == (0, full["export_id"], False)

    ship(location, "p005", 2, 2)
    one = export("delta", location)
    entry, rows = the_file(one, location)
    assert entry["since_export_id"] == empty["export_id"]
    assert rows == {"p005": availability_page(location)["p005"]}


def test_a_delta_after_a_partial_import_holds_its_products_and_a_first_delta_is_full() -> None:
    location = new_store({"a": 1, "b": 2, "c": 3})
    first = export("delta", location)
    entry, rows = the_file(first, location)
    assert (entry["since_export_id"], set(rows)) == (None, {"a", "b", "c"})

    body = {
        "import_id": "p1",
        "kind": "partial",
        "items": [{"product_id": "b", "quantity": 9}, {"product_id": "d", "quantity": 1}],
    }
    assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", body)[0] == 202
    from inventory.settings.stock_import_worker import StockImportWorkerSettings

    assert (
        wiring.import_runner(settings_of(StockImportWorkerSettings)).run(location, "p1", lambda: 10**9).value
        == "completed"
    )

    entry, rows = the_file(export("delta", location), location)
    page = availability_page(location)
    assert rows == {"b": page["b"], "d": page["d"]}


def test_the_manifest_lists_every_location_s_file_and_an_export_fans_out_one_unit_per_location() -> None:
    locations = [new_store({"x": n, "y": 1}) for n in range(3)]
    done = export("full", *locations)

    bucket, _, key = done["manifest_uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [m["location_id"] for m in manifest["locations"]] == sorted(locations)
    assert [(m["rows"], m["sha256"]) for m in manifest["locations"]] == [
        (e["rows"], e["sha256"]) for e in sorted(done["locations"], key=lambda e: e["location_id"])
    ]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_unit_stopped_at_its_upload_and_run_again_writes_one_correct_file(when: str) -> None:
    """Stopped before the upload (nothing written: the run again reads again) or right after it (the
    file is there, nothing committed: the run again commits that file). Either way one file, of one
    reading of the location; and a shipment in between reaches the next delta."""
    location = new_store({"a": 5, "b": 6})
    body = {"mode": "full", "location_ids": [location]}
    _, answer = call("availability_exports", "POST", "/availability-exports", body)
    units = wiring.export_units(settings_of(AvailabilityExportWorkerSettings))
    units.fan_out(answer["export_id"])
    before = availability_page(location)
    with faults_on(units._files.client) as faults:  # type: ignore[attr-defined]
        faults.inject("PutObject", "crash", when=when)  # type: ignore[arg-type]
        with pytest.raises(Crash):
            units.run(answer["export_id"], location)
    ship(location, "a", 1, 1)
    units.run(answer["export_id"], location)
    drain()  # the fan-out's own messages: the unit is done, they change nothing

    _, done = call("availability_exports", "GET", f"/availability-exports/{answer['export_id']}")
    assert done["status"] == "completed"
    _, rows = the_file(done, location)
    assert rows == (before if when == "after" else availability_page(location))
    _, delta = the_file(export("delta", location), location)
    assert delta == ({"a": availability_page(location)["a"]} if when == "after" else {})


def test_a_unit_stopped_after_its_commit_records_its_file_and_frees_its_location(faults: Faults) -> None:
    """Stopped between the location's state (committed) and the location export's record: the run
    again records the committed file, and the location's next export starts at once."""
    location = new_store({"a": 5})
    _, answer = call(
        "availability_exports", "POST", "/availability-exports", {"mode": "full", "location_ids": [location]}
    )
    units = wiring.export_units(settings_of(AvailabilityExportWorkerSettings))
    units.fan_out(answer["export_id"])

    def completed_record(params: Mapping[str, Any]) -> bool:
        return params.get("Item", {}).get("status", {}).get("S") == "completed"

    faults.inject("PutItem", "crash", match=completed_record)
    with pytest.raises(Crash):
        units.run(answer["export_id"], location)
    faults.disarm()
    committed = units.run(answer["export_id"], location)
    drain()

    _, done = call("availability_exports", "GET", f"/availability-exports/{answer['export_id']}")
    assert done["status"] == "completed"
    assert committed is not None
    assert done["locations"][0]["sha256"] == committed.sha256
    entry, _ = the_file(export("delta", location), location)  # not held back by a lease left behind
    assert (entry["rows"], entry["since_export_id"]) == (0, answer["export_id"])


def test_two_runs_of_the_same_unit_at_once_commit_one_file() -> None:
    location = new_store({f"p{n}": n for n in range(300)})
    _, answer = call(
        "availability_exports", "POST", "/availability-exports", {"mode": "full", "location_ids": [location]}
    )
    units = wiring.export_units(settings_of(AvailabilityExportWorkerSettings))
    units.fan_out(answer["export_id"])
    barrier, errors = threading.Barrier(2), []

    def run() -> None:
        barrier.wait()
        try:
            units.run(answer["export_id"], location)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain()

    _, done = call("availability_exports", "GET", f"/availability-exports/{answer['export_id']}")
    assert done["status"] == "completed", (done, errors)
    _, rows = the_file(done, location)
    assert rows == availability_page(location)


def test_refusals_write_nothing() -> None:
    location = new_store({"a": 1})
    unknown = call(
        "availability_exports", "POST", "/availability-exports", {"mode": "full", "location_ids": ["nowhere-x"]}
    )
    assert (unknown[0], unknown[1]["error"]["code"]) == (404, "not_found")
    invalid = call("availability_exports", "POST", "/availability-exports", {"mode": "some"})
    assert (invalid[0], invalid[1]["error"]["code"]) == (422, "validation_error")
    body = {"export_id": f"x-{uuid.uuid4().hex[:8]}", "mode": "full", "location_ids": [location]}
    assert call("availability_exports", "POST", "/availability-exports", body)[0] == 202
    assert call("availability_exports", "POST", "/availability-exports", body)[0] == 200
    reused = call("availability_exports", "POST", "/availability-exports", body | {"mode": "delta"})
    assert (reused[0], reused[1]["error"]["code"]) == (409, "export_id_reused")
    drain()
    missing = call("availability_exports", "GET", "/availability-exports/never-asked")
    assert missing[0] == 404


def test_a_full_export_during_shipments_agrees_with_the_figures_of_every_product_whose_version_it_shows() -> None:
    """Shipments run on a thread of their own while the unit reads: each row is one consistent read
    of its product, so a row whose version is the product's version now has its figures now, and
    the next delta has every product the export read before its last change."""
    products = {f"p{n:03d}": 50 for n in range(200)}
    location = new_store(products)
    _, answer = call(
        "availability_exports", "POST", "/availability-exports", {"mode": "full", "location_ids": [location]}
    )
    units = wiring.export_units(settings_of(AvailabilityExportWorkerSettings))
    units.fan_out(answer["export_id"])
    stop = threading.Event()

    def shipping() -> None:
        timestamp = 1
        while not stop.is_set():
            ship(location, f"p{timestamp % 200:03d}", 1, timestamp)
            timestamp += 1

    threads = [threading.Thread(target=shipping)]
    for thread in threads:
        thread.start()
    try:
        units.run(answer["export_id"], location)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    drain()

    _, done = call("availability_exports", "GET", f"/availability-exports/{answer['export_id']}")
    _, rows = the_file(done, location)
    now = availability_page(location)
    assert set(rows) == set(now) == set(products)
    same = [p for p in rows if rows[p]["version"] == now[p]["version"]]
    assert all(rows[p] == now[p] for p in same)
    changed = {p for p in rows if rows[p]["version"] != now[p]["version"]}
    assert all(rows[p]["version"] < now[p]["version"] for p in changed)
    _, delta = the_file(export("delta", location), location)
    assert changed <= set(delta)
    assert all(delta[p] == now[p] for p in delta)


def test_a_consumer_of_events_and_exports_ends_with_the_figures_after_the_bus_failed_for_a_while(
    own_table: Any, bus_faults: Any, listen: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a consumer that holds a location's full file, when shipments, an allocation and a
    partial import happen while every call to the bus fails (the relay's EventBridge client, through
    its fault hooks), then once the bus is back every committed event reaches it; keeping, per
    product, the figures of the highest `version` among the events (de-duplicated by `event_id`) and
    the next delta file, in either order, it holds what the service says."""
    location = new_store({"a": 10, "b": 10, "c": 10})
    queue = listen()
    base = export("full", location)
    ship(location, "b", 2, 3)
    run_relay(0.5, capsys)  # published at once: b's figures before the import below
    bus_faults.inject("PutEvents", "unavailable", times=10**6)
    ship(location, "a", 1, 1)
    ship(location, "a", 2, 2)
    alloc = {"allocation_id": "o1", "order_id": "o1", "items": [{"product_id": "c", "quantity": 4}]}
    assert call("allocations", "POST", f"/locations/{location}/allocations", alloc)[0] == 201
    body = {
        "import_id": "p1",
        "kind": "partial",
        "items": [{"product_id": "b", "quantity": 7}, {"product_id": "d", "quantity": 3}],
    }
    assert call("stock_imports", "POST", f"/locations/{location}/stock-imports", body)[0] == 202
    runner = wiring.import_runner(settings_of(StockImportWorkerSettings))
    assert runner.run(location, "p1", lambda: 10**9).value == "completed"  # b's figures change, no write of b

    outage = [run_relay(1.0, capsys)[0] for _ in range(2)]
    bus_faults.disarm()
    back, _ = run_relay(1.0, capsys)
    delta = export("delta", location)
    run_relay(0.5, capsys)  # the export's own event

    assert [answer["published"] for answer in outage] == [0, 0]
    assert back["published"] >= 3  # Stock Imported, and a Shipment Applied part per line
    messages = drained(queue)
    ids = [m["detail"]["event_id"] for m in messages]
    events = list({m["detail"]["event_id"]: m for m in messages}.values())  # de-duplicated
    assert len(events) == len(set(ids))
    figures = [
        (p["product_id"], p["version"], {k: p[k] for k in ("stock_on_hand", "allocated", "available")})
        for e in events
        if e["detail-type"] == "Shipment Applied"
        for p in e["detail"]["products"]
    ]
    rows = [
        (r["product_id"], r["version"], {k: r[k] for k in ("stock_on_hand", "allocated", "available")})
        for done in (base, delta)
        for r in the_file(done, location)[1].values()
    ]
    now = {
        p: ({k: row[k] for k in ("stock_on_hand", "allocated", "available")}, row["version"])
        for p, row in availability_page(location).items()
    }
    for order in (figures + rows, rows + figures, list(reversed(figures + rows))):
        held: dict[str, tuple[dict[str, int], int]] = {}
        for product, version, seen in order:
            if product not in held or version > held[product][1]:
                held[product] = (seen, version)
        assert held == now


def test_a_delta_after_a_change_of_the_location_s_figure_settings_is_a_full_file() -> None:
    location = new_store({"a": 4, "b": 5})
    export("full", location)
    assert call("locations", "PUT", f"/locations/{location}", {"type": "store", "default_safety_stock": 2})[0] == 200

    entry, rows = the_file(export("delta", location), location)

    assert (entry["full"], entry["since_export_id"]) == (True, None)
    assert rows == availability_page(location)
    assert {p: r["available"] for p, r in rows.items()} == {"a": 2, "b": 3}
