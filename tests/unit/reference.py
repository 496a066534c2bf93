"""The reference semantics of SPEC.md section 3, written for the tests and importing nothing from
the service: small enough to be obviously right. ERP master, the main stock location: one product
(ErpProduct), and a whole location with imports, shipments and allocations (ErpStore)."""

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


# ---------------------------------------------------------------------------------------------
# A whole ERP-master location: several products (main stock only), imports of every kind, and
# allocations that shipments, handovers and releases close (SPEC.md sections 3 and 5).

BASELINE_KINDS = ("initial", "full_count")  # a product they omit gets a base of 0


@dataclass
class StockImport:
    order: int  # when the service accepted it
    kind: str
    rows: dict[str, int]
    included_through: int | None


@dataclass
class ReferenceAllocation:
    items: dict[str, int] | None  # None: known only from a release or a shipment that came first
    status: str  # "open", "released" or "refused"
    received: int = 0  # the order in which it was received: shipments serve the oldest first
    open: dict[str, int] = field(default_factory=dict)  # per product, the units still open


@dataclass
class ErpStore:
    safety_stock: int = 0
    allow_backorders: bool = False
    accepted: dict[str, StockImport] = field(default_factory=dict)  # by import id
    completed: list[StockImport] = field(default_factory=list)  # in completion order
    shipments: dict[str, list[Shipment]] = field(default_factory=dict)  # per product
    allocations: dict[str, ReferenceAllocation] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)  # applied shipment events: id -> body
    order: int = 0

    def _next(self) -> int:
        self.order += 1
        return self.order

    # ---- figures
    def base(self, product_id: str) -> Import | None:
        """The newest completed import with a row for the product, or that omits it and is a baseline."""
        for imported in reversed(self.completed):
            if product_id in imported.rows:
                return Import(imported.order, imported.rows[product_id], imported.included_through)
            if imported.kind in BASELINE_KINDS:
                return Import(imported.order, 0, imported.included_through)
        return None

    def stock_on_hand(self, product_id: str) -> int:
        base = self.base(product_id)
        return ErpProduct([base] if base else [], self.shipments.get(product_id, [])).stock_on_hand()

    def open_allocations(self, product_id: str) -> dict[str, int]:
        return {a_id: a.open[product_id] for a_id, a in self.allocations.items() if a.open.get(product_id, 0) > 0}

    def allocated(self, product_id: str) -> int:
        return sum(self.open_allocations(product_id).values())

    def available(self, product_id: str) -> int:
        return max(0, self.stock_on_hand(product_id) - self.safety_stock - self.allocated(product_id))

    # ---- imports
    def accept_import(self, import_id: str, kind: str, rows: dict[str, int], included_through: int | None) -> bool:
        """Whether the import is new (the same import again changes nothing)."""
        if import_id in self.accepted:
            return False
        self.accepted[import_id] = StockImport(self._next(), kind, dict(rows), included_through)
        return True

    def complete_import(self, import_id: str) -> None:
        self.completed.append(self.accepted[import_id])

    # ---- allocations
    def allocate(self, allocation_id: str, items: dict[str, int], *, from_bus: bool) -> str:
        """The outcome: opened, refused, repeat (the id is known: nothing changes) or reused (other content)."""
        known = self.allocations.get(allocation_id)
        if known is not None:
            return "reused" if known.items is not None and known.items != items else "repeat"
        short = any(self.available(p) < q for p, q in items.items())
        if short and not self.allow_backorders:
            if from_bus:  # recorded, so that a repeat answers the same
                self.allocations[allocation_id] = ReferenceAllocation(dict(items), "refused")
            return "refused"
        self.allocations[allocation_id] = ReferenceAllocation(dict(items), "open", self._next(), dict(items))
        return "opened"

    def release(self, allocation_id: str, *, from_bus: bool) -> str:
        """The outcome: released, repeat, or not_found (what the API answers for an unknown id)."""
        known = self.allocations.get(allocation_id)
        if known is None:
            if not from_bus:
                return "not_found"
            self.allocations[allocation_id] = ReferenceAllocation(None, "released")  # its creation opens nothing
            return "released"
        if known.status != "open":
            return "repeat"
        known.status, known.open = "released", {}
        return "released"

    # ---- shipments and handovers
    def ship(self, event_id: str, body: str, logical_timestamp: int, lines: list[tuple[str, int, str | None]]) -> str:
        """The outcome: applied, repeat (the same event again) or reused (its id with another body: refused)."""
        if event_id in self.events:
            return "repeat" if self.events[event_id] == body else "reused"
        self.events[event_id] = body
        for _, _, allocation_id in lines:
            if allocation_id is not None and allocation_id not in self.allocations:
                self.allocations[allocation_id] = ReferenceAllocation(None, "released")  # shipped before created
        for product_id, quantity, allocation_id in lines:
            self.shipments.setdefault(product_id, []).append(Shipment(self._next(), logical_timestamp, quantity))
            if allocation_id is not None:
                holders = [self.allocations[allocation_id]]
            else:
                holders = sorted(self.allocations.values(), key=lambda a: a.received)
            left = quantity
            for holder in holders:
                taken = min(left, holder.open.get(product_id, 0))
                if taken:
                    holder.open[product_id] -= taken
                    left -= taken
        return "applied"
