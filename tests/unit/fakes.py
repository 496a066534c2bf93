"""In-memory stand-ins for the ports, with the same guards as the DynamoDB adapter.

tests/integration/test_repository_contract.py runs one suite of checks against this repository and
against the adapter on dynalite, so that a rule cannot pass here and fail on DynamoDB. Where the
adapter's layout shows through the ports, this keeps it: the same keys (the outbox's keys are the
items' own), products over the same shards by the adapter's own rule, an outbox per item with the
item's version, and DynamoDB's paging (a full page says that more may follow).
"""

from __future__ import annotations

import functools
import io
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from inventory.adapters.dynamodb.keys import (
    OUTBOX_SHARDS,
    PRODUCT_SHARDS,
    Key,
    abandoned_before,
    allocation_key,
    counters_key,
    import_row_key,
    ledger_page_key,
    ledger_pages_prefix,
    location_key,
    location_pk,
    outbox_shard,
    pending_index_keys,
    product_shard,
    product_sk,
    transaction_key,
)
from inventory.adapters.dynamodb.locations import list_cursor, listed_after
from inventory.cursor import decode_cursor, encode_cursor
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
    FIGURE_SETTINGS,
    SEGMENT,
    SOURCE_HASH_CHARS,
    AllocationStatus,
    CountReason,
    CountStatus,
    ImportStatus,
    InventoryMaster,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
    VisibleImport,
)
from inventory.models.allocations import Allocation, AllocationMove
from inventory.models.counters import CountersChange, LedgerEntry, OpenAllocation, PageMove, ProductCounters
from inventory.models.counts import CycleCount
from inventory.models.events import EventClaim
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.models.stock_locations import StockLocations
from inventory.models.transactions import InventoryTransaction, TransactionStatus
from inventory.ports import (
    AllocationLineRepository,
    AllocationRepository,
    AppliedEvents,
    Clock,
    CountersRepository,
    CycleCountRepository,
    EventPublisher,
    FileStore,
    ImportRepository,
    LocationRepository,
    OutboxStore,
    StockLocationRepository,
    TransactionRepository,
    WorkQueue,
)
from inventory.types import DEFAULT_STOCK_LOCATIONS

OutboxKey = tuple[str, str]  # (pk, sk) of an item that holds events: the item's own key, as in the adapter
_ENDED = (ImportStatus.COMPLETED, ImportStatus.FAILED)
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def item_of(key: Key) -> OutboxKey:
    return key["pk"], key["sk"]


def location_item(location_id: str) -> OutboxKey:
    """The location's item: the switch's and the imports' events are in its outbox."""
    return item_of(location_key(location_id))


def counters_item(location_id: str, product_id: str) -> OutboxKey:
    """A product's counters item: the events of its changes are in its outbox."""
    return item_of(counters_key(location_id, product_id))


def transaction_item(location_id: str, transaction_id: str) -> OutboxKey:
    """A transaction's record: its event is in its outbox."""
    return item_of(transaction_key(location_id, transaction_id))


def allocation_item(location_id: str, allocation_id: str) -> OutboxKey:
    """An allocation's record: the events of its settlement are in its outbox."""
    return item_of(allocation_key(location_id, allocation_id))


class FixedClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def _port(method: Callable[Concatenate[MemoryRepository, P], R]) -> Callable[Concatenate[MemoryRepository, P], R]:
    """A method of a port: called one at a time, and first failing if told to (`fail_next`). Calls
    one port method makes of another are part of it, not calls of the port."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: MemoryRepository, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            if self._in_call:
                return method(self, *args, **kwargs)
            self._in_call = True
            try:
                self._arm(name)
                result = method(self, *args, **kwargs)
                self._returning()
                return result
            finally:
                self._in_call = False
                self._armed = None

    return call


class MemoryRepository(
    LocationRepository,
    ImportRepository,
    CountersRepository,
    AllocationLineRepository,
    AppliedEvents,
    AllocationRepository,
    CycleCountRepository,
    TransactionRepository,
    OutboxStore,
    StockLocationRepository,
):
    """Every port of storage, in memory, as DynamoDbRepository implements them."""

    shards = OUTBOX_SHARDS
    product_shards = PRODUCT_SHARDS

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.locations: dict[str, Location] = {}
        self.import_seq: dict[str, int] = {}
        self.imports: dict[tuple[str, str], ImportRecord] = {}
        self.rows: dict[tuple[str, int], dict[tuple[str, str], StockRow]] = {}
        self.counters: dict[tuple[str, str], ProductCounters] = {}
        self.allocations: dict[tuple[str, str], Allocation] = {}
        self.abandonable: set[tuple[str, str]] = set()  # pending from the API: listed until settled
        self.applied_events: dict[tuple[str, str], EventClaim] = {}
        self.pages: dict[OutboxKey, LedgerPageItem] = {}  # products' ledger pages, by the adapter's keys
        # Products' allocation lines, by (location, product), by (received order, allocation id).
        self.lines: dict[tuple[str, str], dict[tuple[int, str], OpenAllocation]] = {}
        self.counts: dict[tuple[str, str], CycleCount] = {}
        # The stock location types' item: each type's `salable` and the types marked in use (None:
        # no item stored, the defaults hold).
        self.stock_location_types: dict[str, bool] | None = None
        self.stock_locations_in_use: set[str] = set()
        self.transactions: dict[tuple[str, str], InventoryTransaction] = {}
        # The outbox: each item's unpublished events by id, its version, and whether it is listed
        # (the adapter's sparse index, which an item leaves only when published at its version).
        self.items: set[OutboxKey] = set()
        self.outbox: dict[OutboxKey, dict[str, OutboxEvent]] = {}
        self.versions: dict[OutboxKey, int] = {}
        self.listed: set[OutboxKey] = set()
        self._recorded: dict[str, int] = {}  # event id: when it was recorded (for `pending_events`)
        self._sequence = itertools.count()
        self._failures: dict[str, tuple[BaseException, int]] = {}  # method: (error, after how many writes)
        self._armed: tuple[BaseException, int] | None = None  # the current call's: (error, writes left)
        self._in_call = False

    # ---- failing on purpose
    def fail_next(self, method: str, error: BaseException, *, after_writes: int = 0) -> None:
        """Raise `error` once, at the next call of `method`: before any effect, or, with
        `after_writes`, once the call has made that many of its writes (the adapter's are the same:
        e.g. complete_import writes the import record, then releases the location), or as it returns
        if it makes fewer: a crash between two writes, or an answer lost after the write."""
        if not callable(getattr(type(self), method, None)) or method.startswith("_"):
            raise ValueError(f"{method!r} is not a method of the repository")
        self._failures[method] = (error, after_writes)

    def _arm(self, method: str) -> None:
        failure = self._failures.pop(method, None)
        if failure is None:
            return
        error, after_writes = failure
        if after_writes <= 0:
            raise error
        self._armed = failure

    def _wrote(self) -> None:
        """One write of the current call is made (each is one conditional write in the adapter)."""
        if self._armed is None:
            return
        error, left = self._armed
        self._armed = (error, left - 1) if left > 1 else None
        if left <= 1:
            raise error

    def _returning(self) -> None:
        if self._armed is not None:
            error, _ = self._armed
            self._armed = None
            raise error

    # ---- locations
    @_port
    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        current = self.locations.get(location_id)
        if current is not None and current.type is not changes.type:
            raise LocationTypeImmutable(
                f"location {location_id!r} exists with another type; a location's type never changes",
                details=[{"field": "body.type", "code": "immutable", "message": "type cannot change"}],
            )
        given = {k: v for k, v in changes.model_dump().items() if v is not None}
        if current is None:
            location = Location(location_id=location_id, created_at=now, updated_at=now, **given)
            self.items.add(location_item(location_id))
        else:
            changes_figures = any(getattr(current, f) != given[f] for f in FIGURE_SETTINGS if f in given)
            bumped = {"figures_version": current.figures_version + 1} if changes_figures else {}
            location = current.model_copy(update={**given, "updated_at": now, **bumped})
        self.locations[location_id] = location
        self._wrote()
        return location, current is None

    @_port
    def get_location(self, location_id: str) -> Location | None:
        return self.locations.get(location_id)

    @_port
    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]:
        after = listed_after(cursor) if cursor else None
        page = [i for i in sorted(self.locations) if after is None or i > after][:limit]
        return Page(
            items=[self.locations[i] for i in page],
            next_cursor=list_cursor(page[-1]) if page and len(page) == limit else None,
        )

    @_port
    def claimed_locations(self) -> Iterator[Location]:
        claimed = [self.locations[i] for i in sorted(self.locations) if self.locations[i].running_import_id]
        return iter(claimed)

    @_port
    def mark_erp_transaction(self, location_id: str) -> bool:
        location = self.locations.get(location_id)
        if location is None or location.inventory_master is not InventoryMaster.ERP:
            return False
        seq = self.import_seq.get(location_id, 0)
        self.locations[location_id] = location.model_copy(update={"erp_transactions_seq": seq})
        self._wrote()
        return True

    @_port
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
        location = self.locations.get(location_id)
        if (
            location is None
            or (location.erp_transactions_seq is not None and location.erp_transactions_seq >= (baseline_seq or 0))
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
                "figures_version": location.figures_version + 1,
            }
        )
        self.locations[location_id] = switched
        self.record(location_item(location_id), event)
        self._wrote()
        return switched

    # ---- imports
    @_port
    def begin_import(
        self, record: ImportRecord, create_as: LocationType | None = None, *, claimed_after: int | None = None
    ) -> ImportRecord:
        location_id, import_id = record.location_id, record.import_id
        if (location_id, import_id) in self.imports:
            raise ImportIdReused(f"import {import_id!r} exists already")
        location = self.locations.get(location_id)
        if location is None and create_as is None:
            raise NotFound(f"location {location_id!r} does not exist")
        if location is not None and location.running_import_id not in (None, import_id):
            raise ImportInProgress(f"import {location.running_import_id!r} is still running for this location")
        if claimed_after is not None and self.import_seq.get(location_id, 0) != claimed_after:
            raise ImportInProgress(f"another import claimed location {location_id!r} since it was read")
        # The claim (which creates the location when told to), then the record: two writes. A claim
        # by this very id with no record yet is an earlier attempt's, which this one takes over.
        if location is None:
            assert create_as is not None
            location = Location(
                location_id=location_id, type=create_as, created_at=record.accepted_at, updated_at=record.accepted_at
            )
            self.items.add(location_item(location_id))
        seq = self.import_seq[location_id] = self.import_seq.get(location_id, 0) + 1
        record = record.model_copy(update={"seq": seq})
        self.locations[location_id] = location.model_copy(
            update={
                "running_import_id": import_id,
                "running_import_claimed_at": record.accepted_at,
                "running_import_seq": seq,  # announced with what it includes
                "running_import_through": record.shipments_included_through,
                "running_import_merged": record.merged,
                "import_seq": seq,
                "last_import": record.summary(),
                "updated_at": record.accepted_at,
            }
        )
        self._wrote()
        self.imports[(location_id, import_id)] = record
        self._wrote()
        return record

    @_port
    def mark_queued(self, location_id: str, import_id: str) -> None:
        record = self.imports.get((location_id, import_id))
        if record is not None:
            self.imports[(location_id, import_id)] = record.model_copy(update={"queued": True})
            self._wrote()

    @_port
    def record_progress(self, location_id: str, import_id: str, *, written_through_line: int) -> None:
        record = self.imports.get((location_id, import_id))
        if record is None or record.status in _ENDED:
            raise Conflict(f"import {import_id!r} is no longer running")
        self.imports[(location_id, import_id)] = record.model_copy(
            update={"status": ImportStatus.RUNNING, "written_through_line": written_through_line}
        )
        self._wrote()

    @_port
    def record_settling(
        self, location_id: str, import_id: str, *, counts: ImportCounts, settled_through: tuple[int, str | None]
    ) -> None:
        record = self.imports.get((location_id, import_id))
        if record is None or record.status in _ENDED:
            raise Conflict(f"import {import_id!r} is no longer running")
        self.imports[(location_id, import_id)] = record.model_copy(
            update={
                "status": ImportStatus.RUNNING,
                "rows_written": True,
                "counts": counts,
                "settled_through": settled_through,
            }
        )
        self._wrote()

    @_port
    def record_merging(self, location_id: str, import_id: str, *, merged_shards: int) -> None:
        record = self.imports.get((location_id, import_id))
        if record is None or record.status in _ENDED:
            raise Conflict(f"import {import_id!r} is no longer running")
        self.imports[(location_id, import_id)] = record.model_copy(update={"merged_shards": merged_shards})
        self._wrote()

    @_port
    def purge_import_rows(self, location_id: str, seq: int, shard: int) -> int:
        rows = self.rows.get((location_id, seq), {})
        doomed = [key for key, row in rows.items() if product_shard(row.product_id) == shard]
        for key in doomed:
            del rows[key]
        if doomed:
            self._wrote()
        return len(doomed)

    @_port
    def write_import_rows(self, location_id: str, seq: int, rows: Sequence[StockRow]) -> None:
        target = self.rows.setdefault((location_id, seq), {})
        for row in rows:
            target[(row.product_id, row.stock_location)] = row
        self._wrote()

    def _finish(
        self,
        location_id: str,
        import_id: str,
        status: ImportStatus,
        at: datetime,
        *,
        unstarted_only: bool = False,
        **fields: object,
    ) -> ImportRecord:
        """The import record's write: the stored record, unchanged, when it has ended already as `status`."""
        record = self.imports.get((location_id, import_id))
        if record is None:
            raise NotFound(f"import {import_id!r} does not exist")
        if record.status in _ENDED:
            if record.status is not status:
                raise Conflict(f"import {import_id!r} is {record.status.value}: it cannot end as {status.value}")
            return record  # a retry: the release below may still be to do
        if unstarted_only and (record.status is not ImportStatus.ACCEPTED or record.queued):
            state = "queued" if record.status is ImportStatus.ACCEPTED else record.status.value
            raise Conflict(f"import {import_id!r} is {state}: it cannot end as {status.value}")
        record = record.model_copy(update={"status": status, "completed_at": at, **fields})
        self.imports[(location_id, import_id)] = record
        self._wrote()
        return record

    def _release(self, record: ImportRecord, event: OutboxEvent | None = None) -> None:
        """The location's write: released, with what the import makes visible, if still claimed by it."""
        location = self.locations[record.location_id]
        if location.running_import_id != record.import_id:
            return
        at = record.completed_at or record.accepted_at
        update: dict[str, object] = {
            "running_import_id": None,
            "running_import_claimed_at": None,
            "running_import_seq": None,
            "running_import_through": None,
            "running_import_merged": None,
            "last_import": record.summary(),
            "updated_at": at,
        }
        if record.status is ImportStatus.COMPLETED:
            visible = VisibleImport(
                seq=record.seq or 0,
                import_id=record.import_id,
                kind=record.kind,
                shipments_included_through=record.shipments_included_through,
                accepted_at=record.accepted_at,
                completed_at=at,
                merged=record.merged,
            )
            if record.kind.is_baseline:
                update["last_baseline_import_at"] = at
                update["visible_imports"] = (visible,)
            else:
                by_seq = {v.seq: v for v in (*location.visible_imports, visible) if v.seq not in record.merges}
                update["visible_imports"] = tuple(by_seq[seq] for seq in sorted(by_seq))
        self.locations[record.location_id] = location.model_copy(update=update)
        if event is not None:
            self.record(location_item(record.location_id), event)
        self._wrote()

    @_port
    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        record = self._finish(location_id, import_id, ImportStatus.COMPLETED, completed_at, counts=counts)
        self._release(record, event)
        return record

    @_port
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
        fields: dict[str, object] = {"errors": errors}
        if counts is not None:
            fields["counts"] = counts
        record = self._finish(
            location_id, import_id, ImportStatus.FAILED, failed_at, unstarted_only=unstarted_only, **fields
        )
        self._release(record)
        return record

    @_port
    def fail_unrecorded_import(self, record: ImportRecord) -> tuple[ImportRecord, bool]:
        """The record's put (condition: none), then the location's release: two writes."""
        key = (record.location_id, record.import_id)
        existing = self.imports.get(key)
        if existing is not None:
            return existing, False
        self.imports[key] = record
        self._wrote()
        self._release(record)
        return record, True

    @_port
    def get_import(self, location_id: str, import_id: str) -> ImportRecord | None:
        return self.imports.get((location_id, import_id))

    def _rows_of_shard(self, location_id: str, seq: int, shard: int) -> list[StockRow]:
        """In the adapter's order: by sort key (product, then stock location)."""
        rows = [r for r in self.rows.get((location_id, seq), {}).values() if product_shard(r.product_id) == shard]
        return sorted(rows, key=lambda r: import_row_key(location_id, seq, r.product_id, r.stock_location)["sk"])

    @_port
    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        return iter(self._rows_of_shard(location_id, seq, shard))

    @_port
    def import_rows_page(
        self, location_id: str, seq: int, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[StockRow], bool]:
        rows = self._rows_of_shard(location_id, seq, shard)
        if after_product is not None:
            rows = [r for r in rows if product_sk(r.product_id) > product_sk(after_product)]
        return _page(rows, limit)

    # ---- the stock location types
    @_port
    def stock_locations(self) -> StockLocations:
        if self.stock_location_types is None:
            return StockLocations.defaults()
        return StockLocations.of(self.stock_location_types, self.stock_locations_in_use)

    def _stored_types(self) -> dict[str, bool]:
        """The types' item, the defaults put first when none is stored (as the adapter does)."""
        if self.stock_location_types is None:
            self.stock_location_types = dict(DEFAULT_STOCK_LOCATIONS)
            self._wrote()
        return self.stock_location_types

    @_port
    def add_stock_location(self, name: str, salable: bool, *, at_most: int) -> bool:
        types = self._stored_types()
        if name in types or len(types) >= at_most:
            return False
        types[name] = salable
        self._wrote()
        return True

    @_port
    def set_stock_location_salable(self, name: str, salable: bool) -> bool:
        types = self._stored_types()
        if name not in types or name in self.stock_locations_in_use:
            return False
        types[name] = salable
        self._wrote()
        return True

    @_port
    def mark_stock_location_in_use(self, name: str) -> None:
        if name not in self._stored_types():
            raise Conflict(f"stock location {name!r} is not configured")
        self.stock_locations_in_use.add(name)
        self._wrote()

    # ---- counters (products' hot items) and ledger pages
    @_port
    def counters_of(self, location_id: str, product_id: str) -> ProductCounters:
        counters = self.counters.get((location_id, product_id))
        if counters is None:
            return ProductCounters(product_id=product_id)
        # the adapter reads the item's unpublished events with it
        return counters.model_copy(
            update={"pending": dict(self.outbox.get(counters_item(location_id, product_id), {}))}
        )

    @_port
    def product_states(
        self, location_id: str, wanted: Mapping[str, Sequence[int]], stock_locations: Collection[str]
    ) -> dict[str, tuple[ProductCounters, dict[int, list[StockRow]]]]:
        def rows_of(product_id: str, seq: int) -> list[StockRow]:
            rows = self.rows.get((location_id, seq), {})
            # the adapter reads each product's row of every stock location asked for, by key
            return [rows[(product_id, s)] for s in sorted(stock_locations) if (product_id, s) in rows]

        return {
            product_id: (self.counters_of(location_id, product_id), {seq: rows_of(product_id, seq) for seq in seqs})
            for product_id, seqs in wanted.items()
        }

    @_port
    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        products = sorted(
            (p for (loc, p) in self.counters if loc == location_id and product_shard(p) == shard), key=product_sk
        )
        if after_product is not None:
            products = [p for p in products if product_sk(p) > product_sk(after_product)]
        return _page([self.counters_of(location_id, p) for p in products], limit)

    def _store_counters(self, location_id: str, counters: ProductCounters, event: OutboxEvent | None) -> None:
        key = counters_item(location_id, counters.product_id)
        self.counters[(location_id, counters.product_id)] = counters.model_copy(update={"pending": {}})
        self.items.add(key)
        self.versions[key] = counters.version  # one attribute in the adapter: the outbox's version is the item's
        if event is not None:
            self.record(key, event, counted=False)
        self._wrote()

    @_port
    def change_counters(self, location_id: str, change: CountersChange) -> bool:
        expected = change.expected
        current = self.counters.get((location_id, expected.product_id))
        pruned = change.pruned
        if not expected.exists:  # the product's first change writes the whole item
            if current is not None:
                return False
            current, pruned = ProductCounters(product_id=expected.product_id, exists=True), ()
        elif current is None:
            return False
        elif change.open_limit is not None:  # an opening: concurrent openings do not refuse each other
            if (
                current.stock_version != expected.stock_version
                or current.allocated > change.open_limit
                or any(current.allocation(a) for a in change.allocations)
            ):
                return False
        elif current.version != expected.version:
            return False
        allocations = {a.allocation_id: a for a in current.allocations}
        allocated = current.allocated + change.lines_delta
        for allocation_id, new in change.allocations.items():
            old = allocations.get(allocation_id)
            allocated += (new.quantity if new else 0) - (old.quantity if old else 0)
            if new is None:
                allocations.pop(allocation_id, None)
            else:
                allocations[allocation_id] = new
        entry = _buffered(change.entry) if change.entry else None
        ledger = _ledger(current.ledger, entry, pruned)
        sums, buffered, legacy = dict(current.sums), current.buffered, current.legacy
        if current.legacy and change.fold is not None:  # folded: the sums, and its entries are its buffer
            sums, legacy, buffered = dict(change.fold), False, len(ledger)
            if entry:
                for n in change.into:
                    sums[n] = sums.get(n, 0) + entry.quantity
        elif not current.legacy:
            if entry:
                for n in change.into:
                    sums[n] = sums.get(n, 0) + entry.quantity
            buffered = len(ledger)
        moved = dict(current.moved)
        for at, delta in change.moved.items():
            moved[at] = moved.get(at, 0) + delta
        changed = current.model_copy(
            update={
                "version": current.version + 1,
                "stock_version": current.stock_version + (1 if entry or change.moved else 0),
                "moved": moved,
                "counted": current.counted | frozenset(change.counted),
                "ledger": ledger,
                "allocations": _allocations(allocations.values()),
                "allocated_total": allocated,
                "legacy": legacy,
                "sums": sums,
                "buffered": buffered,
            }
        )
        self._store_counters(location_id, changed, change.event)
        return True

    @_port
    def append_entry(
        self, location_id: str, product_id: str, entry: LedgerEntry, event: OutboxEvent, into: Sequence[int] = ()
    ) -> int | None:
        current = self.counters.get((location_id, product_id)) or ProductCounters(product_id=product_id, exists=True)
        if current.legacy or current.allocated or current.entry(entry.entry_id, entry.source_hash) is not None:
            return None
        sums = dict(current.sums)
        for n in into:
            sums[n] = sums.get(n, 0) + entry.quantity
        changed = current.model_copy(
            update={
                "version": current.version + 1,
                "stock_version": current.stock_version + 1,
                "ledger": _ledger(current.ledger, _buffered(entry)),
                "sums": sums,
                "buffered": current.buffered + 1,
            }
        )
        self._store_counters(location_id, changed, event)
        return changed.buffered

    @_port
    def move_to_page(self, location_id: str, move: PageMove) -> bool:
        expected = move.expected
        number = expected.pages + 1
        page_key = item_of(ledger_page_key(location_id, expected.product_id, number))
        entries = tuple(_buffered(e) for e in move.entries)
        event_ids = tuple(e.event_id for e in move.events)
        there = self.pages.get(page_key)
        if there is None or there.from_version < expected.version:  # the page's write
            self.pages[page_key] = LedgerPageItem(entries, expected.version, event_ids)
            self.items.add(page_key)
            self.outbox.pop(page_key, None)
            self.listed.discard(page_key)
            self.versions[page_key] = expected.version  # the relay's guard: a page put again is another version
            for event in move.events:
                self.record(page_key, event, counted=False)
            self._wrote()
        elif there.from_version == expected.version:  # another mover of this very state came first
            entries, event_ids = there.entries, there.event_ids
        else:
            return False
        key = (location_id, expected.product_id)
        current = self.counters.get(key)
        if current is None or current.version != expected.version:
            return False
        moved = {(e.entry_id, (e.source_hash or "")[:SOURCE_HASH_CHARS]) for e in entries}
        ledger = tuple(
            e for e in current.ledger if (e.entry_id, (e.source_hash or "")[:SOURCE_HASH_CHARS]) not in moved
        )
        segments = {s: p for s, p in current.segments.items() if s not in move.drop_segments}
        epochs = {e: p for e, p in current.epochs.items() if e not in move.drop_epochs}
        for entry in entries:
            if entry.logical_timestamp is not None and entry.logical_timestamp // SEGMENT >= move.segment_cut:
                segments.setdefault(entry.logical_timestamp // SEGMENT, number)
            if entry.epoch is not None and entry.epoch >= move.epoch_cut:
                epochs.setdefault(entry.epoch, number)
        item = counters_item(location_id, expected.product_id)
        for event_id in event_ids:
            self.outbox.get(item, {}).pop(event_id, None)
        changed = current.model_copy(
            update={
                "version": current.version + 1,
                "ledger": ledger,
                "buffered": current.buffered - len(entries),
                "pages": number,
                "sums": {n: t for n, t in current.sums.items() if n not in move.drop_sums},
                "moved": {at: t for at, t in current.moved.items() if at not in move.drop_moved},
                "segments": segments,
                "epochs": epochs,
                "segment_cut": max(current.segment_cut, move.segment_cut),
                "epoch_cut": max(current.epoch_cut, move.epoch_cut),
            }
        )
        self._store_counters(location_id, changed, None)
        return True

    @_port
    def ledger_pages(self, location_id: str, product_id: str, numbers: Sequence[int]) -> dict[int, list[LedgerEntry]]:
        found = {}
        for number in numbers:
            page = self.pages.get(item_of(ledger_page_key(location_id, product_id, number)))
            if page is not None:
                found[number] = list(page.entries)
        return found

    # ---- allocation lines (the adapter's are items of their own, sorted by received order and id)
    @_port
    def allocation_lines(
        self, location_id: str, product_id: str, after: OpenAllocation | None, limit: int
    ) -> tuple[list[OpenAllocation], bool]:
        lines = self.lines.get((location_id, product_id), {})
        keys = sorted(lines)
        if after is not None:
            keys = [k for k in keys if k > (after.received, after.allocation_id)]
        return _page([lines[k] for k in keys], limit)

    @_port
    def allocation_line(
        self, location_id: str, product_id: str, received: int, allocation_id: str
    ) -> OpenAllocation | None:
        return self.lines.get((location_id, product_id), {}).get((received, allocation_id))

    @_port
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
        lines = self.lines.get((location_id, product_id), {})
        key = (line.received, line.allocation_id)
        current = lines.get(key)
        if current is None or current.quantity != line.quantity or entry_id in current.closed_by:
            return False
        if current.quantity - quantity <= 0:
            del lines[key]
        else:
            closed_by = {e: q for e, q in current.closed_by.items() if e not in prune or e == entry_id}
            lines[key] = current.model_copy(
                update={"quantity": current.quantity - quantity, "closed_by": {**closed_by, entry_id: quantity}}
            )
        self._wrote()
        return True

    @_port
    def move_allocations(self, location_id: str, move: AllocationMove) -> bool:
        expected, token = move.expected, move.token
        key = (location_id, expected.product_id)
        to_claim = [a for a in move.moved if a.claim != token]
        if to_claim:  # the claim, guarded by the item's version
            current = self.counters.get(key)
            if current is None or current.version != expected.version:
                return False
            held = {a.allocation_id: a for a in current.allocations}
            for allocation in to_claim:
                if allocation.allocation_id in held:
                    held[allocation.allocation_id] = held[allocation.allocation_id].model_copy(update={"claim": token})
            self._store_counters(
                location_id,
                current.model_copy(update={"allocations": _allocations(held.values()), "version": current.version + 1}),
                None,
            )
        lines = self.lines.setdefault(key, {})
        for allocation in move.moved:  # the lines: put only by their claim's holder
            there = lines.get((allocation.received, allocation.allocation_id))
            if there is not None and there.claim not in (token, *move.taken_over):
                return False
            lines[(allocation.received, allocation.allocation_id)] = allocation.model_copy(
                update={"claim": token, "closed_by": {}}
            )
            self._wrote()
        if move.cleared:
            for allocation in move.cleared:
                lines.pop((allocation.received, allocation.allocation_id), None)
            self._wrote()
        current = self.counters.get(key)  # the commit: each as given
        if current is None:
            return False
        held = {a.allocation_id: a for a in current.allocations}
        for allocation in move.moved:
            there = held.get(allocation.allocation_id)
            if there is None or there.quantity != allocation.quantity or there.claim != token:
                return False
        for allocation in move.cleared:
            there = held.get(allocation.allocation_id)
            if there is None or there.quantity != 0 or there.claim != allocation.claim:
                return False
        for allocation in (*move.moved, *move.cleared):
            del held[allocation.allocation_id]
        self._store_counters(
            location_id,
            current.model_copy(update={"allocations": _allocations(held.values()), "version": current.version + 1}),
            None,
        )
        return True

    @_port
    def settle_layer(self, location_id: str, expected: ProductCounters, seq: int, total: int) -> bool:
        if not expected.exists:
            return True
        current = self.counters.get((location_id, expected.product_id))
        if current is None or current.version != expected.version:
            return False
        self.counters[(location_id, expected.product_id)] = current.model_copy(
            update={"sums": {**current.sums, seq: total}}
        )
        self._wrote()
        return True

    @_port
    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        key = (location_id, expected.product_id)
        current = self.counters.get(key)
        if not expected.exists:  # the product's first change writes the whole item
            if safety_stock is None:
                return True
            if current is not None:
                return False
            current = ProductCounters(product_id=expected.product_id, exists=True)
        elif current is None or current.version != expected.version:
            return False
        changed = current.model_copy(
            update={
                "version": current.version + 1,
                "stock_version": current.stock_version + 1,
                "safety_stock": safety_stock,
            }
        )
        self._store_counters(location_id, changed, None)
        return True

    # ---- applied events
    @_port
    def claim_event(self, location_id: str, event_id: str, body_hash: str, keep_until: datetime) -> str | None:
        existing = self.applied_events.get((location_id, event_id))
        if existing is not None:
            return existing.body_hash
        self.applied_events[(location_id, event_id)] = EventClaim(body_hash=body_hash, keep_until=keep_until)
        self._wrote()
        return None

    @_port
    def event_claims(self, location_id: str, event_ids: Sequence[str]) -> dict[str, EventClaim]:
        return {e: claim for e in event_ids if (claim := self.applied_events.get((location_id, e))) is not None}

    @_port
    def mark_events_done(self, location_id: str, claims: Mapping[str, EventClaim]) -> None:
        for event_id, claim in claims.items():
            self.applied_events[(location_id, event_id)] = claim.model_copy(update={"done": True})
        self._wrote()

    def expire_applied_events(self, now: datetime) -> None:
        """What the table's TTL does, some time after each record's keep-until."""
        with self.lock:
            for key, claim in list(self.applied_events.items()):
                if claim.keep_until < now:
                    del self.applied_events[key]

    # ---- allocations
    @_port
    def get_allocation(self, location_id: str, allocation_id: str) -> Allocation | None:
        return self.allocations.get((location_id, allocation_id))

    @_port
    def allocations_of(self, location_id: str, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        return {a: found for a in allocation_ids if (found := self.allocations.get((location_id, a))) is not None}

    @_port
    def put_allocation(self, allocation: Allocation) -> bool:
        key = (allocation.location_id, allocation.allocation_id)
        if key in self.allocations:
            return False
        self.allocations[key] = allocation
        self.items.add(allocation_item(*key))
        if allocation.status is AllocationStatus.PENDING and allocation.abandon_at is not None:
            self.abandonable.add(key)
        self._wrote()
        return True

    @_port
    def settle_allocation(
        self,
        allocation: Allocation,
        *,
        status: AllocationStatus,
        expected: AllocationStatus,
        event: OutboxEvent | None = None,
    ) -> bool:
        key = (allocation.location_id, allocation.allocation_id)
        current = self.allocations.get(key)
        if current is None or current.status is not expected:
            return False
        update: dict[str, object] = {"status": status, "updated_at": allocation.updated_at}
        if allocation.refused:
            update["refused"] = allocation.refused
        self.allocations[key] = current.model_copy(update=update)
        self.abandonable.discard(key)  # no longer pending
        if event:
            self.record(allocation_item(*key), event)
        self._wrote()
        return True

    @_port
    def forget_allocation(self, allocation: Allocation, *, expected: AllocationStatus) -> bool:
        key = (allocation.location_id, allocation.allocation_id)
        current = self.allocations.get(key)
        if current is None or current.status is not expected:
            return False
        del self.allocations[key]
        self.abandonable.discard(key)
        item = allocation_item(*key)  # the whole item goes, its outbox with it
        self.items.discard(item)
        self.outbox.pop(item, None)
        self.versions.pop(item, None)
        self.listed.discard(item)
        self._wrote()
        return True

    @_port
    def abandoned_allocations(self, now: datetime, limit: int) -> list[Allocation]:
        before = abandoned_before(now)
        abandoned = [
            a
            for a in (self.allocations[key] for key in self.abandonable)
            if a.status is AllocationStatus.PENDING
            and a.abandon_at is not None
            and pending_index_keys(a.location_id, a.allocation_id, a.abandon_at)["gsi1sk"] < before
        ]
        return sorted(abandoned, key=lambda a: (a.abandon_at, a.allocation_id))[:limit]

    # ---- inventory transactions
    @_port
    def get_transaction(self, location_id: str, transaction_id: str) -> InventoryTransaction | None:
        return self.transactions.get((location_id, transaction_id))

    @_port
    def transaction_states(self, location_id: str, transaction_ids: Sequence[str]) -> dict[str, TransactionStatus]:
        return {
            t: found.status for t in transaction_ids if (found := self.transactions.get((location_id, t))) is not None
        }

    @_port
    def put_transaction(self, transaction: InventoryTransaction) -> bool:
        key = (transaction.location_id, transaction.transaction_id)
        if key in self.transactions:
            return False
        self.transactions[key] = transaction
        self.items.add(transaction_item(*key))
        self._wrote()
        return True

    @_port
    def complete_transaction(self, transaction: InventoryTransaction, event: OutboxEvent) -> bool:
        key = (transaction.location_id, transaction.transaction_id)
        current = self.transactions.get(key)
        if current is None or current.status is not TransactionStatus.PENDING:
            return False
        self.transactions[key] = current.model_copy(
            update={
                "status": TransactionStatus.COMPLETED,
                "completed_at": transaction.completed_at,
                "results": transaction.results,
                "abandon_at": None,
            }
        )
        self.record(transaction_item(*key), event)
        self._wrote()
        return True

    @_port
    def forget_transaction(self, transaction: InventoryTransaction) -> bool:
        key = (transaction.location_id, transaction.transaction_id)
        current = self.transactions.get(key)
        if current is None or current.status is not TransactionStatus.PENDING:
            return False
        del self.transactions[key]
        item = transaction_item(*key)
        self.items.discard(item)
        self.outbox.pop(item, None)
        self.versions.pop(item, None)
        self.listed.discard(item)
        self._wrote()
        return True

    @_port
    def abandoned_transactions(self, now: datetime, limit: int) -> list[InventoryTransaction]:
        abandoned = [
            t
            for t in self.transactions.values()
            if t.status is TransactionStatus.PENDING and t.abandon_at is not None and t.abandon_at < now
        ]
        return sorted(abandoned, key=lambda t: (t.abandon_at or now, t.transaction_id))[:limit]

    @_port
    def list_transactions(self, location_id: str, limit: int, cursor: str | None) -> Page[InventoryTransaction]:
        return _page_by_id(self.transactions, location_id, limit, cursor)

    # ---- cycle counts
    @_port
    def open_cycle_count(self, count: CycleCount) -> CycleCount:
        location = self.locations.get(count.location_id)
        if location is None:
            raise NotFound(f"location {count.location_id!r} does not exist")
        existing = self.counts.get((count.location_id, count.count_id))
        if existing is not None:
            if existing.content_hash != count.content_hash:
                raise CountIdReused(f"cycle count {count.count_id!r} exists with other content")
            return existing
        if count.reason is CountReason.MISPICK:  # the location's flag first, then the count: two writes
            self.locations[count.location_id] = location.model_copy(
                update={"open_mispick_count_ids": location.open_mispick_count_ids | {count.count_id}}
            )
            self._wrote()
        self.counts[(count.location_id, count.count_id)] = count
        self._wrote()
        return count

    @_port
    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount:
        count = self.counts.get((location_id, count_id))
        if count is None:
            raise NotFound(f"cycle count {count_id!r} does not exist")
        if count.status is not CountStatus.OPEN:
            if count.status is not status:
                raise Conflict(f"cycle count {count_id!r} is already {count.status.value}")
        else:  # the count, then its location's flag: two writes
            count = count.model_copy(update={"status": status, "closed_at": closed_at})
            self.counts[(location_id, count_id)] = count
            self._wrote()
        if count.reason is CountReason.MISPICK:
            location = self.locations[location_id]
            self.locations[location_id] = location.model_copy(
                update={"open_mispick_count_ids": location.open_mispick_count_ids - {count_id}}
            )
            self._wrote()
        return count

    @_port
    def get_cycle_count(self, location_id: str, count_id: str) -> CycleCount | None:
        return self.counts.get((location_id, count_id))

    @_port
    def submit_cycle_count(self, count: CycleCount) -> bool:
        key = (count.location_id, count.count_id)
        current = self.counts.get(key)
        if current is None or current.status is not CountStatus.OPEN:
            return False
        self.counts[key] = current.model_copy(
            update={
                "status": CountStatus.SUBMITTING,
                "submitted": count.submitted,
                "results_hash": count.results_hash,
                "master": count.master,
                "abandon_at": count.abandon_at,
            }
        )
        self._wrote()
        return True

    @_port
    def complete_cycle_count(self, count: CycleCount) -> bool:
        key = (count.location_id, count.count_id)
        current = self.counts.get(key)
        completed = current is not None and current.status is CountStatus.SUBMITTING
        if completed and current is not None:  # the count, then its location's flag: two writes
            self.counts[key] = current.model_copy(
                update={
                    "status": CountStatus.COMPLETED,
                    "closed_at": count.closed_at,
                    "results": count.results,
                    "abandon_at": None,
                }
            )
            self._wrote()
        if count.reason is CountReason.MISPICK:
            location = self.locations[count.location_id]
            self.locations[count.location_id] = location.model_copy(
                update={"open_mispick_count_ids": location.open_mispick_count_ids - {count.count_id}}
            )
            self._wrote()
        return completed

    @_port
    def count_states(self, location_id: str, count_ids: Sequence[str]) -> dict[str, CountStatus]:
        return {c: found.status for c in count_ids if (found := self.counts.get((location_id, c))) is not None}

    @_port
    def abandoned_counts(self, now: datetime, limit: int) -> list[CycleCount]:
        abandoned = [
            c
            for c in self.counts.values()
            if c.status is CountStatus.SUBMITTING and c.abandon_at is not None and c.abandon_at < now
        ]
        return sorted(abandoned, key=lambda c: (c.abandon_at or now, c.count_id))[:limit]

    @_port
    def list_cycle_counts(self, location_id: str, limit: int, cursor: str | None) -> Page[CycleCount]:
        return _page_by_id(self.counts, location_id, limit, cursor)

    # ---- outbox
    def record(self, key: OutboxKey, event: OutboxEvent, *, counted: bool = True) -> None:
        """Record `event` in the outbox of the item at `key` (which, like an update, creates the item),
        adding 1 to its version unless the write that records it counts its version itself."""
        with self.lock:
            self.items.add(key)
            self.outbox.setdefault(key, {})[event.event_id] = event  # one attribute per event id
            self._recorded[event.event_id] = next(self._sequence)
            self.listed.add(key)
            if counted:
                self.versions[key] = self.versions.get(key, 0) + 1

    def pending_events(self, location_id: str) -> list[OutboxEvent]:
        """Every unpublished event of the location's items, in the order they were recorded."""
        with self.lock:
            pk, pages = location_pk(location_id), ledger_pages_prefix(location_id)
            events = [
                e
                for key, item_events in self.outbox.items()
                if key[0] == pk or key[0].startswith(f"{pk}#") or key[0].startswith(pages)
                for e in item_events.values()
            ]
            return sorted(events, key=lambda e: self._recorded[e.event_id])

    @_port
    def pending_keys(
        self, shard: int, limit: int, after: tuple[str, str] | None = None
    ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        # The outbox index's order: by the item's sort key (then its partition key).
        keys = sorted((key for key in self.listed if outbox_shard(key[0]) == shard), key=lambda k: (k[1], k[0]))
        if after is not None:
            keys = [key for key in keys if (key[1], key[0]) > (after[1], after[0])]
        page = keys[:limit]
        return page, page[-1] if page and len(page) == limit else None

    @_port
    def read_pending(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[list[OutboxEvent], int]]:
        return {key: (list(self.outbox.get(key, {}).values()), self.versions.get(key, 0)) for key in keys}

    @_port
    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        if key not in self.items:  # both writes of the adapter require the item
            return
        events = self.outbox.get(key, {})
        if version is not None and self.versions.get(key) in (None, version):
            for event_id in event_ids:
                events.pop(event_id, None)
            self.listed.discard(key)  # everything read was published, and nothing was recorded since
            self._wrote()
            return
        if event_ids:
            for event_id in event_ids:
                events.pop(event_id, None)
            self._wrote()


def _page(items: list[T], limit: int) -> tuple[list[T], bool]:
    """A page as DynamoDB gives one: a full page says that more may follow (its LastEvaluatedKey)."""
    page = items[:limit]
    return page, bool(page) and len(page) == limit


def _ledger(
    ledger: Iterable[LedgerEntry], entry: LedgerEntry | None = None, pruned: Iterable[LedgerEntry] = ()
) -> tuple[LedgerEntry, ...]:
    """The ledger as the adapter stores it: one entry per id and source hash (an entry written again is
    set again), in the order it reads them back (applied_at, then id)."""

    entries = {_held_as(e): e for e in ledger}
    for gone in pruned:
        entries.pop(_held_as(gone), None)
    if entry is not None:
        entries[_held_as(entry)] = entry
    return tuple(sorted(entries.values(), key=lambda e: (e.applied_at, e.entry_id, e.source_hash or "")))


def _buffered(entry: LedgerEntry) -> LedgerEntry:
    """An entry as the buffer and the pages keep it: the first SOURCE_HASH_CHARS of its source's hash."""
    if entry.source_hash is None or entry.legacy:
        return entry
    return entry.model_copy(update={"source_hash": entry.source_hash[:SOURCE_HASH_CHARS]})


def _held_as(entry: LedgerEntry) -> tuple[str, str]:
    """What tells an entry from the others of a product: its id and (the start of) its source's hash."""
    return entry.entry_id, (entry.source_hash or "")[:SOURCE_HASH_CHARS]


def _page_by_id(records: Mapping[tuple[str, str], R], location_id: str, limit: int, cursor: str | None) -> Page[R]:
    """A page of a location's records by id, after the cursor's id (the adapter's `records_page`)."""
    after = decode_cursor(cursor)[0] if cursor else None
    ids = sorted(i for (loc, i) in records if loc == location_id and (after is None or i > after))
    page = ids[:limit]
    return Page(
        items=[records[(location_id, i)] for i in page],
        next_cursor=encode_cursor([page[-1]]) if len(ids) > limit else None,
    )


@dataclass(frozen=True)
class LedgerPageItem:
    entries: tuple[LedgerEntry, ...]
    from_version: int  # the product's version it was made from
    event_ids: tuple[str, ...]


def _allocations(allocations: Iterable[OpenAllocation]) -> tuple[OpenAllocation, ...]:
    return tuple(sorted(allocations, key=lambda a: (a.received, a.allocation_id)))


class MemoryPublisher(EventPublisher):
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.published: list[OutboxEvent] = []
        self.refuse = refuse or set()

    def publish(self, events: Sequence[OutboxEvent]) -> list[str]:
        accepted = [e for e in events if e.event_id not in self.refuse]
        self.published.extend(accepted)
        return [e.event_id for e in accepted]


class MemoryFiles(FileStore):
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


class MemoryQueue(WorkQueue):
    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []
        self.delays: list[int] = []  # of each message sent, in seconds

    def send(self, message: dict[str, object], delay_seconds: int = 0) -> None:
        self.messages.append(message)
        self.delays.append(delay_seconds)
