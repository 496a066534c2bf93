"""What the domain services need from the outside world, as protocols.

The DynamoDB and EventBridge adapters implement them on AWS (and on the local stack); the unit
tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import BinaryIO, Protocol

from inventory.models import AllocationStatus, CountStatus, Location, LocationChanges, LocationType, OutboxEvent, Page
from inventory.models.allocations import Allocation, AllocationMove
from inventory.models.counters import CountersChange, LedgerEntry, OpenAllocation, PageMove, ProductCounters
from inventory.models.counts import CycleCount
from inventory.models.events import EventClaim
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.models.stock_locations import StockLocations
from inventory.models.transactions import InventoryTransaction, TransactionStatus


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

    def claimed_locations(self) -> Iterator[Location]:
        """Every location that an import claims (`running_import_id` set), in id order, from the
        list of locations: read eventually consistently, so a claim may have been released or taken
        since (every write that acts on one is conditioned on it)."""
        ...

    def switch_to_platform(
        self,
        location_id: str,
        *,
        now: datetime,
        caller: str,
        baseline_cutoff: datetime,
        event: OutboxEvent,
        baseline_seq: int | None = None,
    ) -> Location | None:
        """The one write that sets `inventory_master`: to platform, from erp, on a ready store (no
        inventory transaction recorded under the ERP since the claim of the baseline `baseline_seq`).

        Records `event` in the location's outbox in the same conditional write. Returns None
        when the condition failed (the caller re-reads the location to say why).
        """
        ...

    def mark_erp_transaction(self, location_id: str) -> bool:
        """Record, before its first product is written, that an inventory transaction applies under
        the ERP master (`Location.erp_transactions_seq` = `import_seq`); False when the location is
        under platform master: the transaction then applies under it."""
        ...


class StockLocationRepository(Protocol):
    """The retailer's stock location types: one configuration for every location (one item)."""

    def stock_locations(self) -> StockLocations:
        """The configured types, read strongly consistently (the defaults while none is stored)."""
        ...

    def add_stock_location(self, name: str, salable: bool, *, at_most: int) -> bool:
        """Add the type `name`, in one conditional write; False, and nothing written, when it exists
        already or `at_most` types exist (read again, decide again)."""
        ...

    def set_stock_location_salable(self, name: str, salable: bool) -> bool:
        """Set `salable` of an existing type, in one conditional write; False, and nothing written,
        when the type is marked in use (or is not there)."""
        ...

    def mark_stock_location_in_use(self, name: str) -> None:
        """Mark the type in use, before the first write that puts a quantity other than 0 into it at
        any location (an import's rows, a transaction): from then on its `salable` never changes.
        Safe to repeat; Conflict for a type that is not configured."""
        ...


class ImportRepository(Protocol):
    product_shards: int  # the partitions each location's products, and each import's rows, are spread over

    def begin_import(
        self, record: ImportRecord, create_as: LocationType | None = None, *, claimed_after: int | None = None
    ) -> ImportRecord:
        """Claim the location for this import and record it with the location's next sequence
        number; ImportInProgress if another runs, ImportIdReused if the id exists. With
        `create_as`, the claim creates the location (of that type) when it does not exist, in the
        same write, so that a refused claim creates nothing; without it, NotFound. With
        `claimed_after`, only while the location's last import sequence is still that one (a
        merging import: the layers it merges are those the caller read), else ImportInProgress."""
        ...

    def mark_queued(self, location_id: str, import_id: str) -> None: ...  # its first step is on the worker's queue

    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        """The checkpoint: every valid row up to this line is written; the import is running."""
        ...

    def record_settling(
        self, location_id: str, import_id: str, *, counts: ImportCounts, settled_through: tuple[int, str | None]
    ) -> None:
        """The checkpoint of an import whose rows are all written (`rows_written`, with its counts),
        while it settles its products' sums: every product up to `settled_through` (shard, product)
        is settled. Conflict when the import is no longer running."""
        ...

    def record_merging(self, location_id: str, import_id: str, *, merged_shards: int) -> None:
        """The checkpoint of a merging import's copy: the merged layers' rows of its first
        `merged_shards` shards are in its own layer. Conflict when the import is no longer running."""
        ...

    def purge_import_rows(self, location_id: str, seq: int, shard: int) -> int:
        """Delete every row of import `seq` in one shard (a layer no reader can still need); how
        many there were. Safe to repeat."""
        ...

    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None: ...  # idempotent

    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        """Make the import's rows visible, release the location (the import announced no longer as
        running: its visible entry announces it), and record `event`, in one write."""
        ...

    def fail_import(
        self,
        location_id: str,
        import_id: str,
        *,
        failed_at: datetime,
        errors: list[dict[str, object]],
        counts: ImportCounts | None = None,
        unstarted_only: bool = False,
    ) -> ImportRecord:
        """Mark the import failed (condition: accepted or running), then release the location if the
        import still claims it. An import that has failed already is returned as stored, and its
        release repeated (a retry after a stop between the two writes); one that completed is a
        Conflict. With `unstarted_only`, only an import still `accepted` and not `queued` is failed
        (the sweep of imports never started): Conflict once it is queued or running."""
        ...

    def fail_unrecorded_import(self, record: ImportRecord) -> tuple[ImportRecord, bool]:
        """For an import that claimed its location and has no record (its request stopped between
        the two and was not repeated): put `record`, failed, on the condition that no record exists,
        then release the location if this import still claims it, with `record` as its last import.
        Returns the stored record and whether this call put it; when a record exists already,
        nothing is written."""
        ...

    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None: ...

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]: ...

    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        """Rows of one import in one shard, in product order after `after_product`; and whether more follow."""
        ...


class CountersRepository(Protocol):
    """Each product's hot item (its counters): the sums of its ledger, the buffer of its recent
    entries, its open allocations, its versions; and its ledger pages (docs/data-design.md)."""

    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        """The product's counters, read strongly consistently (empty when none are stored)."""
        ...

    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]], stock_locations: Collection[str]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        """Each wanted product's counters and its rows of these stock location types in the imports
        listed for it (none listed: its counters only), read strongly consistently, in as few
        requests as the backend allows."""
        ...

    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        """The counters of one shard's products in product order after `after_product`; and whether more follow."""
        ...

    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        """Apply `change` in one conditional write; False when its guard no longer holds (re-read, decide again)."""
        ...

    def append_entry(
        self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent, into: Sequence[int] = ()
    ) -> int | None:
        """Put `entry` in the product's buffer, add its quantity to the sums `into`, and record
        `event`, in one conditional write, without reading the counters first (the write creates them
        when none are stored): how many entries the buffer holds after it. None, and nothing written,
        when the entry is there already (a racing redelivery, or an SDK retry of a write that applied),
        when something of the product is allocated, or when the item is of the earlier shape (then
        read, fold and decide)."""
        ...

    def move_to_page(self, location_id: str, move: PageMove) -> bool:
        """Move entries of the buffer to the product's next ledger page, in two writes: the page,
        then the product's item (entries and their events removed, `pages` + 1), on the condition
        that it is still at `move.expected.version`. False when it is not (read again). When another
        mover of the same state put that page first, its entries are the ones committed."""
        ...

    def ledger_pages(self, location_id: str, product_id: str, numbers: Sequence[int]) -> dict[int, list[LedgerEntry]]:
        """The entries of the product's ledger pages of these numbers (committed ones only: at or
        below its `pages`), by number, each in the order moved, read strongly consistently."""
        ...

    def settle_layer(self, location_id: str, expected: ProductCounters, seq: int, total: int) -> bool:
        """Set the product's sum of import layer `seq` to `total`, on the condition that the item is
        still at `expected.version` (False otherwise: read and sum again). Changes no version: the
        layer is not visible yet."""
        ...

    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        """Set the product's own safety stock (None: remove it, so the location's default applies),
        adding 1 to `version` and `stock_version`, in one conditional write: on the condition that
        the item is still at `expected.version`, or, when `expected` is not stored, that none is yet
        (the write creates it). False when the condition fails (read again, decide again). None on a
        product without an item writes nothing."""
        ...


class AllocationLineRepository(Protocol):
    """A product's open allocations that have left its hot item: its allocation lines."""

    def allocation_lines(
        self, location_id: str, product_id: str, after: OpenAllocation | None, limit: int
    ) -> tuple[list[OpenAllocation], bool]:
        """Up to `limit` of the product's allocation lines, oldest first (by received order, then
        id), after `after`, read strongly consistently; and whether more may follow."""
        ...

    def allocation_line(
        self, location_id: str, product_id: str, received: int, allocation_id: str
    ) -> OpenAllocation | None:
        """The allocation's line of the product, read strongly consistently (None: there is none)."""
        ...

    def close_allocation_line(
        self,
        location_id: str,
        product_id: str,
        line: OpenAllocation,
        *,
        entry_id: str,
        quantity: int,
        prune: Sequence[str] = (),
    ) -> bool:
        """Take `quantity` off the line for the shipment line of `entry_id` (recorded on the line, so
        it is taken once; the line is deleted when nothing is left), and drop the records of the
        entries `prune` (which have left the buffer); on the condition that the line is still at
        `line.quantity` and does not record the entry. False when it is not (read it again)."""
        ...

    def move_allocations(self, location_id: str, move: AllocationMove) -> bool:
        """Move held allocations to lines, and clear tombstones (docs/data-design.md, "Open
        allocations"): claim `move.moved` under `move.token` (on the condition that the item is at
        `move.expected.version`), put their lines, delete the lines of `move.cleared`, then remove
        them all from the hot item, each on the condition that it is still as given. False when a
        condition refused (read again; the claim stays this token's)."""
        ...


class AppliedEvents(Protocol):
    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        """Record that the event is being applied, once per id: None when this call recorded it,
        else the body hash it was first recorded with (kept at least until `keep_until`)."""
        ...

    def event_claims(self, location_id: str, event_ids: Sequence[str]) -> dict[str, EventClaim]:
        """The records of these events that are kept, by event id, read strongly consistently."""
        ...

    def mark_events_done(self, location_id: str, claims: Mapping[str, EventClaim]) -> None:
        """Record that every line of each event is applied: each record written again as given
        (`done`, by whom, when), in as few requests as the backend allows."""
        ...


class AllocationRepository(Protocol):
    def get_allocation(self, location_id: str, allocation_id: str) -> Allocation | None: ...

    def allocations_of(self, location_id: str, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The records of these allocations that exist, by id, read strongly consistently together."""
        ...

    def put_allocation(self, allocation: Allocation) -> bool:
        """Record a new allocation; False when one with its id exists."""
        ...

    def settle_allocation(
        self,
        allocation: Allocation,
        *,
        status: AllocationStatus,
        expected: AllocationStatus,
        event: OutboxEvent | None = None,
    ) -> bool:
        """Move the allocation from `expected` to `status` (with its `refused` figures and `event`,
        in the same write); False when it is no longer `expected`."""
        ...

    def forget_allocation(self, allocation: Allocation, *, expected: AllocationStatus) -> bool:
        """Delete the allocation's record if it is still `expected` (a refused request leaves nothing)."""
        ...

    def abandoned_allocations(self, now: datetime, limit: int) -> list[Allocation]:
        """Up to `limit` allocations still `pending` whose `abandon_at` is before `now`, of every
        location, the longest abandoned first (read eventually consistently: one may have settled
        since)."""
        ...


class FileStore(Protocol):
    """Where import files are (S3 on AWS)."""

    def uri(self, key: str) -> str:
        """The s3:// uri of `key` in the import bucket."""
        ...

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
    def send(self, message: dict[str, object], delay_seconds: int = 0) -> None:
        """Send `message`, to be delivered no earlier than `delay_seconds` from now (at most 900)."""
        ...


class TransactionStates(Protocol):
    def transaction_states(
        self, location_id: str, transaction_ids: Sequence[str]
    ) -> dict[str, TransactionStatus]: ...  # an undone transaction has no record


class TransactionRepository(TransactionStates, Protocol):
    def get_transaction(self, location_id: str, transaction_id: str) -> InventoryTransaction | None: ...

    def put_transaction(self, transaction: InventoryTransaction) -> bool: ...  # a new pending record; False: exists

    def complete_transaction(self, transaction: InventoryTransaction, event: OutboxEvent) -> bool:
        """The record completed, with its results and its event, on the condition that it is still
        pending; False otherwise (completed meanwhile, or undone and deleted)."""
        ...

    def forget_transaction(self, transaction: InventoryTransaction) -> bool: ...  # undone: delete it if pending

    def abandoned_transactions(self, now: datetime, limit: int) -> list[InventoryTransaction]: ...  # oldest first

    def list_transactions(self, location_id: str, limit: int, cursor: str | None) -> Page[InventoryTransaction]: ...


class CountStates(Protocol):
    def count_states(self, location_id: str, count_ids: Sequence[str]) -> dict[str, CountStatus]: ...


class CycleCountRepository(CountStates, Protocol):
    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        """Record an open count (idempotent by id and content); CountIdReused otherwise."""
        ...

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount: ...

    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None: ...

    def submit_cycle_count(self, count: CycleCount) -> bool:
        """The count `submitting` with its results, on the condition that it is open (else False)."""
        ...

    def complete_cycle_count(self, count: CycleCount) -> bool:
        """The count `completed` with `results` and `closed_at`, on the condition that it is
        submitting (False otherwise); a mispick count's flag leaves its location either way."""
        ...

    def abandoned_counts(self, now: datetime, limit: int) -> list[CycleCount]: ...  # submitting, oldest first

    def list_cycle_counts(self, location_id: str, limit: int, cursor: str | None) -> Page[CycleCount]: ...


class OutboxStore(Protocol):
    """Where committed events wait for the relay."""

    shards: int

    def pending_keys(
        self, shard: int, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        """Up to `limit` keys of items holding unpublished events, in key order after `after`; and
        where the next page starts (None: this page ends the shard)."""
        ...

    def read_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[OutboxEvent], int]]:
        """Each item's unpublished events, and its version (it grows with every event recorded),
        read strongly consistently in as few requests as the backend allows."""
        ...

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        """Drop published events. With `version` (every event read was published, and the item was
        at `version` then), the item also leaves the outbox unless it changed since."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        """Publish; returns the ids of the events that were accepted by the bus."""
        ...


# ---------------------------------------------------------------- what each service needs of storage
# (the DynamoDB adapter's DynamoDbRepository is all of them; the fakes of the tests too)
class StockReadRepositories(
    ImportRepository, LocationRepository, CountersRepository, StockLocationRepository, Protocol
):
    """What reading stock needs of storage."""


class ImportRepositories(ImportRepository, LocationRepository, StockLocationRepository, Protocol):
    """What accepting and ending imports needs of storage."""


class ImportRunRepositories(ImportRepositories, CountersRepository, Protocol):
    """What running imports needs of storage: settling an import's sums changes products' counters."""


class SettleRepositories(CountersRepository, ImportRepository, Protocol):
    """What settling an import's sums needs of storage."""


class MoveRepositories(CountersRepository, AppliedEvents, TransactionStates, CountStates, Protocol):
    """What moving a product's entries to its ledger pages needs of storage."""


class LineRepositories(CountersRepository, AllocationLineRepository, AllocationRepository, Protocol):
    """What allocation lines need of storage: the hot items they leave, the lines, the records that
    tell whether an allocation is settled."""


class AllocationRepositories(AllocationRepository, AllocationLineRepository, StockReadRepositories, Protocol):
    """What allocations need of storage."""


class ShipmentRepositories(AllocationRepositories, AppliedEvents, TransactionStates, CountStates, Protocol):
    """What applying shipments needs of storage."""


class TransactionRepositories(TransactionRepository, StockReadRepositories, AppliedEvents, CountStates, Protocol):
    """Transactions' records, the products' figures, and the records the move of entries reads."""


class CycleCountRepositories(CycleCountRepository, StockReadRepositories, AppliedEvents, TransactionStates, Protocol):
    """Counts' records, the products' figures they set, and the records the move of entries reads."""


class StoreOperationRepositories(
    TransactionRepository, CycleCountRepository, StockReadRepositories, AppliedEvents, Protocol
):
    """What the store operations (inventory transactions, cycle counts) need of storage."""
