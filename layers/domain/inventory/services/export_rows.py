"""A location's availability rows, as an export file holds them: every product of a location read
shard by shard (a full file), or the products changed since a point (a delta), and the gzip JSON
Lines file they are written to (docs/data-design.md, "Availability exports").

The file is written as gzip members of about `MEMBER_BYTES` of rows each, compressed by the thread
that computed them (zlib lets go of the GIL while it compresses), so the shards' threads share
the CPU work and memory holds a member per thread, whatever the location's size. Concatenated
members are one gzip file (RFC 1952), which every gzip reader reads whole.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inventory.figures import ProductStock, availability, product_stock
from inventory.models import Location
from inventory.models.counters import ProductCounters
from inventory.models.imports import StockRow
from inventory.models.stock_locations import StockLocations

if TYPE_CHECKING:
    from inventory.export_ports import ExportReads

MEMBER_BYTES = 256 * 1024  # rows gathered before their thread compresses them
COMPRESS_LEVEL = 6  # zlib's default: about 10 times smaller rows at about 20 MB/s a core
READERS = 8  # shards read at once (each a thread): DynamoDB's answers overlap the figures' CPU
PRODUCTS_PER_READ = 100  # changed products read together (their keys over BatchGetItem calls)


class RowFile:
    """A gzip JSON Lines file being written: members appended whole, counted and hashed as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._lock = threading.Lock()
        self._sha = hashlib.sha256()
        self.rows = 0

    def write(self, lines: list[bytes]) -> None:
        member = gzip.compress(b"".join(lines), COMPRESS_LEVEL, mtime=0)
        with self._lock:
            self._file.write(member)
            self._sha.update(member)
            self.rows += len(lines)

    def close(self) -> str:
        """Close the file; the SHA-256 of its bytes. A file without rows is one empty member."""
        if self._file.tell() == 0:
            self.write([])
        self._file.close()
        return self._sha.hexdigest()


@dataclass
class _Lines:
    """One thread's rows on their way into the file."""

    file: RowFile
    lines: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self.size += len(line)
        if self.size >= MEMBER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.file.write(self.lines)
            self.lines, self.size = [], 0


def row_line(location: Location, stock: ProductStock, counters: ProductCounters) -> bytes:
    """One product's row (SPEC.md section 4), as a line of the file."""
    figures = availability(location, stock, counters)
    row = {"location_id": location.location_id, "product_id": figures.product_id, **figures.published()}
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@dataclass
class Written:
    """What writing a location's rows read of the marked products: the counters version of each."""

    versions: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, found: Mapping[str, int]) -> None:
        with self.lock:
            self.versions.update(found)


def write_full(
    reads: ExportReads,
    location: Location,
    types: StockLocations,
    marked: Collection[str],
    file: RowFile,
) -> Written:
    """Every product of the location with a row in a visible import or counters, shard by shard, in
    parallel; the counters version read of each `marked` product."""
    written = Written()

    def shard(number: int) -> None:
        lines = _Lines(file)
        seen: dict[str, int] = {}
        for product_id, rows, counters in _shard_products(reads, location, number):
            stock = product_stock(product_id, location.visible_imports, rows, counters, types)
            lines.add(row_line(location, stock, counters))
            if product_id in marked:
                seen[product_id] = counters.version
        lines.flush()
        written.saw(seen)

    _in_parallel(shard, range(reads.product_shards))
    return written


def write_changed(
    reads: ExportReads,
    location: Location,
    types: StockLocations,
    products: Iterable[str],
    file: RowFile,
) -> Written:
    """The rows of `products`, each from one consistent read of its counters and its rows of the
    salable stock location types (the only ones its figures depend on) in every visible layer."""
    written = Written()
    salable = [name for name in types.names if types.salable(name)]
    seqs = [v.seq for v in location.visible_imports]
    lines = _Lines(file)
    batch: list[str] = []

    def read(batch: list[str]) -> None:
        states = reads.product_states(location.location_id, dict.fromkeys(batch, seqs), salable)
        for product_id in batch:
            counters, rows = states[product_id]
            stock = product_stock(product_id, location.visible_imports, rows, counters, types)
            lines.add(row_line(location, stock, counters))
        written.saw({product_id: states[product_id][0].version for product_id in batch})

    for product_id in products:
        batch.append(product_id)
        if len(batch) == PRODUCTS_PER_READ:
            read(batch)
            batch = []
    if batch:
        read(batch)
    lines.flush()
    return written


def products_of_new_layers(reads: ExportReads, location: Location, after_seq: int) -> set[str]:
    """The products given a row by an import visible now and newer than `after_seq` (a merged row
    came from an older import: skipped)."""
    found: set[str] = set()
    lock = threading.Lock()
    layers = [v.seq for v in location.visible_imports if v.seq > after_seq]

    def shard(number: int) -> None:
        mine = {
            row.product_id
            for seq in layers
            for _, row in reads.scan_import_rows(location.location_id, seq, number)
            if row.origin is None or row.origin.seq > after_seq
        }
        with lock:
            found.update(mine)

    if layers:
        _in_parallel(shard, range(reads.product_shards))
    return found


def _in_parallel(work: Callable[[int], None], shards: Iterable[int]) -> None:
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        for done in [pool.submit(work, shard) for shard in shards]:
            done.result()  # the first failure, raised here


_COUNTERS = -1  # in the merged stream: an item of the counters partition (rows carry their layer)
# The counters of every product without a hot item (most of a location's): their figures read none
# of its fields but the defaults, and `product_stock` and `availability` take the product's id apart.
_NONE = ProductCounters(product_id="")


def _shard_products(
    reads: ExportReads, location: Location, shard: int
) -> Iterator[tuple[str, dict[int, list[StockRow]], ProductCounters]]:
    """Each product of one shard, in key order: its rows by visible layer and its counters, merged
    from one stream per partition (each read once, in key order)."""
    location_id = location.location_id

    def layer(seq: int) -> Iterator[tuple[str, int, Any]]:
        for order, row in reads.scan_import_rows(location_id, seq, shard):
            yield order, seq, row

    def hot_items() -> Iterator[tuple[str, int, Any]]:
        for order, found in reads.counters_of_shard(location_id, shard):
            yield order, _COUNTERS, found

    streams = [layer(v.seq) for v in location.visible_imports] + [hot_items()]
    merged = heapq.merge(*streams, key=lambda item: item[0])
    for _, group in groupby(merged, key=lambda item: item[0]):
        rows: dict[int, list[StockRow]] = {}
        counters = _NONE
        product_id = ""
        for _, seq, value in group:
            if seq == _COUNTERS:
                counters = value
            else:
                rows.setdefault(seq, []).append(value)
            product_id = value.product_id
        yield product_id, rows, counters
