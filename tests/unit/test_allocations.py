"""Allocations, availability, and what shipments do to them, on the in-memory repository."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from inventory.errors import AllocationIdReused, EventIdReused, EventTooOld, InsufficientStock, InvalidInput, NotFound
from inventory.figures import CHANGES_PER_EPOCH
from inventory.messages import DetailType
from inventory.models import AllocationStatus, ImportKind, InventoryMaster, LocationChanges, LocationType, OutboxEvent
from inventory.models.allocations import AllocationLine
from inventory.services.allocations import AllocationRequest, AllocationService
from inventory.services.ledger_moves import BUFFER_ENTRIES
from inventory.services.outbox import OutboxRelay
from inventory.services.shipment_events import Applied, ShipmentService
from inventory.services.shipment_figures import ShipmentFigures
from inventory.services.stock import StockService
from tests.unit.fakes import MemoryPublisher
from tests.unit.test_import_service import World
from tests.unit.test_shipments import bus_message, parse_shipment


class Shop(World):
    def __init__(self, stock: dict[str, int] | None = None, **location: Any) -> None:
        super().__init__()
        self.allocations = AllocationService(self.repo, StockService(self.repo), self.clock)
        self.shipments = ShipmentService(self.repo, StockService(self.repo), self.clock)
        if location:
            self.locations.put("s1", LocationChanges(type=LocationType.STORE, **location))
        if stock:
            self.import_inline("base", ImportKind.INITIAL, stock)

    def allocate(self, allocation_id: str, from_bus: bool = False, **items: int) -> Any:
        lines = tuple(AllocationLine(product_id=p, quantity=q) for p, q in items.items())
        request = AllocationRequest(allocation_id, f"order-{allocation_id}", lines)
        self.clock.advance(seconds=1)
        return self.allocations.create("s1", request, "tester", from_bus=from_bus)

    def ship(
        self, event_id: str, *lines: dict[str, Any], handover: bool = False, timestamp: int = 100, at: str = ""
    ) -> Applied:
        self.clock.advance(seconds=1)
        detail = {
            "event_id": event_id,
            "location_id": "s1",
            "shipment_id": f"sh-{event_id}",
            "logical_timestamp": timestamp,
            "occurred_at": at or "2026-11-27T09:00:00Z",
            "items": list(lines),
        }
        kind = "Fulfillment Items Handed Over" if handover else "Fulfillment Items Shipped"
        shipment = parse_shipment(bus_message(detail, kind))
        self.shipments.read_ahead([shipment])  # as the handler does for its batch
        try:
            return self.shipments.apply(shipment)
        finally:
            assert not self.shipments.end_batch()

    def published(self, detail_type: str) -> list[OutboxEvent]:
        """What the relay publishes now of `detail_type`, parts in order."""
        bus = MemoryPublisher()
        OutboxRelay(
            self.repo, bus, self.clock, finishers={DetailType.SHIPMENT_APPLIED: ShipmentFigures(self.stock)}
        ).run_once()
        events = [e for e in bus.published if e.detail_type == detail_type]
        return sorted(events, key=lambda e: (e.detail.get("source_event_id", ""), e.detail.get("part", 0)))

    def figures(self, product_id: str) -> tuple[int, int, int]:
        (row,) = self.stock.availability_page("s1", 10, None, product_id).items
        return row.stock_on_hand, row.allocated, row.available


def test_an_allocation_holds_units_until_released() -> None:
    shop = Shop({"a": 5, "b": 2})

    view, created = shop.allocate("al-1", a=3, b=2)

    assert created
    assert view.allocation.status is AllocationStatus.OPEN
    assert view.open == {"a": 3, "b": 2}
    assert shop.figures("a") == (5, 3, 2)
    assert shop.figures("b") == (2, 2, 0)
    released = shop.allocations.release("s1", "al-1", "tester")
    assert released.allocation.status is AllocationStatus.RELEASED
    assert released.open == {"a": 0, "b": 0}
    assert shop.figures("a") == (5, 0, 5)


def test_an_allocation_short_of_one_product_is_refused_whole_and_leaves_nothing() -> None:
    shop = Shop({"a": 5, "b": 1})

    with pytest.raises(InsufficientStock) as refused:
        shop.allocate("al-1", a=3, b=2)

    assert refused.value.details[0]["product_id"] == "b"
    assert refused.value.details[0]["available"] == 1
    assert shop.figures("a") == (5, 0, 5)
    with pytest.raises(NotFound):
        shop.allocations.get("s1", "al-1")
    assert shop.repo.allocations == {}
    assert not [e for e in shop.repo.pending_events("s1") if e.detail_type == "Allocation Refused"]


def test_safety_stock_is_held_back_and_backorders_take_any_quantity() -> None:
    shop = Shop({"a": 5}, default_safety_stock=2)
    with pytest.raises(InsufficientStock):
        shop.allocate("al-1", a=4)
    shop.allocate("al-2", a=3)
    assert shop.figures("a") == (5, 3, 0)

    shop.locations.put("s1", LocationChanges(type=LocationType.STORE, allow_backorders=True))
    view, _ = shop.allocate("al-3", a=10, ghost=1)
    assert view.open == {"a": 10, "ghost": 1}
    assert shop.figures("a") == (5, 13, 0)
    assert shop.figures("ghost") == (0, 1, 0)


def test_repeats_answer_the_first_result_and_other_content_is_refused() -> None:
    shop = Shop({"a": 5})
    first, created = shop.allocate("al-1", a=2)
    again, created_again = shop.allocate("al-1", a=2)

    assert created
    assert not created_again
    assert again.allocation.created_at == first.allocation.created_at
    assert shop.figures("a") == (5, 2, 3)
    with pytest.raises(AllocationIdReused):
        shop.allocate("al-1", a=3)
    with pytest.raises(InvalidInput):
        shop.allocations.create(
            "s1", AllocationRequest("al-2", "o", (AllocationLine(product_id="a", quantity=1),) * 2), "tester"
        )


def test_from_the_bus_a_refusal_is_recorded_with_an_allocation_refused_event() -> None:
    shop = Shop({"a": 1})

    view, _ = shop.allocate("al-1", from_bus=True, a=2)
    again, _ = shop.allocate("al-1", from_bus=True, a=2)

    assert view.allocation.status is AllocationStatus.REFUSED
    assert again.allocation.status is AllocationStatus.REFUSED
    refused = [e for e in shop.repo.pending_events("s1") if e.detail_type == "Allocation Refused"]
    assert len(refused) == 1
    assert refused[0].detail["shortages"] == [{"product_id": "a", "requested": 2, "available": 1, "uncounted": False}]
    assert shop.figures("a") == (1, 0, 1)


def test_a_release_that_arrives_first_is_remembered_and_the_late_creation_opens_nothing() -> None:
    shop = Shop({"a": 5})
    shop.allocations.release("s1", "al-1", "bus", from_bus=True)

    view, _ = shop.allocate("al-1", from_bus=True, a=2)

    assert view.allocation.status is AllocationStatus.RELEASED
    assert shop.figures("a") == (5, 0, 5)
    with pytest.raises(NotFound):
        shop.allocations.release("s1", "al-9", "tester")  # on the API an unknown allocation is 404


def test_a_shipment_closes_the_named_allocation_or_else_the_oldest() -> None:
    shop = Shop({"a": 10})
    shop.allocate("old", a=2)
    shop.allocate("named", a=3)
    shop.allocate("young", a=4)

    shop.ship("e1", {"product_id": "a", "quantity": 2, "allocation_id": "named"})
    assert shop.allocations.get("s1", "named").open == {"a": 1}
    shop.ship("e2", {"product_id": "a", "quantity": 3})  # oldest first: all of "old", then 1 of "named"
    assert shop.allocations.get("s1", "old").open == {"a": 0}
    assert shop.allocations.get("s1", "named").open == {"a": 0}
    assert shop.allocations.get("s1", "young").open == {"a": 4}
    assert shop.figures("a") == (5, 4, 1)
    shop.ship("e2", {"product_id": "a", "quantity": 3})  # a redelivery changes nothing
    assert shop.figures("a") == (5, 4, 1)


def test_a_shipment_ahead_of_its_allocation_keeps_the_late_creation_from_opening() -> None:
    shop = Shop({"a": 10})
    shop.ship("e1", {"product_id": "a", "quantity": 2, "allocation_id": "al-1"}, handover=True)

    view, _ = shop.allocate("al-1", from_bus=True, a=2)

    assert view.allocation.status is AllocationStatus.RELEASED
    assert shop.figures("a") == (8, 0, 8)


def test_shipment_applied_carries_the_new_figures_version_and_what_went_wrong() -> None:
    shop = Shop({"a": 1})
    shop.allocate("al-1", a=1)
    shop.ship("e1", {"product_id": "a", "quantity": 3}, {"product_id": "ghost", "quantity": 1})

    parts = shop.published("Shipment Applied")
    assert [(p.detail["part"], p.detail["parts"]) for p in parts] == [(1, 2), (2, 2)]
    a, ghost = (p.detail["products"][0] for p in parts)
    assert (a["stock_on_hand"], a["allocated"], a["available"], a["warnings"]) == (
        -2,
        0,
        0,
        ["negative_stock_on_hand"],
    )
    assert a["version"] == CHANGES_PER_EPOCH + 2  # epoch 1 (the initial import); opened (1), shipped (2)
    assert ghost["warnings"] == ["unknown_product", "negative_stock_on_hand"]
    assert len({p.event_id for p in parts}) == 2
    json.dumps([p.detail for p in parts])  # what the relay publishes is JSON


def test_shipment_applied_reports_the_figures_of_its_publication_with_their_version() -> None:
    """Two shipments of a product before the relay runs: both events carry the figures after both,
    with the version of the second, so a consumer that keeps the highest version is right."""
    shop = Shop({"a": 10})
    shop.ship("e1", {"product_id": "a", "quantity": 1})
    shop.ship("e2", {"product_id": "a", "quantity": 2})
    reads, read = [], shop.repo.product_states
    shop.repo.product_states = lambda *args: reads.append(args) or read(*args)  # type: ignore[method-assign]

    first, second = (p.detail["products"][0] for p in shop.published("Shipment Applied"))

    assert len(reads) == 1  # the events an item holds are completed together: the product is read once

    assert (first["quantity"], second["quantity"]) == (-1, -2)
    expected = (7, CHANGES_PER_EPOCH + 2)  # epoch 1 (the initial import), the second line's write
    assert (first["stock_on_hand"], first["version"]) == (second["stock_on_hand"], second["version"]) == expected
    assert shop.published("Shipment Applied") == []  # published once


def test_uncounted_stock_is_not_available_until_counted() -> None:
    shop = Shop()
    shop.import_inline("i1", ImportKind.INITIAL, {"a": 4})
    shop.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    row = shop.stock.availability_page("s1", 10, None).items[0]
    assert (row.stock_on_hand, row.available, row.uncounted) == (4, 0, True)
    with pytest.raises(InsufficientStock):
        shop.allocate("al-1", a=1)

    shop.import_inline("count", ImportKind.FULL_COUNT, {"a": 3})
    row = shop.stock.availability_page("s1", 10, None).items[0]
    assert (row.stock_on_hand, row.available, row.uncounted) == (3, 3, False)


def test_sixteen_callers_for_ten_units_never_oversell() -> None:
    shop = Shop({"a": 10})
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def caller(n: int) -> None:
        lines = (AllocationLine(product_id="a", quantity=1),)
        start.wait()
        try:
            shop.allocations.create("s1", AllocationRequest(f"al-{n}", f"o-{n}", lines), "tester")
            outcomes.append("open")
        except InsufficientStock:
            outcomes.append("refused")

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes).count("open") == 10
    assert shop.figures("a") == (10, 10, 0)


def test_entries_leave_the_products_item_for_ledger_pages_and_events_older_than_the_retention_are_refused() -> None:
    shop = Shop({"a": 100})
    shop.ship("e1", {"product_id": "a", "quantity": 1}, timestamp=1)
    shop.import_inline("i2", ImportKind.PARTIAL, {"a": 99}, shipments_included_through=1)  # includes e1
    shop.ship("e2", {"product_id": "a", "quantity": 1}, timestamp=2)
    late = parse_shipment(
        bus_message(
            {
                "event_id": "e1",
                "location_id": "s1",
                "shipment_id": "sh-e1",
                "logical_timestamp": 1,
                "occurred_at": shop.clock.now().isoformat(),
                "items": [{"product_id": "a", "quantity": 1}],
            }
        )
    )

    shop.clock.advance(days=36)
    # The item keeps a buffer of the latest entries: past BUFFER_ENTRIES, the oldest move to a page.
    shipped = 0
    while "e1:0" in {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}:
        shipped += 1
        assert shipped <= BUFFER_ENTRIES
        shop.ship(f"u{shipped}", {"product_id": "a", "quantity": 1}, timestamp=3, at=shop.clock.now().isoformat())

    assert "e2:0" not in {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}  # moved out too
    explained = shop.stock.explain("s1", "a", 100)
    assert [e.entry_id for e in explained.entries] == ["e2:0", *(f"u{n}:0" for n in range(1, shipped + 1))]
    left = 99 - 1 - shipped
    assert shop.figures("a") == (left, 0, left)
    with pytest.raises(EventTooOld):
        shop.shipments.apply(late)  # could be a redelivery of e1, whose record is gone
    assert shop.figures("a") == (left, 0, left)


def test_a_shipment_dated_ahead_of_the_clock_is_remembered_until_it_is_too_old_to_apply() -> None:
    shop = Shop({"a": 5})
    ahead = (shop.clock.now() + timedelta(days=10)).isoformat()  # the sender's clock, or a typo
    shop.ship("e1", {"product_id": "a", "quantity": 1}, at=ahead)

    shop.clock.advance(days=36)  # past the retention from when it was received, not from its date
    shop.repo.expire_applied_events(shop.clock.now())  # as the table's TTL would
    redelivered = shop.ship("e1", {"product_id": "a", "quantity": 1}, at=ahead)
    assert (redelivered.lines, redelivered.repeated) == (0, 1)  # known: applied before
    assert shop.figures("a") == (4, 0, 4)

    shop.clock.advance(days=10)  # past it from its date too: its record may be gone, so it is refused
    shop.repo.expire_applied_events(shop.clock.now())
    with pytest.raises(EventTooOld):
        shop.ship("e1", {"product_id": "a", "quantity": 1}, at=ahead)
    assert shop.figures("a") == (4, 0, 4)


def test_an_event_id_reused_with_another_body_once_its_first_use_is_forgotten_is_another_event() -> None:
    shop = Shop({"a": 10})
    shop.ship("e1", {"product_id": "a", "quantity": 1}, at=shop.clock.now().isoformat())

    shop.clock.advance(days=36)  # its record is gone; its entry is held (no import has included it)
    shop.repo.expire_applied_events(shop.clock.now())
    shop.ship("e1", {"product_id": "a", "quantity": 2}, at=shop.clock.now().isoformat())

    assert shop.figures("a") == (7, 0, 7)  # both count: the second did not replace the first
    assert sorted(e.quantity for e in shop.repo.counters_of("s1", "a").ledger) == [-2, -1]


def test_a_shipment_interrupted_between_its_lines_is_completed_by_the_retry_and_applies_nothing_twice() -> None:
    shop = Shop({"a": 5, "b": 5})
    shop.allocate("al-1", a=1, b=1)
    writes = shop.repo.change_counters
    calls = 0

    def crash_after_the_first_line(location_id: str, change: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the function timed out between two lines")
        return writes(location_id, change)

    shop.repo.change_counters = crash_after_the_first_line  # type: ignore[method-assign]
    lines = ({"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 1})
    with pytest.raises(ConnectionError):
        shop.ship("e1", *lines)
    assert shop.figures("a") == (4, 0, 4)
    assert shop.figures("b") == (5, 1, 4)

    shop.ship("e1", *lines)  # the queue delivers it again

    assert shop.figures("a") == (4, 0, 4)
    assert shop.figures("b") == (4, 0, 4)
    applied = [e for e in shop.repo.pending_events("s1") if e.detail_type == "Shipment Applied"]
    assert sorted(e.detail["part"] for e in applied) == [1, 2]


def test_an_event_id_reused_with_other_products_is_refused_whole() -> None:
    shop = Shop({"a": 5, "b": 5})
    shop.ship("e1", {"product_id": "a", "quantity": 1})

    with pytest.raises(EventIdReused):
        shop.ship("e1", {"product_id": "b", "quantity": 1})  # found by Hypothesis: b was never checked

    assert shop.figures("a") == (4, 0, 4)
    assert shop.figures("b") == (5, 0, 5)


def test_an_api_allocation_left_pending_is_released_after_15_minutes_and_one_from_the_bus_is_not() -> None:
    shop = Shop({"a": 10})
    settle = shop.repo.settle_allocation

    def time_out(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the function timed out before the allocation was settled")

    shop.repo.settle_allocation = time_out  # type: ignore[method-assign]
    for allocation_id, from_bus in (("api-1", False), ("bus-1", True)):
        with pytest.raises(ConnectionError):
            shop.allocate(allocation_id, from_bus=from_bus, a=2)
    shop.repo.settle_allocation = settle  # type: ignore[method-assign]
    assert shop.figures("a") == (10, 4, 6)  # both hold their units, pending

    shop.clock.advance(minutes=14)
    assert shop.allocations.release_abandoned() == []  # its client may still retry
    shop.clock.advance(minutes=2)
    (released,) = shop.allocations.release_abandoned()

    assert (released.allocation_id, released.status) == ("api-1", AllocationStatus.RELEASED)
    assert shop.figures("a") == (10, 2, 8)  # the bus's waits for its redelivery
    assert shop.allocations.release_abandoned() == []
    view, created = shop.allocate("api-1", a=2)  # a retry after that: the allocation is released
    assert (view.allocation.status, created) == (AllocationStatus.RELEASED, False)
    assert shop.figures("a") == (10, 2, 8)
