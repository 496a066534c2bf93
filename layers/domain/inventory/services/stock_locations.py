"""The retailer's stock location types: adding one, changing whether it is salable, listing them
(SPEC.md sections 2 and 4).

The rules: names of `STOCK_LOCATION_PATTERN`, at most MAX_STOCK_LOCATIONS types, `main` salable
always, and `salable` fixed once the type is in use (a write has put a quantity other than 0 into
it at some location: the mark on the configuration, set by that write, `mark_in_use`). Each is
checked on what was read, and held by the condition of the one write that changes the
configuration, so that a refused request writes nothing and a race is decided by the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from inventory.errors import (
    InvalidInput,
    MainAlwaysSalable,
    StockLocationInUse,
    TemporarilyUnavailable,
    TooManyStockLocations,
)
from inventory.models.stock_locations import StockLocations, StockLocationType
from inventory.types import MAIN, MAX_STOCK_LOCATIONS, STOCK_LOCATION_PATTERN, matches

if TYPE_CHECKING:
    from inventory.ports import StockLocationRepository

WRITE_ATTEMPTS = 5  # reads and conditional writes, when concurrent changes of the configuration win


class StockLocationService:
    def __init__(self, repository: StockLocationRepository) -> None:
        self._repo = repository

    def list(self) -> StockLocations:
        return self._repo.stock_locations()

    def put(self, name: str, salable: bool) -> tuple[StockLocationType, bool]:
        """Add the type (created: True) or set its `salable`; the same value again writes nothing."""
        if not matches(STOCK_LOCATION_PATTERN, name):
            raise InvalidInput(
                f"{name!r} is not a stock location name",
                details=[{"field": "path.name", "code": "string_pattern_mismatch", "message": STOCK_LOCATION_PATTERN}],
            )
        for _ in range(WRITE_ATTEMPTS):
            current = self._repo.stock_locations()
            existing = current.get(name)
            if existing is None:
                if len(current) >= MAX_STOCK_LOCATIONS:
                    raise TooManyStockLocations(
                        f"{MAX_STOCK_LOCATIONS} stock location types are configured, the most there can be"
                    )
                if self._repo.add_stock_location(name, salable, at_most=MAX_STOCK_LOCATIONS):
                    return StockLocationType(name=name, salable=salable), True
                continue  # added meanwhile, or the limit reached: read again
            if existing.salable == salable:
                return existing, False
            if name == MAIN:
                raise MainAlwaysSalable("main is salable, always")
            if existing.in_use:
                raise _in_use(name)
            if self._repo.set_stock_location_salable(name, salable):
                return existing.model_copy(update={"salable": salable}), False
            # marked in use meanwhile: read again, which says so
        raise TemporarilyUnavailable("the stock location types kept changing; try again")


def _in_use(name: str) -> StockLocationInUse:
    return StockLocationInUse(
        f"stock location {name!r} has held stock: whether it is salable can no longer change "
        "(the mark is kept even when every location is back at 0)"
    )


def mark_in_use(repository: StockLocationRepository, names: Iterable[str], known: StockLocations) -> StockLocations:
    """Mark each of these types in use that `known` (a read of the configuration) does not show
    marked, before the write that puts a quantity other than 0 into it; the configuration as it is
    after. Call it once per request or step with every type its writes put stock into, not once per
    row: a type is marked once, ever (then every read shows it marked)."""
    wanted = sorted({name for name in names if not known.in_use(name)})
    for name in wanted:
        repository.mark_stock_location_in_use(name)
    if not wanted:
        return known
    return StockLocations(
        types=tuple(t.model_copy(update={"in_use": True}) if t.name in wanted else t for t in known.types)
    )
