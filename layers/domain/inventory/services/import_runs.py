"""Running stock imports: the worker's side of `services.imports` (its module docstring tells the
pipeline). ImportRunner streams and validates an import's file, writes its rows with checkpoints,
hands the rest on when time runs short, settles the sums of an import that names
`shipments_included_through`, ends the import, and accepts the files dropped in the bucket.
"""

from __future__ import annotations

import heapq
import itertools
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from inventory.errors import Conflict, NotFound
from inventory.import_rows import InflationLimit, Row, RowError, read_rows, sniff_format
from inventory.messages.import_work import LayerPurge, parse_dropped_file, parse_file_metadata
from inventory.models import ImportStatus, VisibleImport, product_order
from inventory.models.imports import ImportCounts, ImportRecord, RowOrigin, StockRow
from inventory.models.stock_locations import StockLocations
from inventory.observability import logger
from inventory.services.imports import ENDED, ImportRequest, ImportService, imported_event, release_if_claimed
from inventory.services.stock_locations import mark_in_use
from inventory.services.sums import SumSettler

if TYPE_CHECKING:
    from inventory.ports import Clock, FileStore, ImportRunRepositories, StockLocationRepository, WorkQueue

CHUNK_ROWS = 5_000  # rows written between two checkpoints
MAX_ERRORS = 100  # errors kept on the import's status; a file stops being read at its 100th invalid row
HAND_ON_BELOW_MS = 30_000  # time a chunk may need; below it, the rest goes to the next message
# How long after an import's ending released the location its superseded layers are purged: longer
# than any function invocation (15 minutes at most) that may have listed them before; SQS's longest delay.
PURGE_DELAY_SECONDS = 900


def rows_to_merge(
    own: Iterable[StockRow], older: Sequence[tuple[VisibleImport, Iterable[StockRow]]]
) -> Iterator[StockRow]:
    """The rows a merging import copies into its layer from the `older` layers (each with its rows
    of one shard, in key order, as are its `own`): per product and stock location without an own
    row, the newest older layer's row, with its origin (the import its figure came from, kept when
    that row was merged already, and the layer it is copied from). Streams: one row of each layer
    is held at a time."""
    ranked = sorted(older, key=lambda layer: -layer[0].seq)  # newest first

    def keyed(rows: Iterable[StockRow], rank: int) -> Iterator[tuple[tuple[str, str], int, StockRow]]:
        return (((product_order(r.product_id), r.stock_location), rank, r) for r in rows)

    streams = [keyed(own, 0), *(keyed(rows, rank) for rank, (_, rows) in enumerate(ranked, start=1))]
    merged = heapq.merge(*streams, key=lambda entry: (entry[0], entry[1]))
    for _, group in itertools.groupby(merged, key=lambda entry: entry[0]):
        _, rank, row = next(group)
        if rank == 0:
            continue  # the import's own row replaces them
        layer = ranked[rank - 1][0]
        origin = row.origin or RowOrigin(
            seq=layer.seq,
            import_id=layer.import_id,
            accepted_at=layer.accepted_at,
            shipments_included_through=layer.shipments_included_through,
            layer=layer.seq,
        )
        yield row.model_copy(update={"origin": origin.model_copy(update={"layer": layer.seq})})


class _Rejections:
    """A file's invalid rows: its first MAX_ERRORS errors, and how many lines held one."""

    def __init__(self) -> None:
        self.errors: list[dict[str, object]] = []
        self.lines = 0
        self._last_line = -1

    def add(self, error: RowError) -> bool:
        """Record one error; True once MAX_ERRORS lines are invalid (the file is read no further)."""
        if error.line != self._last_line:  # a line may have several errors
            self.lines, self._last_line = self.lines + 1, error.line
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error.as_dict())
        return self.lines >= MAX_ERRORS

    def unreadable(self, code: str, message: str) -> None:
        """The file as a whole could not be read further: the last error kept says why."""
        self.lines += 1
        self.errors = [*self.errors[: MAX_ERRORS - 1], {"line": 0, "code": code, "message": message}]


class _InUse:
    """The stock location types one run of an import knows to be marked in use: those its read of the
    configuration showed, and those it marked. A chunk of rows marks the types it puts a quantity
    other than 0 into that are not marked yet, before it is written: once per import and type."""

    def __init__(self, repository: StockLocationRepository, known: StockLocations) -> None:
        self._repository = repository
        self.known = known

    def before_writing(self, rows: Iterable[Row]) -> None:
        holding = {r.stock_location for r in rows if r.quantity != 0}
        self.known = mark_in_use(self._repository, holding, self.known)


class ImportRunner(ImportService):
    """Runs imports (the worker's service); as an ImportService it also accepts dropped files."""

    _repo: ImportRunRepositories

    def __init__(
        self,
        repository: ImportRunRepositories,
        files: FileStore,
        queue: WorkQueue,
        clock: Clock,
        *,
        chunk_rows: int = CHUNK_ROWS,
        settle_delay: timedelta = timedelta(0),
    ) -> None:
        """`settle_delay`: how long after its claim an import naming `shipments_included_through`
        may settle its products' sums, at the earliest: the longest a fulfilment batch that read the
        location before the claim can still be writing (its function's timeout and a margin)."""
        super().__init__(repository, files, queue, clock)
        self._chunk_rows = chunk_rows
        self._settle_delay = settle_delay

    def run(self, location_id: str, import_id: str, remaining_ms: Callable[[], int]) -> ImportStatus:
        """Advance the import as far as time allows; hands the rest on. Safe to run again."""
        record = self._repo.get_import(location_id, import_id)
        if record is None:
            raise NotFound(f"import {import_id!r} does not exist at location {location_id!r}")
        if record.status in ENDED:
            release_if_claimed(self._repo, record)  # a repeated delivery, or a retry after half an ending
            return record.status
        try:
            if record.rows_written:
                return self._after_rows(record, remaining_ms)
            return self._advance(record, remaining_ms)
        except Conflict:  # another run of the same import (its message sent twice) ended it first
            ended = self._repo.get_import(location_id, import_id)
            if ended is None or ended.status not in ENDED:
                raise
            return ended.status

    def _advance(self, record: ImportRecord, remaining_ms: Callable[[], int]) -> ImportStatus:
        location_id, import_id = record.location_id, record.import_id
        assert record.source is not None
        assert record.seq is not None
        if record.status is ImportStatus.ACCEPTED:
            self._repo.record_progress(location_id, import_id, written_through_line=0)
        file_format = sniff_format(self._files.head(record.source), record.source)
        stream = self._files.open(record.source)
        written_through = record.written_through_line
        stock_locations = self._repo.stock_locations()  # types are never removed: what is valid now stays valid
        in_use = _InUse(self._repo, stock_locations)
        rows = 0
        rejected = _Rejections()
        chunk: list[Row] = []
        # One chunk is written (rows, then its checkpoint) while the next is parsed; never two at once,
        # so the checkpoint only ever moves past rows that are in the table.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-chunk") as writer:
            writing: Future[None] | None = None
            try:
                for item in read_rows(stream, file_format, stock_locations.names):
                    if isinstance(item, RowError):
                        if rejected.add(item):
                            break  # the 100th invalid row: the file is rejected, and read no further
                        continue
                    rows += 1
                    if rejected.lines or item.line <= written_through:
                        continue  # a rejected file writes no more; rows before the checkpoint are written
                    chunk.append(item)
                    if len(chunk) >= self._chunk_rows:
                        if writing is not None:
                            writing.result()
                        writing, chunk = writer.submit(self._write, record, chunk, in_use), []
                        if remaining_ms() < HAND_ON_BELOW_MS:
                            writing.result()
                            self._queue.send({"location_id": location_id, "import_id": import_id})
                            return ImportStatus.RUNNING
            except (EOFError, OSError, zlib.error) as error:  # a damaged or truncated gzip file
                rejected.unreadable("invalid_gzip", f"the file cannot be read: {error}")
            except InflationLimit as error:  # a gzip bomb
                rejected.unreadable("inflation_limit", str(error))
            if writing is not None:
                writing.result()
        counts = ImportCounts(rows=rows + rejected.lines, applied=0 if rejected.lines else rows)
        if rejected.lines:  # an empty file is an error too (empty_file)
            self._purge_later(record, [record.seq])  # the rows it wrote before the file failed
            self._repo.fail_import(
                location_id, import_id, failed_at=self._clock.now(), errors=rejected.errors, counts=counts
            )
            return ImportStatus.FAILED
        if chunk:
            self._write(record, chunk, in_use)
        counts = counts.model_copy(update={"zeroed": self._zeroed_by(record)})
        if record.settles:
            self._repo.record_settling(location_id, import_id, counts=counts, settled_through=(0, None))
            settling = record.model_copy(update={"rows_written": True, "counts": counts, "settled_through": (0, None)})
            return self._after_rows(settling, remaining_ms)
        return self._complete(record, counts)

    def _after_rows(self, record: ImportRecord, remaining_ms: Callable[[], int]) -> ImportStatus:
        """Every row of the file is written: a merging import copies the merged layers' rows, then
        the import settles its products' sums and completes."""
        if record.merges and record.merged_shards < self._repo.product_shards:
            record = self._copy_merged(record, remaining_ms)
            if record.merged_shards < self._repo.product_shards:
                return ImportStatus.RUNNING  # handed on
        return self._settle(record, remaining_ms)

    def _copy_merged(self, record: ImportRecord, remaining_ms: Callable[[], int]) -> ImportRecord:
        """Copy into the import's layer, shard by shard, each row of the layers it merges that its
        own rows do not replace (the newest per product and stock location), with its origin; a
        checkpoint after each shard. A shard copied again puts the same rows."""
        assert record.seq is not None
        location = self._repo.get_location(record.location_id)
        if location is None or location.running_import_id != record.import_id:
            raise Conflict(f"import {record.import_id!r} no longer holds its location")
        layers = [v for v in location.visible_imports if v.seq in record.merges]
        shard = record.merged_shards
        while shard < self._repo.product_shards:
            own = self._repo.import_rows_of_shard(record.location_id, record.seq, shard)
            older = [(v, self._repo.import_rows_of_shard(record.location_id, v.seq, shard)) for v in layers]
            chunk: list[StockRow] = []
            for row in rows_to_merge(own, older):
                chunk.append(row)
                if len(chunk) >= self._chunk_rows:
                    self._repo.write_import_rows(record.location_id, record.seq, chunk)
                    chunk = []
            if chunk:
                self._repo.write_import_rows(record.location_id, record.seq, chunk)
            shard += 1
            self._repo.record_merging(record.location_id, record.import_id, merged_shards=shard)
            if shard < self._repo.product_shards and remaining_ms() < HAND_ON_BELOW_MS:
                self._queue.send({"location_id": record.location_id, "import_id": record.import_id})
                break
        return record.model_copy(update={"merged_shards": shard})

    def _complete(self, record: ImportRecord, counts: ImportCounts) -> ImportStatus:
        now = self._clock.now()
        if record.kind.is_baseline:
            location = self._repo.get_location(record.location_id)
            ended = [v.seq for v in location.visible_imports] if location is not None else []
        else:
            ended = list(record.merges)
        self._purge_later(record, ended)  # before the write that ends them: a stop between loses nothing
        self._repo.complete_import(
            record.location_id,
            record.import_id,
            completed_at=now,
            counts=counts,
            event=imported_event(record, counts, now),
        )
        return ImportStatus.COMPLETED

    def _settle(self, record: ImportRecord, remaining_ms: Callable[[], int]) -> ImportStatus:
        """An import that names `shipments_included_through` T or merges layers, its rows written:
        the sum of its layer for every product it is the base of (its rows' products; every
        product, for an initial or full_count import): for an own row, from the entries above T of
        the pages since T's segment and the buffer; for a merged row, the sum of the layer it was
        copied from. Then it completes. Shipment lines applied after its claim add themselves to
        that sum; those that read the location before the claim are all written `settle_delay`
        after it, so it starts no earlier (a delayed message, not a wait). Checkpointed product by
        product."""
        assert record.seq is not None
        message: dict[str, object] = {"location_id": record.location_id, "import_id": record.import_id}
        due = record.accepted_at + self._settle_delay
        now = self._clock.now()
        if now < due:
            self._queue.send(message, delay_seconds=math.ceil((due - now).total_seconds()))
            return ImportStatus.RUNNING
        location = self._repo.get_location(record.location_id)
        if location is None or location.running_import_id != record.import_id:
            raise Conflict(f"import {record.import_id!r} no longer holds its location")
        shard, after = record.settled_through or (0, None)
        settle = SumSettler(self._repo, location, record.seq, record.shipments_included_through)
        while shard < self._repo.product_shards:
            products, more = settle.page(shard, after, every_product=record.kind.is_baseline)
            if more and products:
                after = products[-1]
            else:
                shard, after = shard + 1, None
            handing_on = shard < self._repo.product_shards and remaining_ms() < HAND_ON_BELOW_MS
            if products or handing_on:  # (a shard with nothing to settle needs no checkpoint)
                self._repo.record_settling(
                    record.location_id, record.import_id, counts=record.counts, settled_through=(shard, after)
                )
            if handing_on:
                self._queue.send(message)
                return ImportStatus.RUNNING
        return self._complete(record, record.counts)

    def _zeroed_by(self, record: ImportRecord) -> int:
        """How many rows (product and stock location) held stock and are absent from this
        initial or full_count import, which sets them to 0. Read shard by shard, never whole."""
        location = self._repo.get_location(record.location_id)
        if not record.kind.is_baseline or location is None or not location.visible_imports:
            return 0
        zeroed = 0
        for shard in range(self._repo.product_shards):
            present = {
                (r.product_id, r.stock_location)
                for r in self._repo.import_rows_of_shard(record.location_id, record.seq or 0, shard)
            }
            before: dict[tuple[str, str], int] = {}
            for visible in location.visible_imports:  # oldest first: later imports overwrite
                for row in self._repo.import_rows_of_shard(record.location_id, visible.seq, shard):
                    before[(row.product_id, row.stock_location)] = row.quantity
            zeroed += sum(1 for pair, quantity in before.items() if quantity > 0 and pair not in present)
        return zeroed

    def abandon(self, location_id: str, import_id: str, reason: str) -> ImportStatus | None:
        """Fail an import that will not be run again, so that it releases its location (or, when it
        ended already but still holds it, finish its ending); the status it ends with."""
        record = self._repo.get_import(location_id, import_id)
        if record is None:
            return None
        if record.status in ENDED:
            release_if_claimed(self._repo, record)
            return record.status
        error = {"line": 0, "code": "abandoned", "message": f"the import failed on every attempt: {reason}"}
        if record.seq is not None:
            self._purge_later(record, [record.seq])
        self._repo.fail_import(location_id, import_id, failed_at=self._clock.now(), errors=[error])
        return ImportStatus.FAILED

    # ------------------------------------------------------------------ purges of layers no longer visible
    def _purge_later(self, record: ImportRecord, layers: list[int]) -> None:
        """Queue the purge of the layers this import's ending leaves invisible (its own, if it fails)."""
        if layers:
            purge: dict[str, object] = {"location_id": record.location_id, "import_id": record.import_id}
            purge["layers"] = layers
            self._queue.send(purge, delay_seconds=PURGE_DELAY_SECONDS)

    def purge(self, work: LayerPurge, remaining_ms: Callable[[], int]) -> int:
        """Delete the rows of layers no reader can still need; how many. Only once the import that
        ends them has ended and released the location (until then it waits, a delay at a time),
        and a whole delay after that was first seen: no function invocation lasts longer, so none
        that listed the layers before the release is still reading them. A layer visible or running
        is never touched. Hands the rest on, shard by shard, when time runs short."""
        location_id, import_id = work.location_id, work.import_id
        record = self._repo.get_import(location_id, import_id)
        location = self._repo.get_location(location_id)
        if record is None or location is None:
            return 0
        if record.status not in ENDED or location.running_import_id == import_id or not work.released_seen:
            again = work.model_copy(
                update={"released_seen": record.status in ENDED and location.running_import_id != import_id}
            )
            self._queue.send(again.model_dump(), delay_seconds=PURGE_DELAY_SECONDS)
            return 0
        live = location.announced()  # the visible layers and the running import's
        if record.status is ImportStatus.COMPLETED:
            doomed = [seq for seq in work.layers if seq not in live and seq != record.seq]
        else:
            doomed = [seq for seq in work.layers if seq not in live and seq == record.seq]
        deleted, shard = 0, work.shard
        while shard < self._repo.product_shards:
            deleted += sum(self._repo.purge_import_rows(location_id, seq, shard) for seq in doomed)
            shard += 1
            if shard < self._repo.product_shards and remaining_ms() < HAND_ON_BELOW_MS:
                self._queue.send(work.model_copy(update={"shard": shard}).model_dump())
                break
        logger.info("import layers purged", extra={"layers": doomed, "rows": deleted, "through_shard": shard})
        return deleted

    def _write(self, record: ImportRecord, chunk: list[Row], in_use: _InUse) -> None:
        assert record.seq is not None
        in_use.before_writing(chunk)  # the mark first: from it on, `salable` of those types is fixed
        rows = [  # validated by the parser already
            StockRow.model_construct(product_id=r.product_id, stock_location=r.stock_location, quantity=r.quantity)
            for r in chunk
        ]
        self._repo.write_import_rows(record.location_id, record.seq, rows)
        self._repo.record_progress(record.location_id, record.import_id, written_through_line=chunk[-1].line)

    # ------------------------------------------------------------------ files dropped in the bucket
    def file_dropped(self, bucket: str, key: str) -> ImportRecord:
        """`imports/<location_id>/<kind>/<import_id>.<jsonl|ndjson|csv>[.gz]`: the key names the import."""
        dropped = parse_dropped_file(key)
        metadata = parse_file_metadata(self._files.metadata(f"s3://{bucket}/{key}"))
        request = ImportRequest(
            import_id=dropped.import_id,
            kind=dropped.kind,
            shipments_included_through=metadata.shipments_included_through,
            force=metadata.force,
            source=f"s3://{bucket}/{key}",
            location_type=metadata.location_type,
        )
        record, _ = self.accept(dropped.location_id, request, caller=f"s3://{bucket}")
        return record
