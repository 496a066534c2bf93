"""Stock imports: accepted by the API or by a file dropped in the bucket, run by the worker.

One pipeline for both ways in: inline items are stored as a JSON Lines file first. The worker
streams the file, validates every row (a file with any invalid row is rejected whole), writes the
valid rows into the import's own partitions, and records a checkpoint every chunk; when its time
runs short it hands the rest on to the next message. Completion makes every row visible at once.

This module accepts imports (the API's side: ImportService) and holds how an import ends;
`services.import_runs` runs them (the worker's side: ImportRunner, an ImportService that also
accepts the files dropped in the bucket), so that the API function and the sweep load neither the
file parser nor the worker's messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from inventory.errors import (
    ImportIdReused,
    ImportInProgress,
    ImportKindNotAllowed,
    InvalidInput,
    NotFound,
    OpenMispickCounts,
    WatermarkRegressed,
)
from inventory.messages import DetailType
from inventory.models import (
    PARTIAL_LAYERS,
    ImportKind,
    ImportStatus,
    InventoryMaster,
    Location,
    LocationType,
    MergedRows,
    OutboxEvent,
)
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.models.stock_locations import StockLocations

if TYPE_CHECKING:
    from inventory.ports import Clock, FileStore, ImportRepositories, WorkQueue

ENDED = (ImportStatus.COMPLETED, ImportStatus.FAILED)
CLAIM_ATTEMPTS = 3  # of a merging import's claim, when other imports claim the location meanwhile


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
    ) -> None:
        self._repo = repository
        self._files = files
        self._queue = queue
        self._clock = clock

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
            self._refuse_invalid_items(request.items or (), self._repo.stock_locations())
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
            record = self._begin(location_id, request, content_hash, source, location, caller=caller)
        except ImportIdReused:  # a concurrent request with the same id came first
            existing = self._repo.get_import(location_id, request.import_id)
            if existing is None:
                raise
            return self._repeated(existing, request, content_hash), False
        self._start(record, request, content_hash)
        return record, True

    def _begin(
        self,
        location_id: str,
        request: ImportRequest,
        content_hash: str,
        source: str,
        location: Location | None,
        *,
        caller: str,
    ) -> ImportRecord:
        """Claim the location and record the import. A partial import that finds PARTIAL_LAYERS
        partial layers visible merges them, on the condition that no import claimed the location
        since it was read (then it reads and decides again)."""
        for attempt in range(CLAIM_ATTEMPTS):
            merges = location.partial_layers() if location is not None and not request.kind.is_baseline else []
            if len(merges) < PARTIAL_LAYERS:
                merges = []
            record = ImportRecord(
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
                merges=tuple(v.seq for v in merges),
                merged=MergedRows.of(merges) if merges else None,
            )
            try:
                return self._repo.begin_import(
                    record,
                    create_as=request.location_type if location is None else None,
                    claimed_after=location.import_seq if merges and location is not None else None,
                )
            except ImportInProgress:
                reread = self._repo.get_location(location_id) if merges else None
                if reread is None or reread.running_import_id is not None or attempt == CLAIM_ATTEMPTS - 1:
                    raise
                location = reread  # another import came and went since the read: decide again
        raise AssertionError("unreachable")

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
    def _refuse_invalid_items(items: Sequence[StockRow], known: StockLocations) -> None:
        """Rows of stock location types that are not configured, and a product and stock location
        listed twice (the fields' own rules are the body's)."""
        seen: dict[tuple[str, str], int] = {}
        details = []
        for index, item in enumerate(items):
            if not known.known(item.stock_location):
                details.append(
                    {
                        "field": f"body.items[{index}].stock_location",
                        "code": "unknown_stock_location",
                        "message": f"stock_location must be one of: {', '.join(known.names)}",
                    }
                )
                continue
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
            raise InvalidInput(
                "the import names unknown stock locations, or a product and stock location twice", details=details
            )

    def status(self, location_id: str, import_id: str) -> ImportRecord:
        record = self._repo.get_import(location_id, import_id)
        if record is None:
            raise NotFound(f"import {import_id!r} does not exist at location {location_id!r}")
        if record.status is ImportStatus.COMPLETED:
            # The record says completed a moment before the location makes its rows visible (two
            # writes, in that order: docs/data-design.md): until then, for a reader, it still runs.
            location = self._repo.get_location(location_id)
            if location is not None and location.running_import_id == import_id:
                return record.model_copy(update={"status": ImportStatus.RUNNING, "completed_at": None})
        return record


__all__ = ["ImportRequest", "ImportService"]
