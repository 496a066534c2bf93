"""The stock arithmetic of SPEC.md section 3, with no I/O: a product's stock on hand per stock
location from the visible imports' rows and the sums its item keeps, whether it is uncounted, and
what can be sold of it. The services read what these take and write what they decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from inventory.ledger import EVERY_LINE, counts_after
from inventory.models import ImportKind, InventoryMaster, Location, VisibleImport
from inventory.models.counters import LedgerEntry, ProductCounters
from inventory.models.imports import RowOrigin, StockRow
from inventory.models.stock_locations import StockLocations
from inventory.types import MAIN


@dataclass(frozen=True)
class Base:
    """A stock location's base: the import its figure came from (for a merged row, its origin),
    which is also the rule of what it includes (`LayerRule`), and the visible layer holding it."""

    seq: int
    import_id: str
    kind: ImportKind
    quantity: int
    shipments_included_through: int | None
    accepted_at: datetime
    layer: int

    @classmethod
    def of(cls, layer: VisibleImport, quantity: int, origin: RowOrigin | None = None) -> Base:
        if origin is None:
            return cls(
                layer.seq,
                layer.import_id,
                layer.kind,
                quantity,
                layer.shipments_included_through,
                layer.accepted_at,
                layer.seq,
            )
        return cls(
            origin.seq,
            origin.import_id,
            ImportKind.PARTIAL,
            quantity,
            origin.shipments_included_through,
            origin.accepted_at,
            layer.seq,
        )


@dataclass(frozen=True)
class StockLocationFigure:
    stock_location: str
    quantity: int
    salable: bool
    base: Base | None


@dataclass(frozen=True)
class ProductStock:
    product_id: str
    stock_on_hand: int
    stock_locations: list[StockLocationFigure]
    ledger: list[LedgerEntry] = field(default_factory=list)  # the entries since each base, applied order
    imported: bool = False  # whether a visible import has a row for it (not just a full import's 0)
    counted: frozenset[str] = frozenset()  # stock locations a cycle count under platform master reported


def product_stock(
    product_id: str,
    visible: Sequence[VisibleImport],
    rows: Mapping[int, Sequence[StockRow]],
    counters: ProductCounters,
    stock_locations: StockLocations,
) -> ProductStock:
    """The figures of one product (SPEC.md section 3).

    Per stock location, the newest visible import with a row gives the base; when none has one and
    a whole-location import is visible, that import's absence of a row is a base of 0. Stock on hand
    is the base plus the shipments and handovers the base's import did not include: the sum the
    product's item keeps for the base's layer (every line's, without a base), or, in an item of
    the earlier shape, the entries it holds; and, under platform master, the inventory
    transactions applied at the stock location while the base's layer was announced. The switch to
    platform master changes none of this: its base is the figure of that moment with the watermark
    of the import it came from, so a shipment at or below that watermark changes nothing after it
    either. Stock on hand is the sum of the stock locations that `stock_locations` (the configured
    types) says are salable.
    """
    ledger = counters.ledger
    newest_first = sorted(visible, key=lambda v: v.seq, reverse=True)
    baseline = next((v for v in newest_first if v.kind.is_baseline), None)
    bases: dict[str, Base] = {}
    for imported in newest_first:
        for row in rows.get(imported.seq, ()):
            bases.setdefault(row.stock_location, Base.of(imported, row.quantity, row.origin))
    has_rows = bool(bases)
    moved = {entry.stock_location for entry in ledger if entry.kind.moves_stock_under_erp}
    if not counters.legacy and EVERY_LINE in counters.sums:
        moved.add(MAIN)  # shipments and handovers leave main stock
    moved |= {stock_location for stock_location, _ in counters.moved}  # inventory transactions
    if baseline is not None:
        for stock_location in moved | ({MAIN} if not bases else set()):
            bases.setdefault(stock_location, Base.of(baseline, 0))
    since: list[LedgerEntry] = []
    figures = []
    for stock_location in sorted(bases.keys() | moved, key=lambda name: (name != MAIN, name)):
        base = bases.get(stock_location)
        entries = [e for e in ledger if e.stock_location == stock_location and counts_after(e, base)]
        since += entries
        layer = base.layer if base else EVERY_LINE
        if counters.legacy:
            moves = sum(e.quantity for e in entries)
        else:
            moves = counters.sums.get(layer, 0) if stock_location == MAIN else 0
        moves += counters.moved.get((stock_location, layer), 0)
        quantity = (base.quantity if base else 0) + moves
        figures.append(StockLocationFigure(stock_location, quantity, stock_locations.salable(stock_location), base))
    since.sort(key=lambda e: (e.applied_at, e.entry_id))
    soh = sum(f.quantity for f in figures if f.salable)
    return ProductStock(product_id, soh, figures, since, has_rows, counters.counted)


@dataclass(frozen=True)
class ProductAvailability:
    """What can be sold of one product at a location (SPEC.md section 3)."""

    product_id: str
    stock_on_hand: int
    allocated: int
    safety_stock: int
    available: int
    uncounted: bool
    version: int  # the product's published version (`published_version`): grows with every change of these

    def published(self) -> dict[str, int | bool]:
        """The figures as events and export rows publish them (without the product's id)."""
        return {
            "stock_on_hand": self.stock_on_hand,
            "allocated": self.allocated,
            "safety_stock": self.safety_stock,
            "available": self.available,
            "uncounted": self.uncounted,
            "version": self.version,
        }


# A product's published version is its epoch (the location's settings and imports it was read
# under) times this, plus its hot item's `version`. JSON consumers hold numbers below 2**53 exactly:
# that holds while epochs stay below about 900,000 and a product's changes within one epoch below
# 10**10 (docs/data-design.md, "Published versions").
CHANGES_PER_EPOCH = 10**10


def is_uncounted(location: Location, stock: ProductStock) -> bool:
    """Stock that came, at the switch, from an import with a quantity above 0 and that neither a
    full count nor a cycle count under platform master has covered since (SPEC.md section 1): a
    cycle count covers the stock locations it reports."""
    if location.inventory_master is not InventoryMaster.PLATFORM or location.trust_imported_stock:
        return False
    before = location.imports_before_switch
    return before is not None and any(
        f.salable
        and f.base is not None
        and f.base.seq <= before
        and f.base.quantity > 0
        and f.stock_location not in stock.counted
        for f in stock.stock_locations
    )


def safety_stock(location: Location, counters: ProductCounters) -> int:
    """What is held back from sale of a product: its own figure where one is set, else the
    location's default. Every available figure (reads, allocation checks, events) takes it from here."""
    return location.default_safety_stock if counters.safety_stock is None else counters.safety_stock


def figures_epoch(location: Location, stock: ProductStock) -> int:
    """What changes a product's figures without a write of its hot item, as one number that never
    decreases: the location's `figures_version` (its figure settings and the switch) plus the
    product's base sequence, the newest import any of its stock locations' bases comes from (every
    import that touches the product, by a row or a full import's implied 0, raises it; a merged
    row keeps its origin's, so a merge changes nothing); 0 without a base."""
    base_seq = max((f.base.seq for f in stock.stock_locations if f.base is not None), default=0)
    return location.figures_version + base_seq


def published_version(location: Location, stock: ProductStock, counters: ProductCounters) -> int:
    """The `version` published with a product's figures (events, reads, exports): its epoch, then
    its hot item's `version`, in that order. A location snapshot that changed the product's figures
    gives it a higher epoch, so every figure read under it carries a higher version than any read
    under an older snapshot (whatever hot item each read): a consumer that keeps the highest version
    per product never goes back. Every version is also at least the hot item's `version` alone,
    which was published before. The hot item's own `version` stays what guards its writes."""
    return figures_epoch(location, stock) * CHANGES_PER_EPOCH + counters.version


def availability(location: Location, stock: ProductStock, counters: ProductCounters) -> ProductAvailability:
    safety = safety_stock(location, counters)
    uncounted = is_uncounted(location, stock)
    allocated = counters.allocated
    available = 0 if uncounted else max(0, stock.stock_on_hand - safety - allocated)
    return ProductAvailability(
        stock.product_id,
        stock.stock_on_hand,
        allocated,
        safety,
        available,
        uncounted,
        published_version(location, stock, counters),
    )
