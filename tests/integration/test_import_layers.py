"""Many partial imports after a full one, through the real adapter on dynalite (issue "Nothing grows
with history", item 5): a location takes IMPORT_LAYERS partial imports after its initial import
(20 in `make test`, 500 in `make soak`), most naming a `shipments_included_through` inside the
history, some none, with shipment lines between them (late ones included: at or below watermarks
that merged rows still follow) and lines of a batch that read the location before an import's
claim. Every figure and base equals the reference model (tests/unit/reference.py) at checkpoints;
the location never shows more than its baseline and PARTIAL_LAYERS partial layers; a read of one
product touches at most a constant number of items, printed with the largest item written."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.messages import DetailType
from inventory.messages.import_work import LayerPurge
from inventory.models import PARTIAL_LAYERS, ImportKind, ImportStatus, LocationChanges, LocationType
from inventory.models.imports import StockRow
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.locations import MasterSwitchService
from inventory.services.outbox import OutboxRelay
from inventory.services.shipment_events import Shipment, ShipmentService
from inventory.services.shipment_figures import ShipmentFigures
from inventory.services.stock import StockService
from inventory.types import DEFAULT_STOCK_LOCATIONS
from tests.integration.test_history import Measured
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryPublisher, MemoryQueue
from tests.unit.reference import ErpStore
from tests.unit.test_shipments import bus_message, parse_shipment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = [pytest.mark.integration, pytest.mark.long]

IMPORTS = int(os.environ.get("IMPORT_LAYERS", "20"))
PRODUCTS = [f"p{n:02}" for n in range(12)]
SETTLE = timedelta(seconds=120)  # the import worker's delay, as deployed
# A read of one product: its location, the stock location types, its hot item, and one row per stock
# location type in each visible layer (the baseline and at most PARTIAL_LAYERS partial ones), whatever the imports.
ITEMS_PER_READ = 1 + 1 + 1 + len(DEFAULT_STOCK_LOCATIONS) * (1 + PARTIAL_LAYERS)


class Location:
    def __init__(self, repo: DynamoDbRepository) -> None:
        self.clock = FixedClock()
        self.location_id = f"layers-{uuid.uuid4().hex[:10]}"
        self.queue = MemoryQueue()
        self.imports = ImportRunner(repo, MemoryFiles(), self.queue, self.clock, settle_delay=SETTLE)
        self.shipments = ShipmentService(repo, StockService(repo), self.clock)
        self.stock = StockService(repo)
        self.model = ErpStore()
        finishers = {DetailType.SHIPMENT_APPLIED: ShipmentFigures(self.stock)}
        self.relay = OutboxRelay(repo, MemoryPublisher(), self.clock, finishers=finishers)
        self.watermark = 0
        self.events = 0
        self.purged = 0
        MasterSwitchService(repo, self.clock, 15).put(self.location_id, LocationChanges(type=LocationType.DC))

    def event(self, product: str, timestamp: int) -> tuple[str, Shipment, str]:
        self.events += 1
        detail = {
            "event_id": f"ev-{self.events}",
            "location_id": self.location_id,
            "shipment_id": f"sh-{self.events}",
            "logical_timestamp": timestamp,
            "occurred_at": self.clock.now().isoformat(),
            "items": [{"product_id": product, "quantity": 1}],
        }
        return str(detail["event_id"]), parse_shipment(bus_message(detail)), json.dumps(detail, sort_keys=True)

    def apply(self, made: list[tuple[str, Shipment, str]]) -> None:
        for event_id, shipment, body in made:
            self.clock.advance(milliseconds=20)
            assert self.shipments.apply(shipment).lines == 1, event_id
            line = [(shipment.lines[0].product_id, 1, None)]
            assert self.model.ship(event_id, body, shipment.logical_timestamp, line) == "applied"
        assert not self.shipments.end_batch()
        self.relay.run_once()  # the relay keeps up: what is measured is what history leaves

    def batch(self, lines: list[tuple[str, int]]) -> None:
        made = [self.event(product, timestamp) for product, timestamp in lines]
        self.shipments.read_ahead([shipment for _, shipment, _ in made])
        self.apply(made)

    def run_imports(self) -> ImportStatus:
        status = ImportStatus.RUNNING
        while self.queue.messages:
            messages, self.queue.messages = self.queue.messages, []
            for message in messages:
                if "layers" in message:  # a purge: the worker's delay has passed by the next round
                    self.purged += self.imports.purge(LayerPurge.model_validate(message), lambda: 10**9)
                else:
                    status = self.imports.run(self.location_id, str(message["import_id"]), lambda: 10**9)
            self.clock.advance(seconds=SETTLE.total_seconds())
        return status

    def load(self, import_id: str, kind: ImportKind, rows: dict[str, int], through: int | None) -> None:
        """An import accepted while a batch that read the location before its claim goes on writing
        (when it names a watermark: without one, such a batch's lines are before it by the service's
        order, the batch's read of the location, which the model does not know)."""
        early = [self.event(PRODUCTS[n], self.watermark + n) for n in range(3 if through is not None else 0)]
        self.shipments.read_ahead([shipment for _, shipment, _ in early])
        items = [StockRow(product_id=p, stock_location="main", quantity=q) for p, q in rows.items()]
        self.clock.advance(seconds=1)
        assert self.imports.accept(self.location_id, ImportRequest(import_id, kind, through, items=items), "t")[1]
        assert self.model.accept_import(import_id, kind.value, rows, through) == "accepted"
        self.apply(early)
        assert self.run_imports() is ImportStatus.COMPLETED
        self.model.complete_import(import_id)
        self.relay.run_once()
        if through is not None:
            self.watermark = through

    def check(self, measured: Measured, when: str) -> int:
        """Every product's figures and base against the model; the most items one product's read touched."""
        ids = {imported.order: import_id for import_id, imported in self.model.accepted.items()}
        most = 0
        for product in PRODUCTS:
            with measured.reading() as touched:
                stock = self.stock.product(self.location_id, product)
            most = max(most, touched())
            assert stock.stock_on_hand == self.model.stock_on_hand(product), (when, product)
            base = self.model.base(product)
            (main,) = [f for f in stock.stock_locations if f.stock_location == "main"]
            assert main.base is not None
            assert base is not None
            assert main.base.import_id == ids[base.order], (when, product)
        location = self.stock.location(self.location_id)
        assert len(location.partial_layers()) <= PARTIAL_LAYERS, when
        return most


@pytest.fixture
def location(fresh_table: str, dynamodb_client: DynamoDBClient) -> Iterator[tuple[Location, Measured]]:
    repo = DynamoDbRepository(fresh_table, dynamodb_client)
    measured = Measured(repo)
    try:
        yield Location(repo), measured
    finally:
        measured.close()


@pytest.mark.timeout(3600)
def test_partial_imports_after_a_full_one_keep_every_read_bounded(location: tuple[Location, Measured]) -> None:
    store, measured = location
    store.load("initial", ImportKind.INITIAL, dict.fromkeys(PRODUCTS, 1_000), 0)
    timestamp, most, first_read = 0, 0, None
    for n in range(IMPORTS):
        lines = []
        for k in range(6):
            timestamp += 1
            lines.append((PRODUCTS[(n * 5 + k) % len(PRODUCTS)], timestamp))
        for k in range(3):  # late: at or below watermarks of bases taken in or merged since
            lines.append((PRODUCTS[(n * 7 + k) % len(PRODUCTS)], max(0, store.watermark - 2 * k)))
        store.batch(lines)
        rows = {PRODUCTS[(n * 3 + k) % len(PRODUCTS)]: 900 - n - k for k in range(2 + n % 3)}
        through = None if n % 4 == 3 else timestamp - n % 5
        store.load(f"partial-{n:04}", ImportKind.PARTIAL, rows, through)
        if n % 10 == 9 or n == IMPORTS - 1:
            touched = store.check(measured, f"after partial import {n}")
            most = max(most, touched)
            first_read = first_read or touched
    largest, where = measured.phase()
    print(
        f"\n{IMPORTS} partial imports after a full one: the most items one product's read touched {most} "
        f"(bound {ITEMS_PER_READ}; {first_read} after the first 10); largest item written {largest} B ({where}); "
        f"rows purged from layers no longer visible {store.purged}"
    )
    assert most <= ITEMS_PER_READ
    assert largest < 4 * 1024
    merges = IMPORTS // (PARTIAL_LAYERS + 1)
    assert store.purged >= merges * PARTIAL_LAYERS * 2  # each merged layer held 2 rows at least
