"""A product's published `version`: its epoch (the location's `figures_version` and the product's base
sequence), then its hot item's `version` (docs/data-design.md, "Published versions"). Consumers keep
the highest version per product, so it must grow with every change of the product's figures, also
with those that write no product item: an import, a location setting, the switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.figures import CHANGES_PER_EPOCH, availability, product_stock, published_version
from inventory.models import ImportKind, InventoryMaster, Location, LocationChanges, LocationType, VisibleImport
from inventory.models.counters import ProductCounters
from inventory.models.imports import RowOrigin, StockRow
from inventory.models.stock_locations import StockLocations
from tests.unit.test_allocations import Shop
from tests.unit.test_import_service import World

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TYPES = StockLocations.defaults()
JSON_SAFE = 2**53  # the integers a JSON consumer (a double) holds exactly


def a_location(figures_version: int = 0, *visible: VisibleImport) -> Location:
    return Location(
        location_id="s1",
        type=LocationType.STORE,
        created_at=NOW,
        updated_at=NOW,
        figures_version=figures_version,
        visible_imports=visible,
        import_seq=max((v.seq for v in visible), default=0),
    )


def layer(seq: int, kind: ImportKind = ImportKind.PARTIAL) -> VisibleImport:
    at = NOW + timedelta(minutes=seq)
    return VisibleImport(seq=seq, import_id=f"i{seq}", kind=kind, accepted_at=at, completed_at=at)


def version_of(location: Location, rows: dict[int, list[StockRow]], counters: ProductCounters) -> int:
    stock = product_stock("p", location.visible_imports, rows, counters, TYPES)
    return published_version(location, stock, counters)


def row(quantity: int, stock_location: str = "main", origin: RowOrigin | None = None) -> StockRow:
    return StockRow(product_id="p", stock_location=stock_location, quantity=quantity, origin=origin)


# ---------------------------------------------------------------- the number
def test_a_product_without_a_base_publishes_its_hot_items_version_under_the_locations_figures_version() -> None:
    counters = ProductCounters(product_id="p", version=7, exists=True)

    assert version_of(a_location(), {}, counters) == 7
    assert version_of(a_location(3), {}, counters) == 3 * CHANGES_PER_EPOCH + 7


def test_the_base_sequence_is_the_newest_import_any_of_the_products_stock_locations_has_its_base_from() -> None:
    """Given a full import (seq 1) and two partial ones (seq 2 for another stock location, seq 3 not
    holding the product), the product's epoch is 2 plus the location's figures_version."""
    location = a_location(4, layer(1, ImportKind.INITIAL), layer(2), layer(3))
    counters = ProductCounters(product_id="p", version=5, exists=True)

    version = version_of(location, {1: [row(10)], 2: [row(1, "damaged")], 3: []}, counters)

    assert version == (4 + 2) * CHANGES_PER_EPOCH + 5


def test_a_full_imports_implied_zero_is_a_base_of_its_sequence() -> None:
    """Given a product a full import (seq 3) omits, after a partial import (seq 2) that had a row of
    it (superseded), its base is the full import's 0, and so its base sequence 3."""
    before = a_location(0, layer(1, ImportKind.INITIAL), layer(2))
    after = a_location(0, layer(3, ImportKind.FULL_COUNT))
    counters = ProductCounters(product_id="p")

    assert version_of(before, {1: [row(5)], 2: [row(6)]}, counters) == 2 * CHANGES_PER_EPOCH
    assert version_of(after, {3: []}, counters) == 3 * CHANGES_PER_EPOCH


def test_a_merged_row_keeps_the_sequence_of_the_import_it_came_from() -> None:
    """Given a partial import (seq 4) that merged in the row of an earlier one (seq 2), the product's
    base sequence stays 2: a merge of layers changes no figure, and no version."""
    origin = RowOrigin(seq=2, import_id="i2", accepted_at=NOW, layer=2)
    location = a_location(0, layer(1, ImportKind.INITIAL), layer(4))
    counters = ProductCounters(product_id="p", version=1, exists=True)

    assert version_of(location, {1: [row(3)], 4: [row(6, origin=origin)]}, counters) == 2 * CHANGES_PER_EPOCH + 1


def test_availability_publishes_the_published_version() -> None:
    location = a_location(2, layer(1, ImportKind.INITIAL))
    counters = ProductCounters(product_id="p", version=3, exists=True)
    stock = product_stock("p", location.visible_imports, {1: [row(9)]}, counters, TYPES)

    assert availability(location, stock, counters).version == published_version(location, stock, counters)
    assert availability(location, stock, counters).version == 3 * CHANGES_PER_EPOCH + 3


@given(
    older=st.tuples(st.integers(0, 899_999), st.integers(0, CHANGES_PER_EPOCH - 1)),
    newer=st.tuples(st.integers(0, 899_999), st.integers(0, CHANGES_PER_EPOCH - 1)),
)
def test_versions_order_by_epoch_first_then_by_the_hot_items_version_and_stay_json_safe(
    older: tuple[int, int], newer: tuple[int, int]
) -> None:
    """Given two readings (epoch, hot item version) within the stated bounds, their published
    versions order as the pairs do: a reading under an older location snapshot, however new its hot
    item, is below every reading under a newer epoch. Every version is below 2**53 and at least the
    hot item's own version (what was published before)."""
    versions = []
    for epoch, hot in (older, newer):
        counters = ProductCounters(product_id="p", version=hot, exists=True)
        versions.append(version_of(a_location(epoch), {}, counters))

    assert (versions[0] < versions[1]) == (older < newer)
    assert all(v < JSON_SAFE for v in versions)
    assert versions[0] >= older[1]
    assert versions[1] >= newer[1]


# ---------------------------------------------------------------- through the services, on the fake
def published(world: World, product_id: str = "a") -> int:
    (figures,) = world.stock.availability_page("s1", 10, None, product_id).items
    return figures.version


@pytest.fixture
def world() -> Shop:
    return Shop({"a": 5, "b": 3})


def test_every_change_of_a_products_figures_without_a_write_of_it_raises_its_version(world: Shop) -> None:
    """Given a store with an initial import and an allocation of a product (so that it keeps a row
    once no import holds it), when a partial import touches the product, a full import omits it, the
    default safety stock changes, trust_imported_stock changes, and the store switches, then the
    product's published version grows at each step; and a partial import that does not touch it
    leaves it."""
    world.allocate("al-1", a=1)
    seen = [published(world)]

    world.import_inline("i2", ImportKind.PARTIAL, {"a": 7})
    seen.append(published(world))
    b_before = published(world, "b")
    world.import_inline("i3", ImportKind.PARTIAL, {"b": 1})
    assert published(world) == seen[-1]  # i3 did not touch "a"
    assert published(world, "b") > b_before
    world.import_inline("i4", ImportKind.FULL_COUNT, {"b": 1})  # "a" omitted: its stock goes to 0
    seen.append(published(world))
    world.locations.put("s1", LocationChanges(type=LocationType.STORE, default_safety_stock=2))
    seen.append(published(world))
    world.locations.put("s1", LocationChanges(type=LocationType.STORE, trust_imported_stock=True))
    seen.append(published(world))
    world.locations.switch("s1", InventoryMaster.PLATFORM, "tester")
    seen.append(published(world))

    assert all(a < b for a, b in pairwise(seen)), seen


def test_a_location_write_that_changes_no_figure_leaves_every_version(world: Shop) -> None:
    """Given a store, when it is renamed, disabled, allowed backorders, and given the safety stock it
    has already, then no product's published version moves (and the location's figures_version stays)."""
    before = {p: published(world, p) for p in "ab"}

    world.locations.put("s1", LocationChanges(type=LocationType.STORE, name="renamed", enabled=False))
    world.locations.put("s1", LocationChanges(type=LocationType.STORE, allow_backorders=True))
    world.locations.put("s1", LocationChanges(type=LocationType.STORE, default_safety_stock=0))

    assert {p: published(world, p) for p in "ab"} == before
    assert world.repo.get_location("s1").figures_version == 0  # type: ignore[union-attr]
