"""Cycle counts (SPEC.md section 4; docs/data-design.md, "Platform master: cycle counts"): opened
with their products, listed, cancelled, and completed synchronously by their results.

The counted figure is the truth at submission: each result replaces the figure of the moment it
is applied, by a ledger entry of the variance (counted minus that figure) in the product's hot
item, guarded by the product's `version`, with that result's `Cycle Count Completed` part. Under
platform master the entry moves the stock location to the counted figure and marks it counted (no
longer uncounted); under an ERP master it is recorded and published, and moves nothing.

The record goes `open` -> `submitting` (with the results) -> `completed` (with each result's system
figure and variance). A repeat of the same results, or the abandoned-requests sweep, completes a
count left submitting: results whose entry is in the product's buffer are not applied again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

from inventory.backoff import until_written
from inventory.errors import (
    Conflict,
    CountNotOpen,
    CountResultsDiffer,
    ImportInProgress,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from inventory.figures import availability
from inventory.ledger import EVERY_LINE, folded_sums
from inventory.messages import DetailType
from inventory.models import (
    ABANDONED_AFTER,
    CountReason,
    CountStatus,
    InventoryMaster,
    LedgerKind,
    Location,
    OutboxEvent,
    Page,
)
from inventory.models.counters import CountersChange, LedgerEntry, ProductCounters
from inventory.models.counts import CountedFigure, CountResult, CycleCount, count_hash, results_hash
from inventory.services.ledger_moves import BUFFER_ENTRIES, EntryMover
from inventory.services.stock_locations import mark_in_use
from inventory.types import MAX_COUNT_ID_BYTES

if TYPE_CHECKING:
    from inventory.ports import Clock, CycleCountRepositories
    from inventory.services.stock import ProductReading, StockService

WRITERS = 8  # results applied at once: each is one product's write, independent of the others
READ_TOGETHER = 100  # results whose products are read together (one BatchGetItem), before their writes


class CycleCountService:
    def __init__(self, repository: CycleCountRepositories, stock: StockService, clock: Clock) -> None:
        self._repo = repository
        self._stock = stock
        self._clock = clock
        self._mover = EntryMover(repository, clock)

    # ------------------------------------------------------------------ opening and reading
    def open(
        self, location_id: str, count_id: str, reason: CountReason, product_ids: list[str], caller: str
    ) -> tuple[CycleCount, bool]:
        """Open a count of these products; (count, False) for a repeat of the same request."""
        self._stock.location(location_id)
        if sum(len(p.encode()) + 3 for p in product_ids) > MAX_COUNT_ID_BYTES:
            raise PayloadTooLarge(
                f"the product ids of a cycle count take at most {MAX_COUNT_ID_BYTES:,} bytes (UTF-8): "
                "split the count in two"
            )
        count = CycleCount(
            location_id=location_id,
            count_id=count_id,
            reason=reason,
            product_ids=product_ids,
            content_hash=count_hash(reason, product_ids),
            opened_at=self._clock.now(),
            caller=caller,
        )
        opened = self._repo.open_cycle_count(count)
        return opened, opened == count

    def get(self, location_id: str, count_id: str) -> CycleCount:
        self._stock.location(location_id)
        found = self._repo.get_cycle_count(location_id, count_id)
        if found is None:
            raise NotFound(f"cycle count {count_id!r} does not exist at location {location_id!r}")
        return found

    def page(self, location_id: str, limit: int, cursor: str | None) -> Page[CycleCount]:
        self._stock.location(location_id)
        return self._repo.list_cycle_counts(location_id, limit, cursor)

    def cancel(self, location_id: str, count_id: str) -> CycleCount:
        """Cancel an open count (a mispick count then no longer holds imports and the switch back)."""
        self.get(location_id, count_id)
        try:
            return self._repo.close_cycle_count(
                location_id, count_id, status=CountStatus.CANCELLED, closed_at=self._clock.now()
            )
        except Conflict as refused:
            raise CountNotOpen(f"cycle count {count_id!r} is no longer open: it cannot be cancelled") from refused

    # ------------------------------------------------------------------ results
    def submit(self, location_id: str, count_id: str, results: tuple[CountResult, ...]) -> CycleCount:
        """Complete the count with these results, or answer it as it is for a repeat of them."""
        location = self._stock.location(location_id)
        count = self.get(location_id, count_id)
        platform = location.inventory_master is InventoryMaster.PLATFORM
        if count.status is CountStatus.OPEN and platform and location.running_import_id is not None:
            # The import's rows, counted before these results, would replace them once it completes.
            raise ImportInProgress(
                f"import {location.running_import_id!r} is running at {location_id!r}: submit the results "
                "once it has completed"
            )
        types = self._repo.stock_locations()
        _check(count, results, types.known, types.names)
        wanted = results_hash(results)
        while True:
            if count.status is CountStatus.COMPLETED and count.results_hash == wanted:
                return count
            if count.status in (CountStatus.COMPLETED, CountStatus.CANCELLED):
                raise CountNotOpen(f"cycle count {count_id!r} is {count.status.value}")
            if count.status is CountStatus.SUBMITTING:
                if count.results_hash != wanted:
                    raise CountResultsDiffer(
                        f"cycle count {count_id!r} is being completed with other results: repeat those"
                    )
                return self._apply(location, count)
            submitting = count.model_copy(
                update={
                    "status": CountStatus.SUBMITTING,
                    "submitted": results,
                    "results_hash": wanted,
                    "master": location.inventory_master,
                    "abandon_at": self._clock.now() + ABANDONED_AFTER,
                }
            )
            if location.inventory_master is InventoryMaster.PLATFORM:
                mark_in_use(self._repo, {r.stock_location for r in results if r.counted}, types)
            if self._repo.submit_cycle_count(submitting):
                return self._apply(location, submitting)
            count = self.get(location_id, count_id)  # submitted or cancelled meanwhile: decide on it

    def complete_abandoned(self, limit: int = 100) -> list[CycleCount]:
        """Complete the counts still submitting past their `abandon_at`: the request that submitted
        their results stopped half-way and was not repeated."""
        return [
            self._apply(self._stock.location(count.location_id), count)
            for count in self._repo.abandoned_counts(self._clock.now(), limit)
        ]

    def _apply(self, location: Location, count: CycleCount) -> CycleCount:
        indexes = range(len(count.submitted))
        applied: list[tuple[CountedFigure, bool]] = []
        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="cycle-count") as writers:
            for start in range(0, len(indexes), READ_TOGETHER):
                chunk = indexes[start : start + READ_TOGETHER]
                products = [count.submitted[i].product_id for i in chunk]
                readings = self._stock.read_many(location, set(products))
                # each product's read serves its first result; another of the same product reads again
                firsts = [readings.pop(p, None) for p in products]
                applied += writers.map(self._apply_result, repeat(location), repeat(count), chunk, firsts)
        completed = count.model_copy(
            update={
                "status": CountStatus.COMPLETED,
                "closed_at": self._clock.now(),
                "abandon_at": None,
                "results": tuple(figure for figure, _ in applied),
            }
        )
        if not self._repo.complete_cycle_count(completed):
            return self.get(count.location_id, count.count_id)  # completed by a concurrent repeat
        for product_id in {
            count.submitted[i].product_id for i, (_, full) in zip(indexes, applied, strict=True) if full
        }:
            self._mover.move_out(location, product_id)
        return completed

    def _apply_result(
        self, location: Location, count: CycleCount, index: int, first: ProductReading | None = None
    ) -> tuple[CountedFigure, bool]:
        """Apply result `index` (unless an earlier attempt did); its figures, and whether the
        product's buffer is over its size (its entries then move out once the count is completed)."""
        result = count.submitted[index]
        entry_id, source = count.entry_id(index), count.results_hash
        platform = count.master is InventoryMaster.PLATFORM
        layers = (EVERY_LINE, *sorted(location.announced())) if platform else ()

        unused = [first] if first else []

        def step() -> tuple[CountedFigure, bool] | None:
            reading = unused.pop() if unused else self._stock.read(location, result.product_id)
            counters = reading.counters
            full = counters.buffered >= BUFFER_ENTRIES
            if (done := counters.entry(entry_id, source)) is not None:
                assert done.counted is not None
                return _figure(result, done.counted - done.quantity), full
            system = reading.quantity_at(result.stock_location)
            variance = result.counted - system
            moved = {(result.stock_location, n): variance for n in layers} if variance else {}
            entry = LedgerEntry(
                entry_id=entry_id,
                kind=LedgerKind.COUNT,
                quantity=variance,
                stock_location=result.stock_location,
                applied_at=self._clock.now(),
                reference=count.count_id,
                source_hash=source,
                epoch=location.import_seq,
                pending_import=not platform,
                layers=layers if variance else (),
                counted=result.counted,
            )
            after = counters.model_copy(
                update={
                    "moved": {at: counters.moved.get(at, 0) + moved.get(at, 0) for at in {*counters.moved, *moved}},
                    "counted": counters.counted | ({result.stock_location} if platform else set()),
                    "version": counters.version + 1,
                }
            )
            event = _event(
                location, count, index=index, system=system, reading=reading, after=after, now=entry.applied_at
            )
            change = CountersChange(
                expected=counters,
                entry=entry,
                moved=moved,
                counted=(result.stock_location,) if platform else (),
                fold=folded_sums(location, counters.ledger) if counters.legacy else None,
                event=event,
            )
            return (_figure(result, system), full) if self._repo.change_counters(location.location_id, change) else None

        return until_written(step, f"counting {result.product_id!r}")


def _figure(result: CountResult, system: int) -> CountedFigure:
    return CountedFigure(**result.model_dump(), system=system, variance=result.counted - system)


def _check(count: CycleCount, results: tuple[CountResult, ...], known: Any, names: tuple[str, ...]) -> None:
    """Results name products of the count, known stock locations, and each pair once."""
    listed = set(count.product_ids)
    seen: set[tuple[str, str]] = set()
    problems = []
    for i, result in enumerate(results):
        at = f"body.items[{i}]"
        if result.product_id not in listed:
            problems.append(
                {"field": f"{at}.product_id", "code": "not_in_count", "message": "the count does not list this product"}
            )
        if not known(result.stock_location):
            problems.append(
                {
                    "field": f"{at}.stock_location",
                    "code": "unknown_stock_location",
                    "message": f"unknown stock location {result.stock_location!r}; known: {', '.join(names)}",
                }
            )
        if (result.product_id, result.stock_location) in seen:
            problems.append(
                {
                    "field": at,
                    "code": "duplicate_result",
                    "message": "this product and stock location are reported twice",
                }
            )
        seen.add((result.product_id, result.stock_location))
    if problems:
        raise InvalidInput("the cycle count's results are not valid", details=problems)


def _event(
    location: Location,
    count: CycleCount,
    *,
    index: int,
    system: int,
    reading: ProductReading,
    after: ProductCounters,
    now: datetime,
) -> OutboxEvent:
    """The `Cycle Count Completed` part of one result, with the product's figures after it."""
    result = count.submitted[index]
    stock = reading.stock(after)
    figures = availability(location, stock, after)
    assert count.master is not None
    return OutboxEvent.of(
        DetailType.COUNT_COMPLETED,
        location.location_id,
        now,
        {
            "count_id": count.count_id,
            "reason": count.reason.value,
            "inventory_master": count.master.value,
            "pending_import": count.master is InventoryMaster.ERP,
            "part": index + 1,
            "parts": len(count.submitted),
            "product_id": result.product_id,
            "stock_location": result.stock_location,
            "counted": result.counted,
            "system": system,
            "variance": result.counted - system,
            "stock_on_hand": stock.stock_on_hand,
            "available": figures.available,
            "uncounted": figures.uncounted,
            "version": figures.version,  # the published version (figures.published_version)
        },
        key=f"{location.location_id}/{count.count_id}/{index}",
    )
