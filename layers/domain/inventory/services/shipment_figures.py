"""Completes a `Shipment Applied` part as the relay publishes it: the product's figures of that
moment (a line's write does not carry them: most lines are written without reading the product)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inventory.figures import availability
from inventory.models import OutboxEvent
from inventory.services.stock import ProductReading, StockService


class ShipmentFigures:
    """Completes a `Shipment Applied` event as the relay publishes it: each product's figures and
    `version` as one consistent read gives them at that moment (they include the line, and any
    change after it, with the version of the last), and what went wrong.

    The line's write does not carry them: most lines are written without reading the product."""

    def __init__(self, stock: StockService) -> None:
        self._stock = stock

    def __call__(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        products: dict[str, set[str]] = {}  # by location: each product read once, with the others
        for event in events:
            products.setdefault(event.detail["location_id"], set()).update(
                product["product_id"] for product in event.detail["products"]
            )
        figures: dict[tuple[str, str], dict[str, Any]] = {}
        for location_id, product_ids in products.items():
            for product_id, reading in self._stock.read_many(self._stock.location(location_id), product_ids).items():
                figures[(location_id, product_id)] = self._figures(reading)
        finished = []
        for event in events:
            location_id = event.detail["location_id"]
            completed = [
                {"product_id": p["product_id"], "quantity": p["quantity"], **figures[(location_id, p["product_id"])]}
                for p in event.detail["products"]
            ]
            finished.append(event.model_copy(update={"detail": {**event.detail, "products": completed}}))
        return finished

    def _figures(self, reading: ProductReading) -> dict[str, Any]:
        location, stock, counters = reading.location, reading.stock(), reading.counters
        figures = availability(location, stock, counters)
        known = stock.imported or any(e.quantity > 0 for e in counters.ledger)
        warnings = [] if known else ["unknown_product"]
        if figures.stock_on_hand < 0:
            warnings.append("negative_stock_on_hand")
        return {**figures.published(), "warnings": warnings}
