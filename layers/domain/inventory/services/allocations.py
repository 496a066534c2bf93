"""Allocations: units of products promised to an order at a location, from the API and from the bus.

An allocation is opened product by product (one conditional write per product's counters, no
transaction), between two writes of its record:

1. the record is put as `pending` (a repeat of the same request finds it and completes the work);
2. each product's counters get the allocation, on the condition that the stock is unchanged since
   it was read and that the product's allocated total still leaves room for it (no oversell, I3);
3. the record becomes `open`. When any product is short, what was opened is released again and
   the allocation is refused whole: on the API nothing is left behind (409 `insufficient_stock`);
   from the bus the refusal is recorded, with an `Allocation Refused` event in the same write.

An allocation is held in each product's hot item while it is pending; once settled it may move
out to an allocation line, a few at a time (`allocation_lines`). A release moves the record to
`released` first, then frees each product; a creation that was
still opening then finds its record released and frees what it had opened. A release that arrives
before its creation (events are unordered) leaves a `released` record, so the creation opens nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inventory.backoff import until_written
from inventory.errors import AllocationIdReused, InsufficientStock, InvalidInput, NotFound
from inventory.figures import ProductAvailability, ProductStock, availability
from inventory.messages import DetailType
from inventory.models import ABANDONED_AFTER, AllocationStatus, Location, OutboxEvent, product_order
from inventory.models.allocations import Allocation, AllocationLine
from inventory.models.counters import CountersChange, OpenAllocation, ProductCounters
from inventory.services.allocation_lines import AllocationMover, open_part, received_order, release_part
from inventory.types import repeated_product

if TYPE_CHECKING:
    from inventory.ports import AllocationRepositories, Clock
    from inventory.services.stock import StockService

ABANDONED_CALLER = "abandoned-allocations"  # who releases them
NO_LIMIT = 10**15  # allocated totals never come near it: backorders are not limited


@dataclass(frozen=True)
class AllocationRequest:
    allocation_id: str
    order_id: str
    items: tuple[AllocationLine, ...]

    def content_hash(self) -> str:
        body = [self.order_id, [[i.product_id, i.quantity] for i in self.items]]
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class AllocationView:
    allocation: Allocation
    open: dict[str, int]  # per product, the units still open (shipments and releases lower them)


Figures = dict[str, tuple[ProductStock, ProductCounters]]  # per product, as one read found it


class AllocationService:
    def __init__(self, repository: AllocationRepositories, stock: StockService, clock: Clock) -> None:
        self._repo = repository
        self._clock = clock
        self._stock = stock
        self._mover = AllocationMover(repository, clock)

    # ------------------------------------------------------------------ reading
    def get(self, location_id: str, allocation_id: str) -> AllocationView:
        allocation = self._repo.get_allocation(location_id, allocation_id)
        if allocation is None or allocation.content_hash is None:  # unknown, or only its early release
            raise NotFound(f"allocation {allocation_id!r} does not exist at location {location_id!r}")
        return self._view(allocation)

    def _view(self, allocation: Allocation) -> AllocationView:
        received = received_order(allocation.created_at)
        still_open = {
            line.product_id: open_part(
                self._repo, allocation.location_id, line.product_id, allocation.allocation_id, received
            )
            for line in allocation.items
        }
        return AllocationView(allocation, still_open)

    # ------------------------------------------------------------------ creating
    def create(
        self, location_id: str, request: AllocationRequest, caller: str, *, from_bus: bool = False
    ) -> tuple[AllocationView, bool]:
        """Open the allocation whole or refuse it; (view, False) for a repeat of the same request.

        On the API a refusal raises InsufficientStock and leaves nothing; from the bus it is recorded
        (status `refused`, an `Allocation Refused` event) and returned.
        """
        if (product_id := repeated_product(request.items)) is not None:
            raise InvalidInput(
                "each product may appear once in an allocation",
                details=[
                    {
                        "field": "body.items",
                        "code": "duplicate_product",
                        "message": f"product {product_id!r} is listed twice",
                    }
                ],
            )
        location = self._stock.location(location_id)
        content_hash = request.content_hash()
        read: Figures | None = None
        while True:
            existing = self._repo.get_allocation(location_id, request.allocation_id)
            if existing is not None:
                break
            if read is None:
                read = self._read(location, request.items)
                shortages = self._shortages(location, None, request.items, read)
                if shortages and not from_bus:
                    raise _insufficient(shortages)  # known from the first read: nothing is written
            now = self._clock.now()
            pending = Allocation(
                location_id=location_id,
                allocation_id=request.allocation_id,
                order_id=request.order_id,
                items=request.items,
                status=AllocationStatus.PENDING,
                content_hash=content_hash,
                created_at=now,
                updated_at=now,
                caller=caller,
                abandon_at=None if from_bus else now + ABANDONED_AFTER,
            )
            if self._repo.put_allocation(pending):
                return self._open(location, pending, from_bus=from_bus, read=read), True
            # another request with this id came first: decide on what it wrote
        if existing.content_hash is None:  # released before it was created: it opens nothing
            return self._view(existing), False
        if existing.content_hash != content_hash:
            raise AllocationIdReused(f"allocation {request.allocation_id!r} exists with other content")
        if existing.status is AllocationStatus.PENDING:  # an earlier attempt stopped half-way
            return self._open(location, existing, from_bus=from_bus), False
        return self._view(existing), False

    def _read(self, location: Location, items: tuple[AllocationLine, ...]) -> Figures:
        """One read per product: every short product is named, and nothing is opened for a request
        that is short anyway. Each opening is written against these figures, and decides again on
        a fresh read only when another change of the product came first."""
        return {line.product_id: self._stock.figures(location, line.product_id) for line in items}

    def _open(
        self, location: Location, allocation: Allocation, *, from_bus: bool, read: Figures | None = None
    ) -> AllocationView:
        lines = sorted(allocation.items, key=lambda i: product_order(i.product_id))
        read = read or self._read(location, allocation.items)
        shortages = self._shortages(location, allocation, allocation.items, read)
        for line in lines if not shortages else ():
            shortage = self._open_line(location, allocation, line, read[line.product_id])
            if shortage is not None:
                shortages.append(shortage)
                break  # refused whole: no need to look further
        if shortages:
            return self._refuse(allocation, shortages, from_bus=from_bus)
        opened = allocation.model_copy(update={"status": AllocationStatus.OPEN, "updated_at": self._clock.now()})
        if not self._repo.settle_allocation(opened, status=AllocationStatus.OPEN, expected=AllocationStatus.PENDING):
            # Released (or completed by a concurrent retry) meanwhile: the record decides.
            current = self._repo.get_allocation(allocation.location_id, allocation.allocation_id)
            if current is not None and current.status is AllocationStatus.RELEASED:
                self._close_all(allocation)
                return self._view(current)
            if current is not None:
                return self._view(current)
        # Settled: it may leave the hot items it is held in, with the oldest others (a few at a time).
        for line in lines:
            self._mover.move_held(allocation.location_id, line.product_id, settled={allocation.allocation_id})
        return self._view(opened)

    @staticmethod
    def _shortages(
        location: Location, allocation: Allocation | None, items: tuple[AllocationLine, ...], read: Figures
    ) -> list[dict[str, Any]]:
        """Each line's shortage on the figures read, in product order, but for the lines the
        allocation (None: not recorded yet) holds already."""
        shortages = []
        for line in sorted(items, key=lambda i: product_order(i.product_id)):
            stock, counters = read[line.product_id]
            if location.allow_backorders or (allocation and counters.allocation(allocation.allocation_id)):
                continue
            if (shortage := _short(line, availability(location, stock, counters))) is not None:
                shortages.append(shortage)
        return shortages

    def _open_line(
        self,
        location: Location,
        allocation: Allocation,
        line: AllocationLine,
        first: tuple[ProductStock, ProductCounters],
    ) -> dict[str, Any] | None:
        """Open one product's part, first on the figures already read; the shortage when the product
        cannot take it."""
        location_id, allocation_id = location.location_id, allocation.allocation_id
        unused = [first]

        def step() -> dict[str, Any] | bool | None:
            stock, counters = unused.pop() if unused else self._stock.figures(location, line.product_id)
            if counters.allocation(allocation_id) is not None:
                return True  # opened by an earlier attempt
            figures = availability(location, stock, counters)
            if location.allow_backorders:
                limit = NO_LIMIT
            else:
                shortage = _short(line, figures)
                if shortage is not None:
                    return shortage
                # The most the product may have allocated, its stock unchanged, for this one to fit.
                limit = figures.allocated + figures.available - line.quantity
            opening = OpenAllocation(
                allocation_id=allocation_id,
                order_id=allocation.order_id,
                quantity=line.quantity,
                received=received_order(allocation.created_at),
            )
            change = CountersChange(expected=counters, allocations={allocation_id: opening}, open_limit=limit)
            return True if self._repo.change_counters(location_id, change) else None

        result = until_written(step, f"allocating {line.product_id!r}")
        return result if isinstance(result, dict) else None

    def _refuse(self, allocation: Allocation, shortages: list[dict[str, Any]], *, from_bus: bool) -> AllocationView:
        self._close_all(allocation)
        now = self._clock.now()
        if not from_bus:
            # Nothing stays behind a refused request: the pending record goes too.
            self._repo.forget_allocation(allocation, expected=AllocationStatus.PENDING)
            raise _insufficient(shortages)
        refused = allocation.model_copy(
            update={"status": AllocationStatus.REFUSED, "updated_at": now, "refused": tuple(shortages)}
        )
        event = OutboxEvent.of(
            DetailType.ALLOCATION_REFUSED,
            allocation.location_id,
            now,
            {
                "allocation_id": allocation.allocation_id,
                "order_id": allocation.order_id,
                "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in allocation.items],
                "shortages": shortages,
            },
            key=f"{allocation.location_id}/{allocation.allocation_id}",
        )
        if not self._repo.settle_allocation(
            refused, status=AllocationStatus.REFUSED, expected=AllocationStatus.PENDING, event=event
        ):
            current = self._repo.get_allocation(allocation.location_id, allocation.allocation_id)
            return self._view(current or refused)
        return self._view(refused)

    # ------------------------------------------------------------------ releasing
    def release(self, location_id: str, allocation_id: str, caller: str, *, from_bus: bool = False) -> AllocationView:
        """Free what the allocation still holds. Unknown on the API: 404; from the bus: remembered."""
        self._stock.location(location_id)
        while True:
            current = self._repo.get_allocation(location_id, allocation_id)
            if current is None:
                if not from_bus:
                    raise NotFound(f"allocation {allocation_id!r} does not exist at location {location_id!r}")
                now = self._clock.now()
                early = Allocation(
                    location_id=location_id,
                    allocation_id=allocation_id,
                    status=AllocationStatus.RELEASED,
                    created_at=now,
                    updated_at=now,
                    caller=caller,
                )
                if self._repo.put_allocation(early):
                    return AllocationView(early, {})
                continue  # created meanwhile: release that
            if current.status in (AllocationStatus.RELEASED, AllocationStatus.REFUSED):
                self._close_all(current)  # completes a release that stopped half-way
                return self._view(current)
            released = current.model_copy(update={"status": AllocationStatus.RELEASED, "updated_at": self._clock.now()})
            if self._repo.settle_allocation(released, status=AllocationStatus.RELEASED, expected=current.status):
                self._close_all(released)
                return self._view(released)

    def release_abandoned(self, limit: int = 100) -> list[Allocation]:
        """Release the API allocations still `pending` past their `abandon_at`: the request that
        opened them stopped half-way (the function timed out, the client gave up) and was not
        retried, so they hold units that no order will ship. A retry of the request after this
        answers the allocation as released; a retry before it completes it, as always. Allocations
        from the bus have no `abandon_at`: the queue redelivers their creation until it completes."""
        released = []
        for allocation in self._repo.abandoned_allocations(self._clock.now(), limit):
            try:
                released.append(self.release(allocation.location_id, allocation.allocation_id, ABANDONED_CALLER))
            except NotFound:
                continue  # refused meanwhile by a retry of its request, which leaves nothing
        return [view.allocation for view in released]

    def _close_all(self, allocation: Allocation) -> None:
        received = received_order(allocation.created_at)
        for line in allocation.items:
            release_part(
                self._repo,
                self._clock,
                allocation.location_id,
                line.product_id,
                allocation_id=allocation.allocation_id,
                received=received,
            )


def _insufficient(shortages: list[dict[str, Any]]) -> InsufficientStock:
    return InsufficientStock(
        "not enough available stock for the allocation",
        details=[
            {
                "field": "body.items",
                "code": "insufficient_stock",
                "message": f"{s['product_id']!r}: {s['requested']} requested, {s['available']} available",
                **s,
            }
            for s in shortages
        ],
    )


def _short(line: AllocationLine, figures: ProductAvailability) -> dict[str, Any] | None:
    if figures.available >= line.quantity:
        return None
    return {
        "product_id": line.product_id,
        "requested": line.quantity,
        "available": figures.available,
        "uncounted": figures.uncounted,
    }
