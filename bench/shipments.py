"""Shipment events through the shipment events handler on the local backends, against a floor of
plain conditional writes, on two workloads.

Workloads (each on fresh local AWS backends, dynalite and moto, provisioned from template.yaml; a
store location gets an initial stock import, one row per product in main stock, through the stock
import worker's `ImportRunner.accept()` and `run()`, as bench.imports runs them):

- uniform: --events "Fulfillment Items Shipped" events of 1 to 3 lines over a location of --products
  products, every line a distinct product; about one shipped product in ten has an open allocation
  (`AllocationService.create`) that its line names and closes in part or whole;
- skewed: 10,000 events at a location of 100,000 products (both times --skew-scale) where a third of
  the lines go to ten hot products, 55% of those to the hottest (at least 3,000 lines), which holds
  5,000 open allocations of one unit at the start (created through the allocation service); its
  lines name none, so they close the oldest open ones. The other lines are as in the uniform
  workload (distinct products, one in ten naming an allocation of its own). The hot products are
  imported with 1,000,000 units each.

The events go, as SQS events of the template's BatchSize, to `lambda_handler` of
functions/shipment_events/app.py, one batch after another (one Lambda instance), in a child process
that imported the handler with the function's environment, as Lambda would. The outbox relay runs
at its deployed cadence, simulated between batches in the same child (not in a thread, which would
share the handler's CPU clock): its schedule starts a run every `rate(...)` of the template
(OutboxRelayFunction), each run does rounds (`OutboxRelay.run_once` of the relay service, built by
`wiring.outbox_relay`) until STOP_BEFORE_TIMEOUT_MS before its timeout, the next one at once after
a round that published, RELAY_POLL_INTERVAL_MS after one that found nothing, by the handler's
elapsed time (the relay's own time is not added to it, nor to the handler's CPU).

The floor, on backends of its own prepared with the same import, and a 1 KB item for every product
the workload ships: per line one conditional UpdateItem of that item (its version), per event one
PutItem of a record (on the condition that it does not exist), from a child process of its own. The
service and the floor take turns, 500 events at a time (who goes first alternating), each in a
process that stays warm from turn to turn: a neighbour's load on these shared machines falls on
both alike.

Every write request of the service's child is logged as it is made, with the item it touched before
and after (read back by a client of the benchmark's own, whose calls and time are taken out of the
handler's): its write units follow DynamoDB's rules from item sizes (bench.harness' `write_units`:
the larger of before and after; a refused conditional write, the item as it was), plus the index
writes (each GSI of the template: an item entering or leaving the index, or its keys changing, or
any change of an item in an index that projects ALL). Writes are classified by the item written:

- hot path: the applied-event records (`EVT#` partitions: the event's claim and its `done`), and
  every write of a product's hot item (the counters partitions) that adds a ledger entry to it
  (an attribute of the buffer or ledger prefix that it did not hold): the line's own write; a
  refused write of a hot item counts here too (in this single-instance benchmark, it is a line's
  blind write refused because the product holds open allocations);
- background: every other write of the handler's invocation (ledger pages, the move's commit on
  the hot item, allocation records and lines, ...);
- relay: the writes of the relay's rounds, and how many writes each item took per round.

The largest item touched is over the handler's writes (the larger of each one's before and after).
Lines dead-lettered (the fulfilment dead-letter queue, read after the run, with each reason) or
answered as batch item failures are counted, with the first one's place in the order sent and the
write units per line up to its batch: run on a checkout of a design whose items fill up, this tells
where it stops. Handler CPU is the child's process CPU time over the handler's calls; the CPU beyond
the SDK calls is that minus the CPU time spent inside botocore's `BaseClient._make_api_call`.

    python -m bench.shipments [--workload both|uniform|skewed] [--products 100000] [--events 5000]
        [--skew-scale 1.0] [--seed 1] [--repeat 1] [--profile 30]
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import hashlib
import io
import json
import math
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

from bench.child import load_handler
from bench.gen_import_file import JSONL_ROW
from bench.harness import (
    ROOT,
    CallCounter,
    Child,
    Key,
    SdkTime,
    handler_env,
    item_size,
    lambda_context_class,
    write_units,
)
from bench.imports import WORKER
from inventory import wiring
from inventory.adapters.dynamodb.keys import (
    BUFFER_PREFIX,
    LEDGER_PREFIX,
    PRODUCT_SHARDS,
    counters_key,
    counters_partition,
    event_key,
)
from inventory.adapters.dynamodb.table import Table
from inventory.models import AllocationStatus, ImportKind, ImportStatus, LocationType
from inventory.models.allocations import AllocationLine
from inventory.services.allocations import AllocationRequest
from inventory.services.imports import ImportRequest
from inventory.settings import TableSettings, settings_of
from inventory.settings.outbox_relay import OutboxRelaySettings
from inventory.settings.stock_import_worker import StockImportWorkerSettings

FUNCTION = "ShipmentEventsFunction"
RELAY_FUNCTION = "OutboxRelayFunction"
HANDLER_CODE = ROOT / "functions" / "shipment_events"
RELAY_CODE = ROOT / "functions" / "outbox_relay" / "app.py"
LOCATION = "bench-ship"
SOURCE = "fulfilment"
DETAIL_TYPE = "Fulfillment Items Shipped"
ALLOCATED_SHARE = 0.1  # of the shipped products, those with an open allocation that their line names
ENTRY_PREFIXES = (BUFFER_PREFIX, LEDGER_PREFIX)  # a ledger entry in a hot item: the buffer's, or the earlier shape's
# In a profile, the code of the SDK calls (the rest is the handler's own CPU, builtins aside) and the handler's.
SDK_CODE = (
    r"^(?!.*(botocore/|urllib3/|http/|urllib/parse|socket|email/|ssl|selectors|select|dateutil/|hashlib|hmac"
    r"|_collections_abc|<frozen os>|queue.py|uuid.py:\d+\(uuid4\)|logging/__init__.py:\d+\((debug|isEnabledFor)\)"
    r"|_make_api_call|timed|bench/harness|bench/shipments))"
)
HANDLER_PATHS = r"inventory/|shipment_events/|aws_lambda_powertools/"
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
CHUNK_EVENTS = 500  # the runs take turns after this many events each
FLOOR_ITEM_BYTES = 1000  # the floor's product item: 1 write unit

# The skewed workload at scale 1
SKEW_PRODUCTS, SKEW_EVENTS = 100_000, 10_000
# Of all lines, those drawn for a hot product (a hot product already in the event gives way to a cold
# one: about a third go to them); of those, the hottest's.
HOT_PRODUCTS, HOT_SHARE, HOTTEST_SHARE = 10, 0.35, 0.55
HOTTEST_LINES, HOTTEST_ALLOCATIONS = 3_000, 5_000
HOT_STOCK = 1_000_000

# Targets, per shipment line unless said otherwise
HOT_REQUESTS_TARGET, HOT_UNITS_TARGET = 1.6, 3.0
BACKGROUND_REQUESTS_TARGET, BACKGROUND_UNITS_TARGET = 0.2, 0.5
RELAY_WRITES_PER_ITEM_TARGET = 1
P99_ITEM_TARGET = 4096
TIME_RATIO_TARGETS = {"uniform": 1.2, "skewed": 1.3}
CPU_MS_PER_EVENT_TARGET = 2.0


# ---------------------------------------------------------------- the plan: events, lines, allocations


@dataclass(frozen=True)
class Line:
    event: int
    index: int
    product: str
    quantity: int
    allocation_id: str | None
    key: Key  # the product's hot item (the floor's item)


@dataclass
class Plan:
    workload: str
    products: int
    lines: list[Line]
    allocations: list[tuple[str, str, int]]  # (allocation id, product, quantity)
    batches: list[dict[str, Any]]  # SQS events, as Lambda's poller builds them
    events: int
    message_event: dict[str, int]  # SQS message id: event
    stock: dict[int, int] = field(default_factory=dict)  # imported units where not n % 1000
    hot: list[str] = field(default_factory=list)  # the hot products, hottest first

    def imported(self, product: str) -> int:
        n = int(product.removeprefix("SKU-"))
        return self.stock.get(n, n % 1000)


def product_id(n: int) -> str:
    return f"SKU-{n:07d}"  # as bench.gen_import_file names them


def uniform_events(rng: random.Random, products: int, events: int) -> list[list[int]]:
    per_event = [rng.randint(1, 3) for _ in range(events)]
    if sum(per_event) > products:
        raise SystemExit(f"{sum(per_event)} lines of distinct products need more than {products} products")
    shipped = iter(rng.sample(range(products), sum(per_event)))
    return [[next(shipped) for _ in range(count)] for count in per_event]


def skewed_events(rng: random.Random, products: int, events: int, hot: list[int]) -> list[list[int]]:
    """Events of 1 to 3 lines of distinct products: each line goes to a hot product with HOT_SHARE,
    the hottest taking HOTTEST_SHARE of those; the other lines to distinct products of the rest."""
    per_event = [rng.randint(1, 3) for _ in range(events)]
    cold_pool = [n for n in range(products) if n not in set(hot)]
    cold = iter(rng.sample(cold_pool, min(len(cold_pool), sum(per_event))))
    planned = []
    for count in per_event:
        products_of_event: list[int] = []
        for _ in range(count):
            n = next(cold)
            if rng.random() < HOT_SHARE:
                pick = hot[0] if rng.random() < HOTTEST_SHARE else rng.choice(hot[1:])
                if pick not in products_of_event:
                    n = pick
            products_of_event.append(n)
        planned.append(products_of_event)
    return planned


def make_plan(args: argparse.Namespace, workload: str, batch_size: int, queue_arn: str, region: str) -> Plan:
    from local.triggers import sqs_record  # the record Lambda's poller builds from a received message

    rng = random.Random(args.seed)
    stock: dict[int, int] = {}
    hot: list[int] = []
    if workload == "uniform":
        products, events = args.products, args.events
        planned = uniform_events(rng, products, events)
    else:
        products = round(SKEW_PRODUCTS * args.skew_scale)
        events = round(SKEW_EVENTS * args.skew_scale)
        hot = rng.sample(range(products), HOT_PRODUCTS)
        stock = dict.fromkeys(hot, HOT_STOCK)
        planned = skewed_events(rng, products, events, hot)
    occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines: list[Line] = []
    allocations: list[tuple[str, str, int]] = []
    if hot:  # the hottest's open allocations, the oldest first: its lines close them in this order
        hottest = product_id(hot[0])
        allocations += [(f"hot-{i:06d}", hottest, 1) for i in range(round(HOTTEST_ALLOCATIONS * args.skew_scale))]
    records, message_event = [], {}
    for event, numbers in enumerate(planned):
        items = []
        for index, n in enumerate(numbers):
            product, quantity, allocation_id = product_id(n), rng.randint(1, 3), None
            if n not in stock and rng.random() < ALLOCATED_SHARE and n % 1000 >= 3:
                allocation_id = f"alloc-{event:06d}-{index}"
                allocations.append((allocation_id, product, rng.randint(1, 3)))
            key = counters_key(LOCATION, product)
            lines.append(Line(event, index, product, quantity, allocation_id, (key["pk"], key["sk"])))
            item: dict[str, Any] = {"product_id": product, "quantity": quantity}
            if allocation_id is not None:
                item["allocation_id"] = allocation_id
            items.append(item)
        detail = {
            "event_id": f"ship-{event:06d}",
            "location_id": LOCATION,
            "shipment_id": f"shipment-{event:06d}",
            "logical_timestamp": 1000 + event,
            "occurred_at": occurred_at,
            "items": items,
        }
        body = json.dumps(
            {
                "version": "0",
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "detail-type": DETAIL_TYPE,
                "source": SOURCE,
                "account": "123456789012",
                "time": occurred_at,
                "region": region,
                "resources": [],
                "detail": detail,
            }
        )
        message = {
            "MessageId": str(uuid.UUID(int=rng.getrandbits(128))),
            "ReceiptHandle": f"bench-{event}",
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        }
        message_event[message["MessageId"]] = event
        records.append(sqs_record(message, queue_arn, region))
    batches = [{"Records": records[start : start + batch_size]} for start in range(0, len(records), batch_size)]
    plan = Plan(workload, products, lines, allocations, batches, events, message_event, stock)
    plan.hot = [product_id(n) for n in hot]
    if hot:
        hottest_lines = sum(1 for line in lines if line.product == plan.hot[0])
        if hottest_lines < HOTTEST_LINES * args.skew_scale:
            raise SystemExit(f"the hottest product got {hottest_lines} lines, fewer than the workload asks")
    return plan


def write_import(path: Path, products: int, stock: dict[int, int]) -> None:
    """One row per product, in main stock: SKU-n with n % 1000 units, or what `stock` says."""
    with path.open("w") as out:
        for start in range(0, products, 10_000):
            numbers = range(start, min(products, start + 10_000))
            rows = (JSONL_ROW % (n, stock.get(n, n % 1000), "main") for n in numbers)
            out.write("".join(rows))


# ---------------------------------------------------------------- preparing the backends (in a worker's process)


def import_products(source: str, products: int) -> float:
    started = time.perf_counter()
    imports = wiring.import_runner(settings_of(StockImportWorkerSettings))
    request = ImportRequest(
        import_id="bench-load", kind=ImportKind.INITIAL, source=source, location_type=LocationType.STORE
    )
    record, _ = imports.accept(LOCATION, request, caller="bench")
    status = imports.run(LOCATION, record.import_id, lambda: 10**9)
    record = imports.status(LOCATION, record.import_id)
    if status is not ImportStatus.COMPLETED or record.counts is None or record.counts.applied != products:
        raise RuntimeError(f"the import did not complete: {record.status} {record.counts} {record.errors[:3]}")
    return time.perf_counter() - started


def prepare_service(source: str, products: int, allocations: list[Any]) -> dict[str, float]:
    """The location, its initial import, the open allocations through the allocation service."""
    import_seconds = import_products(source, products)
    started = time.perf_counter()
    allocate = wiring.allocation_service(settings_of(TableSettings))

    def open_one(spec: tuple[str, str, int]) -> None:
        allocation_id, product, quantity = spec
        lines = (AllocationLine(product_id=product, quantity=quantity),)
        view, _ = allocate.create(LOCATION, AllocationRequest(allocation_id, f"order-{allocation_id}", lines), "bench")
        if view.allocation.status is not AllocationStatus.OPEN:
            raise RuntimeError(f"allocation {allocation_id} is {view.allocation.status}")

    # In order for one product (its oldest open ones are closed first), 8 at a time across products.
    by_product: dict[str, list[Any]] = {}
    for spec in allocations:
        by_product.setdefault(spec[1], []).append(spec)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda specs: [open_one(spec) for spec in specs], by_product.values()))
    return {"import_seconds": import_seconds, "allocation_seconds": time.perf_counter() - started}


def prepare_floor(env: dict[str, str], source: str, products: int, keys: list[Key]) -> dict[str, float]:
    """The same import, then a 1 KB item for every product the workload ships."""
    import_seconds = import_products(source, products)
    client = boto3.client("dynamodb")
    items = []
    for key in keys:
        item = {**floor_item(key), "pad": {"S": ""}}
        item["pad"]["S"] = "x" * (FLOOR_ITEM_BYTES - item_size(item))
        items.append(item)
    for start in range(0, len(items), 25):
        pending = {env["TABLE_NAME"]: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return {"import_seconds": import_seconds, "allocation_seconds": 0.0}


def floor_item(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}, "version": {"N": "0"}, "quantity": {"N": "1000000"}}


# ---------------------------------------------------------------- the write log: each write, its item before and after


@dataclass(frozen=True)
class State:
    size: int  # bytes
    units: int  # write units of writing it
    indexed: tuple[str | None, ...]  # its keys in each GSI (None: not in it)
    entries: frozenset[str]  # its ledger entries, for a hot item


@dataclass(frozen=True)
class Index:
    hash: str
    range: str | None
    projection: str  # ALL, KEYS_ONLY or INCLUDE


class WriteLog:
    """Logs every write request of a client, as (batch, class, operation, ok, table units, index units,
    largest item bytes, entries added), with the item before (read when it was not seen yet) and
    after (read back, or the put item) by a client of its own. `wall` and `cpu` add up what the
    log spends (its reads included), to be taken out of the handler's times."""

    def __init__(self, client: Any, table: str, indexes: list[Index], events: set[str], sdk: SdkTime) -> None:
        self._reader = boto3.client("dynamodb")
        self._table, self._indexes, self._sdk = table, indexes, sdk
        self._event_partitions = events
        self._counters = {counters_partition(LOCATION, n) for n in range(PRODUCT_SHARDS)}
        self._states: dict[Key, State | None] = {}
        self._pending: tuple[str, list[tuple[Key, Any]]] | None = None
        self.records: list[tuple[int, str, str, bool, int, int, int, int]] = []
        self.phase, self.batch = "handler", 0
        self.round_writes: Counter[Key] = Counter()
        self.wall = self.cpu = 0.0
        self.in_sdk: dict[str, list[float]] = {}  # per operation: [CPU, wall] of the log inside its calls
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _read(self, key: Key) -> dict[str, Any] | None:
        paused, self._sdk.paused = self._sdk.paused, True
        try:
            answer = self._reader.get_item(
                TableName=self._table, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}}, ConsistentRead=True
            )
        finally:
            self._sdk.paused = paused
        return answer.get("Item")

    def _state(self, item: dict[str, Any] | None) -> State | None:
        if item is None:
            return None
        indexed = []
        for index in self._indexes:
            parts = [item.get(index.hash), item.get(index.range) if index.range else {}]
            indexed.append(None if any(part is None for part in parts) else json.dumps(parts, sort_keys=True))
        hot = item["pk"]["S"] in self._counters
        entries = frozenset(name for name in item if name.startswith(ENTRY_PREFIXES)) if hot else frozenset()
        return State(item_size(item), write_units(item), tuple(indexed), entries)

    def _timed(self, operation: str, work: Any, *args: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            work(*args)
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            self.wall += wall
            self.cpu += cpu
            if not self._sdk.paused:  # inside a call that SdkTime times: not the SDK's time
                totals = self.in_sdk.setdefault(operation, [0.0, 0.0])
                totals[0] += cpu
                totals[1] += wall

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            self._timed(model.name, self._note, model.name, params)

    def _note(self, operation: str, params: dict[str, Any]) -> None:
        writes: list[tuple[Key, Any]] = []
        if operation == "BatchWriteItem":
            for request in params["RequestItems"].get(self._table, []):
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    writes.append(((item["pk"]["S"], item["sk"]["S"]), item))
                else:
                    key = request["DeleteRequest"]["Key"]
                    writes.append(((key["pk"]["S"], key["sk"]["S"]), None))
        elif operation == "TransactWriteItems":
            raise RuntimeError("a transaction on the hot path: the benchmark does not count it")
        else:
            key = params.get("Key") or params["Item"]
            what = params["Item"] if operation == "PutItem" else None if operation == "DeleteItem" else "update"
            writes.append(((key["pk"]["S"], key["sk"]["S"]), what))
        for key, _ in writes:
            if key not in self._states:
                self._states[key] = self._state(self._read(key))
        self._pending = (operation, writes)

    def _after(self, model: Any, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS and self._pending is not None:
            self._timed(model.name, self._log, http_response.status_code < 300, parsed)

    def _log(self, ok: bool, parsed: dict[str, Any]) -> None:
        assert self._pending is not None
        operation, writes = self._pending
        self._pending = None
        unprocessed = {
            (r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"])["sk"]["S"]
            for r in (parsed.get("UnprocessedItems") or {}).get(self._table, [])
        }
        units = index_units = largest = added = 0
        classes = set()
        for key, what in writes:
            before = self._states.get(key)
            if not ok or key[1] in unprocessed:
                after = before
                units += before.units if before else 1  # a refused condition is paid for
            else:
                after = self._state(self._read(key) if what == "update" else what)
                units += max(before.units if before else 0, after.units if after else 0)
                index_units += self._index_units(before, after)
                self._states[key] = after
            largest = max(largest, before.size if before else 0, after.size if after else 0)
            new_entries = len((after.entries if after else frozenset()) - (before.entries if before else frozenset()))
            added += new_entries if ok else 0
            classes.add(self._class(key, ok, new_entries))
            if self.phase == "relay":
                self.round_writes[key] += 1
        kind = "relay" if self.phase == "relay" else "hot" if classes == {"hot"} else "background"
        self.records.append((self.batch, kind, operation, ok, units, index_units, largest, added))

    def _class(self, key: Key, ok: bool, new_entries: int) -> str:
        if key[0] in self._event_partitions:
            return "hot"  # the event's claim and its `done`
        if key[0] in self._counters and (new_entries or not ok):
            return "hot"  # the line's own write (or its blind write, refused)
        return "background"

    def _index_units(self, before: State | None, after: State | None) -> int:
        total = 0
        for n, index in enumerate(self._indexes):
            was, now = (state.indexed[n] if state else None for state in (before, after))
            if was is None and now is None:
                continue
            size = after if now is not None and after else before
            projected = 1 if index.projection == "KEYS_ONLY" else size.units if size else 1
            if was is None or now is None:
                total += projected  # enters or leaves the index
            elif was != now:
                total += 1 + projected  # its index keys changed: a delete and a put
            elif index.projection != "KEYS_ONLY":
                total += projected  # the index's copy changes with the item
        return total


# ---------------------------------------------------------------- the relay, at its deployed cadence


@dataclass(frozen=True)
class Cadence:
    rate_s: float  # the schedule starts a run this often
    timeout_s: float
    stop_before_s: float  # a run's last round starts no later than this before its timeout
    pause_s: float  # after a round that found nothing


def relay_cadence(aws: Any) -> Cadence:
    """The relay's schedule, timeout and poll interval from the template, and its stop margin from
    its handler's source (importing the handler would read its settings)."""
    from local.triggers import rate_seconds

    spec = aws.functions[RELAY_FUNCTION]
    schedule = next(e for e in spec.events if e.type in ("Schedule", "ScheduleV2"))
    rate = rate_seconds(schedule.properties["ScheduleExpression"])
    if rate is None:
        raise SystemExit(f"the relay's schedule is not a rate: {schedule.properties['ScheduleExpression']}")
    stop_ms = next(
        ast.literal_eval(node.value)
        for node in ast.parse(RELAY_CODE.read_text()).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "STOP_BEFORE_TIMEOUT_MS" for t in node.targets)
    )
    pause_ms = int(spec.environment["RELAY_POLL_INTERVAL_MS"])
    return Cadence(rate, spec.timeout, stop_ms / 1000, pause_ms / 1000)


class RelayClock:
    """When the next relay round is due, in the handler's elapsed seconds."""

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence
        self.run_started = 0.0
        self.next_round = 0.0

    def due(self, elapsed: float) -> bool:
        c = self.cadence
        if self.next_round > elapsed:
            return False
        if self.next_round >= self.run_started + c.rate_s:  # a later run of the schedule
            self.run_started += c.rate_s * math.floor((self.next_round - self.run_started) / c.rate_s)
        if self.next_round > self.run_started + c.timeout_s - c.stop_before_s:  # this run has stopped
            self.next_round = self.run_started + c.rate_s
            return self.due(elapsed)
        return True

    def ran(self, elapsed: float, published: int, failed: int) -> None:
        # at once after a round that published all it found; after one that found nothing, or failed, a pause
        self.next_round = max(self.next_round, elapsed) if published and not failed else elapsed + self.cadence.pause_s


# ---------------------------------------------------------------- what runs in the child processes

# Each run's child process keeps its state between the parent's calls: the handler stays imported
# and warm, as one Lambda instance is from batch to batch, and the times add up over the chunks.
_RUN: dict[str, Any] = {}


def service_start(
    env: dict[str, str],
    timeout_s: int,
    profile: int,
    relay_env: dict[str, str],
    cadence: Cadence,
    indexes: list[Index],
    event_partitions: list[str],
) -> None:
    """Import the handler in this (fresh) process, with everything it loads at a cold start; then the
    relay, the call counter and the write log."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the handler's JSON logs and metrics: CloudWatch's, in Lambda
    handler = load_handler()
    sdk = SdkTime()
    client = wiring.table(env["TABLE_NAME"]).client  # the handler's client, the relay's too in this process
    relay = wiring.outbox_relay(
        OutboxRelaySettings(
            table_name=relay_env["TABLE_NAME"],
            event_bus_name=relay_env["EVENT_BUS_NAME"],
            relay_poll_interval_ms=int(relay_env["RELAY_POLL_INTERVAL_MS"]),
        )
    )
    counter = CallCounter(client)
    _RUN.update(
        handler=handler,
        context=lambda_context_class(),
        env=env,
        timeout_s=timeout_s,
        counter=counter,
        sdk=sdk,
        log=WriteLog(client, env["TABLE_NAME"], indexes, set(event_partitions), sdk),
        relay=relay,
        clock=RelayClock(cadence),
        relay_calls=Counter(),
        relay_rounds=[],  # per round: (writes, items written, most writes of one item)
        relay_seconds=0.0,
        published=0,
        profiler=cProfile.Profile() if profile else None,
        profile=profile,
        seconds=0.0,
        cpu=0.0,
        batches=0,
        failures=[],
    )


def service_chunk(batches: list[dict[str, Any]]) -> None:
    """The next batches, one after another, as one Lambda instance is given them; the relay's rounds
    between them, when due."""
    run, profiler, log = _RUN, _RUN["profiler"], _RUN["log"]
    for batch in batches:
        log.batch, run["batches"] = run["batches"], run["batches"] + 1
        started, cpu, logged = time.perf_counter(), time.process_time(), (log.wall, log.cpu)
        if profiler:
            profiler.enable()
        response = run["handler"].lambda_handler(batch, run["context"](remaining_ms=run["timeout_s"] * 1000))
        if profiler:
            profiler.disable()
        run["seconds"] += time.perf_counter() - started - (log.wall - logged[0])
        run["cpu"] += time.process_time() - cpu - (log.cpu - logged[1])
        run["failures"] += [(log.batch, f["itemIdentifier"]) for f in response["batchItemFailures"]]
        while run["clock"].due(run["seconds"]):
            relay_round()


def relay_round() -> None:
    run, log, sdk = _RUN, _RUN["log"], _RUN["sdk"]
    calls, started = Counter(run["counter"].calls), time.perf_counter()
    log.phase, log.round_writes, sdk.paused = "relay", Counter(), True
    try:
        result = run["relay"].run_once()
    finally:
        log.phase, sdk.paused = "handler", False
    run["relay_seconds"] += time.perf_counter() - started
    run["relay_calls"] += Counter(run["counter"].calls) - calls
    run["counter"].calls = calls  # the handler's calls stay the handler's
    writes = log.round_writes
    run["relay_rounds"].append((sum(writes.values()), len(writes), max(writes.values(), default=0)))
    run["published"] += result.published
    run["clock"].ran(run["seconds"], result.published, result.failed)


def floor_start(env: dict[str, str]) -> None:
    """The floor's client, with the adapter's configuration."""
    client = Table(env["TABLE_NAME"]).client
    _RUN.update(
        env=env,
        counter=CallCounter(client),
        sdk=SdkTime(),
        send={"PutItem": client.put_item, "UpdateItem": client.update_item},
        profiler=None,
        seconds=0.0,
        cpu=0.0,
    )


def floor_chunk(requests: list[tuple[str, dict[str, Any]]]) -> None:
    """The floor's next writes, already built, one after another."""
    run = _RUN
    started, cpu = time.perf_counter(), time.process_time()
    for operation, request in requests:
        run["send"][operation](**request)  # a refused condition raises: every write of the floor must apply
    run["seconds"] += time.perf_counter() - started
    run["cpu"] += time.process_time() - cpu


def finish(products: list[str]) -> dict[str, Any]:
    """A run's totals; for the service, its write log, the relay's and the stock on hand of `products`
    (through the stock service, as a client reads it)."""
    run, sdk, profiler = _RUN, _RUN["sdk"], _RUN["profiler"]
    by_operation = {operation: list(totals) for operation, totals in sdk.by_operation.items()}
    logged = run["log"].in_sdk if "log" in run else {}
    for operation, (cpu, wall) in logged.items():  # the write log's own work, inside the handler's calls
        by_operation[operation][1] -= cpu
        by_operation[operation][2] -= wall
    result = {
        "seconds": run["seconds"],
        "cpu": run["cpu"],
        "sdk_cpu": sdk.cpu - sum(cpu for cpu, _ in logged.values()),
        "sdk_wall": sdk.wall - sum(wall for _, wall in logged.values()),
        "by_operation": by_operation,
        "calls": dict(run["counter"].calls),
        "profile": "",
    }
    if "log" in run:
        stock = wiring.stock_service(settings_of(TableSettings))
        result |= {
            "records": run["log"].records,
            "failures": run["failures"],
            "relay_calls": dict(run["relay_calls"]),
            "relay_rounds": run["relay_rounds"],
            "relay_seconds": run["relay_seconds"],
            "published": run["published"],
            "on_hand": {product: stock.product(LOCATION, product).stock_on_hand for product in products},
        }
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print("Beyond the SDK: own time of the functions outside botocore and the modules it uses", file=out)
        print("(builtins such as isinstance or dict.get are counted wherever they are called from)", file=out)
        stats.sort_stats("tottime").print_stats(SDK_CODE, run["profile"])
        print("The handler's code paths, by cumulative time (SDK calls included)", file=out)
        stats.sort_stats("cumulative").print_stats(HANDLER_PATHS, run["profile"])
        result["profile"] = re.sub(
            r"\S*/(site-packages|python3\.\d+)/", "", out.getvalue().replace(str(ROOT) + os.sep, "")
        )
    return result


# ---------------------------------------------------------------- the parent


def upload_import(aws: Any, path: Path) -> str:
    bucket, key = aws.name("ImportBucket"), f"bench/{path.name}"  # not under imports/: no S3 trigger
    # One PutObject: a multipart upload leaves parts that trip moto's /moto-api/data.json at the next start.
    aws.client("s3").upload_file(str(path), bucket, key, Config=TransferConfig(multipart_threshold=2**40))
    return f"s3://{bucket}/{key}"


def table_indexes(aws: Any) -> list[Index]:
    """The table's GSIs, as the template declares them."""
    (table,) = aws.template.of_type("AWS::DynamoDB::Table")
    indexes = []
    for gsi in aws.template.properties(table).get("GlobalSecondaryIndexes", []):
        schema = {part["KeyType"]: part["AttributeName"] for part in gsi["KeySchema"]}
        indexes.append(Index(schema["HASH"], schema.get("RANGE"), gsi["Projection"]["ProjectionType"]))
    return indexes


def dead_letters(aws: Any) -> list[tuple[str, str]]:
    """(event id, reason code) of every record the handler moved to the fulfilment dead-letter queue."""
    sqs, url = aws.client("sqs"), aws.queue_url("FulfillmentDeadLetterQueue")
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            letter = json.loads(message["Body"])
            event_id = json.loads(letter["body"])["detail"]["event_id"]
            found.append((event_id, letter["reason"]["code"]))
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        )


def measure(args: argparse.Namespace, workload: str, workdir: Path) -> dict[str, Any]:
    """--repeat pairs of runs of the workload (the machines are shared: a neighbour's load can slow
    either run of a pair); the pair of median time ratio is reported, with every ratio."""
    runs = [measure_pair(args, workload, workdir) for _ in range(args.repeat)]
    runs.sort(key=lambda m: m["service"]["seconds"] / m["floor"]["seconds"])
    median = runs[len(runs) // 2]
    return {**median, "ratios": [m["service"]["seconds"] / m["floor"]["seconds"] for m in runs]}


def measure_pair(args: argparse.Namespace, workload: str, workdir: Path) -> dict[str, Any]:
    """The service and the floor, each on backends of its own and in a process of its own, taking
    turns chunk by chunk (CHUNK_EVENTS events at a time), so that a neighbour's load falls on both."""
    from local.stack import LocalAws  # not in the children: they hold what the handler holds, no more

    with ExitStack() as stack:
        stacks = {run: stack.enter_context(LocalAws(ROOT / "template.yaml")) for run in ("service", "floor")}
        aws = stacks["service"]
        spec = aws.functions[FUNCTION]
        queue = next(e for e in spec.events if e.type == "SQS")
        batch_size = int(queue.properties.get("BatchSize", 10))
        plan = make_plan(args, workload, batch_size, aws.arn("FulfillmentQueue"), aws.region)
        path = workdir / f"stock-{workload}-{plan.products}.jsonl"
        write_import(path, plan.products, plan.stock)
        keys = sorted({line.key for line in plan.lines})
        measured: dict[str, Any] = {"plan": plan, "batch_size": batch_size, "cadence": relay_cadence(aws)}
        for run, local in stacks.items():
            source = upload_import(local, path)
            worker_env = local.function_env(WORKER)
            with Child(worker_env) as worker:
                if run == "service":
                    measured["service_prep"] = worker.call(prepare_service, source, plan.products, plan.allocations)
                else:
                    measured["floor_prep"] = worker.call(prepare_floor, worker_env, source, plan.products, keys)
        children = {
            run: stack.enter_context(Child(handler_env(local.function_env(FUNCTION), HANDLER_CODE)))
            for run, local in stacks.items()
        }
        env = aws.function_env(FUNCTION)
        events = sorted({event_key(LOCATION, f"ship-{n:06d}")["pk"] for n in range(plan.events)})
        children["service"].call(
            service_start,
            env,
            spec.timeout,
            args.profile,
            aws.function_env(RELAY_FUNCTION),
            measured["cadence"],
            table_indexes(aws),
            events,
        )
        children["floor"].call(floor_start, stacks["floor"].function_env(FUNCTION))
        table = env["TABLE_NAME"]
        versions: dict[Key, int] = {}
        per_chunk = max(1, CHUNK_EVENTS // batch_size)
        for turn, start in enumerate(range(0, len(plan.batches), per_chunk)):
            first, last = start * batch_size, (start + per_chunk) * batch_size
            requests = floor_requests(table, [line for line in plan.lines if first <= line.event < last], versions)
            order = ("service", "floor") if turn % 2 == 0 else ("floor", "service")
            for run in order:
                if run == "service":
                    children["service"].call(service_chunk, plan.batches[start : start + per_chunk])
                else:
                    children["floor"].call(floor_chunk, requests)
        rng = random.Random(args.seed)
        shipped = sorted({line.product for line in plan.lines})
        checked = sorted(set(plan.hot) | set(rng.sample(shipped, min(200, len(shipped)))))
        measured["service"] = children["service"].call(finish, checked)
        measured["floor"] = children["floor"].call(finish, [])
        measured["dead_letters"] = dead_letters(aws)
    return measured


def floor_requests(table: str, lines: list[Line], versions: dict[Key, int]) -> list[tuple[str, dict[str, Any]]]:
    """Per event a conditional PutItem of its record; per line a conditional UpdateItem of its product's item."""
    requests: list[tuple[str, dict[str, Any]]] = []
    recorded = -1
    for line in lines:
        if line.event != recorded:
            recorded = line.event
            key = event_key(LOCATION, f"ship-{line.event:06d}")
            item = {
                "pk": {"S": key["pk"]},
                "sk": {"S": key["sk"]},
                "body_hash": {"S": hashlib.sha256(str(line.event).encode()).hexdigest()},
                "keep_until": {"N": str(int(time.time()) + 35 * 86400)},
            }
            requests.append(
                (
                    "PutItem",
                    {
                        "TableName": table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": "pk"},
                    },
                )
            )
        version = versions.get(line.key, 0)
        versions[line.key] = version + 1
        request = {
            "TableName": table,
            "Key": {"pk": {"S": line.key[0]}, "sk": {"S": line.key[1]}},
            "UpdateExpression": "SET #q = #q - :q, #v = :next",
            "ConditionExpression": "#v = :expected",
            "ExpressionAttributeNames": {"#q": "quantity", "#v": "version"},
            "ExpressionAttributeValues": {
                ":q": {"N": str(line.quantity)},
                ":next": {"N": str(version + 1)},
                ":expected": {"N": str(version)},
            },
        }
        requests.append(("UpdateItem", request))
    return requests


# ---------------------------------------------------------------- the report


def percentile(values: list[int], share: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def stopped_at(plan: Plan, m: dict[str, Any]) -> dict[str, Any]:
    """The lines of the events dead-lettered or failed, the first of them in the order sent, and the
    write units per line of the batches before its own."""
    event_ids = {f"ship-{n:06d}": n for n in range(plan.events)}
    service = m["service"]
    lost: dict[int, str] = {event_ids[event_id]: reason for event_id, reason in m["dead_letters"]}
    for _, message_id in service["failures"]:
        lost.setdefault(plan.message_event[message_id], "batch item failure")
    lines_of = Counter(line.event for line in plan.lines)
    out: dict[str, Any] = {"events": len(lost), "lines": sum(lines_of[e] for e in lost)}
    out["reasons"] = Counter(lost.values())
    if not lost:
        return out
    first = min(lost)
    position = next(n for n, line in enumerate(plan.lines) if line.event == first)
    batch = first // m["batch_size"]
    before = [r for r in service["records"] if r[0] < batch and r[1] != "relay"]
    lines_before = sum(1 for line in plan.lines if line.event < batch * m["batch_size"])
    out |= {
        "first_event": first,
        "first_line": position + 1,  # 1-based, in the order sent
        "product": plan.lines[position].product,
        "products": sorted({line.product for line in plan.lines if line.event == first}),
        "reason": lost[first],
        "units_per_line": sum(r[4] + r[5] for r in before) / max(1, lines_before),
        "hot_units_per_line": sum(r[4] + r[5] for r in before if r[1] == "hot") / max(1, lines_before),
        "lines_before": lines_before,
    }
    return out


def report(args: argparse.Namespace, workload: str, m: dict[str, Any]) -> bool:
    plan: Plan = m["plan"]
    service, floor = m["service"], m["floor"]
    events, lines = plan.events, len(plan.lines)
    records = service["records"]
    by_kind: dict[str, dict[str, float]] = {}
    for kind in ("hot", "background", "relay"):
        these = [r for r in records if r[1] == kind]
        by_kind[kind] = {
            "requests": len(these),
            "refused": sum(1 for r in these if not r[3]),
            "units": sum(r[4] for r in these),
            "index": sum(r[5] for r in these),
        }
    sizes = [r[6] for r in records if r[1] != "relay"]
    relay_sizes = [r[6] for r in records if r[1] == "relay"]
    p99, largest = percentile(sizes, 0.99), max(sizes, default=0)
    rounds = service["relay_rounds"]
    busy = [r for r in rounds if r[0]]
    relay_most = max((r[2] for r in rounds), default=0)
    ratio = service["seconds"] / floor["seconds"]
    floor_writes = sum(n for op, n in floor["calls"].items() if op in WRITE_OPERATIONS)
    beyond_ms = (service["cpu"] - service["sdk_cpu"]) * 1000 / events
    entries = sum(r[7] for r in records if r[1] == "hot")
    lost = stopped_at(plan, m)
    allocated = sum(1 for line in plan.lines if line.allocation_id)

    title = f"== {workload}: {plan.products} products at the location, {events} events of {lines} lines"
    title += f" ({allocated} naming an open allocation), {len(plan.batches)} batches of up to {m['batch_size']}"
    print(title)
    if plan.hot:
        counts = Counter(line.product for line in plan.lines)
        hot_lines = sum(counts[p] for p in plan.hot)
        print(
            f"   {hot_lines} lines ({hot_lines / lines:.0%}) to {len(plan.hot)} hot products; the hottest, "
            f"{plan.hot[0]}, {counts[plan.hot[0]]} lines and {sum(1 for a in plan.allocations if a[1] == plan.hot[0])}"
            " open allocations at the start (closed oldest first)"
        )
    print(f"   {'per line':<34}{'write requests':>15}{'WCU table':>11}{'WCU index':>11}{'WCU total':>11}")
    labels = {
        "hot": "hot path (line write, event record)",
        "background": "background (pages, moves, others)",
        "relay": "relay",
    }
    for kind, label in labels.items():
        k = by_kind[kind]
        print(
            f"   {label:<34}{k['requests'] / lines:>15.3f}{k['units'] / lines:>11.3f}{k['index'] / lines:>11.3f}"
            f"{(k['units'] + k['index']) / lines:>11.3f}"
        )
    print(f"   {'floor (1 KB item update, event put)':<34}{floor_writes / lines:>15.3f}{floor_writes / lines:>11.3f}")
    print(
        f"   refused conditional writes: {by_kind['hot']['refused']} hot path, {by_kind['background']['refused']} "
        f"background, {by_kind['relay']['refused']} relay; {entries} ledger entries added for {lines} lines"
    )
    print(
        f"   largest item touched by the handler's writes: p99 {p99} B, max {largest} B (over {len(sizes)} writes); "
        f"by the relay's: p99 {percentile(relay_sizes, 0.99)} B, max {max(relay_sizes, default=0)} B"
    )
    c = m["cadence"]
    print(
        f"   relay: a run every {c.rate_s:.0f} s, rounds every {c.pause_s:.1f} s (at once after one that published) "
        f"until {c.stop_before_s:.0f} s before its {c.timeout_s:.0f} s timeout, by the handler's elapsed time: "
        f"{len(rounds)} rounds, {len(busy)} that wrote, {service['published']} events published, "
        f"{sum(r[0] for r in rounds)} writes of {sum(r[1] for r in rounds)} items, at most {relay_most} per item "
        f"in a round; {service['relay_seconds']:.1f} s of its own; requests "
        + ", ".join(f"{op} {n}" for op, n in sorted(service["relay_calls"].items()))
    )
    listed = ", ".join(f"{op} {n}" for op, n in sorted(service["calls"].items()))
    print(f"   handler's DynamoDB requests: {listed}")
    prep = m["service_prep"]
    print(
        f"   time: handler {service['seconds']:.2f} s ({lines / service['seconds']:.0f} lines/s), floor "
        f"{floor['seconds']:.2f} s ({lines / floor['seconds']:.0f} lines/s): ratio {ratio:.2f}"
        + (f" (the median of {', '.join(f'{r:.2f}' for r in m['ratios'])})" if len(m["ratios"]) > 1 else "")
        + f"; preparation: import {prep['import_seconds']:.1f} s, {len(plan.allocations)} allocations "
        f"{prep['allocation_seconds']:.1f} s"
    )
    print(
        f"   CPU: handler {service['cpu']:.2f} s, of it {service['sdk_cpu']:.2f} s inside botocore: "
        f"{service['cpu'] * 1000 / events:.2f} ms per event, {beyond_ms:.2f} beyond the SDK calls"
    )
    inside = "; ".join(
        f"{op} {n:.0f} calls, {wall * 1000 / n:.2f} ms wall and {cpu * 1000 / n:.2f} ms CPU each"
        for op, (n, cpu, wall) in sorted(service["by_operation"].items())
    )
    print(f"   inside botocore: {inside}")
    if lost["events"]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in lost["reasons"].items())
        print(
            f"   dead-lettered or failed: {lost['events']} events ({lost['lines']} lines; {reasons}); "
            f"the first at line "
            f"{lost['first_line']} of {lines} (event {lost['first_event']}, products {', '.join(lost['products'])}, "
            f"{lost['reason']}); before its batch, {lost['units_per_line']:.2f} write units per line "
            f"({lost['hot_units_per_line']:.2f} on the hot path) over {lost['lines_before']} lines"
        )
    else:
        print("   dead-lettered or failed: none")
    if service.get("profile"):
        print("profile of the service's child (its times are inflated by the profiler):")
        print(service["profile"])

    # Stock on hand, through the stock service, of the hot products and a sample: the import less the lines applied.
    lost_events = {n for n in range(plan.events) if f"ship-{n:06d}" in {e for e, _ in m["dead_letters"]}}
    lost_events |= {plan.message_event[message] for _, message in service["failures"]}
    shipped: Counter[str] = Counter()
    partial = {line.product for line in plan.lines if line.event in lost_events}
    for line in plan.lines:
        shipped[line.product] += line.quantity
    wrong = [
        product
        for product, on_hand in service["on_hand"].items()
        if product not in partial and on_hand != plan.imported(product) - shipped[product]
    ]
    hot, background = by_kind["hot"], by_kind["background"]
    time_target = TIME_RATIO_TARGETS[workload]
    checks = [
        (
            not lost["events"] and entries == lines and not wrong,
            f"every line applied once: {entries} ledger entries written for {lines} lines, {lost['lines']} lines "
            f"dead-lettered or failed, stock on hand of {len(service['on_hand'])} products "
            f"({len(plan.hot)} hot) {'as expected' if not wrong else f'wrong for {len(wrong)}'}",
        ),
        (
            hot["requests"] / lines <= HOT_REQUESTS_TARGET,
            f"hot path {hot['requests'] / lines:.3f} write requests per line (<= {HOT_REQUESTS_TARGET})",
        ),
        (
            (hot["units"] + hot["index"]) / lines <= HOT_UNITS_TARGET,
            f"hot path {(hot['units'] + hot['index']) / lines:.3f} write units per line (<= {HOT_UNITS_TARGET:g})",
        ),
        (
            background["requests"] / lines <= BACKGROUND_REQUESTS_TARGET,
            f"background {background['requests'] / lines:.3f} write requests per line "
            f"(<= {BACKGROUND_REQUESTS_TARGET})",
        ),
        (
            (background["units"] + background["index"]) / lines <= BACKGROUND_UNITS_TARGET,
            f"background {(background['units'] + background['index']) / lines:.3f} write units per line "
            f"(<= {BACKGROUND_UNITS_TARGET})",
        ),
        (
            relay_most <= RELAY_WRITES_PER_ITEM_TARGET,
            f"relay at most {relay_most} write per item in a round (<= {RELAY_WRITES_PER_ITEM_TARGET})",
        ),
        (p99 <= P99_ITEM_TARGET, f"p99 item touched {p99} B (<= {P99_ITEM_TARGET})"),
        (ratio <= time_target, f"time {ratio:.2f}x the floor's (<= {time_target})"),
        (
            beyond_ms < CPU_MS_PER_EVENT_TARGET,
            f"{beyond_ms:.2f} ms of handler CPU per event beyond the SDK calls (< {CPU_MS_PER_EVENT_TARGET:g})",
        ),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {workload}: {text}")
    return all(ok for ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("both", "uniform", "skewed"), default="both")
    parser.add_argument("--products", type=int, default=100_000, help="uniform: products imported at the location")
    parser.add_argument("--events", type=int, default=5000, help="uniform: shipment events (1 to 3 lines each)")
    parser.add_argument(
        "--skew-scale",
        type=float,
        default=1.0,
        help="skewed: its products, events, hot lines and allocations times this",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the events' products and quantities")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs; the pair of median time ratio is shown")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions of the handler")
    args = parser.parse_args()
    workloads = ("uniform", "skewed") if args.workload == "both" else (args.workload,)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="shipments-", dir=out))
    passed = True
    try:
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before the benchmark", flush=True)
        for workload in workloads:
            passed = report(args, workload, measure(args, workload, workdir)) and passed
            print(f"(1-minute load average {os.getloadavg()[0]:.1f} after it)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
