"""Stock imports: accepted by the API or by a file dropped in the bucket, run by the worker.

One pipeline for both ways in: inline items are stored as a JSON Lines file first. The worker
streams the file, validates every row (a file with any invalid row is rejected whole), writes the
valid rows into the import's own partitions, and records a checkpoint every chunk; when its time
runs short it hands the rest on to the next message. Completion makes every row visible at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from inventory.errors import (
    Conflict,
    ImportIdReused,
    ImportInProgress,
    ImportKindNotAllowed,
    InvalidInput,
    NotFound,
    OpenMispickCounts,
    WatermarkRegressed,
)
from inventory.import_rows import FileFormat, InflationLimit, Row, RowError, read_rows, sniff_format
from inventory.messages import DetailType
from inventory.messages.import_work import parse_dropped_file, parse_file_metadata
from inventory.models import (
    ImportCounts,
    ImportKind,
    ImportRecord,
    ImportStatus,
    InventoryMaster,
    LocationType,
    OutboxEvent,
    StockRow,
)
from inventory.services.sums import SumSettler
from inventory.types import STOCK_LOCATIONS

if TYPE_CHECKING:
    from inventory.ports import Clock, FileStore, ImportRepositories, WorkQueue

ENDED = (ImportStatus.COMPLETED, ImportStatus.FAILED)
CHUNK_ROWS = 5_000  # rows written between two checkpoints
MAX_ERRORS = 100  # errors kept on the import's status; a file stops being read at its 100th invalid row
HAND_ON_BELOW_MS = 30_000  # time a chunk may need; below it, the rest goes to the next message


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


@dataclass(frozen=True)
class ImportRequest:
    import_id: str
    kind: ImportKind
    shipments_included_through: int | None = None
    force: bool = False
    items: Sequence[StockRow] | None = None
    source: str | None = None
    location_type: LocationType | None = None  # create the location when it does not exist

    def content_hash(self) -> str:
        body = {
            "kind": self.kind.value,
            "shipments_included_through": self.shipments_included_through,
            "force": self.force,
            "source": self.source,
            "items": [[i.product_id, i.stock_location, i.quantity] for i in self.items]
            if self.items is not None
            else None,
            "location_type": self.location_type.value if self.location_type else None,
        }
        return hashlib.sha256(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _json_lines(items: Sequence[StockRow] | None) -> bytes:
    lines = (
        json.dumps(
            {"product_id": i.product_id, "quantity": i.quantity, "stock_location": i.stock_location}, ensure_ascii=False
        )
        for i in items or ()
    )
    return "\n".join(lines).encode()


def not_started(message: str) -> dict[str, object]:
    """The error of an import that was never handed to the worker."""
    return {"line": 0, "code": "not_started", "message": message}


def imported_event(record: ImportRecord, counts: ImportCounts, now: datetime) -> OutboxEvent:
    return OutboxEvent.of(
        DetailType.STOCK_IMPORTED,
        record.location_id,
        now,
        {
            "import_id": record.import_id,
            "kind": record.kind.value,
            "shipments_included_through": record.shipments_included_through,
            "counts": counts.model_dump(),
        },
        key=f"{record.location_id}/{record.import_id}",  # ending it again records the same event
    )


def release_if_claimed(repository: ImportRepositories, record: ImportRecord) -> None:
    """An import ends in two writes: its record, then the location (the claim released, the rows
    made visible). When the second failed (throttled, timed out, stopped) the record has ended but
    still holds the location: end it again, which only repeats the location's write, with the
    record's own time (and, for a completion, the same event)."""
    location = repository.get_location(record.location_id)
    if location is None or location.running_import_id != record.import_id:
        return
    at = record.completed_at or record.accepted_at
    if record.status is ImportStatus.COMPLETED:
        event = imported_event(record, record.counts, at)
        repository.complete_import(
            record.location_id, record.import_id, completed_at=at, counts=record.counts, event=event
        )
    else:
        repository.fail_import(record.location_id, record.import_id, failed_at=at, errors=record.errors)


def inline_key(location_id: str, import_id: str, content_hash: str) -> str:
    """Named by content too: two requests racing with one id and other items never share a file."""
    return f"inline/{location_id}/{import_id}-{content_hash[:16]}.jsonl"


class ImportService:
    def __init__(
        self,
        repository: ImportRepositories,
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
        self._repo = repository
        self._files = files
        self._queue = queue
        self._clock = clock
        self._chunk_rows = chunk_rows
        self._settle_delay = settle_delay

    # ------------------------------------------------------------------ accepting
    def accept(self, location_id: str, request: ImportRequest, caller: str) -> tuple[ImportRecord, bool]:
        """Record the import and hand it to the worker; (record, False) for a repeat of the same request.

        Every guard answers before anything is written.
        """
        content_hash = request.content_hash()
        existing = self._repo.get_import(location_id, request.import_id)
        if existing is not None:
            return self._repeated(existing, request, content_hash), False
        # Invalid input first (422), then the rules (409): a request that could never succeed says so.
        if request.source is not None:
            if not self._files.holds(request.source):
                raise InvalidInput(
                    f"{request.source} is not in the import bucket",
                    details=[
                        {
                            "field": "body.source",
                            "code": "not_import_bucket",
                            "message": "use s3://<import bucket>/<key>",
                        }
                    ],
                )
            self._files.head(request.source, 1)  # the file must exist: refuse now rather than fail later
        else:
            self._refuse_invalid_items(request.items or ())
        location = self._repo.get_location(location_id)
        if location is None and request.location_type is None:
            raise NotFound(f"location {location_id!r} does not exist; give `location_type` to create it")
        if location is not None:
            if location.inventory_master is InventoryMaster.PLATFORM and request.kind is not ImportKind.FULL_COUNT:
                raise ImportKindNotAllowed(
                    f"location {location_id!r} is platform master: only full_count imports are accepted"
                )
            if location.open_mispick_count_ids and not request.force:
                raise OpenMispickCounts(
                    "complete the open mispick cycle counts first, or send force: true: "
                    + ", ".join(sorted(location.open_mispick_count_ids))
                )
            if location.running_import_id not in (None, request.import_id):  # its own: a retry after a stop
                raise ImportInProgress(f"import {location.running_import_id!r} is still running for this location")
            watermark, named = location.watermark(), request.shipments_included_through
            if watermark is not None and named is not None and named < watermark:
                raise WatermarkRegressed(
                    f"the last completed import included shipments through {watermark}: an import cannot "
                    f"include fewer ({named})"
                )
        inline = request.source is None
        source = self._files.uri(inline_key(location_id, request.import_id, content_hash)) if inline else request.source
        assert source is not None
        try:
            record = self._begin(location_id, request, content_hash, source, create=location is None, caller=caller)
        except ImportIdReused:  # a concurrent request with the same id came first
            existing = self._repo.get_import(location_id, request.import_id)
            if existing is None:
                raise
            return self._repeated(existing, request, content_hash), False
        self._start(record, request, content_hash)
        return record, True

    def _begin(
        self, location_id: str, request: ImportRequest, content_hash: str, source: str, *, create: bool, caller: str
    ) -> ImportRecord:
        return self._repo.begin_import(
            ImportRecord(
                location_id=location_id,
                import_id=request.import_id,
                kind=request.kind,
                status=ImportStatus.ACCEPTED,
                content_hash=content_hash,
                shipments_included_through=request.shipments_included_through,
                source=source,
                force=request.force,
                requested_by=caller,
                accepted_at=self._clock.now(),
            ),
            create_as=request.location_type if create else None,
        )

    def _repeated(self, existing: ImportRecord, request: ImportRequest, content_hash: str) -> ImportRecord:
        """The answer to a repeat of an accepted request; one that stopped before it handed the
        import to the worker (not `queued`) starts it now. An import that the sweep failed before
        its request recorded its content (no content hash) is answered as it is, failed, to any
        request with its id: it is never begun again under that id."""
        if existing.content_hash is not None and existing.content_hash != content_hash:
            raise ImportIdReused(f"import {request.import_id!r} was accepted with other content")
        if existing.status is ImportStatus.ACCEPTED and not existing.queued:
            self._start(existing, request, content_hash)
        return existing

    def _start(self, record: ImportRecord, request: ImportRequest, content_hash: str) -> None:
        """Write the inline items' file (once the claim holds), hand the import to the worker, and
        record that it is queued. A message sent twice (a repeat after a stop between the send and
        that record) runs the import twice, which is safe: its rows are the same puts, and the run
        that finds it ended stops."""
        try:
            if request.items is not None:  # inline items take the same path as files
                key = inline_key(record.location_id, record.import_id, content_hash)
                self._files.put(key, _json_lines(request.items))
            self._queue.send({"location_id": record.location_id, "import_id": record.import_id})
        except Exception as error:
            self._repo.fail_import(
                record.location_id,
                record.import_id,
                failed_at=self._clock.now(),
                errors=[not_started(f"the import could not be started: {error}")],
            )
            raise
        # Not in the try: once the message is out, a failure here leaves the import to run (a repeat
        # of the request sends its message again, which is safe), never failed.
        self._repo.mark_queued(record.location_id, record.import_id)

    @staticmethod
    def _refuse_invalid_items(items: Sequence[StockRow]) -> None:
        seen: dict[tuple[str, str], int] = {}
        details = []
        for index, item in enumerate(items):
            first = seen.setdefault((item.product_id, item.stock_location), index)
            if first != index:
                details.append(
                    {
                        "field": f"body.items[{index}]",
                        "code": "duplicate_row",
                        "message": f"the same product and stock location as items[{first}]",
                    }
                )
        if details:
            raise InvalidInput("the import lists a product and stock location twice", details=details)

    def status(self, location_id: str, import_id: str) -> ImportRecord:
        record = self._repo.get_import(location_id, import_id)
        if record is None:
            raise NotFound(f"import {import_id!r} does not exist at location {location_id!r}")
        return record

    # ------------------------------------------------------------------ running
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
                return self._settle(record, remaining_ms)
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
        rows = 0
        rejected = _Rejections()
        chunk: list[Row] = []
        # One chunk is written (rows, then its checkpoint) while the next is parsed; never two at once,
        # so the checkpoint only ever moves past rows that are in the table.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-chunk") as writer:
            writing: Future[None] | None = None
            try:
                for item in read_rows(stream, file_format, STOCK_LOCATIONS.keys()):
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
                        writing, chunk = writer.submit(self._write, record, chunk), []
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
            self._repo.fail_import(
                location_id, import_id, failed_at=self._clock.now(), errors=rejected.errors, counts=counts
            )
            return ImportStatus.FAILED
        if chunk:
            self._write(record, chunk)
        counts = counts.model_copy(update={"zeroed": self._zeroed_by(record)})
        if record.shipments_included_through is not None:
            self._repo.record_settling(location_id, import_id, counts=counts, settled_through=(0, None))
            settling = record.model_copy(update={"rows_written": True, "counts": counts, "settled_through": (0, None)})
            return self._settle(settling, remaining_ms)
        return self._complete(record, counts)

    def _complete(self, record: ImportRecord, counts: ImportCounts) -> ImportStatus:
        now = self._clock.now()
        self._repo.complete_import(
            record.location_id,
            record.import_id,
            completed_at=now,
            counts=counts,
            event=imported_event(record, counts, now),
        )
        return ImportStatus.COMPLETED

    def _settle(self, record: ImportRecord, remaining_ms: Callable[[], int]) -> ImportStatus:
        """An import that names `shipments_included_through` T, its rows written: the sum of its
        layer for every product it is the base of (its rows' products; every product, for an initial
        or full_count import), from the entries above T of the pages since T's segment and the
        buffer; then it completes. Shipment lines applied after its claim add themselves to that
        sum; those that read the location before the claim are all written `settle_delay` after it,
        so it starts no earlier (a delayed message, not a wait). Checkpointed product by product."""
        assert record.seq is not None
        assert record.shipments_included_through is not None
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
        self._repo.fail_import(location_id, import_id, failed_at=self._clock.now(), errors=[error])
        return ImportStatus.FAILED

    def _write(self, record: ImportRecord, chunk: list[Row]) -> None:
        assert record.seq is not None
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


__all__ = ["FileFormat", "ImportRequest", "ImportService"]
