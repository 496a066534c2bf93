"""Measures the candidate local DynamoDB backends on the work this service gives them.

For dynalite and for moto's server, in the same run: correctness under concurrent conditional
writes (the switch's and the allocations' guard), loading a location of 100,000 products spread
over 32 partitions by BatchWriteItem (the import's write path), and reading it back (one product,
one partition, the whole location), with the table already holding other rows (100,000 by
default; 1,000,000 for the figure after a 1,000,000-row import). Prints a table and which
backend meets the targets.

    python -m bench.backend [--products 100000] [--other-rows 1000000] [--backends dynalite]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.harness import query_pages
from inventory.adapters.dynamodb.keys import PRODUCT_SHARDS, counters_key, counters_partition
from local.backends import Dynalite, MotoServer

THREADS = 8
UNITS = 400


def client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=THREADS * 2),
    )


def create_table(ddb: Any) -> None:
    ddb.create_table(
        TableName="bench",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


def counters_item(location: str, product: str) -> dict[str, Any]:
    """What a product's counters item is keyed by, with a figure and a source."""
    key = counters_key(location, product)
    return {"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}, "qty": {"N": "7"}, "src": {"S": "import-1"}}


def concurrent_decrements(endpoint: str) -> tuple[int, int]:
    """THREADS callers, each with its own client, take 1 unit at a time while stock >= 1."""
    setup = client(endpoint)
    setup.put_item(TableName="bench", Item={"pk": {"S": "race"}, "sk": {"S": "p"}, "stock": {"N": str(UNITS)}})
    taken = [0] * THREADS

    def take(n: int) -> None:
        ddb = client(endpoint)
        while True:
            try:
                ddb.update_item(
                    TableName="bench",
                    Key={"pk": {"S": "race"}, "sk": {"S": "p"}},
                    UpdateExpression="SET #s = #s - :one",
                    ConditionExpression="#s >= :one",
                    ExpressionAttributeNames={"#s": "stock"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                taken[n] += 1
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return
                raise

    threads = [threading.Thread(target=take, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    left = int(setup.get_item(TableName="bench", Key={"pk": {"S": "race"}, "sk": {"S": "p"}})["Item"]["stock"]["N"])
    return sum(taken), left


def load(endpoint: str, location: str, products: int) -> float:
    """BatchWriteItem of 25 items per call from 4 threads; seconds taken."""
    items = [counters_item(location, f"product-{n:07d}") for n in range(products)]
    batches = [items[i : i + 25] for i in range(0, len(items), 25)]
    local = threading.local()

    def write(batch: list[dict[str, Any]]) -> None:
        if not hasattr(local, "ddb"):
            local.ddb = client(endpoint)
        request = {"bench": [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            request = local.ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def query_all(ddb: Any, pk: str) -> int:
    return sum(page["Count"] for page in query_pages(ddb, "bench", pk))


def measure(name: str, backend: Any, products: int, other_rows: int) -> dict[str, Any]:
    endpoint = backend.endpoint
    ddb = client(endpoint)
    create_table(ddb)
    sold, left = concurrent_decrements(endpoint)
    load_s = load(endpoint, "other", other_rows)  # what other locations and imports already hold
    load_s += load(endpoint, "store", products)
    product = "product-0050000" if products > 50000 else "product-0000001"
    key = {name: {"S": value} for name, value in counters_key("store", product).items()}
    get_s = timed(lambda: ddb.get_item(TableName="bench", Key=key))
    partition_s = timed(lambda: query_all(ddb, counters_partition("store", 7)))
    location_s = timed(
        lambda: sum(query_all(ddb, counters_partition("store", n)) for n in range(PRODUCT_SHARDS)), repeat=2
    )
    return {
        "backend": name,
        "lost_or_oversold": abs(sold - UNITS) + abs(left),
        "table_items": other_rows + products,
        "load_items_per_s": round((other_rows + products) / load_s),
        "get_ms": round(get_s * 1000, 1),
        "partition_query_ms": round(partition_s * 1000, 1),
        "location_read_s": round(location_s, 2),
    }


@contextmanager
def started(kind: str) -> Iterator[Any]:
    backend = Dynalite(port=0) if kind == "dynalite" else MotoServer(port=0)
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="products of the location read back")
    parser.add_argument("--other-rows", type=int, default=100_000, help="items already in the table")
    parser.add_argument("--backends", default="dynalite,moto")
    args = parser.parse_args()
    rows = []
    for kind in args.backends.split(","):
        with started(kind) as backend:
            rows.append(measure(kind, backend, args.products, args.other_rows))
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    for row in rows:
        ok = row["lost_or_oversold"] == 0 and row["location_read_s"] < 5 and row["partition_query_ms"] < 200
        print(
            f"{row['backend']}: {'PASS' if ok else 'FAIL'} "
            f"(no lost update, a location of {args.products} products read in under 5 s)"
        )


if __name__ == "__main__":
    main()
