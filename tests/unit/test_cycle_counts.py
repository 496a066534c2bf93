"""Cycle counts on the in-memory repository: the counted figure is the truth at submission,
variance against the figure of that moment, uncounted cleared per stock location, both masters,
mispick counts and the guards, crashes between results, the sweep, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.errors import (
    CountIdReused,
    CountNotOpen,
    CountResultsDiffer,
    InvalidInput,
    NotFound,
    OpenMispickCounts,
    PayloadTooLarge,
)
from inventory.messages import DetailType
from inventory.models import (
    ABANDONED_AFTER,
    CountReason,
    CountStatus,
    ImportKind,
    InventoryMaster,
    LocationChanges,
    LocationType,
)
from inventory.models.counts import CountResult
from inventory.models.transactions import TransactionItem, TransactionRequest, TransactionType
from inventory.services.cycle_counts import CycleCountService
from inventory.services.transactions import TransactionService
from tests.unit.test_import_service import World


class Store(World):
    def __init__(self, stock: dict[str, int] | None = None, *, platform: bool = True) -> None:
        super().__init__()
        self.counts = CycleCountService(self.repo, self.stock, self.clock)
        self.transactions = TransactionService(self.repo, self.stock, self.clock)
        self.locations.put("s1", LocationChanges(type=LocationType.STORE))
        self.import_inline("base", ImportKind.INITIAL, stock or {})
        if platform:
            self.locations.switch("s1", InventoryMaster.PLATFORM, "tester")

    def open(self, count_id: str, *products: str, reason: CountReason = CountReason.SCHEDULED) -> Any:
        self.clock.advance(seconds=1)
        return self.counts.open("s1", count_id, reason, list(products), "tester")

    def submit(self, count_id: str, **counted: int | tuple[str, int]) -> Any:
        self.clock.advance(seconds=1)
        results = tuple(
            CountResult(product_id=p, stock_location=c[0], counted=c[1])
            if isinstance(c, tuple)
            else CountResult(product_id=p, counted=c)
            for p, c in counted.items()
        )
        return self.counts.submit("s1", count_id, results)

    def row(self, product_id: str) -> Any:
        (row,) = self.stock.availability_page("s1", 10, None, product_id).items
        return row

    def receive(self, transaction_id: str, product_id: str, quantity: int) -> None:
        request = TransactionRequest(
            transaction_id=transaction_id,
            type=TransactionType.RECEIVING,
            items=(TransactionItem(product_id=product_id, quantity=quantity),),
        )
        self.transactions.record("s1", request, "tester")

    def parts(self) -> list[dict[str, Any]]:
        found = [e.detail for e in self.repo.pending_events("s1") if e.detail_type == DetailType.COUNT_COMPLETED]
        return sorted(found, key=lambda d: (d["count_id"], d["part"]))


def test_a_count_sets_the_figure_and_clears_uncounted() -> None:
    store = Store({"a": 5, "b": 2})
    assert store.row("a").uncounted
    store.open("c1", "a", "b")
    count = store.submit("c1", a=7)
    assert count.status is CountStatus.COMPLETED
    assert [(r.product_id, r.counted, r.system, r.variance) for r in count.results] == [("a", 7, 5, 2)]
    row = store.row("a")
    assert (row.stock_on_hand, row.available, row.uncounted) == (7, 7, False)
    assert store.row("b").uncounted  # listed, not reported: keeps its figure, still uncounted
    (part,) = store.parts()
    assert (part["counted"], part["system"], part["variance"], part["stock_on_hand"], part["uncounted"]) == (
        7,
        5,
        2,
        7,
        False,
    )
    assert part["version"] == row.version


def test_movements_during_the_count_are_reflected_in_the_figure_counted() -> None:
    store = Store({"a": 5})
    store.open("c1", "a")
    store.receive("r1", "a", 10)  # arrives while the count is open: the counter sees 15 on the shelf
    count = store.submit("c1", a=14)
    assert [(r.system, r.variance) for r in count.results] == [(15, -1)]
    assert store.row("a").stock_on_hand == 14
    store.receive("r2", "a", 1)  # after the count: on top of it
    assert store.row("a").stock_on_hand == 15


def test_under_an_erp_master_a_count_is_recorded_and_published_and_sets_nothing() -> None:
    store = Store({"a": 5}, platform=False)
    store.open("c1", "a")
    count = store.submit("c1", a=9)
    assert count.master is InventoryMaster.ERP
    assert [(r.system, r.variance) for r in count.results] == [(5, 4)]
    assert store.row("a").stock_on_hand == 5
    (part,) = store.parts()
    assert part["pending_import"] is True
    assert part["stock_on_hand"] == 5


def test_a_mispick_count_holds_imports_and_the_switch_until_completed_or_cancelled() -> None:
    store = Store({"a": 5}, platform=False)
    store.open("m1", "a", reason=CountReason.MISPICK)
    with pytest.raises(OpenMispickCounts):
        store.import_inline("blocked", ImportKind.FULL_COUNT, {"a": 1})
    assert "open_mispick_counts" in [r.code for r in store.locations.readiness("s1").reasons]
    store.submit("m1", a=5)
    assert store.locations.readiness("s1").ready
    store.open("m2", "a", reason=CountReason.MISPICK)
    assert not store.locations.readiness("s1").ready
    assert store.counts.cancel("s1", "m2").status is CountStatus.CANCELLED
    assert store.counts.cancel("s1", "m2").status is CountStatus.CANCELLED  # again: the same
    assert store.locations.readiness("s1").ready


def test_repeats_and_refusals() -> None:
    store = Store({"a": 5})
    opened, created = store.open("c1", "a", "b")
    again, created_again = store.open("c1", "a", "b")
    assert created
    assert not created_again
    assert again == opened
    with pytest.raises(CountIdReused):
        store.open("c1", "a")
    before = store.row("a")
    for results, field in [
        ({"x": 1}, "body.items[0].product_id"),
        ({"a": ("shelf", 1)}, "body.items[0].stock_location"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            store.submit("c1", **results)
        assert field in [d["field"] for d in refused.value.details]
    with pytest.raises(InvalidInput):
        store.counts.submit(
            "s1", "c1", (CountResult(product_id="a", counted=1), CountResult(product_id="a", counted=2))
        )
    with pytest.raises(NotFound):
        store.submit("nope", a=1)
    assert store.row("a") == before
    done = store.submit("c1", a=3)
    assert store.submit("c1", a=3) == done  # the same results again: the same answer
    with pytest.raises(CountNotOpen):
        store.submit("c1", a=4)
    with pytest.raises(CountNotOpen):
        store.counts.cancel("s1", "c1")
    assert store.row("a").stock_on_hand == 3
    with pytest.raises(PayloadTooLarge):
        store.open("big", *(f"{'x' * 100}-{n}" for n in range(5000)))


def test_a_count_stopped_between_results_is_completed_by_the_repeat_or_the_sweep() -> None:
    for by_sweep in (False, True):
        store = Store({"a": 5, "b": 5, "c": 5})
        store.open("c1", "a", "b", "c")
        original = store.repo.change_counters
        calls: list[int] = []

        def crashing(location_id: str, change: Any, original: Any = original, calls: list[int] = calls) -> bool:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("stopped")
            return original(location_id, change)

        store.repo.change_counters = crashing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            store.submit("c1", a=1, b=2, c=3)
        store.repo.change_counters = original  # type: ignore[method-assign]
        assert store.counts.get("s1", "c1").status is CountStatus.SUBMITTING
        with pytest.raises(CountResultsDiffer):
            store.submit("c1", a=1, b=2, c=4)
        if by_sweep:
            store.clock.advance(seconds=ABANDONED_AFTER.total_seconds() + 1)
            (count,) = store.counts.complete_abandoned()
        else:
            count = store.submit("c1", a=1, b=2, c=3)
        assert count.status is CountStatus.COMPLETED
        assert [(r.product_id, r.system, r.variance) for r in count.results] == [
            ("a", 5, -4),
            ("b", 5, -3),
            ("c", 5, -2),
        ]
        assert [store.row(p).stock_on_hand for p in "abc"] == [1, 2, 3]
        assert [p["part"] for p in store.parts()] == [1, 2, 3]  # each result once
