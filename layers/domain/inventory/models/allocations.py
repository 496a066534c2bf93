"""What an order asks of a location, and its open parts leaving a product's hot item."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inventory.models import AllocationStatus, Frozen
from inventory.models.counters import OpenAllocation, ProductCounters


class AllocationLine(Frozen):
    product_id: str
    quantity: int


class Allocation(Frozen):
    """What an order asked of a location. The units still open per product live on the products'
    counters (the one figure that shipments and releases change), not here."""

    location_id: str
    allocation_id: str
    order_id: str | None = None
    items: tuple[AllocationLine, ...] = ()
    status: AllocationStatus
    content_hash: str | None = None  # of the request that created it; None for a release that came first
    created_at: datetime
    updated_at: datetime
    caller: str | None = None
    refused: tuple[dict[str, Any], ...] = ()  # per short product: requested and available
    abandon_at: datetime | None = None  # an API request's: released if still pending then (not retried)


class AllocationMove(Frozen):
    """Held allocations of a product leaving its hot item (docs/data-design.md, "Open allocations"):
    `moved` claimed under `token` (at `expected`'s version), their lines put, then removed from the
    item if still as read; `cleared`: tombstones, whose lines (if any) are deleted before they are
    removed. `taken_over`: expired claims (a line one of them put may be there)."""

    expected: ProductCounters
    token: str
    moved: tuple[OpenAllocation, ...] = ()
    cleared: tuple[OpenAllocation, ...] = ()
    taken_over: tuple[str, ...] = ()
