"""What moves a product between two imports, in one item per location and product (its hot
item, the counters) and its ledger pages: its ledger, its running sums, its open allocations (held
in the hot item, or allocation lines of their own), and the changes of them."""

from __future__ import annotations

from datetime import datetime

from inventory.models import SOURCE_HASH_CHARS, Frozen, LayerRule, LedgerKind, OutboxEvent


class LineClose(Frozen):
    """What a shipment line closed of one allocation line (an open allocation no longer held in the
    product's hot item): its allocation, its received order (the line's key) and the units."""

    allocation_id: str
    received: int
    quantity: int


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
    # The allocation lines this entry closes (a shipment line): applied to the lines after the entry
    # is written; until a line records it (`OpenAllocation.closed_by`), readers subtract it.
    closes: tuple[LineClose, ...] = ()
    # A move between two stock locations (an adjustment): the other end, which gets -quantity.
    to_stock_location: str | None = None
    # An inventory transaction recorded under an ERP master: it moves nothing until the ERP's next
    # import brings it back (SPEC.md section 3), and explain shows it as pending that import.
    pending_import: bool = False
    # An inventory transaction's: the layers whose sums it added to (`ProductCounters.moved`), so
    # that undoing it subtracts exactly that.
    layers: tuple[int, ...] = ()
    counted: int | None = None  # a cycle count's result: the figure counted (the system's: counted - quantity)

    def moves(self) -> dict[str, int]:
        """The signed quantity per stock location this entry moves."""
        moved = {self.stock_location: self.quantity}
        if self.to_stock_location is not None:
            moved[self.to_stock_location] = moved.get(self.to_stock_location, 0) - self.quantity
        return moved

    def after(self, base: LayerRule) -> bool:
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


class OpenAllocation(Frozen):
    """Units of one allocation still open for one product."""

    allocation_id: str
    order_id: str | None = None
    quantity: int  # 0: closed, held in the hot item until it is cleared (a tombstone)
    received: int  # the order in which the service received it, per product (oldest first)
    claim: str | None = None  # held: the claim of the mover putting its line (docs/data-design.md)
    # An allocation line's: the entries whose close of it is applied, and the units each closed. A
    # literal default, as ProductCounters' are.
    closed_by: dict[str, int] = {}  # noqa: RUF012


class ProductCounters(Frozen):
    """What moves a product between two imports, in one item per location and product (its hot
    item): the running sums of its ledger, the entries not yet moved to ledger pages, the open
    allocations, and the versions that guard every change of them (docs/data-design.md)."""

    product_id: str
    exists: bool = False  # whether the item is stored (the first write creates it)
    version: int = 0  # grows with every write: what writes are guarded on (published: figures.published_version)
    # Grows with every change of what an allocation's opening is checked against but its allocations:
    # every ledger entry, and every change of the product's safety stock. Openings are guarded by it.
    stock_version: int = 0
    # The product's own safety stock (`ss`); None: the location's `default_safety_stock` applies.
    safety_stock: int | None = None
    # The entries in the item, in the order the service applied them: the buffer (entries not yet
    # moved to ledger pages) and, in an item of the earlier shape, every entry it kept.
    ledger: tuple[LedgerEntry, ...] = ()
    # The allocations held in the item, oldest first (the others are allocation lines).
    allocations: tuple[OpenAllocation, ...] = ()
    # The total open of every allocation, held or a line (`allocated`); None: the held ones' sum.
    allocated_total: int | None = None
    # The earlier shape: no sums, stock on hand is computed from `ledger` (readers of both shapes;
    # the product's next write of an entry folds it into the sums).
    legacy: bool = False
    # Literal defaults, which pydantic copies for each instance: default_factory=dict would make
    # pydantic read dict's signature, the first of which compiles the tokenizer's patterns.
    # Per import layer (by sequence number), the signed total of the lines that layer does not
    # include; layer 0: every line. Stock on hand is a base plus the sum of its layer.
    sums: dict[int, int] = {}  # noqa: RUF012
    # Per stock location and layer, the signed total of the inventory transactions applied under
    # platform master while that layer was announced (layer 0: every one); `tx#<stock location>#<n>`.
    moved: dict[tuple[str, int], int] = {}  # noqa: RUF012
    # The stock locations a cycle count under platform master has reported: stock there is counted.
    counted: frozenset[str] = frozenset()
    buffered: int = 0  # how many entries the buffer holds (the write that adds one says so)
    pages: int = 0  # committed ledger pages: 1 to `pages` are the product's moved entries, in order
    # The first committed page holding an entry of each logical-timestamp segment (SEGMENT), and of
    # each epoch (`LedgerEntry.epoch`); segments below `segment_cut` (epochs below `epoch_cut`)
    # were dropped: start at page 1.
    segments: dict[int, int] = {}  # noqa: RUF012
    epochs: dict[int, int] = {}  # noqa: RUF012
    segment_cut: int = 0
    epoch_cut: int = 0
    pending: dict[str, OutboxEvent] = {}  # noqa: RUF012 - its unpublished events, by id

    @property
    def allocated(self) -> int:
        """What every open allocation of the product holds, held in the item or a line."""
        if self.allocated_total is not None:
            return self.allocated_total
        return sum(a.quantity for a in self.allocations)

    def unapplied_closes(self, line: OpenAllocation) -> int:
        """What the entries of the buffer closed of an allocation line and the line does not record yet."""
        return sum(
            c.quantity
            for e in self.ledger
            for c in e.closes
            if c.allocation_id == line.allocation_id and e.entry_id not in line.closed_by
        )

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
            if epoch < self.epoch_cut:
                return 1 if self.pages else None
            found = [page for e, page in self.epochs.items() if e >= epoch]
        return min(found, default=None)


class CountersChange(Frozen):
    """One atomic change of a product's counters, guarded by what the service read.

    Every change requires the item to be at `expected.version`, except allocation openings
    (`open_limit` set), which only require the stock and the safety stock to be unchanged
    (`stock_version`) and the product's allocated total to stay at or below `open_limit`:
    concurrent allocations of the same product then never refuse each other for a mere version
    change, and never oversell."""

    expected: ProductCounters
    entry: LedgerEntry | None = None
    # None: closed. A literal default, as ProductCounters' are.
    allocations: dict[str, OpenAllocation | None] = {}  # noqa: RUF012
    into: tuple[int, ...] = ()  # the sums (`ProductCounters.sums`, by layer) the entry adds its quantity to
    # What the change adds to the transaction sums (`ProductCounters.moved`), by stock location and layer.
    moved: dict[tuple[str, int], int] = {}  # noqa: RUF012
    counted: tuple[str, ...] = ()  # stock locations a count reports, marked counted (`ProductCounters.counted`)
    # An item of the earlier shape (`expected.legacy`) written with an entry is folded in the same
    # write: these sums, from the entries it holds, which stay in it as its buffer.
    fold: dict[int, int] | None = None
    pruned: tuple[LedgerEntry, ...] = ()  # to remove from the item
    open_limit: int | None = None  # for an opening: the most the product may have allocated before it
    # What the change takes from allocation lines (negative): the entry's closes, or a release of a
    # line (whose tombstone is in `allocations`); `allocated` changes by it too.
    lines_delta: int = 0
    event: OutboxEvent | None = None


class PageMove(Frozen):
    """Entries of a product's buffer moved to its next ledger page (`expected.pages` + 1), with the
    unpublished events that go with them, in two writes: the page, then the product's item, on the
    condition that it is still at `expected.version`. The same write drops what no read needs any
    more: the sums of layers that can never be a base again, segment and epoch pointers below
    anything an import or a base can ask for (`segment_cut`, `epoch_cut`: segments, epochs below
    it are no longer pointed at, and reading them starts at page 1)."""

    expected: ProductCounters
    entries: tuple[LedgerEntry, ...]
    events: tuple[OutboxEvent, ...] = ()
    drop_sums: tuple[int, ...] = ()
    drop_moved: tuple[tuple[str, int], ...] = ()
    drop_segments: tuple[int, ...] = ()
    drop_epochs: tuple[int, ...] = ()
    segment_cut: int = 0
    epoch_cut: int = 0
