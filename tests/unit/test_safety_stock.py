"""Products' own safety stock (PUT /locations/{location_id}/safety-stock), on the in-memory
repository: the figure every available figure takes, the versions it moves, the writes it makes and
the ones it does not, and the route's refusals, each of which changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.api import safety_stock as route
from inventory.api.http import make_resolver
from inventory.errors import InsufficientStock, InvalidInput, NotFound, TemporarilyUnavailable
from inventory.figures import CHANGES_PER_EPOCH
from inventory.models import LocationChanges, LocationType, OutboxEvent
from inventory.models.counters import ProductCounters
from inventory.services.locations import MasterSwitchService
from inventory.services.safety_stock import SafetyStockLine, SafetyStockService
from inventory.services.stock import StockService
from inventory.types import MAX_SAFETY_STOCK_ITEMS
from tests.conftest import FakeContext, http_event, shipment_entry
from tests.unit.fakes import FixedClock, MemoryRepository
from tests.unit.reference import ErpStore
from tests.unit.test_allocations import Shop

Figures = tuple[int, int, int, int]  # stock on hand, allocated, safety stock, available
NOW = FixedClock().now()


class SafetyShop(Shop):
    def __init__(self, stock: dict[str, int] | None = None, **location: Any) -> None:
        super().__init__(stock, **location)
        self.safety = SafetyStockService(self.repo, StockService(self.repo))

    def set(self, **figures: int | None) -> dict[str, Figures]:
        rows = self.safety.set("s1", [SafetyStockLine(p, f) for p, f in figures.items()])
        return {r.product_id: (r.stock_on_hand, r.allocated, r.safety_stock, r.available) for r in rows}

    def row(self, product_id: str) -> Figures:
        (r,) = self.stock.availability_page("s1", 10, None, product_id).items
        return r.stock_on_hand, r.allocated, r.safety_stock, r.available

    def version(self, product_id: str) -> int:
        return self.repo.counters_of("s1", product_id).version


def test_a_products_own_figure_replaces_the_locations_default_and_null_gives_it_back() -> None:
    shop = SafetyShop({"a": 10, "b": 10}, default_safety_stock=2)

    answered = shop.set(a=5, b=None)

    assert answered == {"a": (10, 0, 5, 5), "b": (10, 0, 2, 8)}
    assert (shop.row("a"), shop.row("b")) == ((10, 0, 5, 5), (10, 0, 2, 8))
    assert shop.set(a=0) == {"a": (10, 0, 0, 10)}  # 0 is a figure of its own, not the default
    assert shop.set(a=None) == {"a": (10, 0, 2, 8)}


def test_an_allocation_is_refused_for_a_products_own_safety_stock_and_accepted_once_it_is_null() -> None:
    shop = SafetyShop({"a": 10}, default_safety_stock=1)
    shop.set(a=6)

    with pytest.raises(InsufficientStock) as refused:
        shop.allocate("al-1", a=5)
    assert refused.value.details[0]["available"] == 4
    shop.set(a=None)
    view, created = shop.allocate("al-1", a=5)

    assert created
    assert view.open == {"a": 5}
    assert shop.row("a") == (10, 5, 1, 4)


def test_shipment_applied_carries_the_products_own_safety_stock() -> None:
    shop = SafetyShop({"a": 10}, default_safety_stock=1)
    shop.set(a=3)

    shop.ship("ev-1", {"product_id": "a", "quantity": 2})

    (event,) = shop.published("Shipment Applied")
    (product,) = event.detail["products"]
    assert (product["stock_on_hand"], product["safety_stock"], product["available"]) == (8, 3, 5)
    # epoch 2 (the default set after the location's creation, the initial import), then the hot item's
    assert product["version"] == 2 * CHANGES_PER_EPOCH + shop.version("a")


def test_a_change_moves_the_version_and_the_same_figure_again_writes_nothing() -> None:
    shop = SafetyShop({"a": 10})
    before = shop.version("a")  # no hot item yet: 0

    shop.set(a=4)
    after_set = shop.repo.counters_of("s1", "a")
    shop.set(a=4)
    again = shop.repo.counters_of("s1", "a")

    assert (before, after_set.version, after_set.stock_version) == (0, 1, 1)
    assert again == after_set
    shop.set(a=None)
    assert shop.version("a") == 2
    shop.set(a=None)
    assert shop.version("a") == 2


def test_null_on_a_product_without_a_hot_item_creates_none_and_a_figure_creates_one() -> None:
    shop = SafetyShop({"a": 10}, default_safety_stock=2)

    answered = shop.set(a=None, new=3)

    assert answered == {"a": (10, 0, 2, 8), "new": (0, 0, 3, 0)}
    assert ("s1", "a") not in shop.repo.counters
    assert shop.repo.counters[("s1", "new")].safety_stock == 3
    listed = {r.product_id for r in shop.stock.availability_page("s1", 100, None).items}
    assert listed == {"a", "new"}  # a product with a figure of its own is one the location knows


def test_the_answer_keeps_the_order_of_the_request_across_reads_of_many_products() -> None:
    products = [f"p{n:04d}" for n in range(MAX_SAFETY_STOCK_ITEMS)]
    shop = SafetyShop(dict.fromkeys(products[:10], 5))

    rows = shop.safety.set("s1", [SafetyStockLine(p, n % 4) for n, p in enumerate(reversed(products))])

    assert [r.product_id for r in rows] == list(reversed(products))
    assert [r.safety_stock for r in rows] == [n % 4 for n in range(len(products))]
    assert shop.row("p0003") == (5, 0, (len(products) - 1 - 3) % 4, 5 - (len(products) - 1 - 3) % 4)


def a_store(repo: MemoryRepository) -> SafetyStockService:
    """Store s1 on `repo`, and the service on it."""
    MasterSwitchService(repo, FixedClock(), 15).put("s1", LocationChanges(type=LocationType.STORE))
    return SafetyStockService(repo, StockService(repo))


def shipped(repo: MemoryRepository, product_id: str, n: int) -> None:
    """A shipment line of one unit, written blind as the shipment path writes it."""
    line = shipment_entry(f"ev-{n}:0", 100 + n, NOW)
    event = OutboxEvent.of("Shipment Applied", "s1", NOW, {"products": []}, key=f"ev-{n}")
    assert repo.append_entry("s1", product_id, line, event, (0,)) is not None


class ChangedBeforeEachWrite(MemoryRepository):
    """Another change of the product comes between the service's read and its write, `times` times:
    a shipment line (the item exists), or another first write (it did not)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        if self.times:
            self.times -= 1
            if expected.exists:
                shipped(self, expected.product_id, self.times)
            else:
                assert super().set_safety_stock(location_id, expected, 9)
        return super().set_safety_stock(location_id, expected, safety_stock)


@pytest.mark.parametrize("existing", [True, False])
def test_a_write_refused_because_the_product_changed_reads_again_and_keeps_the_change(existing: bool) -> None:
    repo = ChangedBeforeEachWrite(times=3 if existing else 1)
    service = a_store(repo)
    if existing:
        shipped(repo, "a", 99)

    (row,) = service.set("s1", [SafetyStockLine("a", 2)])

    counters = repo.counters_of("s1", "a")
    assert (counters.safety_stock, row.safety_stock, row.version) == (2, 2, counters.version)
    if existing:  # every shipment line that came in between is kept, and the answer includes them
        assert (row.stock_on_hand, len(counters.ledger), counters.version) == (-4, 4, 5)
    else:  # the racing first write created the item: it was read and changed, not overwritten
        assert (row.stock_on_hand, counters.version) == (0, 2)


class StopsAtWrite(MemoryRepository):
    """The service stops (a throttle it gave up on, a timeout) at its `n`th write, counting from 1."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        self.n -= 1
        if self.n == 0:
            raise TemporarilyUnavailable("stopped on purpose")
        return super().set_safety_stock(location_id, expected, safety_stock)


def test_a_request_stopped_half_way_is_completed_by_its_repeat_which_rewrites_nothing_it_set() -> None:
    repo = StopsAtWrite(3)
    service = a_store(repo)
    lines = [SafetyStockLine(p, 1) for p in ("a", "b", "c", "d")]

    with pytest.raises(TemporarilyUnavailable):
        service.set("s1", lines)
    half = {p: repo.counters_of("s1", p) for p in "abcd"}
    written = {p for p, counters in half.items() if counters.safety_stock == 1}
    rows = service.set("s1", lines)

    assert 0 < len(written) < len(lines)  # some written, the stopped one not (the others run side by side)
    assert [r.safety_stock for r in rows] == [1, 1, 1, 1]
    assert {p: repo.counters_of("s1", p) for p in written} == {p: half[p] for p in written}  # not written again


# ---------------------------------------------------------------- the route, on the in-memory repository
@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> SafetyShop:
    shop = SafetyShop({"a": 10, "b": 3}, default_safety_stock=1)
    shop.set(b=2)
    monkeypatch.setattr(route, "safety_stock_service", lambda: shop.safety)
    return shop


def put(body: Any, location_id: str = "s1") -> tuple[int, Any]:
    app = make_resolver(route.router)
    response = app.resolve(http_event("PUT", f"/locations/{location_id}/safety-stock", body), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_the_route_answers_each_products_new_availability_row(api: SafetyShop) -> None:
    status, body = put({"items": [{"product_id": "a", "safety_stock": 4}, {"product_id": "b", "safety_stock": None}]})

    assert status == 200
    assert body == {
        "items": [
            {
                "product_id": "a",
                "stock_on_hand": 10,
                "allocated": 0,
                "safety_stock": 4,
                "available": 6,
                "uncounted": False,
                "version": 2 * CHANGES_PER_EPOCH + 1,  # epoch 2: the default set, the initial import
            },
            {
                "product_id": "b",
                "stock_on_hand": 3,
                "allocated": 0,
                "safety_stock": 1,
                "available": 2,
                "uncounted": False,
                "version": 2 * CHANGES_PER_EPOCH + 2,
            },
        ]
    }


def items(*pairs: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    return {"items": [{"product_id": p, "safety_stock": f, **extra} for p, f in pairs]}


TOO_MANY = [(f"p{n}", 1) for n in range(MAX_SAFETY_STOCK_ITEMS + 1)]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (items(("a", 1), ("b", -1)), "body.items[1].safety_stock", "greater_than_equal"),
        (items(("a", 1.5)), "body.items[0].safety_stock", "int_type"),
        (items(("a", "1")), "body.items[0].safety_stock", "int_type"),
        ({"items": [{"product_id": "a"}]}, "body.items[0].safety_stock", "missing"),
        (items(("a", 1), extra=1), "body.items[0].extra", "extra_forbidden"),
        (items(("a", 1), ("a", 2)), "body.items", "duplicate_product"),
        (items(*TOO_MANY), "body.items", "too_long"),
        (items(), "body.items", "too_short"),
        (items(("", 1)), "body.items[0].product_id", "string_too_short"),
    ],
)
def test_an_invalid_body_is_a_422_naming_the_field_and_changes_nothing(
    api: SafetyShop, body: dict[str, Any], field: str, code: str
) -> None:
    before = dict(api.repo.counters)

    status, answer = put(body)

    assert status == 422
    assert answer["error"]["code"] == "validation_error"
    assert {"field": field, "code": code} in [{k: d[k] for k in ("field", "code")} for d in answer["error"]["details"]]
    assert api.repo.counters == before
    assert (api.row("a"), api.row("b")) == ((10, 0, 1, 9), (3, 0, 2, 1))


def test_an_unknown_location_is_a_404_and_changes_nothing(api: SafetyShop) -> None:
    before = dict(api.repo.counters)

    status, answer = put({"items": [{"product_id": "a", "safety_stock": 1}]}, location_id="nowhere")

    assert (status, answer["error"]["code"]) == (404, "not_found")
    assert api.repo.counters == before


def test_the_service_refuses_what_the_route_would_before_it_writes() -> None:
    shop = SafetyShop({"a": 1})
    before = dict(shop.repo.counters)

    with pytest.raises(InvalidInput) as twice:
        shop.safety.set("s1", [SafetyStockLine("a", 1), SafetyStockLine("a", 2)])
    with pytest.raises(InvalidInput):
        shop.safety.set("s1", [SafetyStockLine(f"p{n}", 1) for n in range(MAX_SAFETY_STOCK_ITEMS + 1)])
    with pytest.raises(NotFound):
        shop.safety.set("nowhere", [SafetyStockLine("a", 1)])

    assert twice.value.details[0]["code"] == "duplicate_product"
    assert shop.repo.counters == before


# ---------------------------------------------------------------- against the reference
PRODUCTS = ("a", "b", "c")
figures = st.none() | st.integers(min_value=0, max_value=4)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.dictionaries(st.sampled_from(PRODUCTS), figures, min_size=1)),
        st.tuples(st.just("allocate"), st.dictionaries(st.sampled_from(PRODUCTS), st.integers(1, 4), min_size=1)),
        st.tuples(st.just("ship"), st.sampled_from(PRODUCTS), st.integers(1, 3)),
        st.tuples(st.just("default"), st.integers(min_value=0, max_value=3)),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(stock=st.dictionaries(st.sampled_from(PRODUCTS), st.integers(0, 8)), history=steps)
def test_availability_and_allocation_decisions_keep_to_the_reference(
    stock: dict[str, int], history: list[tuple[Any, ...]]
) -> None:
    """Given a store's stock, when products' safety stock is set and cleared between allocations,
    shipments and changes of the location's default, then every figure and every allocation's
    outcome is the reference's, and a product's version grows exactly when its figure changes."""
    shop = SafetyShop(stock or None)
    model = ErpStore()
    if stock:
        model.accept_import("base", "initial", stock, None)
        model.complete_import("base")
    for n, step in enumerate(history):
        if step[0] == "set":
            before = {p: shop.repo.counters_of("s1", p) for p in step[1]}
            model.set_safety_stock(step[1])
            answered = shop.set(**step[1])
            for p, (_, _, safety, available) in answered.items():
                assert (safety, available) == (model.safety(p), model.available(p))
                changed = before[p].safety_stock != step[1][p]
                assert shop.version(p) == before[p].version + changed
        elif step[0] == "allocate":
            outcome = model.allocate(f"al-{n}", step[1], from_bus=False)
            try:
                shop.allocate(f"al-{n}", **step[1])
                assert outcome == "opened"
            except InsufficientStock:
                assert outcome == "refused"
        elif step[0] == "ship":
            _, product, quantity = step
            model.ship(f"ev-{n}", "body", 100 + n, [(product, quantity, None)])
            shop.ship(f"ev-{n}", {"product_id": product, "quantity": quantity}, timestamp=100 + n)
        else:
            model.safety_stock = step[1]
            shop.locations.put("s1", LocationChanges(type=LocationType.STORE, default_safety_stock=step[1]))
        for p in PRODUCTS:
            readings = shop.stock.availability_page("s1", 10, None, p).items
            expected = (model.stock_on_hand(p), model.allocated(p), model.safety(p), model.available(p))
            assert [(r.stock_on_hand, r.allocated, r.safety_stock, r.available) for r in readings] in (
                [expected],
                [] if expected == (0, 0, model.safety_stock, 0) else [expected],
            ), p
