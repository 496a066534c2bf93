"""In-memory stand-ins for the ports, with the same guards as the DynamoDB adapter.

The same behaviour is tested through the real adapter in tests/integration; these keep the unit
tests free of sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from inventory.errors import (
    Conflict,
    CountIdReused,
    ImportIdReused,
    ImportInProgress,
    LocationTypeImmutable,
    NotFound,
)
from inventory.models import (
    CountReason,
    CountStatus,
    CycleCount,
    ImportCounts,
    ImportRecord,
    ImportStatus,
    InventoryMaster,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
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

    def __init__(self) -> None:
        self.locations: dict[str, Location] = {}
        self.imports: dict[tuple[str, str], ImportRecord] = {}
        self.counts: dict[tuple[str, str], CycleCount] = {}
        self.outbox: dict[str, list[OutboxEvent]] = {}

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
            }
        )
        self.locations[location_id] = switched
        self.outbox.setdefault(location_id, []).append(event)
        return switched

    # ---- imports
    def begin_import(self, record: ImportRecord) -> None:
        location = self.locations.get(record.location_id)
        if location is None:
            raise NotFound("no location")
        if location.running_import_id is not None:
            raise ImportInProgress("another import runs")
        if (record.location_id, record.import_id) in self.imports:
            raise ImportIdReused("exists")
        self.imports[(record.location_id, record.import_id)] = record
        self.locations[record.location_id] = location.model_copy(
            update={"running_import_id": record.import_id, "last_import": record.summary()}
        )

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
            if status is ImportStatus.COMPLETED and record.kind.is_baseline:
                update["last_baseline_import_at"] = at
            self.locations[location_id] = location.model_copy(update=update)
        return record

    def complete_import(
        self, location_id: str, import_id: str, *, completed_at: datetime, counts: ImportCounts
    ) -> ImportRecord:
        return self._finish(location_id, import_id, ImportStatus.COMPLETED, completed_at, counts=counts)

    def fail_import(
        self, location_id: str, import_id: str, *, failed_at: datetime, errors: list[dict[str, object]]
    ) -> ImportRecord:
        return self._finish(location_id, import_id, ImportStatus.FAILED, failed_at, errors=errors)

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None:
        return self.imports.get((location_id, import_id))

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
    def pending_keys(self, shard: int, limit: int) -> list[tuple[str, str]]:
        return [(location_id, "LOCATION") for location_id, events in self.outbox.items() if events][:limit]

    def read_pending(self, key: tuple[str, str]) -> list[OutboxEvent]:
        return list(self.outbox.get(key[0], []))

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], seen: int) -> None:
        self.outbox[key[0]] = [e for e in self.outbox.get(key[0], []) if e.event_id not in set(event_ids)]


class MemoryPublisher:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.published: list[OutboxEvent] = []
        self.refuse = refuse or set()

    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        accepted = [e for e in events if e.event_id not in self.refuse]
        self.published.extend(accepted)
        return [e.event_id for e in accepted]
