"""What the domain services need from the outside world, as protocols.

The DynamoDB and EventBridge adapters implement them on AWS (and on the local stack); the unit
tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import BinaryIO, Protocol

from inventory.models import (
    CountStatus,
    CycleCount,
    ImportCounts,
    ImportRecord,
    LedgerEntry,
    Location,
    LocationChanges,
    OutboxEvent,
    Page,
    StockRow,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class LocationRepository(Protocol):
    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        """Create or update; returns the location and whether it was created.

        Raises LocationTypeImmutable when the location exists with another type. Never touches
        `inventory_master` of an existing location.
        """
        ...

    def get_location(self, location_id: str) -> Location | None: ...

    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]: ...

    def switch_to_platform(
        self, location_id: str, *, now: datetime, caller: str, baseline_cutoff: datetime, event: OutboxEvent
    ) -> Location | None:
        """The one write that sets `inventory_master`: to platform, from erp, on a ready store.

        Records `event` in the location's outbox in the same conditional write. Returns None
        when the condition failed (the caller re-reads the location to say why).
        """
        ...


class ImportRepository(Protocol):
    product_shards: int  # the partitions each location's products, and each import's rows, are spread over

    def begin_import(self, record: ImportRecord) -> ImportRecord:
        """Claim the location for this import and record it with the location's next sequence
        number; ImportInProgress if another runs, ImportIdReused if the id exists."""
        ...

    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        """The checkpoint: every valid row up to this line is written; the import is running."""
        ...

    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None:
        """Put rows of import `seq` (invisible until the import completes); idempotent."""
        ...

    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        """Make the import's rows visible, release the location, and record `event`, in one write."""
        ...

    def fail_import(
        self,
        location_id: str,
        import_id: str,
        *,
        failed_at: datetime,
        errors: list[dict[str, object]],
        counts: ImportCounts | None = None,
    ) -> ImportRecord: ...

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None: ...

    def import_rows_of_product(
        self, location_id: str, seqs: Sequence[int], product_id: str
    ) -> dict[int, list[StockRow]]:
        """The rows each of these imports holds for one product."""
        ...

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        """Every row of one import in one shard."""
        ...

    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        """Rows of one import in one shard, in product order after `after_product`; and whether more follow."""
        ...


class LedgerRepository(Protocol):
    """Each product's movements between bases (shipments and handovers today)."""

    def record_ledger_entry(self, location_id: str, product_id: str, entry: LedgerEntry) -> bool:
        """Add the entry once (by `entry_id`); False when it was there already."""
        ...

    def ledger_of(self, location_id: str, product_id: str) -> list[LedgerEntry]:
        """The product's entries, in the order the service applied them."""
        ...

    def ledgers_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[dict[str, list[LedgerEntry]], bool]:
        """The ledgers of one shard's products in product order after `after_product`; and whether more follow."""
        ...


class FileStore(Protocol):
    """Where import files are (S3 on AWS)."""

    def put(self, key: str, data: bytes) -> str:
        """Store `data` in the import bucket; returns its s3:// uri."""
        ...

    def holds(self, uri: str) -> bool:
        """Whether `uri` names an object of the import bucket (the only one the service reads)."""
        ...

    def open(self, uri: str) -> BinaryIO: ...

    def head(self, uri: str, size: int = 1024) -> bytes:
        """The first bytes of the object."""
        ...

    def metadata(self, uri: str) -> dict[str, str]:
        """The object's user metadata (x-amz-meta-*), names in lower case."""
        ...


class WorkQueue(Protocol):
    def send(self, message: dict[str, object]) -> None: ...


class CycleCountRepository(Protocol):
    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        """Record an open count (idempotent by id and content); CountIdReused otherwise."""
        ...

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount: ...

    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None: ...


class OutboxStore(Protocol):
    """Where committed events wait for the relay."""

    shards: int

    def pending_keys(self, shard: int, limit: int) -> list[tuple[str, str]]:
        """Keys of items holding unpublished events, oldest first."""
        ...

    def read_pending(self, key: tuple[str, str]) -> list[OutboxEvent]: ...

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], seen: int) -> None:
        """Drop published events; `seen` is how many the item held when read."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        """Publish; returns the ids of the events that were accepted by the bus."""
        ...
