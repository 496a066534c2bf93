"""Writes a valid stock import file of N rows, streamed (constant memory), for the import benchmarks.

Row n is product `SKU-<n // k>` at the k-th stock location `n % k`, where k = ceil(N / P) <= 4 stock
locations per product: every (product, stock location) pair is distinct, products come in file
order, and the quantity is n % 1000. 1,000,000 rows default to 250,000 products x 4 stock locations.

    python -m bench.gen_import_file --rows 1000000 [--products 250000] [--gzip] [--format jsonl|csv] OUT
"""

from __future__ import annotations

import argparse
import gzip
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from inventory.types import DEFAULT_STOCK_LOCATIONS as SALABLE_BY_NAME

STOCK_LOCATIONS = tuple(SALABLE_BY_NAME)  # main, damaged, display, returns
BLOCK_ROWS = 10_000
JSONL_ROW = '{"product_id":"SKU-%07d","quantity":%d,"stock_location":"%s"}\n'
CSV_ROW = "SKU-%07d,%d,%s\n"
CSV_HEADER = "product_id,quantity,stock_location\n"


def per_product(rows: int, products: int | None = None) -> int:
    """How many stock locations each product gets so that `rows` distinct pairs fit in `products`."""
    products = products or math.ceil(rows / len(STOCK_LOCATIONS))
    k = max(1, math.ceil(rows / products))
    if k > len(STOCK_LOCATIONS):
        raise ValueError(f"{rows} distinct rows need at least {math.ceil(rows / len(STOCK_LOCATIONS))} products")
    return k


def stock_rows(rows: int, products: int | None = None) -> Iterator[tuple[str, str, int]]:
    """(product_id, stock_location, quantity) of every row, in file order."""
    k = per_product(rows, products)
    for n in range(rows):
        yield f"SKU-{n // k:07d}", STOCK_LOCATIONS[n % k], n % 1000


def write_import_file(
    out: BinaryIO, rows: int, products: int | None = None, file_format: str = "jsonl", compress: bool = False
) -> None:
    k = per_product(rows, products)
    template = JSONL_ROW if file_format == "jsonl" else CSV_ROW
    sink: BinaryIO | gzip.GzipFile = (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) if compress else out
    )
    if file_format == "csv":
        sink.write(CSV_HEADER.encode())
    for start in range(0, rows, BLOCK_ROWS):
        block = [
            template % (n // k, n % 1000, STOCK_LOCATIONS[n % k]) for n in range(start, min(rows, start + BLOCK_ROWS))
        ]
        sink.write("".join(block).encode())
    if compress:
        sink.close()  # writes the gzip trailer; `out` stays open


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--products", type=int, help="distinct products (default: rows / 4)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    try:
        per_product(args.rows, args.products)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    with args.out.open("wb") as out:
        write_import_file(out, args.rows, args.products, args.format, args.gzip)
    took = time.perf_counter() - started
    print(f"{args.out}: {args.rows} rows, {args.out.stat().st_size} bytes in {took:.1f} s")


if __name__ == "__main__":
    main()
