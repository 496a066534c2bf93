"""The reference semantics of SPEC.md section 3, written for the tests and importing nothing from
the service: small enough to be obviously right. ERP master, the main stock location: one product
(ErpProduct), and a whole location with imports, shipments and allocations, and its switch to
platform master (ErpStore)."""

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
class Movement:
    order: int  # when the service applied it
    kind: str  # "transaction" (`quantity` is signed) or "count" (`quantity` is the figure counted)
    quantity: int


@dataclass
class ErpStore:
    safety_stock: int = 0  # the location's default
    allow_backorders: bool = False
    product_safety_stock: dict[str, int] = field(default_factory=dict)  # products' own figures, where set
    accepted: dict[str, StockImport] = field(default_factory=dict)  # by import id
    completed: list[StockImport] = field(default_factory=list)  # in completion order
    shipments: dict[str, list[Shipment]] = field(default_factory=dict)  # per product
    allocations: dict[str, ReferenceAllocation] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)  # applied shipment events: id -> body
    order: int = 0
    running: str | None = None  # an import accepted and not completed yet
    baseline_completed_at: float | None = None  # when the last initial or full_count import completed
    switched_at_order: int | None = None  # platform master from then on (never back)
    # Under platform master, per (product, stock location), inventory transactions (a signed
    # quantity) and cycle count results (the figure counted), in the order applied.
    movements: dict[tuple[str, str], list[Movement]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)  # applied ones: id -> body
    erp_transaction_order: int | None = None  # the last transaction recorded under the ERP
    counted: set[tuple[str, str]] = field(default_factory=set)  # reported by a count under platform master

    def _next(self) -> int:
        self.order += 1
        return self.order

    # ---- figures
    def base(self, product_id: str, before: int | None = None) -> Import | None:
        """The newest completed import with a row for the product, or that omits it and is a baseline
        (of those accepted before `before`, when given)."""
        for imported in reversed(self.completed):
            if before is not None and imported.order > before:
                continue
            if product_id in imported.rows:
                return Import(imported.order, imported.rows[product_id], imported.included_through)
            if imported.kind in BASELINE_KINDS:
                return Import(imported.order, 0, imported.included_through)
        return None

    def _erp_stock_on_hand(self, product_id: str, before: int | None = None) -> int:
        """The base plus the shipments after it, counting only what the service had applied before
        `before` (when given)."""
        base = self.base(product_id, before)
        shipments = [s for s in self.shipments.get(product_id, []) if before is None or s.order < before]
        return ErpProduct([base] if base else [], shipments).stock_on_hand()

    def switch_base(self, product_id: str) -> Import | None:
        """Under platform master, before any import completes after the switch: the switch's base,
        the figure of that moment with the watermark of the import that figure came from."""
        if self.switched_at_order is None:
            return None
        newest = self.base(product_id)
        if newest is not None and newest.order > self.switched_at_order:
            return None  # a full_count under platform master set the base since
        came_from = self.base(product_id, self.switched_at_order)
        figure = self._erp_stock_on_hand(product_id, self.switched_at_order)
        return Import(self.switched_at_order, figure, came_from.included_through if came_from else None)

    salable: tuple[str, ...] = ("main",)  # the stock locations that count toward stock on hand

    def stock_on_hand(self, product_id: str) -> int:
        return sum(self.stock_at(product_id, stock_location) for stock_location in self.salable)

    def stock_at(self, product_id: str, stock_location: str) -> int:
        """A stock location's figure. ERP master: main is the last import's base plus the shipments
        after it; inventory transactions and counts move nothing (the ERP's next import brings them).
        Platform master: the base (the switch's figure, or an import completed since) and then, in
        the order applied, every shipment after it (at or below the base's watermark, when it names
        one, it was in the base: nothing), every transaction (its quantity) and every count (the
        figure counted replaces the figure; later entries move it, by the same watermark)."""
        if self.switched_at_order is None:
            return self._erp_stock_on_hand(product_id) if stock_location == "main" else 0
        switched = self.switch_base(product_id)
        if switched is not None:
            base_order, total, through = switched.order, switched.quantity, switched.included_through
        else:  # a full_count completed under platform master
            imported = self.base(product_id)
            assert imported is not None
            base_order, total, through = imported.order, imported.quantity, imported.included_through
        if stock_location != "main":
            total = 0  # (imports here have main rows only; a baseline's absence is a base of 0)
        events: list[tuple[int, str, int, int]] = [
            (m.order, m.kind, m.quantity, 0) for m in self.movements.get((product_id, stock_location), [])
        ]
        if stock_location == "main":
            for shipment in self.shipments.get(product_id, []):
                if switched is None and through is not None and shipment.order < base_order:
                    if shipment.logical_timestamp > through:  # after the import's watermark: not in its rows
                        total -= shipment.quantity
                    continue
                events.append((shipment.order, "shipment", shipment.quantity, shipment.logical_timestamp))
        for order, kind, quantity, timestamp in sorted(events):
            if order <= base_order:
                continue
            if kind == "count":
                total = quantity
            elif kind == "transaction":
                total += quantity
            elif through is None or timestamp > through:
                total -= quantity
        return total

    def uncounted(self, product_id: str) -> bool:
        """Stock that came, at the switch, from an import with a quantity above 0 (SPEC.md section 1),
        until a full_count under platform master covers it (no trust_imported_stock here)."""
        if self.switch_base(product_id) is None or (product_id, "main") in self.counted:
            return False
        came_from = self.base(product_id, self.switched_at_order)
        return came_from is not None and came_from.quantity > 0

    def open_allocations(self, product_id: str) -> dict[str, int]:
        return {a_id: a.open[product_id] for a_id, a in self.allocations.items() if a.open.get(product_id, 0) > 0}

    def allocated(self, product_id: str) -> int:
        return sum(self.open_allocations(product_id).values())

    def safety(self, product_id: str) -> int:
        """The product's own safety stock, or the location's default where it has none."""
        return self.product_safety_stock.get(product_id, self.safety_stock)

    def available(self, product_id: str) -> int:
        if self.uncounted(product_id):
            return 0
        return max(0, self.stock_on_hand(product_id) - self.safety(product_id) - self.allocated(product_id))

    def set_safety_stock(self, items: dict[str, int | None]) -> None:
        """Each product's own figure (None: none, the default applies)."""
        for product_id, figure in items.items():
            if figure is None:
                self.product_safety_stock.pop(product_id, None)
            else:
                self.product_safety_stock[product_id] = figure

    # ---- imports
    def accept_import(self, import_id: str, kind: str, rows: dict[str, int], included_through: int | None) -> str:
        """The outcome: accepted, repeat (the same import again changes nothing), or refused (under
        platform master only full_count imports are accepted)."""
        if import_id in self.accepted:
            return "repeat"
        if self.switched_at_order is not None and kind != "full_count":
            return "refused"
        self.accepted[import_id] = StockImport(self._next(), kind, dict(rows), included_through)
        self.running = import_id
        return "accepted"

    def complete_import(self, import_id: str, at: float = 0.0) -> None:
        imported = self.accepted[import_id]
        self.completed.append(imported)
        self.running = None
        if imported.kind in BASELINE_KINDS:
            self.baseline_completed_at = at

    # ---- the switch
    def switch(self, now: float, window: float) -> str:
        """The outcome of a request to switch to platform master at `now`: switched, already, or
        not_ready (a store, with no import running and a baseline import completed within `window`)."""
        if self.switched_at_order is not None:
            return "already"
        recent = self.baseline_completed_at is not None and self.baseline_completed_at >= now - window
        baseline = next((i for i in reversed(self.completed) if i.kind in BASELINE_KINDS), None)
        unreflected = self.erp_transaction_order is not None and (
            baseline is None or self.erp_transaction_order > baseline.order
        )
        if self.running is not None or not recent or unreflected:
            return "not_ready"
        self.switched_at_order = self._next()
        return "switched"

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

    # ---- inventory transactions and cycle counts
    def transact(self, transaction_id: str, body: str, moves: list[tuple[str, str, int]]) -> str:
        """The outcome of a transaction moving (product, stock location, signed quantity), in order:
        applied, repeat, reused (its id with another body), or refused (under platform master, a
        stock location it takes from would go below 0: nothing is applied)."""
        if transaction_id in self.transactions:
            return "repeat" if self.transactions[transaction_id] == body else "reused"
        if self.switched_at_order is None:
            self.transactions[transaction_id] = body
            self.erp_transaction_order = self._next()  # recorded; the switch waits for a new import
            return "applied"
        held: dict[tuple[str, str], int] = {}
        for product_id, stock_location, quantity in moves:
            at = (product_id, stock_location)
            held[at] = held.get(at, self.stock_at(*at)) + quantity
            if quantity < 0 and held[at] < 0:
                return "refused"
        self.transactions[transaction_id] = body
        for product_id, stock_location, quantity in moves:
            self.movements.setdefault((product_id, stock_location), []).append(
                Movement(self._next(), "transaction", quantity)
            )
        return "applied"

    def count(self, results: dict[tuple[str, str], int]) -> tuple[str, dict[tuple[str, str], int]]:
        """A cycle count's results: the outcome (completed, or refused while an import runs under
        platform master) and each result's system figure (the figure it replaces)."""
        if self.switched_at_order is not None and self.running is not None:
            return "refused", {}
        system = {}
        for (product_id, stock_location), counted in results.items():
            system[(product_id, stock_location)] = self.stock_at(product_id, stock_location)
            if self.switched_at_order is not None:
                self.movements.setdefault((product_id, stock_location), []).append(
                    Movement(self._next(), "count", counted)
                )
                self.counted.add((product_id, stock_location))
        return "completed", system
