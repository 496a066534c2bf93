"""Stock on hand as the reference semantics define it (SPEC.md section 3), read from the visible
imports' rows. Under an ERP master and before any shipment: the base of each stock location."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from inventory.errors import InvalidInput, NotFound
from inventory.models import (
    STOCK_LOCATIONS,
    ImportKind,
    LedgerEntry,
    Location,
    Page,
    StockRow,
    VisibleImport,
    product_order,
)
from inventory.ports import ImportRepository, LedgerRepository, LocationRepository


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
    ledger: list[LedgerEntry] = field(default_factory=list)  # the entries since each base, applied order


def product_stock(
    product_id: str,
    visible: Sequence[VisibleImport],
    rows: Mapping[int, Sequence[StockRow]],
    ledger: Sequence[LedgerEntry] = (),
    switched_at: datetime | None = None,
) -> ProductStock:
    """The figures of one product under an ERP master (SPEC.md section 3).

    Per stock location, the newest visible import with a row gives the base; when none has one and
    a whole-location import is visible, that import's absence of a row is a base of 0. Stock on hand
    is the base plus the shipments and handovers the base's import did not include. After a switch
    to platform master, the base an earlier import gave is the switch's (it took the figure of that
    moment), so every entry applied after the switch counts.
    """

    def after(entry: LedgerEntry, base: VisibleImport) -> bool:
        if switched_at is not None and base.accepted_at <= switched_at < entry.applied_at:
            return True
        return entry.after(base)

    newest_first = sorted(visible, key=lambda v: v.seq, reverse=True)
    baseline = next((v for v in newest_first if v.kind.is_baseline), None)
    bases: dict[str, tuple[VisibleImport, int]] = {}
    for imported in newest_first:
        for row in rows.get(imported.seq, ()):
            bases.setdefault(row.stock_location, (imported, row.quantity))
    moved = {entry.stock_location for entry in ledger if entry.kind.moves_stock_under_erp}
    if baseline is not None:
        for stock_location in moved | ({"main"} if not bases else set()):
            bases.setdefault(stock_location, (baseline, 0))
    since: list[LedgerEntry] = []
    figures = []
    for stock_location in sorted(bases.keys() | moved, key=lambda name: (name != "main", name)):
        imported_base = bases.get(stock_location)
        entries = [
            e
            for e in ledger
            if e.stock_location == stock_location
            and e.kind.moves_stock_under_erp
            and (imported_base is None or after(e, imported_base[0]))
        ]
        since += entries
        quantity = (imported_base[1] if imported_base else 0) + sum(e.quantity for e in entries)
        base = None
        if imported_base is not None:
            source, base_quantity = imported_base
            base = Base(source.import_id, source.kind, base_quantity, source.shipments_included_through)
        figures.append(StockLocationFigure(stock_location, quantity, STOCK_LOCATIONS.get(stock_location, False), base))
    since.sort(key=lambda e: (e.applied_at, e.entry_id))
    return ProductStock(product_id, sum(f.quantity for f in figures if f.salable), figures, since)


class StockReadRepositories(ImportRepository, LocationRepository, LedgerRepository, Protocol):
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
        ledger = self._repo.ledger_of(location_id, product_id)
        return product_stock(product_id, location.visible_imports, rows, ledger, location.master_switched_at)

    def page(self, location_id: str, limit: int, cursor: str | None) -> Page[ProductStock]:
        """Every product a visible import holds a row for, shard by shard, in key order."""
        location = self._location(location_id)
        shard, after = _decode_cursor(cursor, self._repo.product_shards) if cursor else (0, None)
        items: list[ProductStock] = []
        shards = self._repo.product_shards
        while shard < shards and len(items) < limit:
            products, complete = self._shard_page(location, shard, after, limit - len(items))
            items += products
            if products:
                after = products[-1].product_id
            elif not complete:
                raise RuntimeError(f"no progress reading shard {shard} of {location_id!r}")
            if complete:
                shard, after = shard + 1, None
        return Page(items=items, next_cursor=_encode_cursor(shard, after) if shard < shards else None)

    def _shard_page(
        self, location: Location, shard: int, after: str | None, limit: int
    ) -> tuple[list[ProductStock], bool]:
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
        ledgers, more = self._repo.ledgers_page(location_id, shard, after, page)
        if more and ledgers:
            bounded_by(max(ledgers, key=product_order))
        products = sorted(
            {row.product_id for rows in by_seq.values() for row in rows} | ledgers.keys(), key=product_order
        )
        if bound is not None:
            products = [p for p in products if product_order(p) < bound]
        taken = products[:limit]
        result = [
            product_stock(
                product,
                visible,
                {seq: [r for r in rows if r.product_id == product] for seq, rows in by_seq.items()},
                ledgers.get(product, ()),
                location.master_switched_at,
            )
            for product in taken
        ]
        complete = bound is None and len(products) <= limit
        return result, complete


def _encode_cursor(shard: int, after: str | None) -> str:
    return base64.urlsafe_b64encode(json.dumps([shard, after]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, shards: int) -> tuple[int, str | None]:
    invalid = InvalidInput(
        "the cursor is not one this list returned",
        details=[{"field": "query.cursor", "code": "invalid_cursor", "message": "use next_cursor as returned"}],
    )
    try:
        shard, after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise invalid from error
    if not isinstance(shard, int) or not 0 <= shard < shards or not (after is None or isinstance(after, str)):
        raise invalid
    return shard, after
