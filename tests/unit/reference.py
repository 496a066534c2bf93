"""The reference semantics of SPEC.md section 3, written for the tests and importing nothing from
the service: small enough to be obviously right. ERP master, one product, the main stock location."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Import:
    order: int  # when the service accepted it, among everything it applied
    quantity: int
    included_through: int | None  # shipments_included_through


@dataclass
class Shipment:
    order: int  # when the service applied it
    logical_timestamp: int
    quantity: int


@dataclass
class ErpProduct:
    imports: list[Import] = field(default_factory=list)  # completed, in completion order
    shipments: list[Shipment] = field(default_factory=list)

    def stock_on_hand(self) -> int:
        """Base (the last completed import) plus the shipments that import did not include."""
        base = self.imports[-1] if self.imports else None
        total = base.quantity if base else 0
        for shipment in self.shipments:
            if base is None:
                after = True
            elif base.included_through is not None:
                after = shipment.logical_timestamp > base.included_through
            else:
                after = shipment.order > base.order
            if after:
                total -= shipment.quantity
        return total
