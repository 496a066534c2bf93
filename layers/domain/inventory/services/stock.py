"""Stock on hand as the reference semantics define it (SPEC.md section 3), read from the visible
imports' rows. Under an ERP master and before any shipment: the base of each stock location."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.errors import NotFound
from inventory.figures import ProductAvailability, ProductStock, availability, product_stock
from inventory.ledger import counts_after
from inventory.models import SEGMENT, LayerRule, Location, Page, iso, product_order
from inventory.models.counters import LedgerEntry, ProductCounters
from inventory.models.imports import StockRow
from inventory.models.stock_locations import StockLocations

if TYPE_CHECKING:
    from inventory.ports import StockReadRepositories


# Where a page of a product's explanation ends: (ledger page, applied at, entry id); the buffer is
# the page after the last committed one.
LedgerPosition = tuple[int, str, str]
PAGES_PER_READ = 100  # ledger pages read together (one BatchGetItem)


@dataclass(frozen=True)
class ProductExplained:
    """One product's figures and a page of the entries since its bases, wherever they are."""

    stock: ProductStock
    entries: list[LedgerEntry]
    next_position: LedgerPosition | None  # None: the last page


@dataclass(frozen=True)
class ProductReading:
    """What one consistent read of a product gives: its counters and its rows in the visible imports
    (of the stock location types configured when it was read)."""

    location: Location
    counters: ProductCounters
    rows: Mapping[int, Sequence[StockRow]]
    stock_locations: StockLocations

    def quantity_at(self, stock_location: str) -> int:
        """One stock location's figure (0 where the product has none)."""
        figure = next((f for f in self.stock().stock_locations if f.stock_location == stock_location), None)
        return figure.quantity if figure else 0

    def stock(self, counters: ProductCounters | None = None) -> ProductStock:
        """The product's stock with these counters, or with `counters` (what a write will leave)."""
        counters = counters or self.counters
        return product_stock(
            counters.product_id, self.location.visible_imports, self.rows, counters, self.stock_locations
        )


class StockService:
    def __init__(self, repository: StockReadRepositories) -> None:
        self._repo = repository

    def location(self, location_id: str) -> Location:
        location = self._repo.get_location(location_id)
        if location is None:
            raise NotFound(f"location {location_id!r} does not exist")
        return location

    def read(self, location: Location, product_id: str) -> ProductReading:
        """One consistent read of a product: its counters and its rows in the visible imports."""
        return self.read_many(location, [product_id])[product_id]

    def read_many(self, location: Location, product_ids: Collection[str]) -> dict[str, ProductReading]:
        """`read` of several products, in as few requests as the backend allows, with one read of the
        stock location types after the location's: every type its visible imports hold rows of was
        configured before they became visible, and every type holding a quantity other than 0 was
        marked in use before its rows were written, so its `salable` is the one read."""
        seqs = [v.seq for v in location.visible_imports]
        types = self._repo.stock_locations()
        states = self._repo.product_states(location.location_id, dict.fromkeys(product_ids, seqs), types.names)
        return {
            product_id: ProductReading(location, counters, rows, types)
            for product_id, (counters, rows) in states.items()
        }

    def explain(
        self, location_id: str, product_id: str, limit: int, after: LedgerPosition | None = None
    ) -> ProductExplained:
        """The product's figures and up to `limit` entries since its bases, after `after`: those
        moved to ledger pages (from the first page that can hold one: a base's segment or epoch),
        then those in the buffer. A request reads at most a bounded number of pages."""
        location = self.location(location_id)
        reading = self.read(location, product_id)
        stock, counters = reading.stock(), reading.counters
        bases = {f.stock_location: f.base for f in stock.stock_locations}
        found: list[tuple[LedgerPosition, LedgerEntry]] = []
        start = _first_page(counters, bases.values())
        if start is not None:
            number = max(start, after[0] if after else 0)
            per_read = min(PAGES_PER_READ, limit // 16 + 2)
            while number <= counters.pages and len(found) <= limit:
                numbers = list(range(number, min(counters.pages, number + per_read - 1) + 1))
                pages = self._repo.ledger_pages(location_id, product_id, numbers)
                for page in numbers:
                    for entry in sorted(pages.get(page, []), key=lambda e: (e.applied_at, e.entry_id)):
                        position = (page, iso(entry.applied_at), entry.entry_id)
                        counted = entry.stock_location in bases and counts_after(entry, bases[entry.stock_location])
                        if counted and (after is None or position > after):
                            found.append((position, entry))
                number = numbers[-1] + 1
        if len(found) <= limit:
            for entry in stock.ledger:  # the buffer's entries since the bases
                position = (counters.pages + 1, iso(entry.applied_at), entry.entry_id)
                if after is None or position > after:
                    found.append((position, entry))
        taken = found[:limit]
        more = len(found) > limit and taken
        return ProductExplained(stock, [entry for _, entry in taken], taken[-1][0] if more else None)

    def figures(self, location: Location, product_id: str) -> tuple[ProductStock, ProductCounters]:
        reading = self.read(location, product_id)
        return reading.stock(), reading.counters

    def product(self, location_id: str, product_id: str) -> ProductStock:
        stock, _ = self.figures(self.location(location_id), product_id)
        return stock

    def page(self, location_id: str, limit: int, cursor: str | None) -> Page[ProductStock]:
        """Every product a visible import holds a row for, or that has counters, in key order."""
        _, pairs, next_cursor = self._pairs(location_id, limit, cursor)
        return Page(items=[stock for stock, _ in pairs], next_cursor=next_cursor)

    def availability_page(
        self, location_id: str, limit: int, cursor: str | None, product_id: str | None = None
    ) -> Page[ProductAvailability]:
        """What can be sold: every product with stock or allocations, or the one asked for."""
        if product_id is not None:
            location = self.location(location_id)
            stock, counters = self.figures(location, product_id)
            known = counters.exists or stock.imported
            return Page(items=[availability(location, stock, counters)] if known else [])
        location, pairs, next_cursor = self._pairs(location_id, limit, cursor)
        return Page(items=[availability(location, s, c) for s, c in pairs], next_cursor=next_cursor)

    def _pairs(
        self, location_id: str, limit: int, cursor: str | None
    ) -> tuple[Location, list[tuple[ProductStock, ProductCounters]], str | None]:
        location = self.location(location_id)
        shard, after = _decode_cursor(cursor, self._repo.product_shards) if cursor else (0, None)
        types = self._repo.stock_locations()  # after the location (see read_many)
        items: list[tuple[ProductStock, ProductCounters]] = []
        shards = self._repo.product_shards
        while shard < shards and len(items) < limit:
            products, complete = self._shard_page(location, types, shard, after, limit - len(items))
            items += products
            if products:
                after = products[-1][0].product_id
            elif not complete:
                raise RuntimeError(f"no progress reading shard {shard} of {location_id!r}")
            if complete:
                shard, after = shard + 1, None
        return location, items, _encode_cursor(shard, after) if shard < shards else None

    def _shard_page(
        self, location: Location, types: StockLocations, shard: int, after: str | None, limit: int
    ) -> tuple[list[tuple[ProductStock, ProductCounters]], bool]:
        """Up to `limit` products of one shard after `after`; and whether the shard is done."""
        location_id, visible = location.location_id, location.visible_imports
        page = max(limit * 4, 100)
        by_seq: dict[int, list[StockRow]] = {}
        bound: str | None = None  # products at or past this one may continue on a later page

        def bounded_by(last_product: str) -> None:
            nonlocal bound
            last = product_order(last_product)
            bound = last if bound is None else min(bound, last)

        for imported in visible:
            rows, more = self._repo.import_rows_page(location_id, imported.seq, shard, after, page)
            by_seq[imported.seq] = rows
            if more and rows:
                bounded_by(rows[-1].product_id)
        counters_list, more = self._repo.counters_page(location_id, shard, after, page)
        counters = {c.product_id: c for c in counters_list}
        if more and counters_list:
            bounded_by(counters_list[-1].product_id)
        products = sorted(
            {row.product_id for rows in by_seq.values() for row in rows} | counters.keys(), key=product_order
        )
        if bound is not None:
            products = [p for p in products if product_order(p) < bound]
        taken = products[:limit]
        result = []
        for product in taken:
            product_counters = counters.get(product) or ProductCounters(product_id=product)
            stock = product_stock(
                product,
                visible,
                {seq: [r for r in rows if r.product_id == product] for seq, rows in by_seq.items()},
                product_counters,
                types,
            )
            result.append((stock, product_counters))
        complete = bound is None and len(products) <= limit
        return result, complete


def _first_page(counters: ProductCounters, bases: Collection[LayerRule | None]) -> int | None:
    """The first committed ledger page that can hold an entry since one of these bases (None: none can)."""
    if counters.legacy or not counters.pages:
        return None
    firsts: list[int | None] = []
    for base in bases:
        if base is None:
            firsts.append(1)
        elif base.shipments_included_through is not None:
            firsts.append(counters.first_page(segment=base.shipments_included_through // SEGMENT))
            # Inventory transactions carry no logical timestamp: those since the base are found by
            # epoch, while its pointer is kept (beyond, the segment's page is where reading starts).
            if base.seq >= counters.epoch_cut:
                firsts.append(counters.first_page(epoch=base.seq))
        else:
            firsts.append(counters.first_page(epoch=base.seq))
    return min((page for page in firsts if page is not None), default=None)


def _encode_cursor(shard: int, after: str | None) -> str:
    return encode_cursor([shard, after])


def _decode_cursor(cursor: str, shards: int) -> tuple[int, str | None]:
    position = decode_cursor(cursor)
    if not isinstance(position, list) or len(position) != 2:
        raise invalid_cursor()
    shard, after = position
    if not isinstance(shard, int) or not 0 <= shard < shards or not (after is None or isinstance(after, str)):
        raise invalid_cursor()
    return shard, after
