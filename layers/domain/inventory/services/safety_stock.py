"""Per-product safety stock: what is held back from sale of one product at a location, where the
location's `default_safety_stock` is not the right figure (SPEC.md section 4).

The figure is an attribute of the product's hot item, so that it changes the product's `version`
(published figures) and `stock_version` (which guards allocation openings) in the same write, and
every available figure reads it with the rest of the product (`figures.safety_stock`).

A request names up to MAX_SAFETY_STOCK_ITEMS products; each is one conditional write of its own
(no multi-item transaction, docs/data-design.md), WRITERS of them at a time, so that the most
products a request takes are written well within the function's timeout. A request that stops
half-way has changed some of its products and not the others: repeated, it sets the same values,
and the products it had set already are found unchanged and written no more, so a retry completes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

from inventory.backoff import until_written
from inventory.errors import InvalidInput
from inventory.figures import ProductAvailability, availability
from inventory.models import Location
from inventory.types import MAX_SAFETY_STOCK_ITEMS, repeated_product

if TYPE_CHECKING:
    from inventory.ports import StockReadRepositories
    from inventory.services.stock import ProductReading, StockService

READ_TOGETHER = 100  # products read together (their hot items and rows), before their writes
WRITERS = 8  # products written at once: each write is one request, independent of the others


@dataclass(frozen=True)
class SafetyStockLine:
    product_id: str
    safety_stock: int | None  # None: the location's default applies


class SafetyStockService:
    def __init__(self, repository: StockReadRepositories, stock: StockService) -> None:
        self._repo = repository
        self._stock = stock

    def set(self, location_id: str, lines: Sequence[SafetyStockLine]) -> list[ProductAvailability]:
        """Set each product's own safety stock (or remove it: None), and answer each product's
        availability as its write left it, in the order of `lines`. Setting a product to the figure
        it has already writes nothing (its version stays)."""
        if (product_id := repeated_product(lines)) is not None:
            raise InvalidInput(
                "each product may appear once in a safety stock request",
                details=[
                    {"field": "body.items", "code": "duplicate_product", "message": f"{product_id!r} is listed twice"}
                ],
            )
        if len(lines) > MAX_SAFETY_STOCK_ITEMS:
            message = f"at most {MAX_SAFETY_STOCK_ITEMS} products per safety stock request"
            raise InvalidInput(message, details=[{"field": "body.items", "code": "too_long", "message": message}])
        location = self._stock.location(location_id)
        answers: list[ProductAvailability] = []
        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="safety-stock") as writers:
            for start in range(0, len(lines), READ_TOGETHER):
                chunk = lines[start : start + READ_TOGETHER]
                readings = self._stock.read_many(location, [line.product_id for line in chunk])
                firsts = [readings[line.product_id] for line in chunk]
                answers += writers.map(self._set_one, repeat(location), chunk, firsts)
        return answers

    def _set_one(self, location: Location, line: SafetyStockLine, first: ProductReading) -> ProductAvailability:
        """One product's write, first on the reading already made; read again when a change of the
        product came in between (its version moved)."""
        unused = [first]

        def step() -> ProductAvailability | None:
            reading = unused.pop() if unused else self._stock.read(location, line.product_id)
            counters = reading.counters
            if counters.safety_stock == line.safety_stock:
                return availability(location, reading.stock(), counters)  # no change: nothing to write
            if not self._repo.set_safety_stock(location.location_id, counters, line.safety_stock):
                return None
            written = counters.model_copy(
                update={
                    "exists": True,
                    "version": counters.version + 1,
                    "stock_version": counters.stock_version + 1,
                    "safety_stock": line.safety_stock,
                }
            )
            return availability(location, reading.stock(written), written)

        return until_written(step, f"setting the safety stock of {line.product_id!r}")
