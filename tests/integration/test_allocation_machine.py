"""I1 to I5 over generated histories: allocations from the API and the bus, releases, shipments and
handovers, imports of every kind, the switch to platform master, inventory transactions (into, out
of and between main, damaged and a configured salable backroom) and cycle counts opened, submitted
later or cancelled, under both masters, products' own safety stock, crashes between writes,
redeliveries and events out of order, applied by the real services through the DynamoDB adapter on
dynalite, and checked after every step against the reference semantics (tests/unit/reference.py,
which imports nothing from the service): stock on hand (I1), allocated, available and uncounted,
every allocation's open units (I4), the master (I5), and every outcome the service answers, opened
or refused (I3), applied or repeated (I2); and each product's published version, which never goes
back and moves with every change of its availability row."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.adapters.s3 import S3ExportFiles
from inventory.errors import (
    AllocationIdReused,
    CountNotOpen,
    EventIdReused,
    EventTooOld,
    ImportInProgress,
    ImportKindNotAllowed,
    InsufficientStock,
    NotFound,
    NotReady,
)
from inventory.figures import availability
from inventory.models import (
    AllocationStatus,
    CountReason,
    CountStatus,
    ImportKind,
    ImportStatus,
    InventoryMaster,
    LocationChanges,
    LocationType,
)
from inventory.models.allocations import AllocationLine
from inventory.models.counts import CountResult
from inventory.models.exports import AvailabilityExport, ExportMode
from inventory.models.imports import StockRow
from inventory.models.transactions import TransactionItem, TransactionRequest, TransactionType
from inventory.services.allocation_lines import oldest_open
from inventory.services.allocations import AllocationRequest, AllocationService, AllocationView
from inventory.services.cycle_counts import CycleCountService
from inventory.services.export_units import ExportUnits
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.locations import MasterSwitchService
from inventory.services.safety_stock import SafetyStockLine, SafetyStockService
from inventory.services.shipment_events import ShipmentService
from inventory.services.stock import StockService
from inventory.services.stock_locations import StockLocationService
from inventory.services.transactions import TransactionService
from tests.faults import ANY_WRITE, Crash, faults_on
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryQueue
from tests.unit.reference import ErpStore
from tests.unit.test_shipments import bus_message, parse_shipment

pytestmark = [pytest.mark.integration, pytest.mark.long]

PRODUCTS = ("p-1", "p/2 ä", "p-3")
ALLOCATION_IDS = tuple(f"al-{n}" for n in range(16))
KINDS = ("Fulfillment Items Shipped", "Fulfillment Items Handed Over")
BACKROOM = (
    "machine_backroom"  # a stock location type the machine configures, salable (not the sample events' "backroom")
)
# Inventory transactions the machine sends: (type, from, to) of each item, and what the reference
# moves for an item of quantity q: (stock location, the sign of q there), written out here rather
# than taken from the service.
TRANSACTION_KINDS: dict[str, tuple[TransactionType, str | None, str | None, tuple[tuple[str, int], ...]]] = {
    "receiving": (TransactionType.RECEIVING, None, None, (("main", 1),)),
    "transfer out": (TransactionType.TRANSFER_OUT, None, None, (("main", -1),)),
    "to damaged": (TransactionType.ADJUSTMENT, "main", "damaged", (("main", -1), ("damaged", 1))),
    "scrapped damaged": (TransactionType.ADJUSTMENT, "damaged", None, (("damaged", -1),)),
    "return to damaged": (TransactionType.RETURN, None, "damaged", (("damaged", 1),)),
    "transfer in": (TransactionType.TRANSFER_IN, None, None, (("main", 1),)),
    "to backroom": (TransactionType.ADJUSTMENT, "main", BACKROOM, (("main", -1), (BACKROOM, 1))),
}
STOCK_LOCATIONS = ("main", "damaged", BACKROOM)
RETENTION_DAYS = 35  # the ledger's (LEDGER_RETENTION_DAYS): an event that occurred longer ago is refused
WINDOW_MINUTES = 15  # the switch's readiness window
CrashPoint = tuple[int, str]  # (the write it stops at, counting from 0; "before" or "after" it applies)
STOPPED: Counter[str] = Counter()  # how the operations stopped on purpose ended, over the run
STATUS = {"open": AllocationStatus.OPEN, "released": AllocationStatus.RELEASED, "refused": AllocationStatus.REFUSED}

products = st.sampled_from(PRODUCTS)
allocation_ids = st.sampled_from(ALLOCATION_IDS)
quantities = st.integers(min_value=1, max_value=5)
allocation_items = st.dictionaries(products, quantities, min_size=1, max_size=2)
import_rows = st.dictionaries(products, st.integers(min_value=0, max_value=12), min_size=1, max_size=len(PRODUCTS))


def stock_rows(rows: dict[str, int]) -> list[StockRow]:
    return [StockRow(product_id=p, stock_location="main", quantity=q) for p, q in sorted(rows.items())]


class AllocationMachine(RuleBasedStateMachine):
    def __init__(self, repo: DynamoDbRepository) -> None:
        super().__init__()
        self.repo = repo
        self.clock = FixedClock()
        self.location_id = f"machine-{uuid.uuid4().hex[:16]}"
        self.locations = MasterSwitchService(repo, self.clock, WINDOW_MINUTES)
        self.allocations = AllocationService(repo, StockService(repo), self.clock)
        self.shipments = ShipmentService(repo, StockService(repo), self.clock, RETENTION_DAYS)
        self.stock = StockService(repo)
        self.safety = SafetyStockService(repo, StockService(repo))
        self.transactions = TransactionService(repo, StockService(repo), self.clock)
        self.counts = CycleCountService(repo, StockService(repo), self.clock)
        self.transaction_count = self.count_count = 0
        self.open_counts: dict[str, list[str]] = {}  # opened, neither submitted nor cancelled: their products
        StockLocationService(repo).put(BACKROOM, True)  # (the same again, for every example, writes nothing)
        self.queue = MemoryQueue()
        self.imports = ImportRunner(repo, MemoryFiles(), self.queue, self.clock)
        self.model = ErpStore(salable=("main", BACKROOM))
        self.sent: list[tuple[Callable[..., None], tuple[Any, ...]]] = []  # every input, to send again
        self.shipment_details: list[dict[str, Any]] = []
        self.import_count = 0
        self.running_import: str | None = None  # accepted; its worker has not run yet
        self.timestamp = 0  # the highest logical timestamp the fulfilment side has emitted
        self.included = 0  # the highest shipments_included_through an import named
        self.held_back: list[int] = []  # emitted timestamps whose shipment has not arrived yet
        self.steps = self.listed_at = 0
        # per product, its availability row and published version at the last step's end
        self.published: dict[str, tuple[tuple[int, int, int, int, bool], int]] = {}
        self.exporter = ExportUnits(repo, S3ExportFiles(os.environ["EXPORT_BUCKET_NAME"]), MemoryQueue(), self.clock)
        self.export_count = self.exported_at = 0
        self.consumer: dict[str, dict[str, Any]] = {}  # what a consumer of the location's files holds

    def tick(self) -> None:
        """Every step happens a second after the one before (stored times keep milliseconds)."""
        self.clock.advance(seconds=1)
        self.steps += 1

    def seconds(self) -> float:
        return self.clock.now().timestamp()

    # ------------------------------------------------------------------ the location
    @initialize(
        safety=st.integers(min_value=0, max_value=2),
        backorders=st.booleans(),
        stock=import_rows,
    )
    def create_location(self, safety: int, backorders: bool, stock: dict[str, int]) -> None:
        self.configure(safety, backorders)
        self.send_import(ImportRequest("im-0", ImportKind.INITIAL, items=stock_rows(stock)))
        self.run_import()

    @rule(safety=st.integers(min_value=0, max_value=2), backorders=st.booleans())
    def configure(self, safety: int, backorders: bool) -> None:
        self.tick()
        changes = LocationChanges(type=LocationType.STORE, default_safety_stock=safety, allow_backorders=backorders)
        self.locations.put(self.location_id, changes)
        self.model.safety_stock, self.model.allow_backorders = safety, backorders

    @rule(
        items=st.dictionaries(
            products, st.none() | st.integers(min_value=0, max_value=3), min_size=1, max_size=len(PRODUCTS)
        )
    )
    def set_safety_stock(self, items: dict[str, int | None]) -> None:
        """Products' own safety stock, or none (the location's default): each answered row is as the
        reference says, and a product's version grows when its figure changes, only then."""
        self.tick()
        self.sent.append((self.set_safety_stock, (items,)))
        before = self.stock.read_many(self.stock.location(self.location_id), list(items))
        self.model.set_safety_stock(items)
        rows = self.safety.set(self.location_id, [SafetyStockLine(p, figure) for p, figure in items.items()])
        assert [row.product_id for row in rows] == list(items)
        for row in rows:
            assert (row.stock_on_hand, row.allocated, row.available, row.safety_stock, row.uncounted) == self.expected(
                row.product_id
            )
            reading = before[row.product_id]
            published = availability(reading.location, reading.stock(), reading.counters).version
            assert row.version == published + (reading.counters.safety_stock != items[row.product_id])

    @rule()
    def time_passes(self) -> None:
        """Past the ledger's retention: entries that no longer count may go, and so may what told that
        an event was applied; an older event is therefore refused, never applied a second time."""
        self.clock.advance(days=RETENTION_DAYS + 1)

    # ------------------------------------------------------------------ allocations
    def unused_ids(self) -> list[str]:
        """Ids no creation has given content yet (some released, or shipped, before it came)."""
        return [a for a in ALLOCATION_IDS if getattr(self.model.allocations.get(a), "items", None) is None]

    def used_ids(self) -> list[str]:
        return [a for a in ALLOCATION_IDS if getattr(self.model.allocations.get(a), "items", None) is not None]

    @precondition(lambda self: self.unused_ids())
    @rule(data=st.data(), items=allocation_items, from_bus=st.booleans())
    def allocate(self, data: st.DataObject, items: dict[str, int], from_bus: bool) -> None:
        allocation_id = data.draw(st.sampled_from(self.unused_ids()), label="allocation_id")
        self.send_allocation(allocation_id, tuple(sorted(items.items())), from_bus)

    @precondition(lambda self: self.used_ids())
    @rule(data=st.data(), items=allocation_items, from_bus=st.booleans())
    def allocate_with_a_used_id(self, data: st.DataObject, items: dict[str, int], from_bus: bool) -> None:
        """Other content under an id in use is refused (and the same content is a repeat)."""
        allocation_id = data.draw(st.sampled_from(self.used_ids()), label="allocation_id")
        self.send_allocation(allocation_id, tuple(sorted(items.items())), from_bus)

    def send_allocation(
        self, allocation_id: str, items: tuple[tuple[str, int], ...], from_bus: bool, crash: CrashPoint | None = None
    ) -> None:
        self.tick()
        self.sent.append((self.send_allocation, (allocation_id, items, from_bus)))
        request = AllocationRequest(
            allocation_id, f"order-{allocation_id}", tuple(AllocationLine(product_id=p, quantity=q) for p, q in items)
        )
        if crash:
            self.stopped(
                crash, lambda: self.allocations.create(self.location_id, request, "machine", from_bus=from_bus)
            )
        outcome = self.model.allocate(allocation_id, dict(items), from_bus=from_bus)
        try:
            view, created = self.allocations.create(self.location_id, request, "machine", from_bus=from_bus)
        except InsufficientStock:
            assert (outcome, from_bus) == ("refused", False), f"refused; the reference: {outcome}"
            return
        except AllocationIdReused:
            assert outcome == "reused", f"allocation_id_reused; the reference: {outcome}"
            return
        assert outcome not in ("reused", "refused") or (outcome, from_bus) == ("refused", True), (
            f"{view.allocation.status} (created {created}); the reference: {outcome}"
        )
        assert created is (outcome != "repeat") or crash is not None  # a retry may find its own record
        self.check_view(view, allocation_id)

    @rule(data=st.data(), from_bus=st.booleans())
    def release(self, data: st.DataObject, from_bus: bool) -> None:
        """Of an open allocation, of one in use, or of any id: unknown yet, or never to be created."""
        open_ids = [a for a in self.used_ids() if self.model.allocations[a].status == "open"]
        choices = [st.sampled_from(ids) for ids in (open_ids, self.used_ids()) if ids]
        self.send_release(data.draw(st.one_of(*choices, allocation_ids), label="allocation_id"), from_bus)

    def send_release(self, allocation_id: str, from_bus: bool, crash: CrashPoint | None = None) -> None:
        self.tick()
        self.sent.append((self.send_release, (allocation_id, from_bus)))
        if crash:
            self.stopped(
                crash, lambda: self.allocations.release(self.location_id, allocation_id, "machine", from_bus=from_bus)
            )
        outcome = self.model.release(allocation_id, from_bus=from_bus)
        try:
            view = self.allocations.release(self.location_id, allocation_id, "machine", from_bus=from_bus)
        except NotFound:
            assert outcome == "not_found", f"not found; the reference: {outcome}"
            return
        assert outcome != "not_found", f"{view.allocation.status}; the reference: not found"
        self.check_view(view, allocation_id)

    def check_view(self, view: AllocationView, allocation_id: str) -> None:
        expected = self.model.allocations[allocation_id]
        assert view.allocation.status is STATUS[expected.status]
        assert view.open == {p: expected.open.get(p, 0) for p in expected.items or {}}

    # ------------------------------------------------------------------ shipments and handovers
    def shipment_items(self, data: st.DataObject) -> list[dict[str, Any]]:
        """1 to 3 lines: (some of) what an open allocation holds, naming it or not, or any product,
        naming no allocation or any id (one that holds nothing of it, or that is not created yet)."""
        holding = [(a, p) for p in PRODUCTS for a in sorted(self.model.open_allocations(p))]
        items = []
        for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="lines")):
            allocation_id: str | None
            if data.draw(st.booleans(), label="allocated") if holding else False:
                holder, product = data.draw(st.sampled_from(holding), label="holder")
                quantity = data.draw(st.integers(1, self.model.allocations[holder].open[product] + 1))
                allocation_id = holder if data.draw(st.booleans(), label="named") else None
            else:
                product, quantity = data.draw(products, label="product_id"), data.draw(quantities, label="quantity")
                allocation_id = data.draw(st.none() | allocation_ids, label="allocation_id")
            item = {"product_id": product, "quantity": quantity}
            items.append(item | ({"allocation_id": allocation_id} if allocation_id else {}))
        return items

    @rule(data=st.data(), kind=st.sampled_from(KINDS), hold_back=st.booleans(), late=st.booleans())
    def ship(self, data: st.DataObject, kind: str, hold_back: bool, late: bool) -> None:
        """A new shipment or handover; `hold_back` skips a timestamp, whose shipment comes `late`."""
        if late and self.held_back:
            timestamp = self.held_back.pop(0)
        else:
            if hold_back:
                self.timestamp += 1
                self.held_back.append(self.timestamp)
            self.timestamp += 1
            timestamp = self.timestamp
        event_id = f"ev-{len(self.shipment_details)}"
        detail = {
            "event_id": event_id,
            "location_id": self.location_id,
            "shipment_id": f"sh-{event_id}",
            "logical_timestamp": timestamp,
            "occurred_at": self.clock.now().isoformat(),
            "items": self.shipment_items(data),
        }
        self.send_shipment(kind, detail)

    @precondition(lambda self: self.shipment_details)
    @rule(data=st.data(), kind=st.sampled_from(KINDS))
    def reuse_an_event_id(self, data: st.DataObject, kind: str) -> None:
        """Another body under an applied event's id can never succeed: refused, and nothing changes."""
        detail = data.draw(st.sampled_from(self.shipment_details), label="event")
        self.send_shipment(kind, {**detail, "items": self.shipment_items(data)})

    def send_shipment(self, kind: str, detail: dict[str, Any], crash: CrashPoint | None = None) -> None:
        self.tick()
        message = bus_message(detail, kind)
        self.sent.append((self.send_shipment, (kind, detail)))
        self.shipment_details.append(detail)
        lines = [(i["product_id"], i["quantity"], i.get("allocation_id")) for i in detail["items"]]
        if crash:
            self.stopped(crash, lambda: self.shipments.apply(parse_shipment(message)))
        if datetime.fromisoformat(detail["occurred_at"]) < self.clock.now() - timedelta(days=RETENTION_DAYS):
            with pytest.raises(EventTooOld):
                self.shipments.apply(parse_shipment(message))
            return
        body = json.dumps([kind, detail], sort_keys=True)
        outcome = self.model.ship(detail["event_id"], body, detail["logical_timestamp"], lines)
        try:
            applied = self.shipments.apply(parse_shipment(message))
        except EventIdReused:
            assert outcome == "reused", f"event_id_reused; the reference: {outcome}"
            return
        assert outcome != "reused", f"{applied} of an event id applied with another body"
        if crash is not None and outcome == "applied":  # the stopped delivery applied some lines, once
            assert applied.lines + applied.repeated == len(lines)
        else:
            assert (applied.lines, applied.repeated) == ((len(lines), 0) if outcome == "applied" else (0, len(lines)))

    # ------------------------------------------------------------------ imports
    @precondition(lambda self: self.running_import is None)
    @rule(
        kind=st.sampled_from([ImportKind.INITIAL, ImportKind.FULL_COUNT, ImportKind.PARTIAL]),
        rows=import_rows,
        data=st.data(),
        runs_later=st.booleans(),
    )
    def import_stock(self, kind: ImportKind, rows: dict[str, int], data: st.DataObject, runs_later: bool) -> None:
        """An inline import; with `runs_later` its worker runs a step later, after whatever comes between."""
        # Never below an earlier import's: shipments a base included and the retention has passed
        # are forgotten (README, stock imports), so an import may not bring them back.
        included = data.draw(
            st.none() | st.integers(min_value=min(self.included, self.timestamp), max_value=self.timestamp),
            label="included",
        )
        if included is not None:
            self.included = included
        self.import_count += 1
        request = ImportRequest(f"im-{self.import_count}", kind, included, items=stock_rows(rows))
        self.send_import(request)
        if not runs_later and self.running_import is not None:  # (refused under platform master)
            self.run_import()

    def send_import(self, request: ImportRequest, crash: CrashPoint | None = None) -> None:
        self.tick()
        self.sent.append((self.send_import, (request,)))
        if crash:
            self.stopped(crash, lambda: self.imports.accept(self.location_id, request, "machine"))
        rows = {i.product_id: i.quantity for i in request.items or ()}
        outcome = self.model.accept_import(
            request.import_id, request.kind.value, rows, request.shipments_included_through
        )
        queued = len(self.queue.messages)
        if outcome == "refused":  # under platform master only full_count imports are accepted
            with pytest.raises(ImportKindNotAllowed):
                self.imports.accept(self.location_id, request, "machine")
            return
        _, created = self.imports.accept(self.location_id, request, "machine")
        if crash is None:
            assert created is (outcome == "accepted")
        if outcome == "accepted":
            self.running_import = request.import_id
        elif crash is None:
            assert len(self.queue.messages) == queued

    @precondition(lambda self: self.running_import is not None)
    @rule()
    def run_import(self, crash: CrashPoint | None = None) -> None:
        self.tick()
        assert self.running_import is not None
        if crash and self.queue.messages:  # the worker stops; the queue delivers its message again
            message = self.queue.messages[0]
            self.stopped(
                crash, lambda: self.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 10**9)
            )
            self.queue.messages[:] = [m for n, m in enumerate(self.queue.messages) if n == 0 or m != message]
        while self.queue.messages:
            message = self.queue.messages.pop(0)
            status = self.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 10**9)
            assert status is ImportStatus.COMPLETED
        self.model.complete_import(self.running_import, self.seconds())
        self.running_import = None

    # ------------------------------------------------------------------ store operations
    @rule(data=st.data(), kind=st.sampled_from(sorted(TRANSACTION_KINDS)))
    def transact(self, data: st.DataObject, kind: str) -> None:
        """An inventory transaction of one or two products: under platform master it moves each
        stock location at once, or is refused whole when one would go below 0; under an ERP master
        it is recorded and moves nothing (and the switch waits for a new import)."""
        self.transaction_count += 1
        items = data.draw(allocation_items, label="items")
        self.send_transaction(f"tx-{self.transaction_count}", kind, tuple(sorted(items.items())))

    def send_transaction(
        self, transaction_id: str, kind: str, items: tuple[tuple[str, int], ...], crash: CrashPoint | None = None
    ) -> None:
        self.tick()
        self.sent.append((self.send_transaction, (transaction_id, kind, items)))
        transaction_type, from_at, to_at, signs = TRANSACTION_KINDS[kind]
        request = TransactionRequest(
            transaction_id=transaction_id,
            type=transaction_type,
            reason="machine" if transaction_type is TransactionType.ADJUSTMENT else None,
            destination_location_id="elsewhere" if transaction_type is TransactionType.TRANSFER_OUT else None,
            items=tuple(
                TransactionItem(product_id=p, quantity=q, from_stock_location=from_at, to_stock_location=to_at)
                for p, q in items
            ),
        )
        if crash:
            self.stopped(crash, lambda: self.transactions.record(self.location_id, request, "machine"))
        moves = [(product, at, sign * quantity) for product, quantity in items for at, sign in signs]
        outcome = self.model.transact(transaction_id, json.dumps([kind, items]), moves)
        try:
            record, created = self.transactions.record(self.location_id, request, "machine")
        except InsufficientStock:
            assert outcome == "refused", f"refused; the reference: {outcome}"
            return
        assert outcome in ("applied", "repeat"), f"applied; the reference: {outcome}"
        assert created is (outcome == "applied" and crash is None) or crash is not None
        for item, result in zip(record.items, record.results, strict=True):
            assert result.stock_on_hand == self.model.stock_on_hand(item.product_id) or outcome == "repeat"

    @rule(
        results=st.dictionaries(
            st.tuples(products, st.sampled_from(["main", "damaged"])),
            st.integers(min_value=0, max_value=12),
            min_size=1,
            max_size=3,
        )
    )
    def count(self, results: dict[tuple[str, str], int], crash: CrashPoint | None = None) -> None:
        """A cycle count of some products, opened and completed: each figure counted replaces the
        figure of that moment (platform master); the system figure and variance are as the reference's."""
        self.tick()
        self.count_count += 1
        count_id = f"cc-{self.count_count}"
        listed = sorted({p for p, _ in results})
        self.counts.open(self.location_id, count_id, CountReason.SCHEDULED, listed, "machine")
        self.submit(count_id, results, crash)

    def submit(self, count_id: str, results: dict[tuple[str, str], int], crash: CrashPoint | None = None) -> bool:
        """A count's results (stopped half-way first, with `crash`); whether the count completed."""
        self.tick()
        submitted = tuple(CountResult(product_id=p, stock_location=s, counted=c) for (p, s), c in results.items())
        if crash:
            self.stopped(crash, lambda: self.counts.submit(self.location_id, count_id, submitted))
        outcome, system = self.model.count(results)
        try:
            count = self.counts.submit(self.location_id, count_id, submitted)
        except ImportInProgress:
            assert outcome == "refused", f"refused; the reference: {outcome}"
            return False
        assert outcome == "completed", f"completed; the reference: {outcome}"
        assert {(r.product_id, r.stock_location): (r.system, r.variance) for r in count.results} == {
            at: (figure, results[at] - figure) for at, figure in system.items()
        }
        return True

    @rule(listed=st.sets(products, min_size=1, max_size=2))
    def open_count(self, listed: set[str]) -> None:
        """A count opened now and submitted later: what moves meanwhile is in the figure counted."""
        self.tick()
        self.count_count += 1
        count_id = f"cc-{self.count_count}"
        self.counts.open(self.location_id, count_id, CountReason.SCHEDULED, sorted(listed), "machine")
        self.open_counts[count_id] = sorted(listed)

    @precondition(lambda self: self.open_counts)
    @rule(data=st.data())
    def submit_count(self, data: st.DataObject) -> None:
        count_id = data.draw(st.sampled_from(sorted(self.open_counts)), label="count")
        listed = self.open_counts[count_id]
        places = st.tuples(st.sampled_from(listed), st.sampled_from(STOCK_LOCATIONS))
        results = data.draw(st.dictionaries(places, st.integers(min_value=0, max_value=12), min_size=1, max_size=3))
        if self.submit(count_id, results):
            del self.open_counts[count_id]

    @precondition(lambda self: self.open_counts)
    @rule(data=st.data())
    def cancel_count(self, data: st.DataObject) -> None:
        """A count cancelled changes nothing, and takes no results afterwards."""
        self.tick()
        count_id = data.draw(st.sampled_from(sorted(self.open_counts)), label="count")
        assert self.counts.cancel(self.location_id, count_id).status is CountStatus.CANCELLED
        listed = self.open_counts.pop(count_id)
        with pytest.raises(CountNotOpen):
            self.counts.submit(self.location_id, count_id, (CountResult(product_id=listed[0], counted=1),))

    # ------------------------------------------------------------------ the switch (I5)
    @rule()
    def switch(self) -> None:
        """A request to switch to platform master: when the store is ready (a baseline import within
        the window, none running), and only once; never back."""
        self.tick()
        self.sent.append((self.send_switch, ()))
        self.send_switch()

    def send_switch(self) -> None:
        outcome = self.model.switch(self.seconds(), WINDOW_MINUTES * 60)
        try:
            location = self.locations.switch(self.location_id, InventoryMaster.PLATFORM, "machine")
        except NotReady:
            assert outcome == "not_ready", f"not ready; the reference: {outcome}"
            return
        assert outcome != "not_ready", "switched; the reference: not ready"
        assert location.inventory_master is InventoryMaster.PLATFORM

    # ------------------------------------------------------------------ crashes (I7), then redelivery
    def stopped(self, crash: CrashPoint, operation: Callable[[], object]) -> None:
        """Run `operation` once, stopped at its k-th DynamoDB write (before it is applied, or after
        it was applied and before its answer), as a function that times out or is killed there: a
        fault at the client's boundary, not in domain code. What it wrote stays; nothing else runs."""
        k, when = crash
        with faults_on(self.repo.client) as faults:
            faults.inject(ANY_WRITE, "crash", skip=k, when=when)
            try:
                operation()
            except Crash:
                STOPPED["crashed"] += 1
            except Exception:  # refused, or failed for now: the delivery again below says which
                STOPPED["refused"] += 1
            else:
                STOPPED["completed"] += 1  # it had fewer writes: the delivery again is a plain repeat

    @rule(
        data=st.data(),
        what=st.sampled_from(["ship", "allocate", "release", "import", "import run", "transact", "count"]),
        k=st.integers(min_value=0, max_value=7),
        when=st.sampled_from(["before", "after"]),
    )
    def crash_then_deliver_again(self, data: st.DataObject, what: str, k: int, when: str) -> None:
        """An operation of several writes stops between two of them; the queue (or the client)
        delivers it again, and it completes once: every figure as the reference, which applies it once."""
        crash: CrashPoint = (k, when)
        if what == "allocate" and self.unused_ids():
            allocation_id = data.draw(st.sampled_from(self.unused_ids()), label="allocation_id")
            items = tuple(sorted(data.draw(allocation_items, label="items").items()))
            self.send_allocation(allocation_id, items, data.draw(st.booleans(), label="from_bus"), crash)
        elif what == "release" and self.used_ids():
            allocation_id = data.draw(st.sampled_from(self.used_ids()), label="allocation_id")
            self.send_release(allocation_id, data.draw(st.booleans(), label="from_bus"), crash)
        elif what == "import" and self.running_import is None:
            kind = data.draw(st.sampled_from([ImportKind.FULL_COUNT, ImportKind.PARTIAL]), label="kind")
            included = data.draw(st.none() | st.just(self.timestamp), label="included")
            if included is not None:
                self.included = max(self.included, included)
            self.import_count += 1
            request = ImportRequest(f"im-{self.import_count}", kind, included, items=stock_rows(data.draw(import_rows)))
            self.send_import(request, crash)
        elif what == "import run" and self.running_import is not None:
            self.run_import(crash)
        elif what == "transact":
            self.transaction_count += 1
            kind = data.draw(st.sampled_from(sorted(TRANSACTION_KINDS)), label="transaction kind")
            items = tuple(sorted(data.draw(allocation_items, label="items").items()))
            self.send_transaction(f"tx-{self.transaction_count}", kind, items, crash)
        elif what == "count":
            results = data.draw(
                st.dictionaries(st.tuples(products, st.just("main")), quantities, min_size=1, max_size=2)
            )
            self.count(results, crash)
        else:
            self.timestamp += 1
            detail = {
                "event_id": f"ev-{len(self.shipment_details)}",
                "location_id": self.location_id,
                "shipment_id": f"sh-crash-{len(self.shipment_details)}",
                "logical_timestamp": self.timestamp,
                "occurred_at": self.clock.now().isoformat(),
                "items": self.shipment_items(data),
            }
            self.send_shipment(data.draw(st.sampled_from(KINDS), label="kind"), detail, crash)

    # ------------------------------------------------------------------ redeliveries (I2)
    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def send_again(self, data: st.DataObject) -> None:
        """Any earlier input again: a redelivered event or a retried request. Only its first
        application counts (a request that was refused wrote nothing, and is decided anew)."""
        send, arguments = data.draw(st.sampled_from(self.sent), label="again")
        send(*arguments)

    # ------------------------------------------------------------------ reading
    @precondition(lambda self: self.steps >= self.listed_at + 8)  # a read of every shard: not too often
    @rule()
    def list_availability(self) -> None:
        """The whole list: a row for every product with stock or allocations, each as the reference says."""
        self.listed_at = self.steps
        page = self.stock.availability_page(self.location_id, 1000, None)
        assert page.next_cursor is None
        rows = {row.product_id: row for row in page.items}
        assert len(rows) == len(page.items)
        assert set(rows) <= set(PRODUCTS)
        for product in PRODUCTS:
            row = rows.get(product)
            figures = (row.stock_on_hand, row.allocated, row.available) if row else (0, 0, 0)
            assert figures == self.expected(product)[:3], product
            single = self.stock.availability_page(self.location_id, 1, None, product_id=product).items
            assert [(r.stock_on_hand, r.allocated, r.available) for r in single] == ([figures] if row else [])

    @precondition(lambda self: self.steps >= self.exported_at + 6)  # reads every shard: not too often
    @rule(full=st.booleans())
    def export(self, full: bool) -> None:
        """A location's file, full or delta, applied as a consumer does (a full file replaces what
        it holds, a delta's rows replace theirs): it then holds a row for every product the
        availability list has, as the list and the reference say, with the list's versions."""
        self.exported_at = self.steps
        self.export_count += 1
        export = AvailabilityExport(
            export_id=f"{self.location_id}-x{self.export_count}",
            mode=ExportMode.FULL if full else ExportMode.DELTA,
            location_ids=(self.location_id,),
            requested_at=self.clock.now(),
            requested_by="machine",
            body_hash="-",
        )
        assert self.repo.put_export(export)
        file = self.exporter.run(export.export_id, self.location_id)
        assert file is not None
        bucket, _, key = file.uri.removeprefix("s3://").partition("/")
        data = self.exporter._files.client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        rows = {r["product_id"]: r for r in map(json.loads, gzip.decompress(data).splitlines())}
        assert len(rows) == file.rows
        if file.full:
            self.consumer = {}
        self.consumer |= rows
        listed = {r.product_id: r for r in self.stock.availability_page(self.location_id, 1000, None).items}
        assert set(self.consumer) == set(listed)
        for product, row in self.consumer.items():
            figures = (row["stock_on_hand"], row["allocated"], row["available"], row["safety_stock"], row["uncounted"])
            assert figures == self.expected(product), (product, file.full)
            assert row["version"] == listed[product].version, product

    def expected(self, product: str) -> tuple[int, int, int, int, bool]:
        model = self.model
        return (
            model.stock_on_hand(product),
            model.allocated(product),
            model.available(product),
            model.safety(product),
            model.uncounted(product),
        )

    @invariant()
    def figures_match_the_reference(self) -> None:
        location = self.stock.location(self.location_id)
        # I5: platform master from the switch on, never back.
        switched = self.model.switched_at_order is not None
        assert location.inventory_master is (InventoryMaster.PLATFORM if switched else InventoryMaster.ERP)
        readings = self.stock.read_many(location, PRODUCTS)  # one consistent read of each, in one request
        for product in PRODUCTS:
            # I1, I4: stock on hand, allocated and available, read as the availability endpoint reads them.
            counters = readings[product].counters
            row = availability(location, readings[product].stock(), counters)
            expected = self.expected(product)
            assert (row.stock_on_hand, row.allocated, row.available, row.safety_stock, row.uncounted) == expected
            # Published versions: a consumer that keeps the highest per product is never wrong. The
            # version never goes back, and it moves whenever the row does (imports, settings and
            # the switch included, which write no product item).
            if product in self.published:
                figures, version = self.published[product]
                assert row.version >= version, (product, version, row.version)
                assert row.version > version or figures == expected, (product, figures, expected, version)
            self.published[product] = (expected, row.version)
            # I3, I4: each allocation's open units, held in the hot item or an allocation line, none
            # negative, none left behind by what shipped (a closed one held is a tombstone: 0).
            assert all(a.quantity >= 0 for a in counters.allocations), counters.allocations
            found, _ = oldest_open(self.repo, self.location_id, counters, 10**9)
            still_open = {a.allocation_id: a.quantity for a in found}
            assert all(quantity > 0 for quantity in still_open.values()), still_open
            assert still_open == self.model.open_allocations(product), product
            # I1 per stock location: damaged (not salable) and backroom stock move by transactions
            # and counts only.
            held = {f.stock_location: f.quantity for f in readings[product].stock().stock_locations}
            for place in STOCK_LOCATIONS:
                assert held.get(place, 0) == self.model.stock_at(product, place), (product, place)


EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "30"))  # `make soak` runs more


# About 1,200 steps, each about 9 requests to the local DynamoDB: about 70 seconds. A failure is
# shrunk for up to five minutes (every step reads and writes the table): the timeout leaves room for
# Hypothesis to print the shortest failing sequence.
@pytest.mark.timeout(900)
def test_allocations_shipments_and_imports_keep_to_the_reference(repo: DynamoDbRepository) -> None:
    run_state_machine_as_test(
        lambda: AllocationMachine(repo),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None),
    )
    print(f"\nallocation state machine: {EXAMPLES} examples of up to 40 steps; stopped operations: {dict(STOPPED)}")
