"""The retailer's stock location types (SPEC.md section 2): one configuration for every location,
stored as one item (docs/data-design.md), the defaults of `inventory.types` until anything is stored."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pydantic import BaseModel, ConfigDict

from inventory.types import DEFAULT_STOCK_LOCATIONS, MAIN


class StockLocationType(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    salable: bool
    # Whether a write has ever put a quantity other than 0 into this type at some location (the
    # mark is never cleared: the service does not scan every location to see them all back at 0).
    in_use: bool = False


class StockLocations(BaseModel):
    """The configured types, `main` first, then by name (a stable order for every answer)."""

    model_config = ConfigDict(frozen=True)

    types: tuple[StockLocationType, ...]

    @classmethod
    def of(cls, salable: Mapping[str, bool], in_use: Collection[str] = ()) -> StockLocations:
        """From each type's `salable`, and the names marked in use; `main` is there, salable, always."""
        merged = {**salable, MAIN: True}
        return cls(
            types=tuple(
                StockLocationType(name=name, salable=merged[name], in_use=name in in_use)
                for name in sorted(merged, key=lambda name: (name != MAIN, name))
            )
        )

    @classmethod
    def defaults(cls) -> StockLocations:
        """What holds while nothing is stored: the default types, none marked in use."""
        return cls.of(DEFAULT_STOCK_LOCATIONS)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def get(self, name: str) -> StockLocationType | None:
        return next((t for t in self.types if t.name == name), None)

    def known(self, name: str) -> bool:
        return self.get(name) is not None

    def salable(self, name: str) -> bool:
        """Whether stock in `name` counts toward stock on hand (an unknown name does not)."""
        found = self.get(name)
        return found is not None and found.salable

    def in_use(self, name: str) -> bool:
        found = self.get(name)
        return found is not None and found.in_use

    def __len__(self) -> int:
        return len(self.types)
