"""The stock location types (SPEC.md sections 2 and 4) against the in-memory ports: the service's
rules and refusals, the in-use mark that imports set, and what salability does to stock on hand.
The same through the real handlers on DynamoDB: tests/integration/test_stock_locations.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from inventory.api.http import status_of
from inventory.errors import (
    Conflict,
    InvalidInput,
    MainAlwaysSalable,
    StockLocationInUse,
    TooManyStockLocations,
)
from inventory.models import ImportKind, LocationChanges, LocationType
from inventory.models.imports import StockRow
from inventory.models.stock_locations import StockLocations, StockLocationType
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.stock import StockService
from inventory.services.stock_locations import StockLocationService, mark_in_use
from inventory.types import DEFAULT_STOCK_LOCATIONS, MAIN, MAX_STOCK_LOCATIONS
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryQueue, MemoryRepository

DEFAULT_NAMES = list(DEFAULT_STOCK_LOCATIONS)  # main, damaged, display, returns
NOT_SALABLE = DEFAULT_NAMES[1]  # damaged


class World:
    def __init__(self) -> None:
        self.repo = MemoryRepository()
        self.clock = FixedClock()
        self.queue = MemoryQueue()
        self.types = StockLocationService(self.repo)
        self.imports = ImportRunner(self.repo, MemoryFiles(), self.queue, self.clock, chunk_rows=2)
        self.stock = StockService(self.repo)
        self.repo.put_location("s1", LocationChanges(type=LocationType.STORE), self.clock.now())
        self.writes: list[str] = []
        for method in ("add_stock_location", "set_stock_location_salable", "mark_stock_location_in_use"):
            self._count(method)

    def _count(self, method: str) -> None:
        original: Callable[..., Any] = getattr(self.repo, method)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.writes.append(f"{method}:{args[0]}")
            return original(*args, **kwargs)

        setattr(self.repo, method, counted)

    def import_rows(self, import_id: str, kind: ImportKind, rows: list[tuple[str, str, int]]) -> None:
        items = [StockRow(product_id=p, stock_location=s, quantity=q) for p, s, q in rows]
        self.imports.accept("s1", ImportRequest(import_id, kind, items=items), "tester")
        while self.queue.messages:
            message = self.queue.messages.pop(0)
            self.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 10**9)

    def listed(self) -> list[tuple[str, bool, bool]]:
        return [(t.name, t.salable, t.in_use) for t in self.types.list().types]


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------- the configuration
def test_with_nothing_stored_the_defaults_hold_none_in_use(world: World) -> None:
    assert world.listed() == [
        ("main", True, False),
        ("damaged", False, False),
        ("display", False, False),
        ("returns", False, False),
    ]
    assert world.repo.stock_location_types is None


def test_a_new_type_is_created_then_the_same_again_writes_nothing(world: World) -> None:
    created = world.types.put("backroom", True)
    again = world.types.put("backroom", True)

    assert created == (StockLocationType(name="backroom", salable=True), True)
    assert again == (StockLocationType(name="backroom", salable=True), False)
    assert world.writes == ["add_stock_location:backroom"]
    assert [name for name, _, _ in world.listed()] == ["main", "backroom", "damaged", "display", "returns"]


def test_a_type_not_in_use_changes_salable_and_a_default_repeated_writes_nothing(world: World) -> None:
    assert world.types.put(NOT_SALABLE, False) == (StockLocationType(name=NOT_SALABLE, salable=False), False)
    assert world.types.put(MAIN, True)[1] is False
    assert world.repo.stock_location_types is None  # nothing stored: still the defaults

    updated, created = world.types.put(NOT_SALABLE, True)

    assert (updated.salable, created) == (True, False)
    assert (NOT_SALABLE, True, False) in world.listed()


def refused(world: World, error: type[Exception], call: Callable[[], object]) -> Exception:
    """`call` raises `error`, and leaves everything a client reads back as it was."""
    before = (world.listed(), world.repo.stock_location_types, set(world.repo.stock_locations_in_use))
    writes = list(world.writes)
    with pytest.raises(error) as raised:
        call()
    assert (world.listed(), world.repo.stock_location_types, world.repo.stock_locations_in_use) == before
    assert world.writes == writes
    return raised.value


def test_main_cannot_be_made_unsalable(world: World) -> None:
    error = refused(world, MainAlwaysSalable, lambda: world.types.put(MAIN, False))

    assert (error.code, status_of(error)) == ("main_always_salable", 409)  # type: ignore[attr-defined]


def test_a_seventeenth_type_is_refused(world: World) -> None:
    for n in range(MAX_STOCK_LOCATIONS - len(DEFAULT_NAMES)):
        world.types.put(f"bin_{n}", n % 2 == 0)
    assert len(world.listed()) == MAX_STOCK_LOCATIONS

    error = refused(world, TooManyStockLocations, lambda: world.types.put("one_more", False))

    assert (error.code, status_of(error)) == ("too_many_stock_locations", 409)  # type: ignore[attr-defined]
    assert world.types.put("bin_0", True)[1] is False  # the existing ones still answer


@pytest.mark.parametrize("name", ["Main", "9lives", "back-room", "", "a" * 33, "_x", "é"])
def test_a_name_of_another_form_is_invalid_input(world: World, name: str) -> None:
    error = refused(world, InvalidInput, lambda: world.types.put(name, True))

    assert status_of(error) == 422  # type: ignore[arg-type]


def test_a_type_that_held_stock_keeps_its_salable_even_back_at_zero(world: World) -> None:
    world.import_rows("i1", ImportKind.INITIAL, [("p", "main", 3), ("p", NOT_SALABLE, 2)])
    world.import_rows("i2", ImportKind.FULL_COUNT, [("p", "main", 3)])  # damaged back to 0 everywhere

    error = refused(world, StockLocationInUse, lambda: world.types.put(NOT_SALABLE, True))

    assert (error.code, status_of(error)) == ("stock_location_in_use", 409)  # type: ignore[attr-defined]
    assert (NOT_SALABLE, False, True) in world.listed()


def test_a_mark_that_lands_between_the_read_and_the_write_refuses_the_change(world: World) -> None:
    """Given a type not in use when read, when an import marks it before the change is written,
    then the conditional write refuses, the service reads again and answers stock_location_in_use."""
    read = world.repo.stock_locations
    reads = []

    def racing() -> StockLocations:
        seen = read()
        if not reads:
            world.repo.mark_stock_location_in_use(NOT_SALABLE)  # the import, between read and write
        reads.append(seen)
        return seen

    world.repo.stock_locations = racing  # type: ignore[method-assign]

    with pytest.raises(StockLocationInUse):
        world.types.put(NOT_SALABLE, True)
    assert len(reads) == 2
    assert world.repo.stock_locations().salable(NOT_SALABLE) is False


def test_a_type_added_meanwhile_is_answered_as_it_is(world: World) -> None:
    read = world.repo.stock_locations

    def racing() -> StockLocations:
        seen = read()
        if not seen.known("backroom"):
            world.repo.add_stock_location("backroom", True, at_most=MAX_STOCK_LOCATIONS)  # another request
        return seen

    world.repo.stock_locations = racing  # type: ignore[method-assign]

    assert world.types.put("backroom", True) == (StockLocationType(name="backroom", salable=True), False)


# ---------------------------------------------------------------- the in-use mark
def test_an_import_marks_the_types_it_puts_stock_into_once_not_per_row(world: World) -> None:
    rows = [(f"p{n}", "main", n) for n in range(1, 6)] + [(f"p{n}", "display", 0) for n in range(5)]
    rows += [("q", "returns", 1)]

    world.import_rows("i1", ImportKind.INITIAL, rows)  # chunks of 2 rows: 6 chunks
    world.import_rows("i2", ImportKind.PARTIAL, [("r", "main", 4), ("r", "returns", 2)])

    assert world.writes == ["mark_stock_location_in_use:main", "mark_stock_location_in_use:returns"]
    assert [(name, in_use) for name, _, in_use in world.listed()] == [
        ("main", True),
        ("damaged", False),
        ("display", False),  # only zeros were imported into it
        ("returns", True),
    ]


def test_mark_in_use_marks_only_what_the_read_did_not_show_marked() -> None:
    repo = MemoryRepository()
    known = mark_in_use(repo, ["main", "main", "display"], repo.stock_locations())

    assert [t.name for t in known.types if t.in_use] == ["main", "display"]
    assert known == repo.stock_locations()
    repo.fail_next("mark_stock_location_in_use", AssertionError("marked again"))
    assert mark_in_use(repo, ["display"], known) == known


def test_marking_a_type_that_is_not_configured_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        MemoryRepository().mark_stock_location_in_use("attic")


# ---------------------------------------------------------------- imports and stock
def test_an_inline_import_naming_an_unknown_type_is_refused_with_its_index(world: World) -> None:
    items = [StockRow(product_id="a", stock_location="main", quantity=1)]
    items.append(StockRow(product_id="b", stock_location="attic", quantity=1))

    with pytest.raises(InvalidInput) as refused_:
        world.imports.accept("s1", ImportRequest("i1", ImportKind.PARTIAL, items=items), "tester")

    assert [(d["field"], d["code"]) for d in refused_.value.details] == [
        ("body.items[1].stock_location", "unknown_stock_location")
    ]
    assert world.queue.messages == []
    assert world.repo.get_import("s1", "i1") is None


def test_an_import_into_a_new_type_shows_in_the_stock_and_counts_when_salable(world: World) -> None:
    world.types.put("backroom", True)
    world.types.put("quarantine", False)

    world.import_rows(
        "i1", ImportKind.INITIAL, [("p", "main", 3), ("p", "backroom", 4), ("p", "quarantine", 5), ("p", "display", 6)]
    )

    stock = world.stock.product("s1", "p")
    assert [(f.stock_location, f.quantity, f.salable) for f in stock.stock_locations] == [
        ("main", 3, True),
        ("backroom", 4, True),
        ("display", 6, False),
        ("quarantine", 5, False),
    ]
    assert stock.stock_on_hand == 7
    (row,) = world.stock.availability_page("s1", 10, None).items
    assert (row.stock_on_hand, row.available) == (7, 7)
    listed = world.stock.page("s1", 10, None).items[0]
    assert (listed.stock_on_hand, len(listed.stock_locations)) == (7, 4)


def test_a_type_made_salable_before_it_held_stock_counts_toward_stock_on_hand(world: World) -> None:
    world.import_rows("i1", ImportKind.INITIAL, [("p", "main", 3), ("p", "display", 0)])
    world.types.put("display", True)  # only zeros there: not in use

    world.import_rows("i2", ImportKind.PARTIAL, [("p", "display", 2)])

    assert world.stock.product("s1", "p").stock_on_hand == 5
    with pytest.raises(StockLocationInUse):
        world.types.put("display", False)
