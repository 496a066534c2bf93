"""Stock imports end to end on the local backends, against the floor of their DynamoDB writes.

For each size, on fresh local AWS backends (dynalite, moto for S3 and SQS) provisioned from
template.yaml:

- the service: a generated JSON Lines file is uploaded to the import bucket, then, in a child
  process that has imported the worker's handler with the worker's environment (as Lambda would),
  `ImportRunner.accept()` (source s3://..., a new store) and `run()` with no time limit, timed
  from accept to the import's `completed`;
- the floor: the same rows, already in memory, written by the fewest BatchWriteItem calls (25
  items each) from as many threads as the adapter uses, as items of the shape the adapter writes,
  in a child process of its own on backends of its own.

Every DynamoDB call either makes is counted by operation. Write units are computed from item sizes
with DynamoDB's rules (the local backends' consumed capacity is not trustworthy): every import row
is read back and sized, and every other write is charged at the size of the item it wrote, read
back after the import. Peak memory is the child's peak RSS, against the worker's MemorySize, and its
growth during the import per distinct (product, stock location) pair.

    python -m bench.imports [--rows 100000,1000000] [--repeat 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

from bench.child import load_handler
from bench.gen_import_file import stock_rows, write_import_file
from bench.harness import ROOT, CallCounter, handler_env, in_child, read_items, read_partitions, write_units
from inventory import wiring
from inventory.adapters.dynamodb.imports import WRITE_THREADS
from inventory.adapters.dynamodb.keys import PRODUCT_SHARDS, import_partition, import_row_key
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.adapters.dynamodb.table import BATCH_WRITE_ITEMS
from inventory.models import ImportKind, ImportStatus, LocationType
from inventory.services.imports import ImportRequest
from inventory.settings import settings_of
from inventory.settings.stock_import_worker import StockImportWorkerSettings

WORKER = "StockImportWorkerFunction"
WORKER_CODE = ROOT / "functions" / "stock_import_worker"
TIME_RATIO_TARGET = 1.3
WCU_PER_ROW_TARGET = 1.1
BYTES_PER_PAIR_GROWTH_TARGET = 1.5


# ---------------------------------------------------------------- what runs in the child processes


def peak_rss_bytes() -> int:
    """This process's peak RSS (Linux's VmHWM). Not ru_maxrss: a child started by fork and exec
    inherits its parent's peak there, which here holds moto and the generated rows."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def run_service(env: dict[str, str], location: str, source: str, rows: int) -> dict[str, Any]:
    """What the API and then the worker do with one file, in this (fresh) process, spawned with `env`."""
    load_handler()  # the worker's handler module, with everything it loads at a cold start
    wiring.forget()
    worker = settings_of(StockImportWorkerSettings)
    service = wiring.import_runner(worker)
    counter = CallCounter(wiring.repository(worker.table_name).client)
    boto3.client("s3")  # loads the models that the service's own clients will use
    boto3.client("sqs")
    rss_before = peak_rss_bytes()

    started, cpu = time.perf_counter(), time.process_time()
    request = ImportRequest(
        import_id="bench-1", kind=ImportKind.INITIAL, source=source, location_type=LocationType.STORE
    )
    record, _ = service.accept(location, request, caller="bench")
    status = service.run(location, record.import_id, lambda: 10**9)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_peak = peak_rss_bytes()
    calls = dict(counter.calls)

    record = service.status(location, record.import_id)
    if status is not ImportStatus.COMPLETED or record.counts is None or record.counts.applied != rows:
        raise RuntimeError(f"the import did not complete: {record.status} {record.counts} {record.errors[:3]}")
    assert record.seq is not None
    ddb = boto3.client("dynamodb")
    written_rows, row_units = read_back_rows(ddb, location, record.seq, env["TABLE_NAME"])
    if written_rows != rows:
        raise RuntimeError(f"the import completed with {written_rows} of its {rows} rows in the table")
    final_items = read_items(ddb, env["TABLE_NAME"], set(counter.single_writes))
    other_units = sum(write_units(final_items[key]) for key in counter.single_writes)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "calls": calls,
        "written_rows": written_rows,
        "row_units": row_units,
        "other_units": other_units,
        "rss_before": rss_before,
        "rss_peak": rss_peak,
    }


def read_back_rows(ddb: Any, location: str, seq: int, table: str) -> tuple[int, int]:
    """(items, write units) of every row of the import, from its PRODUCT_SHARDS partitions."""

    def count_and_units(items: Iterator[dict[str, Any]]) -> tuple[int, int]:
        count = units = 0
        for item in items:
            count += 1
            units += write_units(item)
        return count, units

    partitions = [import_partition(location, seq, n) for n in range(PRODUCT_SHARDS)]
    counts = read_partitions(ddb, table, partitions, count_and_units)
    return sum(c for c, _ in counts), sum(u for _, u in counts)


def run_floor(env: dict[str, str], location: str, rows: int) -> dict[str, Any]:
    """The same rows, already in memory, in the fewest BatchWriteItem calls from WRITE_THREADS threads."""
    table = env["TABLE_NAME"]
    client = DynamoDbRepository(table).client  # the adapter's client configuration
    counter = CallCounter(client)
    items = []
    for product, stock_location, quantity in stock_rows(rows):
        key = import_row_key(location, 1, product, stock_location)
        items.append((key["pk"], key["sk"], str(quantity)))
    batches = [items[start : start + BATCH_WRITE_ITEMS] for start in range(0, len(items), BATCH_WRITE_ITEMS)]

    def write(batch: list[tuple[str, str, str]]) -> None:
        puts = [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": sk}, "q": {"N": q}}}} for pk, sk, q in batch]
        pending: Any = {table: puts}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        list(pool.map(write, batches))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "calls": dict(counter.calls)}


# ---------------------------------------------------------------- the parent


def measure(rows: int, workdir: Path, repeat: int) -> dict[str, Any]:
    """The service and the floor, each on backends of their own; with repeat > 1, the pair of median ratio."""
    from local.stack import LocalAws  # not in the children: they hold what the worker holds, no more

    path = workdir / f"stock-{rows}.jsonl"
    with path.open("wb") as out:
        write_import_file(out, rows)
    pairs = []
    for _ in range(repeat):
        with LocalAws(ROOT / "template.yaml") as aws:
            bucket, key = aws.name("ImportBucket"), f"bench/{path.name}"  # not under imports/: no S3 trigger
            # One PutObject: a multipart upload leaves parts that trip moto's /moto-api/data.json at the next start.
            aws.client("s3").upload_file(str(path), bucket, key, Config=TransferConfig(multipart_threshold=2**40))
            memory_mb = aws.functions[WORKER].memory_size
            env = aws.function_env(WORKER)
            source = f"s3://{bucket}/{key}"
            service = in_child(run_service, env, f"bench-{rows}", source, rows, env=handler_env(env, WORKER_CODE))
        with LocalAws(ROOT / "template.yaml") as aws:
            env = aws.function_env(WORKER)
            floor = in_child(run_floor, env, f"floor-{rows}", rows, env=env)
        pairs.append((service["seconds"] / floor["seconds"], service, floor))
    pairs.sort(key=lambda pair: pair[0])
    _, service, floor = pairs[len(pairs) // 2]
    return {
        "rows": rows,
        "file_bytes": path.stat().st_size,
        "memory_mb": memory_mb,
        "service": service,
        "floor": floor,
        "ratios": [ratio for ratio, _, _ in pairs],
    }


def report(results: list[dict[str, Any]]) -> bool:
    mb = 1024 * 1024
    for r in results:
        service, rows = r["service"], r["rows"]
        r["ratio"] = service["seconds"] / r["floor"]["seconds"]
        r["wcu_per_row"] = (service["row_units"] + service["other_units"]) / rows
        r["peak_mb"] = service["rss_peak"] / mb
        r["run_mb"] = (service["rss_peak"] - service["rss_before"]) / mb
        r["bytes_per_pair"] = r["run_mb"] * mb / rows  # every row is a distinct (product, stock location) pair

    columns = "rows service_s floor_s ratio rows/s floor_rows/s cpu_s floor_cpu_s WCU/row peak_MB run_MB B/pair"
    print(" ".join(f"{c:>12}" for c in columns.split()))
    for r in results:
        service, floor, rows = r["service"], r["floor"], r["rows"]
        cells = [
            f"{rows}",
            f"{service['seconds']:.1f}",
            f"{floor['seconds']:.1f}",
            f"{r['ratio']:.2f}",
            f"{rows / service['seconds']:.0f}",
            f"{rows / floor['seconds']:.0f}",
            f"{service['cpu']:.1f}",
            f"{floor['cpu']:.1f}",
            f"{r['wcu_per_row']:.4f}",
            f"{r['peak_mb']:.1f}",
            f"{r['run_mb']:.1f}",
            f"{r['bytes_per_pair']:.0f}",
        ]
        print(" ".join(f"{c:>12}" for c in cells))
    print(
        "(ratio: service_s / floor_s; cpu_s: the client process's CPU seconds; peak_MB: the worker process's "
        "peak RSS; run_MB: its growth during the import; B/pair: run_MB per distinct pair)"
    )
    for r in results:
        service, floor = r["service"], r["floor"]
        print(
            f"{r['rows']} rows: file {r['file_bytes'] / mb:.1f} MB, {service['written_rows']} rows read back; "
            f"write units {service['row_units']} for the rows + {service['other_units']} for the other writes; "
            f"RSS before the import {service['rss_before'] / mb:.1f} MB"
        )
        if len(r["ratios"]) > 1:
            print(f"  time ratios of the {len(r['ratios'])} runs: {', '.join(f'{x:.2f}' for x in r['ratios'])}")
        for who, calls in (("service", service["calls"]), ("floor", floor["calls"])):
            listed = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
            print(f"  DynamoDB requests, {who}: {sum(calls.values())} ({listed})")

    checks = []
    for r in results:
        checks += [
            (r["ratio"] <= TIME_RATIO_TARGET, f"{r['rows']} rows: time {r['ratio']:.2f}x the floor (<= 1.3)"),
            (r["wcu_per_row"] <= WCU_PER_ROW_TARGET, f"{r['rows']} rows: {r['wcu_per_row']:.4f} WCU per row (<= 1.1)"),
            (
                r["peak_mb"] <= r["memory_mb"],
                f"{r['rows']} rows: peak {r['peak_mb']:.0f} MB within the worker's MemorySize of {r['memory_mb']} MB",
            ),
        ]
    if len(results) > 1:
        small, large = min(results, key=lambda r: r["rows"]), max(results, key=lambda r: r["rows"])
        growth = large["bytes_per_pair"] / small["bytes_per_pair"]
        marginal = (large["run_mb"] - small["run_mb"]) * mb / (large["rows"] - small["rows"])
        checks.append(
            (
                growth <= BYTES_PER_PAIR_GROWTH_TARGET,
                f"memory per distinct pair at {large['rows']} rows is {growth:.2f}x that at {small['rows']} rows "
                f"(<= 1.5) for a file {large['file_bytes'] / small['file_bytes']:.0f}x the size "
                f"({marginal:.0f} B per additional pair)",
            )
        )
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return all(ok for ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated import sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the run of median time ratio is shown")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and results in bench/out/")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="imports-", dir=out))
    try:
        load = os.getloadavg()[0]
        results = [measure(rows, workdir, args.repeat) for rows in sizes]
        print(
            f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before the benchmark (which keeps about 2 busy)"
        )
        passed = report(results)
        if args.keep:
            (workdir / "results.json").write_text(json.dumps(results, indent=2))
            print(f"kept in {workdir.relative_to(ROOT)}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
