"""Open allocations beyond the few a product's hot item holds: allocation lines, closed oldest first
by shipments, released, swept, on the in-memory repository (docs/data-design.md, "Open allocations")."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.models import AllocationStatus
from inventory.services import allocation_lines
from inventory.services.allocation_lines import HELD_ALLOCATIONS
from tests.unit.test_allocations import Shop

PRODUCT = "P1"


def held(shop: Shop) -> int:
    return len(shop.repo.counters_of("s1", PRODUCT).allocations)


def lines(shop: Shop) -> int:
    return len(shop.repo.lines.get(("s1", PRODUCT), {}))


def pre_order(count: int, stock: int = 1000) -> Shop:
    shop = Shop({PRODUCT: stock}, trust_imported_stock=True)
    for n in range(count):
        shop.allocate(f"a{n:04d}", **{PRODUCT: 1})
    return shop


def test_a_pre_order_keeps_a_few_allocations_in_the_hot_item_and_the_rest_as_lines() -> None:
    """Given 100 allocations of one product, then the hot item holds at most a few of them, the
    others are allocation lines, and availability counts every one."""
    shop = pre_order(100)

    assert held(shop) <= HELD_ALLOCATIONS
    assert held(shop) + lines(shop) == 100
    assert shop.figures(PRODUCT) == (1000, 100, 900)
    assert shop.allocations.get("s1", "a0000").open == {PRODUCT: 1}
    assert shop.allocations.get("s1", "a0099").open == {PRODUCT: 1}


def test_shipments_close_the_oldest_open_allocations_first_whether_held_or_lines() -> None:
    """Given 40 allocations of one unit, when lines ship 25 units, then the 25 oldest are closed and
    the 15 newest stay open, and nothing is left behind of the closed ones."""
    shop = pre_order(40)

    shop.ship("e1", {"product_id": PRODUCT, "quantity": 10})
    shop.ship("e2", {"product_id": PRODUCT, "quantity": 15})

    assert shop.figures(PRODUCT) == (975, 15, 960)
    still_open = {n: shop.allocations.get("s1", f"a{n:04d}").open[PRODUCT] for n in range(40)}
    assert still_open == {n: 0 if n < 25 else 1 for n in range(40)}
    assert held(shop) + lines(shop) == 15


def test_a_shipment_naming_an_allocation_that_is_a_line_closes_that_one() -> None:
    shop = pre_order(30)

    shop.ship("e1", {"product_id": PRODUCT, "quantity": 1, "allocation_id": "a0003"})

    assert shop.allocations.get("s1", "a0003").open == {PRODUCT: 0}
    assert shop.allocations.get("s1", "a0000").open == {PRODUCT: 1}
    assert shop.figures(PRODUCT) == (999, 29, 970)


def test_releasing_an_allocation_that_is_a_line_frees_it_and_leaves_no_line() -> None:
    shop = pre_order(30)

    view = shop.allocations.release("s1", "a0002", "tester")
    again = shop.allocations.release("s1", "a0002", "tester")

    assert view.open == again.open == {PRODUCT: 0}
    assert shop.figures(PRODUCT) == (1000, 29, 971)
    assert held(shop) + lines(shop) == 29
    assert all(a.quantity > 0 for a in shop.repo.counters_of("s1", PRODUCT).allocations)


def test_a_redelivered_shipment_closes_nothing_twice() -> None:
    shop = pre_order(30)
    shop.ship("e1", {"product_id": PRODUCT, "quantity": 5})

    shop.ship("e1", {"product_id": PRODUCT, "quantity": 5})

    assert shop.figures(PRODUCT) == (995, 25, 970)


def test_a_shipment_stopped_after_its_hot_item_write_is_completed_by_its_redelivery() -> None:
    """Given a line whose write of the hot item applied and whose close of its allocation line did
    not (a crash), then readers see the allocation closed already, and the redelivery applies the
    close to the line once."""
    shop = pre_order(30)
    shop.repo.fail_next("close_allocation_line", TimeoutError("stopped"))
    with contextlib.suppress(TimeoutError):
        shop.ship("e1", {"product_id": PRODUCT, "quantity": 2})

    assert shop.figures(PRODUCT) == (998, 28, 970)
    assert shop.allocations.get("s1", "a0000").open == {PRODUCT: 0}
    shop.ship("e1", {"product_id": PRODUCT, "quantity": 2})
    assert shop.figures(PRODUCT) == (998, 28, 970)
    assert held(shop) + lines(shop) == 28


def test_the_abandoned_allocation_sweep_releases_pending_allocations_beside_lines() -> None:
    """Given a pre-order and one API allocation left pending (its request stopped after opening), when
    the sweep runs past its abandon time, then it is released and every line stays."""
    shop = pre_order(20)
    shop.repo.fail_next("settle_allocation", TimeoutError("stopped"))
    with contextlib.suppress(TimeoutError):
        shop.allocate("stuck", **{PRODUCT: 3})
    assert shop.figures(PRODUCT)[1] == 23

    shop.clock.advance(minutes=20)
    released = shop.allocations.release_abandoned()

    assert [a.allocation_id for a in released] == ["stuck"]
    assert shop.repo.get_allocation("s1", "stuck").status is AllocationStatus.RELEASED
    assert shop.figures(PRODUCT) == (1000, 20, 980)


def test_a_hot_item_of_the_earlier_shape_with_many_held_allocations_reads_and_moves_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a product whose hot item holds 40 open allocations (as before lines existed), then its
    figures and allocations read as they are, and its next allocation moves the settled ones out."""
    shop = Shop({PRODUCT: 100}, trust_imported_stock=True)
    with monkeypatch.context() as earlier:  # no lines yet: every allocation held, as items were
        earlier.setattr(allocation_lines, "HELD_ALLOCATIONS", 10_000)
        for n in range(40):
            shop.allocate(f"old{n:02d}", **{PRODUCT: 1})
    assert (held(shop), lines(shop)) == (40, 0)
    assert shop.figures(PRODUCT) == (100, 40, 60)
    assert shop.allocations.get("s1", "old07").open == {PRODUCT: 1}

    shop.allocate("new", **{PRODUCT: 1})

    assert held(shop) <= HELD_ALLOCATIONS
    assert held(shop) + lines(shop) == 41
    assert shop.figures(PRODUCT) == (100, 41, 59)
    assert shop.allocations.get("s1", "old07").open == {PRODUCT: 1}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("allocate"), st.integers(1, 3)),
            st.tuples(st.just("ship"), st.integers(1, 6)),
            st.tuples(st.just("release"), st.integers(0, 40)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_open_allocations_match_a_model_of_oldest_first_closing(steps: list[tuple[str, int]]) -> None:
    """Whatever allocations, shipments and releases come, in any order, every allocation's open
    units, and the product's allocated total, are those of a list of allocations closed oldest first."""
    shop = Shop({PRODUCT: 10_000}, trust_imported_stock=True)
    model: dict[str, int] = {}  # in the order received
    for n, (action, value) in enumerate(steps):
        if action == "allocate":
            shop.allocate(f"a{n:03d}", **{PRODUCT: value})
            model[f"a{n:03d}"] = value
        elif action == "ship":
            shop.ship(f"e{n}", {"product_id": PRODUCT, "quantity": value})
            left = value
            for allocation_id, units in model.items():
                taken = min(left, units)
                model[allocation_id], left = units - taken, left - taken
        elif model:
            allocation_id = sorted(model)[value % len(model)]
            shop.allocations.release("s1", allocation_id, "tester")
            model[allocation_id] = 0
    assert shop.figures(PRODUCT)[1] == sum(model.values())
    for allocation_id, units in model.items():
        assert shop.allocations.get("s1", allocation_id).open == {PRODUCT: units}
