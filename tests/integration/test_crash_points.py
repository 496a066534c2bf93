"""Every multi-write operation, stopped at each of its writes in turn, then retried (I7).

For each operation, a run without faults counts its DynamoDB writes and records what a user then
sees. Then, for each write k, the operation runs again on a fresh location with a fault at write k:
it has the write applied and its answer lost (`timeout`), and, in another run, it does not have it
applied: the function stops before it (`crash`) or is refused it (throttled, over its provisioned
throughput, an internal error or a connection reset, in turn), the two in turn from one write to
the next. `make soak` runs every kind at every write, CRASH_POINT_ROUNDS times. The client, or the
queue, retries the request
until it succeeds, and what a user sees must equal the fault-free run's: completed once, nothing
half-applied, nothing doubled. Faults are injected at the DynamoDB client's boundary
(tests/faults.py); the backend is dynalite, as everywhere in these tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from inventory import wiring
from inventory.adapters.dynamodb.keys import import_key, ledger_pages_prefix, location_key, location_pk
from inventory.adapters.eventbridge import EventBridgePublisher
from inventory.settings import settings_of
from inventory.settings.outbox_relay import OutboxRelaySettings
from local.stack import LocalAws
from tests.conftest import FakeContext, http_event, load_handler, sqs_event
from tests.faults import ANY_WRITE, Crash, Faults, Kind, faults_on, item_key
from tests.integration.conftest import shared_repository
from tests.integration.test_abandoned_requests import Listing, PastTheGrace
from tests.integration.test_allocations import QUEUE_ARN, from_bus, load
from tests.integration.test_failure_paths import import_steps, outbox_events

pytestmark = [pytest.mark.integration, pytest.mark.long]

KINDS = ("crash", "refused", "timeout")
# A refused write is each of DynamoDB's refusals in turn, over the whole suite: throttled (after the
# SDK's retries), over provisioned throughput, an internal error, a connection reset.
REFUSALS: tuple[Kind, ...] = ("throttled", "provisioned", "unavailable", "reset")
_REFUSED = itertools.count()


def injected_kind(kind: str) -> Kind:
    if kind == "refused":
        return REFUSALS[next(_REFUSED) % len(REFUSALS)]
    return "crash" if kind == "crash" else "timeout"


RETRIES = 4  # a client (or the queue) tries again this many times at most
INJECTED: Counter[tuple[str, str]] = Counter()  # faults injected, by operation and kind


class Failed(Exception):
    """The request or delivery did not succeed: the client (or the queue) tries again."""


def call(
    function: str, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = load_handler(function).lambda_handler(http_event(method, path, body, query), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def succeeds(function: str, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
    status, answer = call(function, method, path, body)
    if status not in ok:
        raise Failed(f"{method} {path}: {status} {answer}")
    return answer


def deliver(function: str, event: dict[str, Any]) -> None:
    """A delivery of SQS records to a handler; a record the handler failed is delivered again."""
    try:
        result = load_handler(function).lambda_handler(event, FakeContext(remaining_ms=300_000))
    except BatchProcessingError as error:  # every record of the batch failed
        raise Failed(str(error)) from error
    finally:
        for record in event["Records"]:
            count = int(record["attributes"]["ApproximateReceiveCount"])
            record["attributes"]["ApproximateReceiveCount"] = str(count + 1)
    if result.get("batchItemFailures"):
        raise Failed(f"records failed: {result['batchItemFailures']}")


def figures(location: str, *products: str) -> dict[str, Any]:
    rows = {}
    for product in products:
        status, answer = call("stock", "GET", f"/locations/{location}/availability", query={"product_id": product})
        assert status == 200, answer
        items = answer["items"]
        rows[product] = {k: v for k, v in items[0].items() if k != "version"} if items else None
    return rows


def events_of(location: str, *detail_types: str) -> dict[str, int]:
    return {t: len({e.event_id for e in outbox_events(t, location)}) for t in detail_types}


@dataclass
class Operation:
    """An operation of several writes: `prepare` gives it a fresh location, `run` performs it once
    (raising Failed, or Crash, when it did not succeed), `seen` is what a user sees after it."""

    name: str
    prepare: Callable[[LocalAws, str], Any]
    run: Callable[[LocalAws, str, Any], None]
    seen: Callable[[LocalAws, str, Any], Any]


# ---------------------------------------------------------------------------------- imports
IMPORT = {"import_id": "load", "kind": "initial", "items": [{"product_id": "a", "quantity": 5}]}


def start_import(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("stock_imports", "POST", f"/locations/{location}/stock-imports", {**IMPORT, "location_type": "store"})


def import_seen(local_aws: LocalAws, location: str, steps: Any = None) -> Any:
    if steps is None:  # the import was only started: run it, as the worker would
        for step in import_steps(local_aws, location):
            for _ in range(RETRIES):
                try:
                    deliver("stock_import_worker", sqs_event([step], local_aws.arn("ImportQueue")))
                    break
                except Failed:
                    continue
    status, record = call("stock_imports", "GET", f"/locations/{location}/stock-imports/load")
    location_item = call("locations", "GET", f"/locations/{location}")[1]
    return {
        "import": (status, record.get("status"), record.get("counts")),
        "claimed": location_item.get("last_import", {}).get("status"),
        "figures": figures(location, "a"),
        "events": events_of(location, "Stock Imported"),
    }


def prepare_import_run(local_aws: LocalAws, location: str) -> Any:
    start_import(local_aws, location, None)
    (step,) = import_steps(local_aws, location)
    return sqs_event([step], local_aws.arn("ImportQueue"))


def run_import(local_aws: LocalAws, location: str, event: Any) -> None:
    deliver("stock_import_worker", event)


# ---------------------------------------------------------------------------------- allocations
ALLOCATION = {
    "allocation_id": "al-1",
    "order_id": "o-1",
    "items": [{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 1}],
}


def loaded(local_aws: LocalAws, location: str) -> None:
    load(location, {"a": 5, "b": 5})


def allocate(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("allocations", "POST", f"/locations/{location}/allocations", ALLOCATION)


def allocation_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    status, allocation = call("allocations", "GET", f"/locations/{location}/allocations/al-1")
    items = [(i["product_id"], i["open"]) for i in allocation.get("items", [])]
    return {"allocation": (status, allocation.get("status"), items), "figures": figures(location, "a", "b")}


def loaded_and_allocated(local_aws: LocalAws, location: str) -> None:
    loaded(local_aws, location)
    allocate(local_aws, location, None)


def release(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("allocations", "DELETE", f"/locations/{location}/allocations/al-1")


# ---------------------------------------------------------------------------------- allocation lines
PRE_ORDER = 12  # allocations of one unit of `a`: beyond the 8 a hot item holds, most become lines


def pre_ordered(local_aws: LocalAws, location: str, count: int = PRE_ORDER) -> None:
    load(location, {"a": 50, "b": 5})
    for n in range(count):
        order = {"allocation_id": f"pre-{n:02d}", "order_id": f"po-{n}", "items": [{"product_id": "a", "quantity": 1}]}
        succeeds("allocations", "POST", f"/locations/{location}/allocations", order)


def pre_order_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    """Every pre-order allocation's open units, al-1's, and the figures: where each is kept is not seen."""
    still_open = {}
    for n in range(PRE_ORDER):
        status, allocation = call("allocations", "GET", f"/locations/{location}/allocations/pre-{n:02d}")
        still_open[n] = (status, allocation.get("status"), [i["open"] for i in allocation.get("items", [])])
    return {**allocation_seen(local_aws, location, None), "pre-orders": still_open}


def closing_oldest(location: str) -> dict[str, Any]:
    detail = {
        "event_id": f"oldest-{location}",
        "location_id": location,
        "shipment_id": "s-oldest",
        "logical_timestamp": 9,
        "occurred_at": "2026-11-30T09:00:00Z",
        "items": [{"product_id": "a", "quantity": 3}],
    }
    return sqs_event([from_bus("Fulfillment Items Shipped", detail, f"m-oldest-{location}")], QUEUE_ARN)


def prepare_closing_lines(local_aws: LocalAws, location: str) -> Any:
    pre_ordered(local_aws, location)
    return closing_oldest(location)


def prepare_moving_held(local_aws: LocalAws, location: str) -> None:
    pre_ordered(local_aws, location, 8)  # the next allocation leaves 9 held: it moves them out


def release_line(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("allocations", "DELETE", f"/locations/{location}/allocations/pre-00")


def pre_order_shipped_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    return {**pre_order_seen(local_aws, location, None), "events": events_of(location, "Shipment Applied")}


# ---------------------------------------------------------------------------------- shipments
def shipment_event(location: str) -> dict[str, Any]:
    detail = {
        "event_id": f"ship-{location}",
        "location_id": location,
        "shipment_id": "s-1",
        "logical_timestamp": 7,
        "occurred_at": "2026-11-30T09:00:00Z",
        "items": [
            {"product_id": "a", "quantity": 1, "allocation_id": "al-1"},
            {"product_id": "b", "quantity": 2},
        ],
    }
    return sqs_event([from_bus("Fulfillment Items Shipped", detail, f"m-{location}")], QUEUE_ARN)


def prepare_shipment(local_aws: LocalAws, location: str) -> Any:
    loaded_and_allocated(local_aws, location)
    return shipment_event(location)


def ship(local_aws: LocalAws, location: str, event: Any) -> None:
    deliver("shipment_events", event)


def shipment_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    return {**allocation_seen(local_aws, location, None), "events": events_of(location, "Shipment Applied")}


# ---------------------------------------------------------------------------------- the hot item's buffer
BUFFERED = 16  # lines a product's buffer holds before the next one moves the oldest to a ledger page


def hot_line(location: str, n: int, product: str = "hot") -> dict[str, Any]:
    detail = {
        "event_id": f"hot-{n}",
        "location_id": location,
        "shipment_id": f"s-{n}",
        "logical_timestamp": 100 + n,
        "occurred_at": "2026-11-30T09:00:00Z",
        "items": [{"product_id": product, "quantity": 1}],
    }
    return from_bus("Fulfillment Items Shipped", detail, f"m-{location}-{n}")


def prepare_moving(local_aws: LocalAws, location: str) -> Any:
    """A product whose buffer is full: the next line's write leaves it over BUFFERED, and moves."""
    load(location, {"hot": 1000})
    for n in range(BUFFERED):
        ship(local_aws, location, sqs_event([hot_line(location, n)], QUEUE_ARN))
    return sqs_event([hot_line(location, BUFFERED)], QUEUE_ARN)


def ledger_seen(location: str, product: str) -> dict[str, Any]:
    """The product's figures, the whole explanation page after page, and where its entries are."""
    entries, query = [], {"limit": "5"}
    while True:
        status, explained = call("stock", "GET", f"/locations/{location}/stock/{product}", query=query)
        assert status == 200, explained
        entries += [e["entry_id"] for e in explained["ledger"]["items"]]
        if not explained["ledger"]["next_cursor"]:
            break
        query = {"limit": "5", "cursor": explained["ledger"]["next_cursor"]}
    counters = shared_repository().counters_of(location, product)
    return {
        "figures": figures(location, product),
        "explained": entries,
        "kept": (counters.pages, counters.buffered),
        "events": events_of(location, "Shipment Applied"),
    }


def prepare_batch(local_aws: LocalAws, location: str) -> Any:
    """Two events of one SQS batch: the end of the batch records both `done` in one write."""
    load(location, {"hot": 10, "other": 10})
    return sqs_event([hot_line(location, 1), hot_line(location, 2, "other")], QUEUE_ARN)


def batch_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    done = shared_repository().event_claims(location, [f"hot-{n}" for n in (1, 2)])
    return {
        **ledger_seen(location, "hot"),
        "other": figures(location, "other"),
        "done": sorted(e for e, claim in done.items() if claim.done),
    }


# ---------------------------------------------------------------------------------- an import's settling
def prepare_settling(local_aws: LocalAws, location: str) -> Any:
    """Shipments applied before an import that names a watermark below some of them: its
    completion sums those above it, product by product, then makes the import visible."""
    load(location, {"a": 20, "b": 20})
    for n, product in enumerate(("a", "b", "a", "b", "a")):
        ship(local_aws, location, sqs_event([hot_line(location, n, product)], QUEUE_ARN))  # timestamps 100-104
    body = {
        "import_id": "settle",
        "kind": "partial",
        "shipments_included_through": 101,
        "items": [{"product_id": "a", "quantity": 10}, {"product_id": "b", "quantity": 10}],
    }
    succeeds("stock_imports", "POST", f"/locations/{location}/stock-imports", body)
    # The step the API put on the import queue, as the worker receives it (the queue holds many
    # other locations' steps: taking this one off it would be slow, and changes nothing here).
    step = json.dumps({"location_id": location, "import_id": "settle"}, separators=(",", ":"))
    message = {"MessageId": f"step-{location}", "ReceiptHandle": "r", "Body": step, "MD5OfBody": md5_of(step)}
    return sqs_event([message], local_aws.arn("ImportQueue"))


def md5_of(body: str) -> str:
    return hashlib.md5(body.encode()).hexdigest()


def settling_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    status, record = call("stock_imports", "GET", f"/locations/{location}/stock-imports/settle")
    return {
        "import": (status, record.get("status"), record.get("counts")),
        "figures": figures(location, "a", "b"),
        "events": events_of(location, "Stock Imported"),
    }


# ---------------------------------------------------------------------------------- the switch
def switch(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("master_switch", "PUT", f"/locations/{location}/inventory-master", {"inventory_master": "platform"})


# ---------------------------------------------------------------------------------- inventory transactions
TRANSACTION = {
    "transaction_id": "adj-1",
    "type": "adjustment",
    "reason": "recount of the back room",
    "items": [
        {"product_id": "a", "quantity": 2, "from_stock_location": "main", "to_stock_location": "damaged"},
        {"product_id": "b", "quantity": 3, "from_stock_location": "main"},
        {"product_id": "c", "quantity": 4, "to_stock_location": "main"},
    ],
}


def platform_store(local_aws: LocalAws, location: str) -> None:
    loaded(local_aws, location)
    switch(local_aws, location, None)


def record_transaction(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("inventory_transactions", "POST", f"/locations/{location}/inventory-transactions", TRANSACTION)


def transaction_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    status, record = call("inventory_transactions", "GET", f"/locations/{location}/inventory-transactions/adj-1")
    stock = {}
    for product in "abc":
        found = call("stock", "GET", f"/locations/{location}/stock/{product}")[1]
        stock[product] = {s["stock_location"]: s["quantity"] for s in found.get("stock_locations", [])}
    return {
        "transaction": (status, record.get("status")),
        "stock": stock,
        "events": events_of(location, "Inventory Transaction Completed"),
    }


# ---------------------------------------------------------------------------------- cycle counts
RESULTS = {"items": [{"product_id": "a", "counted": 7}, {"product_id": "b", "counted": 0}]}


def counted_store(local_aws: LocalAws, location: str) -> None:
    platform_store(local_aws, location)
    body = {"count_id": "cc-1", "reason": "mispick", "product_ids": ["a", "b"]}
    succeeds("cycle_counts", "POST", f"/locations/{location}/cycle-counts", body)


def submit_results(local_aws: LocalAws, location: str, _: Any) -> None:
    succeeds("cycle_counts", "POST", f"/locations/{location}/cycle-counts/cc-1/results", RESULTS)


def count_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    status, count = call("cycle_counts", "GET", f"/locations/{location}/cycle-counts/cc-1")
    blocked = call("locations", "GET", f"/locations/{location}")[1]
    return {
        "count": (status, count.get("status"), count.get("results")),
        "figures": figures(location, "a", "b"),
        "readiness": blocked.get("inventory_master"),
        "events": events_of(location, "Cycle Count Completed"),
    }


def switch_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    master = call("locations", "GET", f"/locations/{location}")[1]["inventory_master"]
    return {"master": master, "events": events_of(location, "Inventory Master Switched")}


# ---------------------------------------------------------------------------------- the relay
class OneLocation:
    """The outbox as the relay sees it, but for one location's items only: other tests' backlog
    stays where it is, and the writes counted are this location's."""

    def __init__(self, location: str) -> None:
        self._store = shared_repository()
        self._pk, self._pages = location_pk(location), ledger_pages_prefix(location)
        self.shards = self._store.shards

    def pending_keys(self, shard: int, limit: int, after: tuple[str, str] | None = None) -> Any:
        mine: list[tuple[str, str]] = []
        while True:
            keys, after = self._store.pending_keys(shard, 1000, after)
            mine += [key for key in keys if key[0] == self._pk or key[0].startswith((self._pk + "#", self._pages))]
            if after is None:
                return mine[:limit], None

    def read_pending(self, keys: Any) -> Any:
        return self._store.read_pending(keys)

    def mark_published(self, key: Any, event_ids: Any, version: Any) -> None:
        self._store.mark_published(key, event_ids, version)


def prepare_relay(local_aws: LocalAws, location: str) -> Any:
    """A store loaded, switched, and shipped from: events on its location item and on two products."""
    loaded_and_allocated(local_aws, location)
    switch(local_aws, location, None)
    ship(local_aws, location, shipment_event(location))
    sqs, url = subscribe(local_aws, location)
    return {"sqs": sqs, "url": url, "published": set()}


def subscribe(local_aws: LocalAws, location: str) -> tuple[Any, str]:
    sqs, events = local_aws.client("sqs"), local_aws.client("events")
    name = f"consumer-{location}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["inventory-master"], "detail": {"location_id": [location]}}
    bus = local_aws.name("InventoryBus")
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def relay_round(local_aws: LocalAws, location: str, state: Any) -> None:
    from inventory.services.outbox import OutboxRelay

    base = wiring.outbox_relay(settings_of(OutboxRelaySettings))
    relay = OutboxRelay(OneLocation(location), base._publisher, base._clock, finishers=base._finishers)
    try:
        relay.run_once()
    except Exception as error:  # a round that failed is run again by the next one
        raise Failed(str(error)) from error
    waiting = OneLocation(location)
    if any(waiting.pending_keys(shard, 1)[0] for shard in range(waiting.shards)):
        raise Failed("events still wait in the outbox: the next round publishes them")


def relay_seen(local_aws: LocalAws, location: str, state: Any) -> Any:
    """Every committed event published at least once (consumers de-duplicate by event_id)."""
    sqs, url = state["sqs"], state["url"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in messages:
            body = json.loads(message["Body"])
            state["published"].add((body["detail-type"], body["detail"]["event_id"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return {"published": Counter(detail_type for detail_type, _ in state["published"]), "waiting": 0}


# ---------------------------------------------------------------------------------- the abandoned-requests sweep
def stopped_start(after: str) -> Callable[[LocalAws, str], None]:
    """An import start that stops right after its claim (no record) or its record (never queued)."""

    def prepare(local_aws: LocalAws, location: str) -> None:
        claim, record = location_key(location), import_key(location, "load")
        operation, key = ("UpdateItem", claim) if after == "claim" else ("PutItem", record)
        with faults_on(shared_repository().client) as stop:
            stop.inject(operation, "crash", when="after", match=lambda p: item_key(p) == (key["pk"], key["sk"]))
            with contextlib.suppress(Crash):
                start_import(local_aws, location, None)

    return prepare


def sweep_abandoned(local_aws: LocalAws, location: str, _: Any) -> None:
    from inventory.services.abandoned import ImportSweep

    try:
        ImportSweep(Listing([location]), PastTheGrace()).fail_abandoned()  # type: ignore[arg-type]
    except Exception as error:  # a run that failed: the schedule's next run sweeps again
        raise Failed(str(error)) from error


def swept_seen(local_aws: LocalAws, location: str, _: Any) -> Any:
    """The import as it ended, a late repeat of its request, and whether the store takes another."""
    status, record = call("stock_imports", "GET", f"/locations/{location}/stock-imports/load")
    last = call("locations", "GET", f"/locations/{location}")[1].get("last_import", {})
    repeat = call("stock_imports", "POST", f"/locations/{location}/stock-imports", {**IMPORT, "location_type": "store"})
    following = {**IMPORT, "import_id": "next", "location_type": "store"}
    next_status = call("stock_imports", "POST", f"/locations/{location}/stock-imports", following)[0]
    import_steps(local_aws, f'"location_id":"{location}"')  # the next import's step: nobody runs it
    return {
        "import": (status, record.get("status"), [e["code"] for e in record.get("errors", [])]),
        "last_import": (last.get("import_id"), last.get("status")),
        "repeat": (repeat[0], repeat[1].get("status")),
        "next import": next_status,
    }


OPERATIONS = [
    Operation("import start", lambda aws, location: None, start_import, import_seen),
    Operation("import run", prepare_import_run, run_import, lambda aws, location, event: import_seen(aws, location, 1)),
    Operation("allocation", loaded, allocate, allocation_seen),
    Operation("release", loaded_and_allocated, release, allocation_seen),
    Operation("shipment", prepare_shipment, ship, shipment_seen),
    Operation("allocation that moves held ones", prepare_moving_held, allocate, pre_order_seen),
    Operation("shipment closing allocation lines", prepare_closing_lines, ship, pre_order_shipped_seen),
    Operation("release of an allocation line", pre_ordered, release_line, pre_order_seen),
    Operation("line that moves", prepare_moving, ship, lambda aws, location, _: ledger_seen(location, "hot")),
    Operation("batch done", prepare_batch, ship, batch_seen),
    Operation("import settling", prepare_settling, run_import, settling_seen),
    Operation("switch", loaded, switch, switch_seen),
    Operation("inventory transaction", platform_store, record_transaction, transaction_seen),
    Operation("cycle count results", counted_store, submit_results, count_seen),
    Operation("relay round", prepare_relay, relay_round, relay_seen),
    Operation("sweep claim", stopped_start("claim"), sweep_abandoned, swept_seen),
    Operation("sweep record", stopped_start("record"), sweep_abandoned, swept_seen),
]


@pytest.fixture(scope="module", autouse=True)
def import_queue_left_empty(local_aws: LocalAws) -> Iterator[None]:
    """Every operation here loads a store through the API, whose import steps the tests run
    themselves: the steps the API queued stay on the import queue, hundreds of them by the end, and
    the scans for a test's own step receive them again and again, until the queue's redrive moves
    them to its dead-letter queue. Later modules look for their own messages on both queues, so
    this one leaves them empty."""
    yield
    sqs = local_aws.client("sqs")
    for queue in ("ImportQueue", "ImportDeadLetterQueue"):
        sqs.purge_queue(QueueUrl=local_aws.queue_url(queue))


def fresh(name: str) -> str:
    return f"cp-{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"


def kinds_at_each_write(writes: int, every_kind: bool) -> list[tuple[str, int]]:
    """The faults to inject, as (kind, write index): at every write a `timeout` (applied, its answer
    lost) and a write not applied (`crash` and `refused` in turn); with `every_kind`, all three."""
    if every_kind:
        return [(kind, k) for kind in KINDS for k in range(writes)]
    return [(kind, k) for k in range(writes) for kind in ("timeout", ("crash", "refused")[k % 2])]


def retried(local_aws: LocalAws, operation: Operation, location: str, state: Any) -> None:
    for _ in range(RETRIES):
        try:
            operation.run(local_aws, location, state)
            return
        except Failed:
            continue
    raise AssertionError(f"{operation.name} did not succeed in {RETRIES} retries")


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.name for o in OPERATIONS])
def test_an_operation_stopped_at_any_write_completes_once_on_retry(
    local_aws: LocalAws, faults: Faults, operation: Operation
) -> None:
    location = fresh(operation.name)
    state = operation.prepare(local_aws, location)
    faults.calls.clear()
    operation.run(local_aws, location, state)
    writes = len(faults.writes())
    expected = operation.seen(local_aws, location, state)
    rounds = int(os.environ.get("CRASH_POINT_ROUNDS", "1"))  # a soak runs every point several times
    assert writes >= 1

    for _ in range(rounds):
        for kind, k in kinds_at_each_write(writes, every_kind=rounds > 1):
            location = fresh(operation.name)
            state = operation.prepare(local_aws, location)
            injected = injected_kind(kind)
            fault = faults.inject(ANY_WRITE, injected, skip=k)
            with contextlib.suppress(Crash, Failed):  # stopped, or answered a failure
                operation.run(local_aws, location, state)
            faults.disarm()
            INJECTED[(operation.name, injected)] += fault.fired
            retried(local_aws, operation, location, state)
            seen = operation.seen(local_aws, location, state)
            assert seen == expected, f"{kind} at write {k + 1} of {writes}"


RELAY = next(o for o in OPERATIONS if o.name == "relay round")
# The bus's refusals as the relay sees them: a ClientError (throttled, an internal error) or a
# connection reset, each failing the call it hits and no other.
BUS_KINDS: tuple[Kind, ...] = ("crash", "throttled", "unavailable", "reset", "timeout")


@pytest.mark.parametrize("kind", BUS_KINDS)
def test_a_relay_round_stopped_at_any_bus_call_publishes_every_event_on_retry(local_aws: LocalAws, kind: Kind) -> None:
    """The relay round again, with the fault at its other writes, its `PutEvents` calls, at the
    relay's EventBridge client: the run stopped before the call (`crash`), the call refused
    (`throttled`, `unavailable`) or its connection reset (`reset`), or the events published and
    the answer lost (`timeout`). The next rounds publish every event, and the consumer sees what
    it saw without the fault (de-duplicating by event_id)."""
    publisher = wiring.outbox_relay(settings_of(OutboxRelaySettings))._publisher
    assert isinstance(publisher, EventBridgePublisher)
    with faults_on(publisher.client) as bus:
        location = fresh(RELAY.name)
        state = RELAY.prepare(local_aws, location)
        bus.calls.clear()
        RELAY.run(local_aws, location, state)
        calls = sum(operation == "PutEvents" for operation, _ in bus.calls)
        expected = RELAY.seen(local_aws, location, state)
        assert calls >= 1

        for k in range(calls):
            location = fresh(RELAY.name)
            state = RELAY.prepare(local_aws, location)
            fault = bus.inject("PutEvents", kind, skip=k)
            with contextlib.suppress(Crash, Failed):  # stopped, or the events still wait
                RELAY.run(local_aws, location, state)
            bus.disarm()
            INJECTED[("relay bus", kind)] += fault.fired
            # A fresh location's events may fall in fewer shards (fewer calls): only the first
            # call is sure to be there.
            assert fault.fired or k > 0
            retried(local_aws, RELAY, location, state)
            assert RELAY.seen(local_aws, location, state) == expected, f"{kind} at bus call {k + 1} of {calls}"


def test_zz_report_the_faults_injected() -> None:
    """The figures the suite reached (printed with -s; the soak target prints them)."""
    print("\nfaults injected by operation and kind:")
    for (operation, kind), count in sorted(INJECTED.items()):
        print(f"  {operation:14} {kind:10} {count}")
    print(f"  total {sum(INJECTED.values())}")
