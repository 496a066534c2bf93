"""In-memory stand-ins for the ports, with the same guards as the DynamoDB adapter.

The same behaviour is tested through the real adapter in tests/integration; these keep the unit
tests free of sockets.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from inventory.errors import (
    Conflict,
    CountIdReused,
    ImportIdReused,
    ImportInProgress,
    InvalidInput,
    LocationTypeImmutable,
    NotFound,
)
from inventory.models import (
    Allocation,
    AllocationStatus,
    CountersChange,
    CountReason,
    CountStatus,
    CycleCount,
    ImportCounts,
    ImportRecord,
    ImportStatus,
    InventoryMaster,
    LedgerEntry,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
    ProductCounters,
    StockRow,
    VisibleImport,
    product_order,
)


class FixedClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


class MemoryRepository:
    shards = 1
    product_shards = 1

    def __init__(self) -> None:
        self.locations: dict[str, Location] = {}
        self.imports: dict[tuple[str, str], ImportRecord] = {}
        self.import_seq: dict[str, int] = {}
        self.rows: dict[tuple[str, int], dict[tuple[str, str], StockRow]] = {}
        self.counters: dict[tuple[str, str], ProductCounters] = {}
        self.allocations: dict[tuple[str, str], Allocation] = {}
        self.applied_events: dict[tuple[str, str], tuple[str, datetime]] = {}  # (body hash, keep until)
        self.lock = threading.RLock()
        self.counts: dict[tuple[str, str], CycleCount] = {}
        self.outbox: dict[str, list[OutboxEvent]] = {}
        self.outbox_version: dict[str, int] = {}

    # ---- locations
    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        current = self.locations.get(location_id)
        if current is not None and current.type is not changes.type:
            raise LocationTypeImmutable("type cannot change")
        given = {k: v for k, v in changes.model_dump().items() if v is not None}
        if current is None:
            location = Location(location_id=location_id, created_at=now, updated_at=now, **given)
        else:
            location = current.model_copy(update={**given, "updated_at": now})
        self.locations[location_id] = location
        return location, current is None

    def get_location(self, location_id: str) -> Location | None:
        return self.locations.get(location_id)

    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]:
        ids = sorted(i for i in self.locations if cursor is None or i > cursor)
        page = ids[:limit]
        return Page(items=[self.locations[i] for i in page], next_cursor=page[-1] if len(ids) > limit else None)

    def switch_to_platform(
        self, location_id: str, *, now: datetime, caller: str, baseline_cutoff: datetime, event: OutboxEvent
    ) -> Location | None:
        location = self.locations.get(location_id)
        if (
            location is None
            or location.inventory_master is not InventoryMaster.ERP
            or location.type is not LocationType.STORE
            or location.running_import_id is not None
            or location.open_mispick_count_ids
            or location.last_baseline_import_at is None
            or location.last_baseline_import_at < baseline_cutoff
        ):
            return None
        switched = location.model_copy(
            update={
                "inventory_master": InventoryMaster.PLATFORM,
                "master_switched_at": now,
                "master_switched_by": caller,
                "updated_at": now,
                "imports_before_switch": self.import_seq.get(location_id),
            }
        )
        self.locations[location_id] = switched
        self.record(location_id, event)
        return switched

    # ---- imports
    def begin_import(self, record: ImportRecord, create_as: LocationType | None = None) -> ImportRecord:
        location = self.locations.get(record.location_id)
        if (record.location_id, record.import_id) in self.imports:
            raise ImportIdReused("exists")
        if location is not None and location.running_import_id is not None:
            raise ImportInProgress("another import runs")
        if location is None:
            if create_as is None:
                raise NotFound("no location")
            location, _ = self.put_location(record.location_id, LocationChanges(type=create_as), record.accepted_at)
        seq = self.import_seq[record.location_id] = self.import_seq.get(record.location_id, 0) + 1
        record = record.model_copy(update={"seq": seq})
        self.imports[(record.location_id, record.import_id)] = record
        self.locations[record.location_id] = location.model_copy(
            update={"running_import_id": record.import_id, "last_import": record.summary()}
        )
        return record

    def mark_queued(self, location_id: str, import_id: str) -> None:
        record = self.imports[(location_id, import_id)]
        self.imports[(location_id, import_id)] = record.model_copy(update={"queued": True})

    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        record = self.imports[(location_id, import_id)]
        if record.status not in (ImportStatus.ACCEPTED, ImportStatus.RUNNING):
            raise Conflict("no longer running")
        self.imports[(location_id, import_id)] = record.model_copy(
            update={"status": ImportStatus.RUNNING, "written_through_line": written_through_line}
        )

    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None:
        target = self.rows.setdefault((location_id, seq), {})
        for row in rows:
            target[(row.product_id, row.stock_location)] = row

    def _finish(
        self, location_id: str, import_id: str, status: ImportStatus, at: datetime, **fields: object
    ) -> ImportRecord:
        record = self.imports.get((location_id, import_id))
        if record is None:
            raise NotFound("no import")
        if record.status in (ImportStatus.COMPLETED, ImportStatus.FAILED) and record.status is not status:
            raise Conflict("already ended")
        record = record.model_copy(update={"status": status, "completed_at": at, **fields})
        self.imports[(location_id, import_id)] = record
        location = self.locations[location_id]
        if location.running_import_id == import_id:
            update: dict[str, object] = {"running_import_id": None, "last_import": record.summary()}
            if status is ImportStatus.COMPLETED:
                visible = VisibleImport(
                    seq=record.seq or 0,
                    import_id=import_id,
                    kind=record.kind,
                    shipments_included_through=record.shipments_included_through,
                    accepted_at=record.accepted_at,
                    completed_at=at,
                )
                if record.kind.is_baseline:
                    update["last_baseline_import_at"] = at
                    update["visible_imports"] = (visible,)
                else:
                    update["visible_imports"] = (*location.visible_imports, visible)
            self.locations[location_id] = location.model_copy(update=update)
        return record

    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        before = self.imports[(location_id, import_id)].status
        record = self._finish(location_id, import_id, ImportStatus.COMPLETED, completed_at, counts=counts)
        if event is not None and before is not ImportStatus.COMPLETED:
            self.record(location_id, event)
        return record

    def fail_import(
        self,
        location_id: str,
        import_id: str,
        *,
        failed_at: datetime,
        errors: list[dict[str, object]],
        counts: ImportCounts | None = None,
    ) -> ImportRecord:
        fields: dict[str, object] = {"errors": errors}
        if counts is not None:
            fields["counts"] = counts
        return self._finish(location_id, import_id, ImportStatus.FAILED, failed_at, **fields)

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        return iter(self.rows.get((location_id, seq), {}).values() if shard == 0 else ())

    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        if shard != 0:
            return [], False
        rows = sorted(
            self.rows.get((location_id, seq), {}).values(),
            key=lambda r: (product_order(r.product_id), r.stock_location),
        )
        if after_product is not None:
            rows = [r for r in rows if product_order(r.product_id) > product_order(after_product)]
        return rows[:limit], len(rows) > limit

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None:
        return self.imports.get((location_id, import_id))

    # ---- counters
    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        with self.lock:
            return self.counters.get((location_id, product_id)) or ProductCounters(product_id=product_id)

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        with self.lock:
            return {
                product_id: (
                    self.counters_of(location_id, product_id),
                    {
                        seq: sorted(
                            (r for r in self.rows.get((location_id, seq), {}).values() if r.product_id == product_id),
                            key=lambda r: r.stock_location,
                        )
                        for seq in seqs
                    },
                )
                for product_id, seqs in wanted.items()
            }

    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        if shard != 0:
            return [], False
        products = sorted((p for (loc, p) in self.counters if loc == location_id), key=product_order)
        if after_product is not None:
            products = [p for p in products if product_order(p) > product_order(after_product)]
        return [self.counters[(location_id, p)] for p in products[:limit]], len(products) > limit

    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        expected = change.expected
        with self.lock:
            current = self.counters.get((location_id, expected.product_id))
            if not expected.exists:
                if current is not None:
                    return False
                current = ProductCounters(product_id=expected.product_id, exists=True)
            elif current is None:
                return False
            elif change.open_limit is not None:
                if (
                    current.stock_version != expected.stock_version
                    or current.allocated > change.open_limit
                    or any(current.allocation(a) for a in change.allocations)
                ):
                    return False
            elif current.version != expected.version:
                return False
            allocations = {a.allocation_id: a for a in current.allocations}
            for allocation_id, new in change.allocations.items():
                if new is None:
                    allocations.pop(allocation_id, None)
                else:
                    allocations[allocation_id] = new
            entry = change.entry
            self.counters[(location_id, expected.product_id)] = current.model_copy(
                update={
                    "version": current.version + 1,
                    "stock_version": current.stock_version + (1 if entry else 0),
                    "ledger": tuple(
                        e for e in ((*current.ledger, entry) if entry else current.ledger) if e not in change.pruned
                    ),
                    "allocations": tuple(sorted(allocations.values(), key=lambda a: (a.received, a.allocation_id))),
                }
            )
            if change.event:
                self.record(location_id, change.event)
            return True

    def append_entry(self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent) -> bool:
        with self.lock:
            key = (location_id, product_id)
            current = self.counters.get(key) or ProductCounters(product_id=product_id, exists=True)
            if current.allocated:
                return False
            same = (entry.entry_id, entry.source_hash)
            ledger = tuple(e for e in current.ledger if (e.entry_id, e.source_hash) != same)  # set again, if there
            self.counters[key] = current.model_copy(
                update={
                    "version": current.version + 1,
                    "stock_version": current.stock_version + 1,
                    "ledger": (*ledger, entry),
                }
            )
            self.record(location_id, event)
            return True

    # ---- applied events
    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        with self.lock:
            existing = self.applied_events.get((location_id, event_id))
            if existing is None:
                self.applied_events[(location_id, event_id)] = (body_hash, keep_until)
                return None
            return existing[0]

    def expire_applied_events(self, now: datetime) -> None:
        """What the table's TTL does, some time after each record's keep-until."""
        with self.lock:
            for key, (_, keep_until) in list(self.applied_events.items()):
                if keep_until < now:
                    del self.applied_events[key]

    # ---- allocations
    def get_allocation(self, location_id: str, allocation_id: str) -> Allocation | None:
        return self.allocations.get((location_id, allocation_id))

    def put_allocation(self, allocation: Allocation) -> bool:
        with self.lock:
            key = (allocation.location_id, allocation.allocation_id)
            if key in self.allocations:
                return False
            self.allocations[key] = allocation
            return True

    def settle_allocation(
        self,
        allocation: Allocation,
        *,
        status: AllocationStatus,
        expected: AllocationStatus,
        event: OutboxEvent | None = None,
    ) -> bool:
        with self.lock:
            key = (allocation.location_id, allocation.allocation_id)
            current = self.allocations.get(key)
            if current is None or current.status is not expected:
                return False
            self.allocations[key] = current.model_copy(
                update={"status": status, "updated_at": allocation.updated_at, "refused": allocation.refused}
            )
            if event:
                self.record(allocation.location_id, event)
            return True

    def forget_allocation(self, allocation: Allocation, *, expected: AllocationStatus) -> bool:
        with self.lock:
            key = (allocation.location_id, allocation.allocation_id)
            current = self.allocations.get(key)
            if current is None or current.status is not expected:
                return False
            del self.allocations[key]
            return True

    def abandoned_allocations(self, now: datetime, limit: int) -> list[Allocation]:
        with self.lock:
            abandoned = [
                a
                for a in self.allocations.values()
                if a.status is AllocationStatus.PENDING and a.abandon_at is not None and a.abandon_at < now
            ]
            return sorted(abandoned, key=lambda a: (a.abandon_at, a.allocation_id))[:limit]

    # ---- cycle counts
    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        location = self.locations.get(count.location_id)
        if location is None:
            raise NotFound("no location")
        existing = self.counts.get((count.location_id, count.count_id))
        if existing is not None:
            if existing.content_hash != count.content_hash:
                raise CountIdReused("other content")
            return existing
        self.counts[(count.location_id, count.count_id)] = count
        if count.reason is CountReason.MISPICK:
            self.locations[count.location_id] = location.model_copy(
                update={"open_mispick_count_ids": location.open_mispick_count_ids | {count.count_id}}
            )
        return count

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount:
        count = self.counts.get((location_id, count_id))
        if count is None:
            raise NotFound("no count")
        if count.status is not CountStatus.OPEN and count.status is not status:
            raise Conflict("already closed")
        count = count.model_copy(update={"status": status, "closed_at": closed_at})
        self.counts[(location_id, count_id)] = count
        location = self.locations[location_id]
        self.locations[location_id] = location.model_copy(
            update={"open_mispick_count_ids": location.open_mispick_count_ids - {count_id}}
        )
        return count

    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None:
        return self.counts.get((location_id, count_id))

    # ---- outbox
    def pending_keys(
        self, shard: int, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        keys = sorted((location_id, "LOCATION") for location_id, events in self.outbox.items() if events)
        keys = [key for key in keys if after is None or key > after]
        return keys[:limit], keys[limit - 1] if len(keys) > limit else None

    def record(self, location_id: str, event: OutboxEvent) -> None:
        self.outbox.setdefault(location_id, []).append(event)
        self.outbox_version[location_id] = self.outbox_version.get(location_id, 0) + 1

    def read_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[OutboxEvent], int]]:
        return {key: (list(self.outbox.get(key[0], [])), self.outbox_version.get(key[0], 0)) for key in keys}

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        self.outbox[key[0]] = [e for e in self.outbox.get(key[0], []) if e.event_id not in set(event_ids)]


class MemoryPublisher:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.published: list[OutboxEvent] = []
        self.refuse = refuse or set()

    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        accepted = [e for e in events if e.event_id not in self.refuse]
        self.published.extend(accepted)
        return [e.event_id for e in accepted]


class MemoryFiles:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.user_metadata: dict[str, dict[str, str]] = {}

    def uri(self, key: str) -> str:
        return f"s3://imports/{key}"

    def put(self, key: str, data: bytes) -> str:
        uri = self.uri(key)
        self.objects[uri] = data
        return uri

    def holds(self, uri: str) -> bool:
        return uri.startswith("s3://imports/")

    def open(self, uri: str) -> io.BytesIO:
        if uri not in self.objects:
            raise InvalidInput(f"{uri} does not exist")
        return io.BytesIO(self.objects[uri])

    def head(self, uri: str, size: int = 1024) -> bytes:
        return self.open(uri).read(size)

    def metadata(self, uri: str) -> dict[str, str]:
        self.open(uri)
        return self.user_metadata.get(uri, {})


class MemoryQueue:
    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def send(self, message: dict[str, object]) -> None:
        self.messages.append(message)
