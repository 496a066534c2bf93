"""The retailer's stock location types: one item (`keys.stock_locations_key`), with one attribute per
type (`sl#<name>`: its `salable`), one per type marked in use (`use#<name>`), and `types`, how many
there are (what the limit's condition compares).

No item stored means the default types (`inventory.types.DEFAULT_STOCK_LOCATIONS`), none in use. The
first write of any kind puts the defaults first (once, on the condition that no item exists), then
makes its own conditional update of the item, so that every rule is one condition of one write:
a new type only while `types` is below the limit, `salable` only while its type is not marked in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inventory.adapters.dynamodb.expressions import Update
from inventory.adapters.dynamodb.keys import (
    IN_USE_PREFIX,
    STOCK_LOCATION_PREFIX,
    in_use_attribute,
    named_by,
    stock_location_attribute,
    stock_locations_key,
)
from inventory.adapters.dynamodb.table import TableItems
from inventory.errors import Conflict
from inventory.models.stock_locations import StockLocations
from inventory.types import DEFAULT_STOCK_LOCATIONS


def stock_locations_of(item: Mapping[str, Any]) -> StockLocations:
    salable = {
        named_by(name, STOCK_LOCATION_PREFIX): bool(value)
        for name, value in item.items()
        if name.startswith(STOCK_LOCATION_PREFIX)
    }
    in_use = {named_by(name, IN_USE_PREFIX) for name in item if name.startswith(IN_USE_PREFIX)}
    return StockLocations.of(salable, in_use)


def _defaults_item() -> dict[str, Any]:
    return {
        **stock_locations_key(),
        "types": len(DEFAULT_STOCK_LOCATIONS),
        "version": 1,
        **{stock_location_attribute(name): salable for name, salable in DEFAULT_STOCK_LOCATIONS.items()},
    }


class StockLocationTypes(TableItems):
    """Implements StockLocationRepository."""

    def stock_locations(self) -> StockLocations:
        item = self._table.get(stock_locations_key())
        return stock_locations_of(item) if item else StockLocations.defaults()

    def add_stock_location(self, name: str, salable: bool, *, at_most: int) -> bool:
        attribute = stock_location_attribute(name)
        update = Update().set(attribute, salable).increment("types").increment("version")
        condition = f"{update.absent(attribute)} AND {update.name('types')} < {update.value(at_most)}"
        return self._update_stored(update, condition)

    def set_stock_location_salable(self, name: str, salable: bool) -> bool:
        attribute = stock_location_attribute(name)
        update = Update().set(attribute, salable).increment("version")
        condition = f"{update.exists(attribute)} AND {update.absent(in_use_attribute(name))}"
        return self._update_stored(update, condition)

    def mark_stock_location_in_use(self, name: str) -> None:
        update = Update().set(in_use_attribute(name), True)
        if not self._update_stored(update, update.exists(stock_location_attribute(name))):
            raise Conflict(f"stock location {name!r} is not configured")

    def _update_stored(self, update: Update, condition: str) -> bool:
        """Apply `update` to the stored item if `condition` holds; with none stored, the defaults
        are put first. False when the condition refused."""
        key = stock_locations_key()
        for _ in range(2):
            if self._table.update(update, key, f"{update.exists('pk')} AND {condition}", returns="NONE") is not None:
                return True
            if self._table.get(key) is not None:
                return False
            self._table.put_new(_defaults_item())  # False: another write put them first, as good
        return False
