"""Shipment events through the shipment events handler on the local backends, against the floor of their writes.

On fresh local AWS backends (dynalite, moto for S3 and SQS) provisioned from template.yaml, a store
location gets an initial stock import of --products products (one row each, in main stock; the
stock import worker's `ImportRunner.accept()` and `run()`, as bench.imports runs them) and, for about one
shipped product in ten, an open allocation (`AllocationService.create`). Then:

- the service: --events "Fulfillment Items Shipped" events of 1 to 3 lines each (every line a
  distinct product, spread over the location's products; the lines of allocated products name their
  allocation and close part or all of it) go, as SQS events of the template's BatchSize, to
  `lambda_handler` of functions/shipment_events/app.py, one batch after another (one Lambda
  instance), in a child process that has imported the handler with the function's environment, as
  Lambda would;
- the floor: on backends of their own, prepared the same way, the same changes written by the fewest
  raw single-item conditional updates, one after another like the handler's, from a child process of
  its own: per event, its applied-event record (one PutItem on the condition that it does not exist,
  as the service writes it); per line, one UpdateItem of the product's counters item, on the
  condition of its version (on the condition that it does not exist, for a product that had none),
  setting exactly the attribute paths that the service's write changed (the ledger entry, the
  allocation's quantity or its removal, the outbox event and its index keys, the versions and the
  allocated total), with the values read back from the items the service wrote;
- the put floor, reported beside it: the same, except that a product that had no counters item
  gets one PutItem of the whole item. Only a writer that knows the item is absent can do that (the
  service would have to read first, which costs more); dynalite answers a PutItem faster than an
  UpdateItem of the same item, so this floor is lower.

The three runs take turns, 500 events at a time (the service first, then the floors, whose writes
are built from the items the service's turn left), each in a process of its own that stays warm
from turn to turn: a neighbour's load on these shared machines falls on all three alike.

Every DynamoDB call either makes is counted by operation. Write units are computed from item sizes
with DynamoDB's rules (bench.harness' `write_units`): each single-item write costs the units of the
larger of its item before (read after the preparation) and after (read back after the run), plus,
reported apart, a write of the sparse KEYS_ONLY outbox index (1 unit) when the write adds or removes
the item there. Handler CPU is the child's process CPU time over the run; the CPU beyond the SDK
calls is that minus the CPU time spent inside botocore's `BaseClient._make_api_call`.

    python -m bench.shipments [--products 100000] [--events 5000] [--seed 1] [--repeat 3] [--profile 30]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

from bench.child import load_handler
from bench.gen_import_file import write_import_file
from bench.harness import (
    ROOT,
    CallCounter,
    Child,
    Key,
    SdkTime,
    handler_env,
    item_size,
    lambda_context_class,
    read_items,
    read_partitions,
    write_units,
)
from bench.imports import WORKER
from inventory import wiring
from inventory.adapters.dynamodb.keys import (
    ALLOCATION_PREFIX,
    BUFFER_PREFIX,
    EVENT_PREFIX,
    LEDGER_PREFIX,
    PRODUCT_SHARDS,
    buffer_attribute_prefix,
    counters_key,
    counters_partition,
    entry_attribute_prefix,
    event_key,
)
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.models import AllocationStatus, ImportKind, ImportStatus, LocationType
from inventory.models.allocations import AllocationLine
from inventory.services.allocations import AllocationRequest
from inventory.services.imports import ImportRequest
from inventory.settings import TableSettings, settings_of
from inventory.settings.stock_import_worker import StockImportWorkerSettings

FUNCTION = "ShipmentEventsFunction"
HANDLER_CODE = ROOT / "functions" / "shipment_events"
LOCATION = "bench-ship"
SOURCE = "fulfilment"
DETAIL_TYPE = "Fulfillment Items Shipped"
ALLOCATED_SHARE = 0.1  # of the shipped products, those with an open allocation that their line names
# In a profile, the code of the SDK calls (the rest is the handler's own CPU, builtins aside) and the handler's.
SDK_CODE = (
    r"^(?!.*(botocore/|urllib3/|http/|urllib/parse|socket|email/|ssl|selectors|select|dateutil/|hashlib|hmac"
    r"|_collections_abc|<frozen os>|queue.py|uuid.py:\d+\(uuid4\)|logging/__init__.py:\d+\((debug|isEnabledFor)\)"
    r"|_make_api_call|timed|bench/harness))"
)
HANDLER_PATHS = r"inventory/|shipment_events/|aws_lambda_powertools/"
PREFIXES = (ALLOCATION_PREFIX, EVENT_PREFIX, LEDGER_PREFIX, BUFFER_PREFIX)
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")

CHUNK_EVENTS = 500  # the runs take turns after this many events each
FLOORS = {"floor": "UpdateItem", "put floor": "PutItem"}  # how each writes a counters item that did not exist
RUNS = ("service", *FLOORS)
WRITES_PER_ITEM_TARGET = 1.0
TIME_RATIO_TARGET = 1.2
CPU_MS_PER_EVENT_TARGET = 2.0


# ---------------------------------------------------------------- the plan: events, lines, allocations


@dataclass(frozen=True)
class Line:
    event: int
    index: int
    product: str
    quantity: int
    allocation_id: str | None
    key: Key  # the product's counters item


@dataclass(frozen=True)
class Plan:
    lines: list[Line]
    allocations: list[tuple[str, str, int]]  # (allocation id, product, quantity)
    batches: list[dict[str, Any]]  # SQS events, as Lambda's poller builds them
    events: int


def product_id(n: int) -> str:
    return f"SKU-{n:07d}"  # as bench.gen_import_file names them; with one row per product, its stock is n % 1000


def make_plan(products: int, events: int, batch_size: int, queue_arn: str, region: str, seed: int) -> Plan:
    from local.triggers import sqs_record  # the record Lambda's poller builds from a received message

    rng = random.Random(seed)
    per_event = [rng.randint(1, 3) for _ in range(events)]
    if sum(per_event) > products:
        raise SystemExit(f"{sum(per_event)} lines of distinct products need more than {products} products")
    shipped = iter(rng.sample(range(products), sum(per_event)))
    occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines: list[Line] = []
    allocations: list[tuple[str, str, int]] = []
    records = []
    for event, count in enumerate(per_event):
        items = []
        for index in range(count):
            n = next(shipped)
            product, quantity, allocation_id = product_id(n), rng.randint(1, 3), None
            if rng.random() < ALLOCATED_SHARE and n % 1000 >= 3:
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
        records.append(sqs_record(message, queue_arn, region))
    batches = [{"Records": records[start : start + batch_size]} for start in range(0, len(records), batch_size)]
    return Plan(lines, allocations, batches, events)


# ---------------------------------------------------------------- what runs in the child processes


def read_counters(table: str, location: str) -> dict[Key, dict[str, Any]]:
    """Every counters item of the location (its PRODUCT_SHARDS partitions), by key."""
    partitions = [counters_partition(location, n) for n in range(PRODUCT_SHARDS)]
    shards = read_partitions(boto3.client("dynamodb"), table, partitions, list)
    return {(item["pk"]["S"], item["sk"]["S"]): item for items in shards for item in items}


def prepare(env: dict[str, str], source: str, products: int, allocations: list[Any]) -> dict[str, Any]:
    """The location, its initial import of `products` products, the open allocations; then its counters items."""
    location = LOCATION
    started = time.perf_counter()
    # In a process with the worker's environment.
    imports = wiring.import_runner(settings_of(StockImportWorkerSettings))
    request = ImportRequest(
        import_id="bench-load", kind=ImportKind.INITIAL, source=source, location_type=LocationType.STORE
    )
    record, _ = imports.accept(location, request, caller="bench")
    status = imports.run(location, record.import_id, lambda: 10**9)
    record = imports.status(location, record.import_id)
    if status is not ImportStatus.COMPLETED or record.counts is None or record.counts.applied != products:
        raise RuntimeError(f"the import did not complete: {record.status} {record.counts} {record.errors[:3]}")
    import_seconds = time.perf_counter() - started

    started = time.perf_counter()
    allocate = wiring.allocation_service(settings_of(TableSettings))

    def open_one(spec: tuple[str, str, int]) -> None:
        allocation_id, product, quantity = spec
        lines = (AllocationLine(product_id=product, quantity=quantity),)
        view, _ = allocate.create(location, AllocationRequest(allocation_id, f"order-{allocation_id}", lines), "bench")
        if view.allocation.status is not AllocationStatus.OPEN:
            raise RuntimeError(f"allocation {allocation_id} is {view.allocation.status}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(open_one, allocations))
    return {
        "import_seconds": import_seconds,
        "allocation_seconds": time.perf_counter() - started,
        "counters": read_counters(env["TABLE_NAME"], location),
    }


# Each run's child process keeps its state between the parent's calls: the handler stays imported
# and warm, as one Lambda instance is from batch to batch, and the times add up over the chunks.
_RUN: dict[str, Any] = {}


def service_start(env: dict[str, str], timeout_s: int, profile: int) -> None:
    """Import the handler in this (fresh) process, with everything it loads at a cold start."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the handler's JSON logs and metrics: CloudWatch's, in Lambda
    _RUN.update(
        handler=load_handler(),
        context=lambda_context_class(),
        env=env,
        timeout_s=timeout_s,
        counter=CallCounter(wiring.repository(env["TABLE_NAME"]).client),  # the handler's client
        sdk=SdkTime(),
        profiler=cProfile.Profile() if profile else None,
        profile=profile,
        seconds=0.0,
        cpu=0.0,
        failures=0,
    )


def service_chunk(batches: list[dict[str, Any]]) -> None:
    """The next batches, one after another, as one Lambda instance is given them."""
    run, profiler = _RUN, _RUN["profiler"]
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for batch in batches:
        response = run["handler"].lambda_handler(batch, run["context"](remaining_ms=run["timeout_s"] * 1000))
        run["failures"] += len(response["batchItemFailures"])
    if profiler:
        profiler.disable()
    run["seconds"] += time.perf_counter() - started
    run["cpu"] += time.process_time() - cpu


def floor_start(env: dict[str, str]) -> None:
    """The floor's client, with the adapter's configuration."""
    client = DynamoDbRepository(env["TABLE_NAME"]).client
    _RUN.update(
        env=env,
        counter=CallCounter(client),
        sdk=SdkTime(),
        send={"PutItem": client.put_item, "UpdateItem": client.update_item},
        profiler=None,
        seconds=0.0,
        cpu=0.0,
        failures=0,
    )


def floor_chunk(requests: list[tuple[str, dict[str, Any]]]) -> None:
    """The floor's next writes, already built, one after another."""
    run = _RUN
    started, cpu = time.perf_counter(), time.process_time()
    for operation, request in requests:
        run["send"][operation](**request)  # a refused condition raises: every change of the floor must apply
    run["seconds"] += time.perf_counter() - started
    run["cpu"] += time.process_time() - cpu


def finish() -> dict[str, Any]:
    """A run's totals, and every item it wrote, read back."""
    run, sdk, profiler = _RUN, _RUN["sdk"], _RUN["profiler"]
    result = {
        "seconds": run["seconds"],
        "cpu": run["cpu"],
        "sdk_cpu": sdk.cpu,
        "sdk_wall": sdk.wall,
        "by_operation": {operation: list(totals) for operation, totals in sdk.by_operation.items()},
        "calls": dict(run["counter"].calls),
        "failures": run["failures"],
        "single_writes": run["counter"].single_writes,
        "profile": "",
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
    keys = sorted(set(result["single_writes"]))
    result["after"] = read_items(boto3.client("dynamodb"), run["env"]["TABLE_NAME"], keys)
    return result


# ---------------------------------------------------------------- the floor's requests


def changed_paths(
    before: dict[str, Any], after: dict[str, Any], path: tuple[str, ...] = ()
) -> tuple[list[tuple[tuple[str, ...], Any]], list[tuple[str, ...]]]:
    """(paths set and their values, paths removed) that turn the item `before` into `after`, descending
    into maps that both have, so that only what changed is written."""
    sets: list[tuple[tuple[str, ...], Any]] = []
    removes: list[tuple[str, ...]] = []
    for name, value in after.items():
        old = before.get(name)
        if old == value:
            continue
        if old is not None and "M" in old and "M" in value:
            more_sets, more_removes = changed_paths(old["M"], value["M"], (*path, name))
            sets += more_sets
            removes += more_removes
        else:
            sets.append(((*path, name), value))
    removes += [(*path, name) for name in before if name not in after]
    return sets, removes


def floor_request(
    table: str,
    service_before: dict[str, Any] | None,
    service_after: dict[str, Any],
    floor_before: dict[str, Any] | None,
    new_item: str = "UpdateItem",
) -> tuple[str, dict[str, Any]]:
    """One conditional write making, on the floor's item, the change the service made on its own;
    an item that did not exist is written by `new_item` (UpdateItem or PutItem)."""
    if service_before is None:
        if floor_before is not None:
            raise RuntimeError(f"the floor has a counters item the service had not: {service_after['sk']}")
        if new_item == "UpdateItem":
            return "UpdateItem", update_request(table, {}, service_after, "attribute_not_exists(#pk)")
        request = {
            "TableName": table,
            "Item": service_after,
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": "pk"},
        }
        return "PutItem", request
    if floor_before is None or floor_before.get("version") != service_before.get("version"):
        raise RuntimeError(f"the floor's counters item differs from the service's: {service_after['sk']}")
    return "UpdateItem", update_request(table, service_before, service_after, "#version = :expected")


def update_request(table: str, before: dict[str, Any], after: dict[str, Any], condition: str) -> dict[str, Any]:
    """An UpdateItem turning `before` into `after` on `condition` (its names: #pk, #version; :expected
    is the version of `before`)."""
    key = {"pk": after["pk"], "sk": after["sk"]}
    sets, removes = changed_paths({**before, **key}, after)
    names: dict[str, str] = {"#pk": "pk", "#version": "version"}

    def placeholder(path: tuple[str, ...]) -> str:
        parts = []
        for part in path:
            name = next((n for n, p in names.items() if p == part), None) or f"#n{len(names)}"
            names[name] = part
            parts.append(name)
        return ".".join(parts)

    values = {f":v{i}": value for i, (_, value) in enumerate(sets)}
    expression = "SET " + ", ".join(f"{placeholder(path)} = :v{i}" for i, (path, _) in enumerate(sets))
    if removes:
        expression += " REMOVE " + ", ".join(placeholder(path) for path in removes)
    if ":expected" in condition:
        values[":expected"] = before["version"]
    used = {name for name in names if name in expression or name in condition}
    return {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {name: part for name, part in names.items() if name in used},
        "ExpressionAttributeValues": values,
    }


# ---------------------------------------------------------------- the parent


def upload_import(aws: Any, path: Path) -> str:
    bucket, key = aws.name("ImportBucket"), f"bench/{path.name}"  # not under imports/: no S3 trigger
    # One PutObject: a multipart upload leaves parts that trip moto's /moto-api/data.json at the next start.
    aws.client("s3").upload_file(str(path), bucket, key, Config=TransferConfig(multipart_threshold=2**40))
    return f"s3://{bucket}/{key}"


def units_of(result: dict[str, Any], before: dict[Key, dict[str, Any]]) -> tuple[int, int, int, int]:
    """(table write units, outbox index write units, bytes after, items) of a run's single-item writes."""
    table_units = index_units = size = 0
    for key in result["single_writes"]:
        old, new = before.get(key), result["after"].get(key)
        table_units += max(write_units(old) if old else 0, write_units(new) if new else 0)
        was, now = (item is not None and "outbox_pk" in item for item in (old, new))
        if was != now:
            index_units += 1  # the item enters or leaves the KEYS_ONLY outbox index: a small index write
        elif was and now and old["outbox_pk"] != new["outbox_pk"]:
            index_units += 2
    for new in result["after"].values():
        size += item_size(new)
    return table_units, index_units, size, len(result["after"])


def attribute_bytes(items: list[dict[str, Any]]) -> str:
    """The average size of each attribute (name and value) in the items, the largest first."""
    totals: dict[str, int] = {}
    for item in items:
        for name, value in item.items():
            kind = name[:2] + "<id>" if name[:2] in PREFIXES else name  # one of many: by kind
            totals[kind] = totals.get(kind, 0) + item_size({name: value})
    ranked = sorted(totals.items(), key=lambda pair: -pair[1])
    return ", ".join(f"{name} {total / max(1, len(items)):.0f}" for name, total in ranked)


def check_applied(plan: Plan, after: dict[Key, dict[str, Any]]) -> int:
    """How many lines have their ledger entry in the counters items read back."""

    def applied(line: Line) -> bool:
        entry_id = f"ship-{line.event:06d}:{line.index}"
        names = (buffer_attribute_prefix(entry_id), entry_attribute_prefix(entry_id))  # then its body's hash
        return any(attribute.startswith(names) for attribute in after.get(line.key, {}))

    return sum(1 for line in plan.lines if applied(line))


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """--repeat pairs of runs (the machines are shared: a neighbour's load can slow either run of a
    pair); the pair of median time ratio is reported, with every ratio."""
    path = workdir / f"stock-{args.products}.jsonl"
    with path.open("wb") as out:
        write_import_file(out, args.products, args.products)  # one row per product: SKU-n with n % 1000 units
    runs = [measure_pair(args, path) for _ in range(args.repeat)]
    runs.sort(key=lambda m: m["service"]["seconds"] / m["floor"]["seconds"])
    median = runs[len(runs) // 2]
    return {**median, "ratios": [m["service"]["seconds"] / m["floor"]["seconds"] for m in runs]}


def measure_pair(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """The service and the floors, each on backends of its own and in a process of its own, taking
    turns chunk by chunk (CHUNK_EVENTS events at a time), so that a neighbour's load falls on all."""
    from local.stack import LocalAws  # not in the children: they hold what the handler holds, no more

    with ExitStack() as stack:
        stacks = {run: stack.enter_context(LocalAws(ROOT / "template.yaml")) for run in RUNS}
        aws = stacks["service"]
        spec = aws.functions[FUNCTION]
        queue = next(e for e in spec.events if e.type == "SQS")
        batch_size = int(queue.properties.get("BatchSize", 10))
        plan = make_plan(args.products, args.events, batch_size, aws.arn("FulfillmentQueue"), aws.region, args.seed)
        measured: dict[str, Any] = {"plan": plan, "batch_size": batch_size}
        children = {}
        for run, local in stacks.items():
            source = upload_import(local, path)
            worker_env = local.function_env(WORKER)
            with Child(worker_env) as worker:
                measured[f"{run}_prep"] = worker.call(prepare, worker_env, source, args.products, plan.allocations)
            children[run] = stack.enter_context(Child(handler_env(local.function_env(FUNCTION), HANDLER_CODE)))
        env = aws.function_env(FUNCTION)
        children["service"].call(service_start, env, spec.timeout, args.profile)
        for floor in FLOORS:
            children[floor].call(floor_start, stacks[floor].function_env(FUNCTION))
        reader, table = aws.client("dynamodb"), env["TABLE_NAME"]
        per_chunk = max(1, CHUNK_EVENTS // batch_size)
        for turn, start in enumerate(range(0, len(plan.batches), per_chunk)):
            children["service"].call(service_chunk, plan.batches[start : start + per_chunk])
            first, last = start * batch_size, (start + per_chunk) * batch_size
            lines = [line for line in plan.lines if first <= line.event < last]
            keys = sorted({line.key for line in lines} | {record_key(line.event) for line in lines})
            after = read_items(reader, table, keys)
            floors = list(FLOORS) if turn % 2 == 0 else list(reversed(FLOORS))
            for floor in floors:
                requests = floor_requests(
                    table, lines, after, measured["service_prep"], measured[f"{floor}_prep"], FLOORS[floor]
                )
                children[floor].call(floor_chunk, requests)
        for run, child in children.items():
            measured[run] = child.call(finish)
    return measured


def floor_requests(
    table: str,
    lines: list[Line],
    after: dict[Key, dict[str, Any]],
    service_prep: dict[str, Any],
    prep: dict[str, Any],
    new_item: str,
) -> list[tuple[str, dict[str, Any]]]:
    """The floor's writes for `lines`, from the items the service left (`after`)."""
    requests = []
    recorded = -1
    for line in lines:
        if line.event != recorded:  # the event's applied-event record, written before its lines
            recorded = line.event
            record = after.get(record_key(line.event))
            if record is None:
                raise RuntimeError(f"the service wrote no applied-event record for event {line.event}")
            requests.append(floor_request(table, None, record, None, "PutItem"))  # as the service writes it
        if line.key not in after:
            raise RuntimeError(f"the service wrote no counters item for {line.product}")
        before = service_prep["counters"].get(line.key)
        requests.append(floor_request(table, before, after[line.key], prep["counters"].get(line.key), new_item))
    return requests


def record_key(event: int) -> Key:
    key = event_key(LOCATION, f"ship-{event:06d}")
    return key["pk"], key["sk"]


def report(args: argparse.Namespace, m: dict[str, Any]) -> bool:
    plan: Plan = m["plan"]
    events, lines = plan.events, len(plan.lines)
    rows = {}
    for who in RUNS:
        r = m[who]
        calls = r["calls"]
        writes = sum(n for op, n in calls.items() if op in WRITE_OPERATIONS)
        items = len(set(r["single_writes"]))
        table_units, index_units, size, stored = units_of(r, m[f"{who}_prep"]["counters"])
        rows[who] = {
            "requests": sum(calls.values()),
            "writes": writes,
            "items": items,
            "writes_per_item": writes / max(1, items),
            "table_units": table_units,
            "index_units": index_units,
            "bytes": size,
            "stored": stored,
            "applied": check_applied(plan, r["after"]),
            "cpu_ms": r["cpu"] * 1000 / events,
            "beyond_ms": (r["cpu"] - r["sdk_cpu"]) * 1000 / events,
        }
    service, floor = m["service"], m["floor"]
    ratio = service["seconds"] / floor["seconds"]
    put_ratio = service["seconds"] / m["put floor"]["seconds"]

    columns = ["run", "seconds", "events/s", "lines/s", "requests", "req/line", "writes", "writes/item"]
    columns += ["WCU/line", "idxWCU/line", "cpu_ms/ev", "beyond_ms/ev"]
    print(" ".join(f"{c:>12}" for c in columns))
    for who in RUNS:
        r, x = m[who], rows[who]
        cells = [
            who,
            f"{r['seconds']:.2f}",
            f"{events / r['seconds']:.1f}",
            f"{lines / r['seconds']:.1f}",
            f"{x['requests']}",
            f"{x['requests'] / lines:.2f}",
            f"{x['writes']}",
            f"{x['writes_per_item']:.2f}",
            f"{x['table_units'] / lines:.3f}",
            f"{x['index_units'] / lines:.3f}",
            f"{x['cpu_ms']:.2f}",
            f"{x['beyond_ms']:.2f}",
        ]
        print(" ".join(f"{c:>12}" for c in cells))
    print(
        "(req/line: DynamoDB requests per shipment line; writes/item: write requests per distinct item written; "
        "WCU/line: table write units per line, from item sizes; idxWCU/line: outbox index write units per line; "
        "cpu_ms/ev: the process's CPU per event; beyond_ms/ev: that less the CPU inside botocore's API calls)"
    )
    allocated = sum(1 for line in plan.lines if line.allocation_id)
    print(
        f"{args.products} products at the location, {events} events of {lines} lines ({allocated} naming an open "
        f"allocation) in {len(plan.batches)} batches of up to {m['batch_size']}; time ratio service/floor {ratio:.2f}"
        + (f" (the median of {', '.join(f'{r:.2f}' for r in m['ratios'])})" if len(m["ratios"]) > 1 else "")
        + f"; service/put floor {put_ratio:.2f}"
    )
    for who in RUNS:
        r, x, prep = m[who], rows[who], m[f"{who}_prep"]
        listed = ", ".join(f"{op} {n}" for op, n in sorted(r["calls"].items()))
        print(
            f"  {who}: DynamoDB requests {x['requests']} ({listed}); {x['items']} items written, "
            f"{x['applied']} of {lines} ledger entries read back, {x['bytes']} bytes in the {x['stored']} items "
            f"after ({x['bytes'] / max(1, x['stored']):.0f} B each); write units {x['table_units']} table + "
            f"{x['index_units']} outbox index"
        )
        print(
            f"    CPU {r['cpu']:.2f} s, of it {r['sdk_cpu']:.2f} s inside botocore; wall {r['seconds']:.2f} s, of it "
            f"{r['sdk_wall']:.2f} s inside botocore; preparation: import {prep['import_seconds']:.1f} s, "
            f"{len(plan.allocations)} allocations {prep['allocation_seconds']:.1f} s"
        )
        inside = "; ".join(
            f"{op} {n:.0f} calls, {wall * 1000 / n:.2f} ms wall and {cpu * 1000 / n:.2f} ms CPU each"
            for op, (n, cpu, wall) in sorted(r["by_operation"].items())
        )
        print(f"    inside botocore: {inside}")
    by_attribute = attribute_bytes(list(service["after"].values()))
    print(f"  bytes per counters item written by the service, by attribute: {by_attribute}")
    if service["failures"]:
        print(f"  the handler reported {service['failures']} batch item failures")
    if service.get("profile"):
        print("profile of the service's child (its times are inflated by the profiler):")
        print(service["profile"])

    s = rows["service"]
    touched = lines + plan.events  # a counters item per line (a distinct product each), a record per event
    every_line = s["applied"] == lines and s["items"] == touched and not service["failures"]
    checks = [
        (
            every_line,
            f"every line applied once: {s['applied']} of {lines} ledger entries, {s['items']} items written "
            f"({lines} products' counters and {plan.events} applied-event records)",
        ),
        (
            s["writes_per_item"] <= WRITES_PER_ITEM_TARGET,
            f"{s['writes_per_item']:.2f} write requests per item touched (<= 1)",
        ),
        (ratio <= TIME_RATIO_TARGET, f"time {ratio:.2f}x the floor's (<= 1.2)"),
        (
            s["beyond_ms"] < CPU_MS_PER_EVENT_TARGET,
            f"{s['beyond_ms']:.2f} ms of handler CPU per event beyond the SDK calls (< 2)",
        ),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return all(ok for ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="products imported at the location")
    parser.add_argument("--events", type=int, default=5000, help="shipment events applied (1 to 3 lines each)")
    parser.add_argument("--seed", type=int, default=1, help="of the events' products and quantities")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs; the pair of median time ratio is shown")
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions of the handler")
    args = parser.parse_args()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="shipments-", dir=out))
    try:
        load = os.getloadavg()[0]
        measured = measure(args, workdir)
        print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before the benchmark")
        passed = report(args, measured)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
