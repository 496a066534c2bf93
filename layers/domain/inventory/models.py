"""The domain's data: plain pydantic models, no AWS types."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

EVENT_SCHEMA_VERSION = 1  # of every published event's detail
T = TypeVar("T")

# A request that stopped half-way and was not repeated within this time was abandoned: an API
# allocation left pending, an import start that claimed its location but never handed the import to
# the worker. A request lasts at most 30 s, and a client that retries one does so within minutes;
# after this, the abandoned-requests sweep (every five minutes) undoes or ends what it left.
ABANDONED_AFTER = timedelta(minutes=15)
# An import start from a dropped file is repeated by the import queue, which delivers the file's
# notification again only after its visibility timeout (ImportQueue: 30 minutes): the sweep fails a
# start that claimed its location once two such deliveries could have come and gone.
IMPORT_START_ABANDONED_AFTER = timedelta(minutes=65)


# A sort key holds at most 1,024 bytes: "P#", the product's key form, "#" and a stock location name
# of up to 32 characters leave 989 for the product.
PRODUCT_KEY_BYTES = 989
_LONG_PRODUCT = "!"  # never the start of a percent-encoded id, which encodes "!"


def product_order(product_id: str) -> str:
    """Products are ordered, and keyed, by their percent-encoded id (which never holds a '#').

    Percent-encoding takes up to 12 bytes per code point, so an id of 128 (its limit) that are not
    ASCII may not fit a sort key. Such an id (none could ever be stored otherwise) keeps its
    characters instead, those up to '%' in the code table percent-encoded, after a "!": at most 4
    bytes per code point. In both forms '#' is below every character that follows a product's
    form, so `P#<form>#...` ranges never take in another product."""
    encoded = quote(product_id, safe="")
    if len(encoded) <= PRODUCT_KEY_BYTES:
        return encoded
    return _LONG_PRODUCT + "".join(f"%{ord(char):02X}" if char <= "%" else char for char in product_id)


def product_of_order(order: str) -> str:
    """The product id whose `product_order` this is."""
    return unquote(order.removeprefix(_LONG_PRODUCT))


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z: fixed width, so strings sort as times do."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocationType(StrEnum):
    STORE = "store"
    DC = "dc"


class InventoryMaster(StrEnum):
    ERP = "erp"
    PLATFORM = "platform"


class ImportKind(StrEnum):
    INITIAL = "initial"
    FULL_COUNT = "full_count"
    PARTIAL = "partial"

    @property
    def is_baseline(self) -> bool:
        """Only whole-location imports prepare a store for the switch (SPEC section 4)."""
        return self is not ImportKind.PARTIAL


class ImportStatus(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CountReason(StrEnum):
    SCHEDULED = "scheduled"
    MISPICK = "mispick"
    INITIAL = "initial"


class CountStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ImportSummary(Frozen):
    """What a location shows of its latest import."""

    import_id: str
    kind: ImportKind
    status: ImportStatus
    completed_at: datetime | None = None


class LocationChanges(Frozen):
    """The fields a client may set on a location; None means 'leave as it is'."""

    type: LocationType
    name: str | None = None
    enabled: bool | None = None
    trust_imported_stock: bool | None = None
    default_safety_stock: int | None = None
    allow_backorders: bool | None = None


class Location(Frozen):
    location_id: str
    type: LocationType
    name: str | None = None
    enabled: bool = True
    trust_imported_stock: bool = False
    default_safety_stock: int = 0
    allow_backorders: bool = False
    inventory_master: InventoryMaster = InventoryMaster.ERP
    master_switched_at: datetime | None = None
    master_switched_by: str | None = None
    created_at: datetime
    updated_at: datetime
    last_import: ImportSummary | None = None
    # What the switch's guard reads, kept on the location so that one conditional write decides.
    running_import_id: str | None = None
    # When the running import claimed the location (set by the claim's own write): the sweep of
    # imports never started judges a claim's age by it. None for a claim written before claims
    # carried their time.
    running_import_claimed_at: datetime | None = None
    last_baseline_import_at: datetime | None = None
    open_mispick_count_ids: frozenset[str] = frozenset()
    # Which imports' rows are visible, newest last (see docs/data-design.md).
    visible_imports: tuple[VisibleImport, ...] = ()
    # The last import sequence number before the switch: a base above 0 from any of these imports
    # is uncounted stock (SPEC.md section 1) until a cycle count or a full_count covers it.
    imports_before_switch: int | None = None
    # The last import sequence number given (the claim of each import takes the next): the location's
    # epoch, which a shipment line records as its batch read it (docs/data-design.md).
    import_seq: int = 0
    # The running import as its claim announced it: its sequence number and the highest logical
    # timestamp it includes (None: it names none). Lines add themselves to its sum from then on.
    running_import_seq: int | None = None
    running_import_through: int | None = None

    def announced(self) -> dict[int, int | None]:
        """The import layers whose sums a shipment line adds to, by sequence number, each with its
        `shipments_included_through`: the visible ones and the running one (docs/data-design.md)."""
        layers = {v.seq: v.shipments_included_through for v in self.visible_imports}
        if self.running_import_seq is not None:
            layers[self.running_import_seq] = self.running_import_through
        return layers

    def watermark(self) -> int | None:
        """The `shipments_included_through` of the last completed import (None when it names none):
        a later import may not name a lower one (`watermark_regressed`)."""
        newest = max(self.visible_imports, key=lambda v: v.seq, default=None)
        return newest.shipments_included_through if newest is not None else None


class ReadinessReason(Frozen):
    code: str
    message: str


class Readiness(Frozen):
    location_id: str
    inventory_master: InventoryMaster
    ready: bool
    reasons: list[ReadinessReason]
    window_minutes: int
    last_baseline_import_at: datetime | None


class ImportCounts(Frozen):
    rows: int = Field(default=0, ge=0)
    applied: int = Field(default=0, ge=0)
    zeroed: int = Field(default=0, ge=0)


class ImportRecord(Frozen):
    """A stock import as the location's history keeps it (its rows live in partitions of their own)."""

    location_id: str
    import_id: str
    kind: ImportKind
    status: ImportStatus
    # Of the request that started it. None for an import failed by the sweep before its request
    # recorded it (stopped between its claim and its record): its content was never known.
    content_hash: str | None = None
    shipments_included_through: int | None = None
    source: str | None = None
    force: bool = False
    requested_by: str | None = None
    seq: int | None = None  # the location's import sequence, given when the import claims it
    accepted_at: datetime
    completed_at: datetime | None = None
    # Checkpoint: every valid row up to this line of the file is written (0: none yet).
    written_through_line: int = 0
    queued: bool = False  # its first step is on the worker's queue (a repeat of the request re-sends it until then)
    counts: ImportCounts = ImportCounts()
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    # Every row is written and counted (`counts`): what is left is to settle the products' sums of
    # this import (an import naming `shipments_included_through`), then to complete it.
    rows_written: bool = False
    # How far the settling went: (shard, last product settled in it), products in key order.
    settled_through: tuple[int, str | None] | None = None

    def summary(self) -> ImportSummary:
        return ImportSummary(
            import_id=self.import_id, kind=self.kind, status=self.status, completed_at=self.completed_at
        )


class VisibleImport(Frozen):
    """An import whose rows readers use: the last initial/full_count one, and the partial ones since."""

    seq: int
    import_id: str
    kind: ImportKind
    shipments_included_through: int | None = None
    accepted_at: datetime
    completed_at: datetime


class LedgerKind(StrEnum):
    SHIPMENT = "shipment"
    HANDOVER = "handover"

    @property
    def moves_stock_under_erp(self) -> bool:
        """Under an ERP master only what left the location moves stock between imports."""
        return self in (LedgerKind.SHIPMENT, LedgerKind.HANDOVER)


SOURCE_HASH_CHARS = 16  # of a body's SHA-256, what an entry keeps: 64 bits tell two bodies of one id apart
# A segment of logical timestamps: what an import naming `shipments_included_through` T reads of a
# product's moved entries starts at the first page holding an entry of T's segment.
SEGMENT = 4096


class LedgerEntry(Frozen):
    """One movement of a product at a location, in the order the service applied it."""

    entry_id: str  # the id of what caused it (an event's id and line), unique per product
    kind: LedgerKind
    quantity: int  # signed: a shipment of 3 is -3
    stock_location: str
    logical_timestamp: int | None = None  # shipments and handovers
    applied_at: datetime
    reference: str | None = None  # e.g. the shipment id
    # Of the body of what caused it: with the id, what makes the entry itself. Entries written since
    # the ledger moved out of the product's item keep its first SOURCE_HASH_CHARS hex digits.
    source_hash: str | None = None
    # The location's import sequence as the line's batch read it (`Location.import_seq`): the entry
    # is after every import claimed by then. None: written before entries recorded it.
    epoch: int | None = None
    legacy: bool = False  # stored as the product's item held entries before (an `L#` attribute)

    def after(self, base: VisibleImport) -> bool:
        """Whether the import behind a base did not include this entry (SPEC.md section 3): by
        logical timestamp when the import names `shipments_included_through`; else whether the line
        was applied after the import was accepted, as the one order the service keeps tells it
        (the location's import sequence as the line read it), or, for an entry written before that
        order was recorded, as the service's clock told it then."""
        if base.shipments_included_through is not None and self.logical_timestamp is not None:
            return self.logical_timestamp > base.shipments_included_through
        if self.epoch is not None:
            return self.epoch >= base.seq
        return self.applied_at > base.accepted_at

    def same_source(self, source_hash: str | None) -> bool:
        return (self.source_hash or "")[:SOURCE_HASH_CHARS] == (source_hash or "")[:SOURCE_HASH_CHARS]


class AllocationStatus(StrEnum):
    PENDING = "pending"  # being opened, product by product; a retry of the same request completes it
    OPEN = "open"  # holds units until shipped, handed over or released
    REFUSED = "refused"  # not enough available: nothing is held
    RELEASED = "released"  # released (what was still open is free again), or released before it was created


class AllocationLine(Frozen):
    product_id: str
    quantity: int


class Allocation(Frozen):
    """What an order asked of a location. The units still open per product live on the products'
    counters (the one figure that shipments and releases change), not here."""

    location_id: str
    allocation_id: str
    order_id: str | None = None
    items: tuple[AllocationLine, ...] = ()
    status: AllocationStatus
    content_hash: str | None = None  # of the request that created it; None for a release that came first
    created_at: datetime
    updated_at: datetime
    caller: str | None = None
    refused: tuple[dict[str, Any], ...] = ()  # per short product: requested and available
    abandon_at: datetime | None = None  # an API request's: released if still pending then (not retried)


class OpenAllocation(Frozen):
    """Units of one allocation still open for one product."""

    allocation_id: str
    order_id: str | None = None
    quantity: int
    received: int  # the order in which the service received it, per product (oldest first)


class ProductCounters(Frozen):
    """What moves a product between two imports, in one item per location and product (its hot
    item): the running sums of its ledger, the entries not yet moved to ledger pages, the open
    allocations, and the versions that guard every change of them (docs/data-design.md)."""

    product_id: str
    exists: bool = False  # whether the item is stored (the first write creates it)
    version: int = 0  # grows with every change (the `version` of published figures)
    stock_version: int = 0  # grows with every ledger entry: allocation checks are guarded by it
    # The entries in the item, in the order the service applied them: the buffer (entries not yet
    # moved to ledger pages) and, in an item of the earlier shape, every entry it kept.
    ledger: tuple[LedgerEntry, ...] = ()
    allocations: tuple[OpenAllocation, ...] = ()  # oldest first
    # The earlier shape: no sums, stock on hand is computed from `ledger` (readers of both shapes;
    # the product's next write of an entry folds it into the sums).
    legacy: bool = False
    # Per import layer (by sequence number), the signed total of the lines that layer does not
    # include; layer 0: every line. Stock on hand is a base plus the sum of its layer.
    sums: dict[int, int] = Field(default_factory=dict)
    buffered: int = 0  # how many entries the buffer holds (the write that adds one says so)
    pages: int = 0  # committed ledger pages: 1 to `pages` are the product's moved entries, in order
    # The first committed page holding an entry of each logical-timestamp segment (SEGMENT), and of
    # each epoch (`LedgerEntry.epoch`); segments below `segment_cut` were dropped: start at page 1.
    segments: dict[int, int] = Field(default_factory=dict)
    epochs: dict[int, int] = Field(default_factory=dict)
    segment_cut: int = 0
    pending: dict[str, OutboxEvent] = Field(default_factory=dict)  # its unpublished events, by id

    @property
    def allocated(self) -> int:
        return sum(a.quantity for a in self.allocations)

    def allocation(self, allocation_id: str) -> OpenAllocation | None:
        return next((a for a in self.allocations if a.allocation_id == allocation_id), None)

    def entry(self, entry_id: str, source_hash: str | None) -> LedgerEntry | None:
        """The entry of this id caused by this body (an id reused with another body once its first
        use is forgotten is another entry)."""
        return next((e for e in self.ledger if e.entry_id == entry_id and e.same_source(source_hash)), None)

    def first_page(self, *, segment: int | None = None, epoch: int | None = None) -> int | None:
        """The first committed page that can hold an entry of a segment at or above `segment` (or of
        an epoch at or above `epoch`); None when none does (such entries are all in the buffer)."""
        if segment is not None:
            if segment < self.segment_cut:
                return 1 if self.pages else None
            found = [page for s, page in self.segments.items() if s >= segment]
        else:
            assert epoch is not None
            found = [page for e, page in self.epochs.items() if e >= epoch]
        return min(found, default=None)


class CountersChange(Frozen):
    """One atomic change of a product's counters, guarded by what the service read.

    Every change requires the item to be at `expected.version`, except allocation openings
    (`open_limit` set), which only require the stock to be unchanged (`stock_version`) and the
    product's allocated total to stay at or below `open_limit`: concurrent allocations of the same
    product then never refuse each other for a mere version change, and never oversell."""

    expected: ProductCounters
    entry: LedgerEntry | None = None
    allocations: dict[str, OpenAllocation | None] = Field(default_factory=dict)  # None: closed
    into: tuple[int, ...] = ()  # the sums (`ProductCounters.sums`, by layer) the entry adds its quantity to
    # An item of the earlier shape (`expected.legacy`) written with an entry is folded in the same
    # write: these sums, from the entries it holds, which stay in it as its buffer.
    fold: dict[int, int] | None = None
    pruned: tuple[LedgerEntry, ...] = ()  # to remove from the item
    open_limit: int | None = None  # for an opening: the most the product may have allocated before it
    event: OutboxEvent | None = None


class EventClaim(Frozen):
    """The applied-event record of an event from the bus: the hash of its body (a delivery with
    another body is refused), and whether every line of it is applied (`done`), by the delivery
    that claimed it first (`first`) or by a later one."""

    body_hash: str
    keep_until: datetime
    done: bool = False
    first: bool = False
    done_at: datetime | None = None


class PageMove(Frozen):
    """Entries of a product's buffer moved to its next ledger page (`expected.pages` + 1), with the
    unpublished events that go with them, in two writes: the page, then the product's item, on the
    condition that it is still at `expected.version`. The same write drops what no read needs any
    more: the sums of layers that can never be a base again, segment and epoch pointers below
    anything an import or a base can ask for (`segment_cut`: segments below it are no longer
    pointed at, and reading them starts at page 1)."""

    expected: ProductCounters
    entries: tuple[LedgerEntry, ...]
    events: tuple[OutboxEvent, ...] = ()
    drop_sums: tuple[int, ...] = ()
    drop_segments: tuple[int, ...] = ()
    drop_epochs: tuple[int, ...] = ()
    segment_cut: int = 0


class StockRow(Frozen):
    """One row of an import: the base of a product in one stock location."""

    product_id: str
    stock_location: str
    quantity: int


class CycleCount(Frozen):
    location_id: str
    count_id: str
    reason: CountReason
    product_ids: list[str]
    status: CountStatus = CountStatus.OPEN
    content_hash: str
    opened_at: datetime
    closed_at: datetime | None = None


class OutboxEvent(Frozen):
    """An event committed with the change it reports; the relay publishes it afterwards."""

    event_id: str
    detail_type: str
    occurred_at: datetime
    detail: dict[str, Any]

    @classmethod
    def of(
        cls, detail_type: str, location_id: str, at: datetime, detail: dict[str, Any], *, key: str | None = None
    ) -> OutboxEvent:
        """An event with what every event carries (SPEC.md section 5). With `key`, its id derives from
        it, so that writing the same event again gives the same id."""
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{detail_type}/{key}")) if key else str(uuid.uuid4())
        common = {"schema_version": EVENT_SCHEMA_VERSION, "location_id": location_id, "occurred_at": iso(at)}
        return cls(event_id=event_id, detail_type=detail_type, occurred_at=at, detail=common | detail)

    def part(self, number: int, parts: int, detail: dict[str, Any]) -> OutboxEvent:
        """Part `number` of `parts` of this event, which is too large to publish whole: an event of its
        own, with `detail` and what says which part of which event it is. Its id derives from this
        event's, so that publishing this event again (after a crash) gives the same parts."""
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.event_id}/part/{number}/{parts}"))
        said = {"part_of": self.event_id, "part": number, "parts": parts}
        own = {k: v for k, v in detail.items() if k != "event_id"}  # a stored detail names the whole's id
        return self.model_copy(update={"event_id": event_id, "detail": own | said})


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def readiness_cutoff(now: datetime, window_minutes: int) -> datetime:
    return now - timedelta(minutes=window_minutes)


Location.model_rebuild()

ProductCounters.model_rebuild()
CountersChange.model_rebuild()
PageMove.model_rebuild()
