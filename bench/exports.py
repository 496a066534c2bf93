"""Availability exports of one location, in-process, against a floor of raw reads of the same items.

For each size (--products, default 100,000 and 1,000,000), on fresh local AWS backends (dynalite,
moto for S3 and SQS) provisioned from template.yaml, a child process with the export worker's
environment prepares a store location through the adapter and the services:

- the location (`put_location`) and an `initial` import of one row per product, in main stock
  (`SKU-<n>` with n % 1000 units): claimed with `begin_import`, its rows written with
  `write_import_rows` and made visible with `complete_import` and its `Stock Imported` event, the
  calls the import runner makes (the runner itself, parsing a file, would take minutes more at
  1,000,000 rows on dynalite for no difference in what the export reads);
- hot items for HOT_SHARE (1%) of the products, spread at random (seeded): one shipped unit each
  through the shipment service (`ShipmentService.apply`, shipments of LINES_PER_SHIPMENT lines of
  distinct products), and an open allocation of one unit (`AllocationService.create`) for
  ALLOCATED_SHARE (a tenth) of those, drawn from those with a unit left. Their hot items hold the
  ledger entry, the unpublished `Shipment Applied` event (no relay runs) and the change mark that
  the next export clears.

Then, each in a fresh child process of the worker's environment (so that sizes and runs share no
heap), whose setup builds its clients and runs once on a warm-up location of WARM_PRODUCTS products:

- the export: `ExportService.accept` (mode full) and `ExportUnits.fan_out`, untimed, then
  `ExportUnits.run(export_id, location_id)`, timed: the unit as the worker runs it (its claim, the
  location read, the marks, the 32 shards' rows, the upload, the commit, the marks cleared, the
  manifest and the record finished);
- the floor: the same partitions (the location's PRODUCT_SHARDS counters partitions and each visible
  import's), read by paginated strongly consistent Queries through the same `Table`'s client, one
  shard at a time on each of `export_rows.READERS` threads, every item json-dumped as a line into gzip
  members of `export_rows.MEMBER_BYTES` at `COMPRESS_LEVEL` (the export's own `RowFile`), in a
  temporary file, uploaded with `S3ExportFiles.upload_new`.

After the largest size's full export, DELTA_CHANGES shipment lines of distinct products (random,
seeded; through the shipment service) set their change marks, and a delta export unit runs.

Read requests and read units are counted by botocore hooks on the DynamoDB client of each measuring
process: `ReturnConsumedCapacity=TOTAL` is added to every Query, GetItem and BatchGetItem, and the
`ConsumedCapacity` dynalite answers is summed. dynalite computes it by DynamoDB's rules (a Query sums
its items' sizes, then rounds up to 4 KB units; GetItem and BatchGetItem round each item; an
eventually consistent read is half, as the change-index query of the marks is), with one difference:
an empty Query is 0 units there (DynamoDB charges it 0.5 or 1). Memory is the resident set size
(/proc/self/statm) sampled every SAMPLE_SECONDS by a thread during the timed run: growth is its peak
minus the RSS when the run starts (after the setup).

Targets: a full export at most TIME_RATIO_TARGET times the floor's time; the memory growth at the
largest size at most MEMORY_GROWTH_TARGET times that at the smallest; the delta's read units at most
DELTA_UNITS_TARGET of the full export's (at the largest size). Exit 1 on a FAIL.

    python -m bench.exports [--products 100000,1000000] [--changes 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Child
from inventory import wiring
from inventory.adapters.dynamodb.keys import PRODUCT_SHARDS, counters_partition, import_partition
from inventory.adapters.dynamodb.table import SCAN_PAGE_ITEMS
from inventory.adapters.s3 import S3ExportFiles
from inventory.models import AllocationStatus, ImportKind, ImportStatus, LedgerKind, LocationChanges, LocationType
from inventory.models.allocations import AllocationLine
from inventory.models.exports import ExportMode
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.services import export_rows
from inventory.services.allocations import AllocationRequest
from inventory.services.availability_exports import ExportRequest
from inventory.services.imports import imported_event
from inventory.services.shipment_events import Shipment, ShipmentLine, ShipmentService
from inventory.services.stock import StockService
from inventory.settings import TableSettings, settings_of
from inventory.settings.availability_exports import AvailabilityExportWorkerSettings
from inventory.wiring import SystemClock

WORKER = "AvailabilityExportWorkerFunction"
HOT_SHARE = 0.01  # of the products, those with a hot item (one shipped unit)
ALLOCATED_SHARE = 0.1  # of those, the ones that also hold an open allocation of one unit
LINES_PER_SHIPMENT = 10
DELTA_CHANGES = 1_000
WARM_PRODUCTS = 200  # the warm-up location of each measuring process
ROWS_PER_WRITE = 10_000  # import rows handed to write_import_rows at a time
SETUP_THREADS = 8
SAMPLE_SECONDS = 0.01
READ_OPERATIONS = ("Query", "GetItem", "BatchGetItem")

TIME_RATIO_TARGET = 1.3
MEMORY_GROWTH_TARGET = 1.2
DELTA_UNITS_TARGET = 1 / 100


def product_id(n: int) -> str:
    return f"SKU-{n:07d}"


def location_of(products: int) -> str:
    return f"bench-export-{products}"


# ---------------------------------------------------------------- the setup (a child with the worker's environment)


def _ship(location_id: str, products: list[str], name: str, timestamp: int) -> None:
    shipment = Shipment(
        event_id=f"ev-{name}",
        kind=LedgerKind.SHIPMENT,
        location_id=location_id,
        shipment_id=f"sh-{name}",
        logical_timestamp=timestamp,
        occurred_at=datetime.now(UTC),
        lines=tuple(ShipmentLine(p, 1) for p in products),
        body_hash=uuid.uuid5(uuid.NAMESPACE_URL, name).hex,
    )
    if not hasattr(_SHIPPERS, "service"):  # a service holds its batch: one per thread, as one per Lambda instance
        store = wiring.shipment_store(settings_of(TableSettings).table_name)
        _SHIPPERS.service = ShipmentService(store, StockService(store), SystemClock())
    _SHIPPERS.service.apply(shipment)


_SHIPPERS = threading.local()


def ship_lines(location_id: str, products: list[str], tag: str) -> float:
    """One shipped unit of each of `products` (distinct), LINES_PER_SHIPMENT lines a shipment, through
    the shipment service, SETUP_THREADS shipments at a time; the seconds it took."""
    started = time.perf_counter()
    groups = [products[start : start + LINES_PER_SHIPMENT] for start in range(0, len(products), LINES_PER_SHIPMENT)]
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        for done in [
            pool.submit(_ship, location_id, group, f"{location_id}-{tag}-{n}", n + 1) for n, group in enumerate(groups)
        ]:
            done.result()
    return time.perf_counter() - started


def prepare(location_id: str, products: int, seed: int) -> dict[str, Any]:
    """The location, its visible initial import of one row per product, and its hot items."""
    table = settings_of(TableSettings).table_name
    repo = wiring.repository(table)
    now = datetime.now(UTC)
    started = time.perf_counter()
    repo.put_location(location_id, LocationChanges(type=LocationType.STORE), now)
    record = ImportRecord(
        location_id=location_id,
        import_id="bench-initial",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="bench",
        requested_by="bench",
        accepted_at=now,
    )
    record = repo.begin_import(record)
    assert record.seq is not None
    for start in range(0, products, ROWS_PER_WRITE):
        rows = [
            StockRow(product_id=product_id(n), stock_location="main", quantity=n % 1000)
            for n in range(start, min(products, start + ROWS_PER_WRITE))
        ]
        repo.write_import_rows(location_id, record.seq, rows)
    counts = ImportCounts(rows=products, applied=products)
    done = datetime.now(UTC)
    repo.complete_import(
        location_id, record.import_id, completed_at=done, counts=counts, event=imported_event(record, counts, done)
    )
    import_seconds = time.perf_counter() - started

    rng = random.Random(seed)
    hot = sorted(product_id(n) for n in rng.sample(range(products), max(1, round(products * HOT_SHARE))))
    ship_seconds = ship_lines(location_id, hot, "hot")

    started = time.perf_counter()
    allocate = wiring.allocation_service(settings_of(TableSettings))
    stocked = [p for p in hot if int(p.removeprefix("SKU-")) % 1000 >= 2]  # 1 unit left after its shipment
    allocated = rng.sample(stocked, max(1, round(len(hot) * ALLOCATED_SHARE)))

    def open_one(product: str) -> None:
        request = AllocationRequest(
            f"a-{product}", f"order-{product}", (AllocationLine(product_id=product, quantity=1),)
        )
        view, _ = allocate.create(location_id, request, "bench")
        if view.allocation.status is not AllocationStatus.OPEN:
            raise RuntimeError(f"the allocation of {product} is {view.allocation.status}")

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(open_one, allocated))
    return {
        "import_seconds": import_seconds,
        "ship_seconds": ship_seconds,
        "allocation_seconds": time.perf_counter() - started,
        "hot": len(hot),
        "allocated": len(allocated),
    }


def make_changes(location_id: str, products: int, changes: int, seed: int) -> dict[str, Any]:
    """`changes` shipment lines of distinct products, at random (seeded): each sets a change mark."""
    rng = random.Random(seed + 1)
    chosen = sorted(product_id(n) for n in rng.sample(range(products), changes))
    return {"seconds": ship_lines(location_id, chosen, "delta"), "changes": len(chosen)}


# ---------------------------------------------------------------- measuring (a fresh child per run kind and size)


class Reads:
    """A DynamoDB client's requests by operation (the change-index queries apart) and the read units
    dynalite says they consumed (ReturnConsumedCapacity=TOTAL is added to every read)."""

    def __init__(self, client: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if model.name in READ_OPERATIONS:
            params["ReturnConsumedCapacity"] = "TOTAL"
        context["bench_operation"] = f"{model.name}({params['IndexName']})" if params.get("IndexName") else model.name

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        operation = context.get("bench_operation", model.name)
        consumed = parsed.get("ConsumedCapacity") or []
        units = sum(c.get("CapacityUnits", 0) for c in (consumed if isinstance(consumed, list) else [consumed]))
        with self._lock:
            self.requests[operation] += 1
            if model.name in READ_OPERATIONS:
                self.units[operation] += units

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.units.clear()

    def totals(self) -> dict[str, Any]:
        reads = {op: n for op, n in self.requests.items() if op.split("(")[0] in READ_OPERATIONS}
        return {
            "requests": dict(self.requests),
            "read_requests": sum(reads.values()),
            "read_units": sum(self.units.values()),
            "units": dict(self.units),
        }


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The highest RSS seen by a thread sampling it every SAMPLE_SECONDS, from start to stop."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


_RUN: dict[str, Any] = {}


def export_start(warm_location: str) -> None:
    """The worker's wiring and clients, the read counter, and one export of the warm-up location."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the units' JSON logs and metrics: CloudWatch's, in Lambda
    settings = settings_of(AvailabilityExportWorkerSettings)
    _RUN.update(
        units=wiring.export_units(settings),
        service=wiring.export_service(settings),
        reads=Reads(wiring.table(settings.table_name).client),
    )
    export_run(warm_location, "full", "bench-warm-up")


def export_run(location_id: str, mode: str, export_id: str) -> dict[str, Any]:
    """One export unit of the location, timed from its start to its end."""
    service, units, reads = _RUN["service"], _RUN["units"], _RUN["reads"]
    view, _ = service.accept(ExportRequest(ExportMode(mode), [location_id], export_id), "bench")
    units.fan_out(view.export.export_id)
    reads.reset()
    with PeakRss() as rss:
        started, cpu = time.perf_counter(), time.process_time()
        file = units.run(view.export.export_id, location_id)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert file is not None
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rows": file.rows,
        "full": file.full,
        **reads.totals(),
        "rss_start": rss.start,
        "rss_peak": rss.peak,
    }


def floor_start(warm_location: str) -> None:
    """The adapter's table client and the export bucket's files, the counter, one warm-up floor."""
    settings = settings_of(AvailabilityExportWorkerSettings)
    table = wiring.table(settings.table_name)
    _RUN.update(
        table=table,
        files=S3ExportFiles(settings.export_bucket_name),
        reads=Reads(table.client),
        repo=wiring.repository(settings.table_name),
    )
    floor_run(warm_location, "bench-warm-up")


def floor_run(location_id: str, name: str) -> dict[str, Any]:
    """The location's partitions by raw consistent Queries, READERS shards at a time, each item a JSON
    line of gzip members as the export writes them, the file uploaded as the export uploads it."""
    table, files, reads = _RUN["table"], _RUN["files"], _RUN["reads"]
    location = _RUN["repo"].get_location(location_id)  # untimed: which imports are visible
    seqs = [v.seq for v in location.visible_imports]
    reads.reset()
    with PeakRss() as rss, tempfile.TemporaryDirectory() as scratch:
        started, cpu = time.perf_counter(), time.process_time()
        file = export_rows.RowFile(Path(scratch) / "rows.jsonl.gz")

        def shard(number: int) -> None:
            lines: list[bytes] = []
            size = 0
            partitions = [import_partition(location_id, seq, number) for seq in seqs]
            for pk in [*partitions, counters_partition(location_id, number)]:
                start: dict[str, Any] | None = None
                while True:
                    page = table.client.query(
                        TableName=table.name,
                        KeyConditionExpression="#pk = :pk",
                        ExpressionAttributeNames={"#pk": "pk"},
                        ExpressionAttributeValues={":pk": {"S": pk}},
                        ConsistentRead=True,
                        Limit=SCAN_PAGE_ITEMS,  # as the export's scans page
                        **({"ExclusiveStartKey": start} if start else {}),
                    )
                    for item in page["Items"]:
                        line = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                        lines.append(line)
                        size += len(line)
                        if size >= export_rows.MEMBER_BYTES:
                            file.write(lines)
                            lines, size = [], 0
                    start = page.get("LastEvaluatedKey")
                    if not start:
                        break
            if lines:
                file.write(lines)

        with ThreadPoolExecutor(export_rows.READERS) as pool:
            for done in [pool.submit(shard, n) for n in range(PRODUCT_SHARDS)]:
                done.result()
        file.close()
        files.upload_new(f"bench-floor/{name}/{location_id}.jsonl.gz", file.path, {"file": name})
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rows": file.rows,
        **reads.totals(),
        "rss_start": rss.start,
        "rss_peak": rss.peak,
    }


# ---------------------------------------------------------------- the parent


def measure(products: int, largest: bool, args: argparse.Namespace) -> dict[str, Any]:
    from local.stack import LocalAws  # not in the children: they hold what the worker holds, no more

    location = location_of(products)
    warm = location_of(WARM_PRODUCTS) + "-warm"
    result: dict[str, Any] = {"products": products}
    with LocalAws(ROOT / "template.yaml") as aws:
        env = aws.function_env(WORKER)
        with Child(env) as setup:
            started = time.perf_counter()
            setup.call(prepare, warm, WARM_PRODUCTS, args.seed)
            result["setup"] = setup.call(prepare, location, products, args.seed)
            result["setup"]["seconds"] = time.perf_counter() - started
            print(f"{products} products: set up in {result['setup']['seconds']:.0f} s", flush=True)
            with Child(env) as floor:
                floor.call(floor_start, warm)
                result["floor"] = floor.call(floor_run, location, f"floor-{products}")
            with Child(env) as exporter:
                exporter.call(export_start, warm)
                result["full"] = exporter.call(export_run, location, "full", f"bench-full-{products}")
                if largest and args.changes:
                    result["changes"] = setup.call(make_changes, location, products, args.changes, args.seed)
                    result["delta"] = exporter.call(export_run, location, "delta", f"bench-delta-{products}")
    return result


def report(results: list[dict[str, Any]]) -> bool:
    mb = 1024 * 1024
    columns = "products run rows seconds rows/s cpu_s requests RCU RSS_MB growth_MB"
    print(" ".join(f"{c:>11}" for c in columns.split()))
    for r in results:
        for run in ("floor", "full", "delta"):
            if run not in r:
                continue
            m = r[run]
            cells = [
                f"{r['products']}",
                run,
                f"{m['rows']}",
                f"{m['seconds']:.2f}",
                f"{m['rows'] / m['seconds']:.0f}",
                f"{m['cpu']:.1f}",
                f"{m['read_requests']}",
                f"{m['read_units']:.1f}",
                f"{m['rss_start'] / mb:.1f}",
                f"{(m['rss_peak'] - m['rss_start']) / mb:.1f}",
            ]
            print(" ".join(f"{c:>11}" for c in cells))
    print(
        "(requests and RCU: DynamoDB reads and their read units, as dynalite's ConsumedCapacity says by "
        "DynamoDB's rules; RSS_MB: the process's RSS when the run started; growth_MB: its peak during the run "
        "over that; cpu_s: the process's CPU seconds, its threads' together)"
    )
    for r in results:
        s = r["setup"]
        print(
            f"{r['products']} products: {s['hot']} hot items ({s['allocated']} with an open allocation); setup "
            f"{s['seconds']:.0f} s (import {s['import_seconds']:.0f} s, shipments {s['ship_seconds']:.0f} s, "
            f"allocations {s['allocation_seconds']:.0f} s)"
        )
        for run in ("floor", "full", "delta"):
            if run in r:
                listed = ", ".join(f"{op} {n}" for op, n in sorted(r[run]["requests"].items()))
                units = ", ".join(f"{op} {u:g}" for op, u in sorted(r[run]["units"].items()))
                print(f"  {run}: requests {listed}; read units {units}")
        if "changes" in r:
            print(f"  {r['changes']['changes']} changes made in {r['changes']['seconds']:.0f} s before the delta")

    checks = []
    for r in results:
        ratio = r["full"]["seconds"] / r["floor"]["seconds"]
        checks.append(
            (
                ratio <= TIME_RATIO_TARGET,
                f"{r['products']} products: full export {r['full']['seconds']:.2f} s, {ratio:.2f}x the floor's "
                f"{r['floor']['seconds']:.2f} s (<= {TIME_RATIO_TARGET})",
            )
        )
    if len(results) > 1:
        small, large = min(results, key=lambda r: r["products"]), max(results, key=lambda r: r["products"])
        grown = [max(1, x["full"]["rss_peak"] - x["full"]["rss_start"]) for x in (small, large)]
        checks.append(
            (
                grown[1] / grown[0] <= MEMORY_GROWTH_TARGET,
                f"memory growth of a full export: {grown[1] / mb:.1f} MB at {large['products']} products, "
                f"{grown[1] / grown[0]:.2f}x the {grown[0] / mb:.1f} MB at {small['products']} "
                f"(<= {MEMORY_GROWTH_TARGET})",
            )
        )
    for r in results:
        if "delta" in r:
            share = r["delta"]["read_units"] / r["full"]["read_units"]
            checks.append(
                (
                    share <= DELTA_UNITS_TARGET,
                    f"{r['products']} products: delta after {r['changes']['changes']} changes "
                    f"{r['delta']['read_units']:.1f} read units, {share:.4f} of the full export's "
                    f"{r['full']['read_units']:.1f} (<= {DELTA_UNITS_TARGET:.2f})",
                )
            )
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return all(ok for ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", default="100000,1000000", help="comma-separated location sizes")
    parser.add_argument("--changes", type=int, default=DELTA_CHANGES, help="changes before the delta (0: none)")
    parser.add_argument("--seed", type=int, default=1, help="of the hot and the changed products")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.products.split(","))
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before the benchmark", flush=True)
    started = time.perf_counter()
    results = [measure(products, products == sizes[-1], args) for products in sizes]
    print(f"(1-minute load average {os.getloadavg()[0]:.1f} after it; {time.perf_counter() - started:.0f} s in all)")
    sys.exit(0 if report(results) else 1)


if __name__ == "__main__":
    main()
