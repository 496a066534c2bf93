"""Inventory transactions on the in-memory repository: both masters, all or nothing, crashes
between items, the sweep, and what the stock shows per stock location."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.errors import InsufficientStock, InvalidInput, NotFound, NotReady, TransactionIdReused
from inventory.messages import DetailType
from inventory.models import ABANDONED_AFTER, ImportKind, InventoryMaster, LocationChanges, LocationType
from inventory.models.transactions import TransactionItem, TransactionRequest, TransactionStatus, TransactionType
from inventory.services.transactions import TransactionService
from tests.unit.test_import_service import World


class Store(World):
    def __init__(self, stock: dict[str, int] | None = None, *, platform: bool = True) -> None:
        super().__init__()
        self.transactions = TransactionService(self.repo, self.stock, self.clock)
        self.locations.put("s1", LocationChanges(type=LocationType.STORE))
        self.import_inline("base", ImportKind.INITIAL, stock or {})
        if platform:
            self.locations.switch("s1", InventoryMaster.PLATFORM, "tester")

    def record(self, transaction_id: str, kind: str, *items: dict[str, Any], **fields: Any) -> Any:
        self.clock.advance(seconds=1)
        request = TransactionRequest(
            transaction_id=transaction_id,
            type=TransactionType(kind),
            items=tuple(TransactionItem(**item) for item in items),
            **fields,
        )
        return self.transactions.record("s1", request, "tester")

    def at(self, product_id: str) -> dict[str, int]:
        """Each stock location's quantity, and `soh`."""
        stock = self.stock.product("s1", product_id)
        return {f.stock_location: f.quantity for f in stock.stock_locations} | {"soh": stock.stock_on_hand}

    def events(self) -> list[dict[str, Any]]:
        return [
            e.detail
            for item in self.repo.outbox.values()
            for e in item.values()
            if e.detail_type == DetailType.TRANSACTION_COMPLETED
        ]


def test_each_type_moves_stock_on_hand_at_once_under_platform_master() -> None:
    store = Store({"a": 5})
    store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 10}, reference="PO-1")
    assert store.at("a") == {"main": 15, "soh": 15}
    store.record(
        "adj-1",
        "adjustment",
        {"product_id": "a", "quantity": 2, "from_stock_location": "main", "to_stock_location": "damaged"},
        reason="broken",
    )
    assert store.at("a") == {"main": 13, "damaged": 2, "soh": 13}  # damaged is not salable
    store.record("out-1", "transfer_out", {"product_id": "a", "quantity": 3}, destination_location_id="s2")
    store.record("in-1", "transfer_in", {"product_id": "b", "quantity": 4}, source_location_id="dc1")
    store.record("ret-1", "return", {"product_id": "a", "quantity": 1, "to_stock_location": "returns"})
    store.record(
        "adj-2", "adjustment", {"product_id": "a", "quantity": 1, "from_stock_location": "damaged"}, reason="scrapped"
    )
    assert store.at("a") == {"main": 10, "damaged": 1, "returns": 1, "soh": 10}
    assert store.at("b") == {"main": 4, "soh": 4}
    (row,) = store.stock.availability_page("s1", 10, None, "a").items
    assert (row.stock_on_hand, row.available, row.uncounted) == (10, 0, True)  # imported above 0, not counted
    (row,) = store.stock.availability_page("s1", 10, None, "b").items
    assert (row.stock_on_hand, row.available, row.uncounted) == (4, 4, False)  # stock that arrived after the switch


def test_the_answer_and_the_event_carry_each_products_new_figures() -> None:
    store = Store({"a": 5})
    record, created = store.record(
        "rcv-1", "receiving", {"product_id": "a", "quantity": 10}, {"product_id": "b", "quantity": 1}
    )
    assert created
    assert record.status is TransactionStatus.COMPLETED
    assert [(r.product_id, r.stock_on_hand, r.stock_locations) for r in record.results] == [
        ("a", 15, {"main": 15}),
        ("b", 1, {"main": 1}),
    ]
    (event,) = store.events()
    assert event["transaction_id"] == "rcv-1"
    assert event["inventory_master"] == "platform"
    assert [(i["product_id"], i["stock_on_hand"], i["version"]) for i in event["items"]] == [
        (r.product_id, r.stock_on_hand, r.version) for r in record.results
    ]


def test_a_repeat_answers_the_same_and_other_content_is_refused() -> None:
    store = Store({"a": 5})
    first, _ = store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 10})
    again, created = store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 10})
    assert not created
    assert again == first
    assert store.at("a")["soh"] == 15
    with pytest.raises(TransactionIdReused):
        store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 11})
    assert store.at("a")["soh"] == 15
    assert len(store.events()) == 1


def test_a_transaction_short_on_the_first_read_writes_nothing() -> None:
    store = Store({"a": 5, "b": 1})
    before = (dict(store.repo.counters), dict(store.repo.outbox))
    with pytest.raises(InsufficientStock) as refused:
        store.record(
            "out-1",
            "transfer_out",
            {"product_id": "a", "quantity": 2},
            {"product_id": "b", "quantity": 2},
            destination_location_id="s2",
        )
    assert [d["product_id"] for d in refused.value.details] == ["b"]
    assert (store.repo.counters, store.repo.outbox) == before
    with pytest.raises(NotFound):
        store.transactions.get("s1", "out-1")
    # two items of one product, each fine alone, short together
    with pytest.raises(InsufficientStock):
        store.record(
            "adj-1",
            "adjustment",
            {"product_id": "a", "quantity": 3, "from_stock_location": "main"},
            {"product_id": "a", "quantity": 3, "from_stock_location": "main"},
            reason="lost",
        )
    assert store.at("a")["soh"] == 5


def test_a_shortage_found_half_way_is_undone_before_the_answer() -> None:
    store = Store({"a": 5, "b": 3})
    service = store.transactions
    original = service._apply_item

    def taken_meanwhile(location: Any, record: Any, index: int, item: Any, first: Any) -> Any:
        if index == 1:  # a shipment takes b's units after the first read
            store.record("out-x", "transfer_out", {"product_id": "b", "quantity": 3}, destination_location_id="s9")
            first = None
        return original(location, record, index, item, first)

    service._apply_item = taken_meanwhile  # type: ignore[method-assign]
    versions = {p: store.repo.counters[("s1", p)].version for p in "ab" if ("s1", p) in store.repo.counters}
    with pytest.raises(InsufficientStock):
        store.record(
            "out-1",
            "transfer_out",
            {"product_id": "a", "quantity": 2},
            {"product_id": "b", "quantity": 1},
            destination_location_id="s2",
        )
    service._apply_item = original  # type: ignore[method-assign]
    assert store.at("a") == {"main": 5, "soh": 5}
    assert store.at("b")["soh"] == 0
    assert not [e for e in store.stock.explain("s1", "a", 100).entries if e.entry_id.startswith("tx:out-1")]
    assert store.repo.get_transaction("s1", "out-1") is None
    assert [e["transaction_id"] for e in store.events()] == ["out-x"]
    assert store.repo.counters[("s1", "a")].version > versions.get("a", 0)  # versions only grow


@pytest.mark.parametrize("after_items", [0, 1, 2])
def test_a_crash_between_items_is_completed_by_the_repeat(after_items: int) -> None:
    store = Store({"a": 5})
    items = ({"product_id": "a", "quantity": 1}, {"product_id": "b", "quantity": 2}, {"product_id": "c", "quantity": 3})
    original = store.repo.change_counters
    calls = []

    def crashing(location_id: str, change: Any) -> bool:
        calls.append(1)
        if len(calls) == after_items + 1:
            raise RuntimeError("stopped")
        return original(location_id, change)

    store.repo.change_counters = crashing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.record("rcv-1", "receiving", *items)
    store.repo.change_counters = original  # type: ignore[method-assign]
    assert store.repo.get_transaction("s1", "rcv-1").status is TransactionStatus.PENDING  # type: ignore[union-attr]
    record, created = store.record("rcv-1", "receiving", *items)
    assert not created
    assert record.status is TransactionStatus.COMPLETED
    assert [store.at(p)["soh"] for p in "abc"] == [6, 2, 3]
    assert len(store.events()) == 1


def test_the_sweep_completes_a_transaction_nobody_repeated() -> None:
    store = Store({"a": 5})
    store.repo.fail_next("complete_transaction", RuntimeError("timed out"))
    with pytest.raises(RuntimeError):
        store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 1})
    assert store.transactions.complete_abandoned() == []  # not abandoned yet
    store.clock.advance(seconds=ABANDONED_AFTER.total_seconds() + 1)
    (done,) = store.transactions.complete_abandoned()
    assert done.status is TransactionStatus.COMPLETED
    assert store.at("a")["soh"] == 6
    assert len(store.events()) == 1


def test_under_an_erp_master_transactions_are_recorded_and_move_nothing() -> None:
    store = Store({"a": 5}, platform=False)
    record, _ = store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 10})
    assert record.master is InventoryMaster.ERP
    assert store.at("a")["soh"] == 5
    entries = store.stock.explain("s1", "a", 100).entries
    assert [(e.entry_id, e.pending_import) for e in entries] == [("tx:rcv-1:0", True)]
    (event,) = store.events()
    assert event["pending_import"] is True
    # an ERP-master transfer out may take more than the service knows: the ERP is the truth
    store.record("out-1", "transfer_out", {"product_id": "a", "quantity": 50}, destination_location_id="s2")
    assert store.at("a")["soh"] == 5


def test_the_switch_waits_for_an_import_after_erp_transactions() -> None:
    store = Store({"a": 5}, platform=False)
    store.record("rcv-1", "receiving", {"product_id": "a", "quantity": 10})
    readiness = store.locations.readiness("s1")
    assert [r.code for r in readiness.reasons] == ["transactions_since_import"]
    with pytest.raises(NotReady):
        store.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    store.import_inline("again", ImportKind.FULL_COUNT, {"a": 15})
    assert store.locations.readiness("s1").ready
    store.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    assert store.at("a")["soh"] == 15  # the ERP's import reflects the receiving, which is not applied again


def test_refusals_of_the_body() -> None:
    store = Store({"a": 5})
    cases = [
        ("transfer_out", [{"product_id": "a", "quantity": 1}], {}, "body.destination_location_id"),
        (
            "transfer_out",
            [{"product_id": "a", "quantity": 1}],
            {"destination_location_id": "s1"},
            "body.destination_location_id",
        ),
        ("transfer_in", [{"product_id": "a", "quantity": 1}], {"source_location_id": "s1"}, "body.source_location_id"),
        (
            "receiving",
            [{"product_id": "a", "quantity": 1, "to_stock_location": "damaged"}],
            {},
            "body.items[0].to_stock_location",
        ),
        ("adjustment", [{"product_id": "a", "quantity": 1, "from_stock_location": "main"}], {}, "body.reason"),
        ("adjustment", [{"product_id": "a", "quantity": 1}], {"reason": "x"}, "body.items[0]"),
        (
            "adjustment",
            [{"product_id": "a", "quantity": 1, "from_stock_location": "main", "to_stock_location": "main"}],
            {"reason": "x"},
            "body.items[0].to_stock_location",
        ),
        (
            "return",
            [{"product_id": "a", "quantity": 1, "to_stock_location": "shelf"}],
            {},
            "body.items[0].to_stock_location",
        ),
    ]
    for kind, items, fields, field in cases:
        with pytest.raises(InvalidInput) as refused:
            store.record("t-1", kind, *items, **fields)
        assert field in [d["field"] for d in refused.value.details], (kind, refused.value.details)
    assert store.at("a")["soh"] == 5
    assert store.events() == []
    with pytest.raises(NotFound):
        store.transactions.record(
            "nowhere",
            TransactionRequest(
                transaction_id="t", type=TransactionType.RECEIVING, items=(TransactionItem(product_id="a", quantity=1),)
            ),
            "tester",
        )
