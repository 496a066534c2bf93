"""The domain's data: plain pydantic models, no AWS types.

Here: the rules every function shares (product keys, times, the ledger's segments), the
enumerations, the location and what it shows of its imports and readiness, the outbox event and
the page of a list. The items of one kind each, in the modules beside it, so that a function builds
the models it stores and no other: `imports` (import records, their rows), `counters` (a product's
hot item: its ledger, sums and open allocations, and its ledger pages), `events` (the applied-event
records), `allocations` (allocation records, and held allocations moving to allocation lines),
`counts` (cycle counts).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict

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
    SUBMITTING = "submitting"  # its results are being applied; a repeat of them (or the sweep) completes it
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ImportSummary(Frozen):
    """What a location shows of its latest import."""

    import_id: str
    kind: ImportKind
    status: ImportStatus
    completed_at: datetime | None = None


# The location settings that change products' figures (available, uncounted): a write that changes
# one adds 1 to the location's `figures_version`. The others (name, enabled, allow_backorders) change
# no figure.
FIGURE_SETTINGS = ("trust_imported_stock", "default_safety_stock")


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
    # What the running import takes in of earlier partial layers, when it merges them.
    running_import_merged: MergedRows | None = None
    # The location's `import_seq` when an inventory transaction was last recorded under the ERP
    # master: an import claimed at or before it cannot reflect that transaction, so the switch
    # waits for a later baseline (`transactions_since_import`).
    erp_transactions_seq: int | None = None
    # Grows with every change of a setting that changes figures (`default_safety_stock`,
    # `trust_imported_stock`) and with the switch: part of every product's published version
    # (figures.published_version), which imports and these change without a write of the product.
    figures_version: int = 0

    def baseline_seq(self) -> int | None:
        """The sequence of the last visible baseline import (`initial` or `full_count`)."""
        return max((v.seq for v in self.visible_imports if v.kind.is_baseline), default=None)

    def transactions_since_import(self) -> bool:
        """Whether transactions were recorded under the ERP master that the last baseline import
        cannot reflect (it was claimed before them)."""
        if self.erp_transactions_seq is None:
            return False
        baseline = self.baseline_seq()
        return baseline is None or self.erp_transactions_seq >= baseline

    def announced(self) -> dict[int, int | None]:
        """The import layers whose sums a shipment line adds to, by sequence number, each with its
        `shipments_included_through`: the visible ones and the running one (docs/data-design.md)."""
        layers = {v.seq: v.shipments_included_through for v in self.visible_imports}
        if self.running_import_seq is not None:
            layers[self.running_import_seq] = self.running_import_through
        return layers

    def merging(self) -> dict[int, tuple[int | None, MergedRows]]:
        """The announced layers that hold rows of earlier imports (each with the origin's rule), by
        sequence number: their own `shipments_included_through`, and what they took in."""
        layers = {v.seq: (v.shipments_included_through, v.merged) for v in self.visible_imports if v.merged}
        if self.running_import_seq is not None and self.running_import_merged is not None:
            layers[self.running_import_seq] = (self.running_import_through, self.running_import_merged)
        return layers

    def partial_layers(self) -> list[VisibleImport]:
        """The visible layers after the last baseline, oldest first."""
        return [v for v in self.visible_imports if not v.kind.is_baseline]

    def lowest_watermark(self) -> int | None:
        """The lowest `shipments_included_through` a visible layer's rows name (merged rows' included)."""
        named = [v.shipments_included_through for v in self.visible_imports]
        named += [v.merged.lowest_through for v in self.visible_imports if v.merged]
        return min((t for t in named if t is not None), default=None)

    def lowest_origin(self) -> int | None:
        """The lowest import sequence a visible or running layer's rows come from."""
        origins = [*self.announced(), *(merged.lowest_origin for _, merged in self.merging().values())]
        return min(origins, default=None)

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


# A location shows at most its last baseline and this many partial layers: a partial import that
# finds them all visible takes them into its own layer (docs/data-design.md, "Imports: a bounded
# number of layers").
PARTIAL_LAYERS = 8


class MergedRows(Frozen):
    """What a merging layer took in of earlier partial layers: the extremes of its merged rows'
    watermarks (None: none names one) and the lowest import sequence they come from."""

    rows_through: int | None = None
    lowest_through: int | None = None
    lowest_origin: int

    @classmethod
    def of(cls, layers: Sequence[VisibleImport]) -> MergedRows:
        """What merging these layers takes in (from their visible entries, not their rows)."""
        named: list[int | None] = []
        origins: list[int] = []
        for layer in layers:
            named.append(layer.shipments_included_through)
            origins.append(layer.seq)
            if layer.merged is not None:
                named += [layer.merged.rows_through, layer.merged.lowest_through]
                origins.append(layer.merged.lowest_origin)
        watermarks = [t for t in named if t is not None]
        return cls(
            rows_through=max(watermarks, default=None),
            lowest_through=min(watermarks, default=None),
            lowest_origin=min(origins),
        )


class VisibleImport(Frozen):
    """An import whose rows readers use: the last initial/full_count one, and the partial ones since."""

    seq: int
    import_id: str
    kind: ImportKind
    shipments_included_through: int | None = None
    accepted_at: datetime
    completed_at: datetime
    merged: MergedRows | None = None  # it holds rows of the earlier partial layers it merged


class LayerRule(Protocol):
    """What tells whether a base includes an entry (`LedgerEntry.after`): its import's sequence,
    watermark and acceptance time. A visible import, or a base from a merged row's origin."""

    @property
    def seq(self) -> int: ...

    @property
    def shipments_included_through(self) -> int | None: ...

    @property
    def accepted_at(self) -> datetime: ...


class LedgerKind(StrEnum):
    SHIPMENT = "shipment"
    HANDOVER = "handover"
    # Inventory transactions (SPEC.md section 4): they move stock under platform master only.
    RECEIVING = "receiving"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    ADJUSTMENT = "adjustment"
    RETURN = "return"
    COUNT = "count"  # a cycle count's result: the variance, counted minus the figure of that moment

    @property
    def moves_stock_under_erp(self) -> bool:
        """Under an ERP master only what left the location moves stock between imports."""
        return self in (LedgerKind.SHIPMENT, LedgerKind.HANDOVER)

    @property
    def is_transaction(self) -> bool:
        return self not in (LedgerKind.SHIPMENT, LedgerKind.HANDOVER, LedgerKind.COUNT)


SOURCE_HASH_CHARS = 16  # of a body's SHA-256, what an entry keeps: 64 bits tell two bodies of one id apart
# A segment of logical timestamps: what an import naming `shipments_included_through` T reads of a
# product's moved entries starts at the first page holding an entry of T's segment.
SEGMENT = 4096


class AllocationStatus(StrEnum):
    PENDING = "pending"  # being opened, product by product; a retry of the same request completes it
    OPEN = "open"  # holds units until shipped, handed over or released
    REFUSED = "refused"  # not enough available: nothing is held
    RELEASED = "released"  # released (what was still open is free again), or released before it was created


class OutboxEvent(Frozen):
    """An event committed with the change it reports; the relay publishes it afterwards."""

    event_id: str
    detail_type: str
    occurred_at: datetime
    detail: dict[str, Any]

    @classmethod
    def of(
        cls, detail_type: str, location_id: str | None, at: datetime, detail: dict[str, Any], *, key: str | None = None
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
