"""A product's history leaves its hot item: the buffer stays small, entries move to ledger pages,
every figure and explanation stays exact, each line counts once, and imports whose watermark falls
inside the moved history settle their sums (docs/data-design.md, "Bounded history")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from inventory.errors import WatermarkRegressed
from inventory.models import ImportKind, ImportStatus
from inventory.models.imports import StockRow
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.ledger_moves import BUFFER_ENTRIES, PAGE_ENTRIES, SETTLED_AFTER
from inventory.services.shipment_events import Shipment
from tests.unit.test_allocations import Shop
from tests.unit.test_shipments import bus_message, parse_shipment

LINE = {"product_id": "a", "quantity": 1}


def shipment(event_id: str, timestamp: int, *lines: dict[str, Any]) -> Shipment:
    detail = {
        "event_id": event_id,
        "location_id": "s1",
        "shipment_id": f"sh-{event_id}",
        "logical_timestamp": timestamp,
        "occurred_at": "2026-11-27T09:00:00Z",
        "items": list(lines) or [LINE],
    }
    return parse_shipment(bus_message(detail))


def ship_many(shop: Shop, count: int, first_timestamp: int = 1) -> None:
    for n in range(count):
        shop.ship(f"e{first_timestamp + n}", LINE, timestamp=first_timestamp + n)


def test_the_buffer_stays_small_and_every_entry_is_explained_once() -> None:
    shop = Shop({"a": 1000})

    ship_many(shop, 100)

    counters = shop.repo.counters_of("s1", "a")
    assert counters.buffered == len(counters.ledger) <= BUFFER_ENTRIES
    assert counters.pages >= (100 - BUFFER_ENTRIES) // PAGE_ENTRIES
    assert shop.figures("a") == (900, 0, 900)
    explained, after = [], None
    while True:
        page = shop.stock.explain("s1", "a", 7, after)
        explained += [e.logical_timestamp for e in page.entries]
        if page.next_position is None:
            break
        after = page.next_position
    assert explained == list(range(1, 101))


def test_a_redelivery_of_a_line_whose_entry_left_the_buffer_changes_nothing() -> None:
    shop = Shop({"a": 100})
    ship_many(shop, 40)
    assert "e1:0" not in {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}

    again = shop.ship("e1", LINE, timestamp=1)

    assert (again.lines, again.repeated) == (0, 1)
    assert shop.figures("a") == (60, 0, 60)


def test_entries_of_an_event_a_later_delivery_completed_stay_until_no_first_delivery_can_write() -> None:
    """A delivery that claimed an event first writes its lines blind; when another delivery completed
    the event, the first may still be running: the entries wait SETTLED_AFTER before they move."""
    shop = Shop({"a": 100})
    late = shipment("slow", 1)
    shop.repo.claim_event("s1", "slow", late.body_hash, shop.clock.now() + timedelta(days=35))  # the first delivery
    shop.shipments.apply(late)  # a redelivery completes it
    ship_many(shop, 30, first_timestamp=2)

    held = {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}
    shop.clock.advance(seconds=SETTLED_AFTER.total_seconds())
    ship_many(shop, 1, first_timestamp=40)

    assert "slow:0" in held
    assert "slow:0" not in {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}
    assert shop.figures("a") == (68, 0, 68)


def test_a_redelivery_racing_a_move_asks_the_events_record_again_after_its_read() -> None:
    """A redelivery that found the event not done, then the entries moved (the first delivery
    finished meanwhile): its lines find no entry, ask the record again, and apply nothing."""
    shop = Shop({"a": 100})
    event = shipment("race", 1)
    shop.shipments.apply(event)
    ship_many(shop, 30, first_timestamp=2)
    assert "race:0" not in {e.entry_id for e in shop.repo.counters_of("s1", "a").ledger}
    real = shop.repo.event_claims
    calls = 0

    def not_done_at_first(location_id: str, event_ids: Any) -> Any:
        nonlocal calls
        calls += 1
        found = real(location_id, event_ids)
        if calls == 1:  # as read before the first delivery recorded it done
            return {e: c.model_copy(update={"done": False}) for e, c in found.items()}
        return found

    shop.repo.event_claims = not_done_at_first  # type: ignore[method-assign]
    again = shop.shipments.apply(event)

    assert (again.lines, again.repeated, calls) == (0, 1, 2)
    assert shop.figures("a") == (69, 0, 69)


def test_an_import_whose_watermark_falls_inside_the_moved_history_counts_the_lines_above_it() -> None:
    shop = Shop({"a": 1000})
    ship_many(shop, 80)  # timestamps 1 to 80, most of them in ledger pages

    shop.import_inline("p1", ImportKind.PARTIAL, {"a": 500}, shipments_included_through=30)

    assert shop.repo.counters_of("s1", "a").pages >= 3
    assert shop.figures("a") == (500 - 50, 0, 450)
    ship_many(shop, 5, first_timestamp=81)
    assert shop.figures("a") == (445, 0, 445)
    explained = shop.stock.explain("s1", "a", 1000)
    assert [e.logical_timestamp for e in explained.entries] == list(range(31, 86))


def test_a_baseline_import_with_a_watermark_settles_every_product_it_covers() -> None:
    shop = Shop({"a": 100, "b": 100})
    for n in range(1, 41):
        shop.ship(f"e{n}", LINE, {"product_id": "b", "quantity": 2}, timestamp=n)

    shop.import_inline("full", ImportKind.FULL_COUNT, {"a": 50}, shipments_included_through=20)

    assert shop.figures("a") == (30, 0, 30)
    assert shop.figures("b") == (-40, 0, 0)  # absent from the full count: 0, then the 20 lines above 20


def test_an_import_settles_no_earlier_than_a_batch_can_last_after_its_claim() -> None:
    shop = Shop({"a": 100})
    imports = ImportRunner(shop.repo, shop.files, shop.queue, shop.clock, settle_delay=timedelta(seconds=120))
    items = [StockRow(product_id="a", stock_location="main", quantity=70)]
    # A batch that read the location before the claim writes lines above the watermark after it.
    batch = [shipment(f"old-{n}", 5 + n) for n in range(1, 4)]
    shop.shipments.read_ahead(batch)
    imports.accept("s1", ImportRequest("late", ImportKind.PARTIAL, 5, items=items), "tester")

    message = shop.queue.messages.pop(0)
    running = imports.run("s1", str(message["import_id"]), lambda: 10**9)
    delayed = (shop.queue.messages.pop(0), shop.queue.delays[-1])
    for event in batch:
        shop.shipments.apply(event)
    shop.shipments.end_batch()
    shop.clock.advance(seconds=120)
    completed = imports.run("s1", str(delayed[0]["import_id"]), lambda: 10**9)

    assert (running, delayed[1], completed) == (ImportStatus.RUNNING, 120, ImportStatus.COMPLETED)
    assert shop.figures("a") == (67, 0, 67)


def test_a_line_whose_batch_read_the_location_before_an_import_without_watermark_is_included() -> None:
    """The one order the service keeps is the batch's read of the location: a line it applies
    after the claim of an import naming no watermark, from a read before, was applied before."""
    shop = Shop({"a": 100})
    early = shipment("early", 1)
    shop.shipments.read_ahead([early])
    shop.imports.accept(
        "s1",
        ImportRequest("now", ImportKind.PARTIAL, items=[StockRow(product_id="a", stock_location="main", quantity=50)]),
        "tester",
    )
    shop.shipments.apply(early)
    shop.shipments.end_batch()
    shop.run_queue()
    shop.ship("after", LINE, timestamp=2)

    assert shop.figures("a") == (49, 0, 49)


def test_an_import_naming_a_lower_watermark_than_the_last_completed_one_is_refused() -> None:
    shop = Shop()
    shop.import_inline("i1", ImportKind.INITIAL, {"a": 5}, shipments_included_through=100)
    items = [StockRow(product_id="a", stock_location="main", quantity=1)]

    with pytest.raises(WatermarkRegressed):
        shop.imports.accept("s1", ImportRequest("i2", ImportKind.PARTIAL, 99, items=items), "tester")
    shop.imports.accept("s1", ImportRequest("i3", ImportKind.PARTIAL, 100, items=items), "tester")
    assert not shop.repo.get_import("s1", "i2")


def test_unpublished_parts_move_with_their_entries_and_are_published_once_the_bus_is_back() -> None:
    shop = Shop({"a": 100})
    ship_many(shop, 50)  # the bus is down: nothing is published meanwhile

    counters = shop.repo.counters_of("s1", "a")
    assert len(counters.pending) <= BUFFER_ENTRIES
    published = shop.published("Shipment Applied")
    assert sorted(e.detail["source_event_id"] for e in published) == sorted(f"e{n}" for n in range(1, 51))
    assert not shop.repo.pending_events("s1")
