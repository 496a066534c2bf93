"""The sum of an import layer that names `shipments_included_through` T, or that merges earlier
partial layers, settled product by product before the import becomes visible (docs/data-design.md,
"What stock on hand is computed from" and "Imports: a bounded number of layers").

Lines applied after the import's claim add themselves to the layer's sum; a line whose batch read
the location before the claim could not, and may have a logical timestamp above T. So the import's
completion sums, for each product it is the base of, every entry above T: in the buffer, and in the
ledger pages from the first one that holds an entry of T's segment (so the work is bounded by the
shipments the ERP had not yet included, and one segment, never by history). It sets the sum on the
condition that the product is unchanged since its read: a line written meanwhile makes it read and
sum again. Setting the same sum again changes nothing, so a settling stopped half-way and run again
ends the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from inventory.backoff import until_written
from inventory.ledger import folded_sums
from inventory.models import SEGMENT, Location
from inventory.models.counters import CountersChange, LedgerEntry, ProductCounters
from inventory.models.imports import RowOrigin
from inventory.types import MAIN

if TYPE_CHECKING:
    from inventory.ports import SettleRepositories

PAGES_PER_READ = 100  # ledger pages read together (one BatchGetItem)
SETTLE_PAGE = 100  # products settled between two checkpoints of the import


class SumSettler:
    def __init__(self, repository: SettleRepositories, location: Location, seq: int, through: int | None) -> None:
        self._repo = repository
        self._location = location
        self._seq = seq
        self._through = through

    def page(self, shard: int, after: str | None, *, every_product: bool) -> tuple[list[str], bool]:
        """Settle the next products of one shard after `after`: the import's rows' products, or
        (`every_product`, an initial or full_count import) every product the location holds; which
        were settled, and whether more may follow in the shard."""
        location_id, seq = self._location.location_id, self._seq
        if every_product:
            counters, more = self._repo.counters_page(location_id, shard, after, SETTLE_PAGE)
            self.products(counters)
            return [c.product_id for c in counters], more
        rows, more = self._repo.import_rows_page(location_id, seq, shard, after, SETTLE_PAGE)
        products = list(dict.fromkeys(r.product_id for r in rows))
        main = {r.product_id: r for r in rows if r.stock_location == MAIN}
        # A product whose base here is in another stock location only: its main sum is not read.
        settled = [p for p in products if p in main and (main[p].origin is not None or self._through is not None)]
        states = self._repo.product_states(location_id, dict.fromkeys(settled, ()), ())  # counters only
        for product_id in settled:
            self._settle(states[product_id][0], main[product_id].origin)
        return products, more

    def products(self, read: Iterable[ProductCounters]) -> None:
        """Settle each product, starting from what was read of it (read again after a lost race)."""
        for counters in read:
            self._settle(counters)

    def _settle(self, read: ProductCounters, origin: RowOrigin | None = None) -> None:
        """One product's sum of the layer: with a merged main row (`origin`), the sum of the layer
        the row was copied from, which follows the row's rule for every line since this import's
        claim (docs/data-design.md, "Imports: a bounded number of layers"); else the entries above
        the import's watermark."""
        location_id, product_id = self._location.location_id, read.product_id
        first: ProductCounters | None = read

        def step() -> bool | None:
            nonlocal first
            counters = first or self._repo.counters_of(location_id, product_id)
            first = None
            if not counters.exists:
                return True  # no line of it: its sum is 0
            if counters.legacy:  # folded: the location announces this import, so the fold sums it too
                change = CountersChange(expected=counters, fold=folded_sums(self._location, counters.ledger))
                folded = self._repo.change_counters(location_id, change)
                # A merged row's sum is the copy below, which the fold (by the layer's rule) is not.
                return True if folded and origin is None else None
            total = counters.sums.get(origin.layer, 0) if origin is not None else self.total(counters)
            if counters.sums.get(self._seq, 0) == total:
                return True
            return True if self._repo.settle_layer(location_id, counters, self._seq, total) else None

        until_written(step, f"settling the sum of import {self._seq} for {product_id!r}")

    def total(self, counters: ProductCounters) -> int:
        """The lines above the import's watermark, wherever their entries are."""
        assert self._through is not None
        entries: list[LedgerEntry] = list(counters.ledger)
        start = counters.first_page(segment=self._through // SEGMENT)
        if start is not None:
            numbers = list(range(start, counters.pages + 1))
            for at in range(0, len(numbers), PAGES_PER_READ):
                pages = self._repo.ledger_pages(
                    self._location.location_id, counters.product_id, numbers[at : at + PAGES_PER_READ]
                )
                entries += [entry for page in pages.values() for entry in page]
        return sum(
            e.quantity
            for e in entries
            if e.kind.moves_stock_under_erp
            and e.stock_location == MAIN
            and e.logical_timestamp is not None
            and e.logical_timestamp > self._through
        )
