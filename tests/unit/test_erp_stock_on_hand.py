"""Stock on hand under an ERP master against the reference semantics, over generated histories of
imports and shipments (shipments applied while an import runs included)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.errors import WatermarkRegressed
from inventory.models import ImportKind
from inventory.models.imports import StockRow
from inventory.services.imports import ImportRequest
from tests.conftest import record_ledger_entry, shipment_entry
from tests.unit.reference import ErpProduct, Import, Shipment
from tests.unit.test_import_service import World

step = st.one_of(
    st.tuples(
        st.just("import"),
        st.integers(0, 50),
        st.none() | st.integers(0, 30),
        st.booleans(),  # True: the import completes only after the next step (a shipment meanwhile)
    ),
    st.tuples(st.just("ship"), st.integers(1, 5), st.integers(0, 30), st.just(False)),
)


@settings(max_examples=300, deadline=None)
@given(history=st.lists(step, max_size=12))
def test_erp_stock_on_hand_is_the_last_import_plus_the_shipments_it_did_not_include(history: list[tuple]) -> None:
    world = World(chunk_rows=100)
    reference = ErpProduct()
    pending: tuple[int, Import] | None = None  # an accepted import whose worker has not run yet
    for order, (kind, a, b, slow) in enumerate(history):
        world.clock.advance(seconds=1)
        if kind == "ship":
            quantity, timestamp = a, b
            record_ledger_entry(
                world.repo, "s1", "p", shipment_entry(f"e{order}", timestamp, world.clock.now(), quantity)
            )
            reference.shipments.append(Shipment(order, timestamp, quantity))
        elif pending is None:
            items = [StockRow(product_id="p", stock_location="main", quantity=a)]
            request = ImportRequest(f"i{order}", ImportKind.PARTIAL, b, items=items)
            last = reference.imports[-1].included_through if reference.imports else None
            if b is not None and last is not None and b < last:  # SPEC section 4: watermark_regressed
                with pytest.raises(WatermarkRegressed):
                    world.imports.accept("s1", request, "tester")
            else:
                world.imports.accept("s1", request, "tester")
                pending = (order, Import(order, a, b))
        if pending is not None and (not slow or pending[0] != order):
            world.run_queue()
            reference.imports.append(pending[1])
            pending = None
        assert world.soh("p") == reference.stock_on_hand(), history[: order + 1]


def test_the_explanation_lists_the_entries_since_the_base() -> None:
    world = World()
    for n, timestamp in enumerate((5, 9, 12)):
        world.clock.advance(seconds=1)
        entry = shipment_entry(f"ship-{n}", timestamp, world.clock.now())
        assert record_ledger_entry(world.repo, "s1", "p", entry)
        assert not record_ledger_entry(world.repo, "s1", "p", entry)  # once per id
    world.clock.advance(seconds=1)
    world.import_inline("i1", ImportKind.INITIAL, {"p": 10}, shipments_included_through=9)

    stock = world.stock.product("s1", "p")

    assert stock.stock_on_hand == 9
    assert [e.entry_id for e in stock.ledger] == ["ship-2"]
    assert stock.stock_locations[0].base is not None
    assert stock.stock_locations[0].base.shipments_included_through == 9
    assert world.clock.now() - stock.ledger[0].applied_at == timedelta(seconds=1)


def test_a_shipment_of_a_product_no_import_knows_makes_stock_negative() -> None:
    world = World()
    record_ledger_entry(world.repo, "s1", "ghost", shipment_entry("e1", 1, world.clock.now(), 2, handover=True))

    assert world.soh("ghost") == -2
    assert [(p.product_id, p.stock_on_hand) for p in world.stock.page("s1", 10, None).items] == [("ghost", -2)]
