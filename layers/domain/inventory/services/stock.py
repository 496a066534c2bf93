"""Stock on hand as the reference semantics define it (SPEC.md section 3), read from the visible
imports' rows. Under an ERP master and before any shipment: the base of each stock location."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from inventory.errors import InvalidInput, NotFound
from inventory.models import STOCK_LOCATIONS, ImportKind, Location, Page, StockRow, VisibleImport, product_order
from inventory.ports import ImportRepository, LocationRepository

SHARDS = 32


@dataclass(frozen=True)
class Base:
    import_id: str
    kind: ImportKind
    quantity: int
    shipments_included_through: int | None


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


def product_stock(
    product_id: str, visible: Sequence[VisibleImport], rows: Mapping[int, Sequence[StockRow]]
) -> ProductStock:
    """The figures of one product from the rows each visible import holds for it.

    Per stock location, the newest visible import with a row gives the base; when none has one and
    a whole-location import is visible, that import's absence of a row is a base of 0.
    """
    newest_first = sorted(visible, key=lambda v: v.seq, reverse=True)
    baseline = next((v for v in newest_first if v.kind.is_baseline), None)
    figures: dict[str, StockLocationFigure] = {}
    for imported in newest_first:
        for row in rows.get(imported.seq, ()):
            if row.stock_location not in figures:
                base = Base(imported.import_id, imported.kind, row.quantity, imported.shipments_included_through)
                figures[row.stock_location] = StockLocationFigure(
                    row.stock_location, row.quantity, STOCK_LOCATIONS.get(row.stock_location, False), base
                )
    if not figures and baseline is not None:
        base = Base(baseline.import_id, baseline.kind, 0, baseline.shipments_included_through)
        figures["main"] = StockLocationFigure("main", 0, True, base)
    ordered = sorted(figures.values(), key=lambda f: (f.stock_location != "main", f.stock_location))
    return ProductStock(product_id, sum(f.quantity for f in ordered if f.salable), ordered)


class StockReadRepositories(ImportRepository, LocationRepository, Protocol):
    """What reading stock needs of storage (the DynamoDB adapter is both)."""


class StockService:
    def __init__(self, repository: StockReadRepositories) -> None:
        self._repo = repository

    def _location(self, location_id: str) -> Location:
        location = self._repo.get_location(location_id)
        if location is None:
            raise NotFound(f"location {location_id!r} does not exist")
        return location

    def product(self, location_id: str, product_id: str) -> ProductStock:
        location = self._location(location_id)
        seqs = [v.seq for v in location.visible_imports]
        rows = self._repo.import_rows_of_product(location_id, seqs, product_id) if seqs else {}
        return product_stock(product_id, location.visible_imports, rows)

    def page(self, location_id: str, limit: int, cursor: str | None) -> Page[ProductStock]:
        """Every product a visible import holds a row for, shard by shard, in key order."""
        location = self._location(location_id)
        shard, after = _decode_cursor(cursor) if cursor else (0, None)
        items: list[ProductStock] = []
        seqs = [v.seq for v in location.visible_imports]
        while seqs and shard < SHARDS and len(items) < limit:
            products, complete = self._shard_page(
                location_id, location.visible_imports, shard, after, limit - len(items)
            )
            items += products
            if products:
                after = products[-1].product_id
            elif not complete:
                raise RuntimeError(f"no progress reading shard {shard} of {location_id!r}")
            if complete:
                shard, after = shard + 1, None
        more = bool(seqs) and shard < SHARDS
        return Page(items=items, next_cursor=_encode_cursor(shard, after) if more else None)

    def _shard_page(
        self, location_id: str, visible: Sequence[VisibleImport], shard: int, after: str | None, limit: int
    ) -> tuple[list[ProductStock], bool]:
        """Up to `limit` products of one shard after `after`; and whether the shard is done."""
        page = max(limit * 4, 100)
        by_seq: dict[int, list[StockRow]] = {}
        bound: str | None = None  # rows at or past this product may continue on a later page
        for imported in visible:
            rows, more = self._repo.import_rows_page(location_id, imported.seq, shard, after, page)
            by_seq[imported.seq] = rows
            if more and rows:
                last = product_order(rows[-1].product_id)
                bound = last if bound is None else min(bound, last)
        products = sorted({row.product_id for rows in by_seq.values() for row in rows}, key=product_order)
        if bound is not None:
            products = [p for p in products if product_order(p) < bound]
        taken = products[:limit]
        result = [
            product_stock(
                product,
                visible,
                {seq: [r for r in rows if r.product_id == product] for seq, rows in by_seq.items()},
            )
            for product in taken
        ]
        complete = bound is None and len(products) <= limit
        return result, complete


def _encode_cursor(shard: int, after: str | None) -> str:
    return base64.urlsafe_b64encode(json.dumps([shard, after]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str | None]:
    invalid = InvalidInput(
        "the cursor is not one this list returned",
        details=[{"field": "query.cursor", "code": "invalid_cursor", "message": "use next_cursor as returned"}],
    )
    try:
        shard, after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise invalid from error
    if not isinstance(shard, int) or not 0 <= shard < SHARDS or not (after is None or isinstance(after, str)):
        raise invalid
    return shard, after
