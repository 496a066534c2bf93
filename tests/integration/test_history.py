"""A long history through the real adapter on dynalite (issue "Nothing grows with history"): one
product at one location takes HISTORY_LINES shipment lines, half under an ERP master with imports
in between whose `shipments_included_through` falls inside the history (among lines long moved to
ledger pages, and lines of batches that read the location before the import's claim), then the
switch to platform master, then the other half with no base after it (some at or below the
pre-switch watermark, which change nothing), with redeliveries of old events throughout. The relay
publishes after every batch during the first half; during the second the bus is down, and it
recovers at the end: every `Shipment Applied` part is then published, those that moved to ledger
pages included. At checkpoints every figure equals the reference model (tests/unit/reference.py);
no line fails (so nothing would be dead-lettered); and the test prints and bounds the largest item
any write left (with the bus up, and while it is down) and the most items one read of the product
touched.

`make test` runs 2,000 lines; `make soak` runs 20,000 (HISTORY_LINES)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.messages import DetailType
from inventory.models import ImportKind, ImportStatus, InventoryMaster, LocationChanges, LocationType
from inventory.models.imports import StockRow
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.locations import MasterSwitchService
from inventory.services.outbox import OutboxRelay
from inventory.services.shipment_events import Shipment, ShipmentService
from inventory.services.shipment_figures import ShipmentFigures
from inventory.services.stock import StockService
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryPublisher, MemoryQueue
from tests.unit.reference import ErpStore
from tests.unit.test_shipments import bus_message, parse_shipment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = [pytest.mark.integration, pytest.mark.long]

LINES = int(os.environ.get("HISTORY_LINES", "2000"))
PRODUCT = "best seller/1"
BATCH = 10  # events per SQS batch, one line each
SETTLE = timedelta(seconds=120)  # the import worker's delay, as deployed
WINDOW_MINUTES = 15
# The largest item, in bytes, whatever the history: the product's hot item, which holds at most 16
# buffered entries and the lines of the batch in flight (10 here, all of this product), each about
# 100 bytes, and the `Shipment Applied` parts not published yet (about 430 bytes each): with the
# relay running between batches, those of one batch; while the bus is down, those of every entry
# in the buffer (older parts moved to ledger pages with their entries).
LARGEST_ITEM = 8 * 1024
LARGEST_ITEM_BUS_DOWN = (16 + BATCH) * (100 + 430)
# A read of one product: its location, the stock location types, its hot item, and one row per
# stock location type in each visible import (here at most two: a baseline and a partial import after it).
ITEMS_PER_READ = 1 + 1 + 1 + 4 * 2


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it (names and values, in bytes), from its wire form."""

    def size(value: Mapping[str, Any]) -> int:
        ((kind, inner),) = value.items()
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return 1 + (len(inner.lstrip("-").replace(".", "")) + 1) // 2
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(size(v) + 1 for v in inner)
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(v) + 1 for k, v in inner.items())
        return sum(len(str(v)) for v in inner)  # sets: about right

    return sum(len(name.encode()) + size(value) for name, value in item.items())


class Measured:
    """At the DynamoDB client's boundary: after every write, the size of each item it wrote (read
    back by a client of its own); and, while `reading`, how many items the reads touch."""

    def __init__(self, repo: DynamoDbRepository) -> None:
        self._client = repo.client
        self._table = repo._table.name
        endpoint = self._client.meta.endpoint_url
        self._reader = boto3.client("dynamodb", endpoint_url=endpoint, region_name=self._client.meta.region_name)
        self.largest: tuple[int, str] = (0, "")  # of the current phase
        self.touched = 0
        self._reading = False
        events = self._client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._remember)
        events.register("after-call.dynamodb.*", self._after)

    def close(self) -> None:
        events = self._client.meta.events
        events.unregister("before-parameter-build.dynamodb.*", self._remember)
        events.unregister("after-call.dynamodb.*", self._after)

    @staticmethod
    def _remember(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["measured_params"] = dict(params)  # the request as the adapter gave it

    def _after(self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        name, params = model.name, context.get("measured_params", {})
        if name in ("UpdateItem", "PutItem") and "Error" not in parsed:
            key = params["Key"] if name == "UpdateItem" else {k: params["Item"][k] for k in ("pk", "sk")}
            item = self._reader.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            if item:
                self._record(item)
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        self._record(request["PutRequest"]["Item"])
        if self._reading:
            if name == "GetItem":
                self.touched += 1
            elif name == "BatchGetItem":
                self.touched += sum(len(r["Keys"]) for r in params["RequestItems"].values())
            elif name == "Query":
                self.touched += len(parsed.get("Items", []))

    def _record(self, item: Mapping[str, Any]) -> None:
        size = item_size(item)
        if size > self.largest[0]:
            self.largest = (size, f"{item['pk']['S']} {item['sk']['S']}")

    def phase(self) -> tuple[int, str]:
        """The largest item of the phase that ends, and a new phase begins."""
        largest, self.largest = self.largest, (0, "")
        return largest

    @contextmanager
    def reading(self) -> Iterator[Callable[[], int]]:
        """Count the items the reads inside touch."""
        self.touched, self._reading = 0, True
        try:
            yield lambda: self.touched
        finally:
            self._reading = False


class History:
    def __init__(self, repo: DynamoDbRepository, measured: Measured) -> None:
        self.repo, self.measured = repo, measured
        self.clock = FixedClock()
        self.bus = MemoryPublisher()
        self.bus_up = True
        self.location_id = f"history-{uuid.uuid4().hex[:10]}"
        self.queue = MemoryQueue()
        self.imports = ImportRunner(repo, MemoryFiles(), self.queue, self.clock, settle_delay=SETTLE)
        self.shipments = ShipmentService(repo, StockService(repo), self.clock)
        self.stock = StockService(repo)
        self.locations = MasterSwitchService(repo, self.clock, WINDOW_MINUTES)
        self.model = ErpStore()
        finishers = {DetailType.SHIPMENT_APPLIED: ShipmentFigures(self.stock)}
        self.relay = OutboxRelay(repo, self.bus, self.clock, finishers=finishers)
        self.timestamp = 0
        self.events: list[tuple[str, str]] = []  # (event id, message): for redeliveries
        self.most_touched = 0
        self.locations.put(self.location_id, LocationChanges(type=LocationType.STORE))

    # ---- shipments, a batch of events at a time
    def event(self, timestamp: int) -> tuple[str, Shipment, str]:
        event_id = f"ev-{len(self.events)}"
        detail = {
            "event_id": event_id,
            "location_id": self.location_id,
            "shipment_id": f"sh-{event_id}",
            "logical_timestamp": timestamp,
            "occurred_at": self.clock.now().isoformat(),
            "items": [{"product_id": PRODUCT, "quantity": 1}],
        }
        message = bus_message(detail)
        self.events.append((event_id, message))
        return event_id, parse_shipment(message), json.dumps(detail, sort_keys=True)

    def batch(self, timestamps: list[int]) -> None:
        """One SQS batch: the location read at its start, each event applied, then `done`."""
        made = [self.event(t) for t in timestamps]
        self.shipments.read_ahead([shipment for _, shipment, _ in made])
        for event_id, shipment, body in made:
            self.clock.advance(milliseconds=20)
            applied = self.shipments.apply(shipment)
            assert (applied.lines, applied.repeated) == (1, 0), event_id
            assert self.model.ship(event_id, body, shipment.logical_timestamp, [(PRODUCT, 1, None)]) == "applied"
        assert not self.shipments.end_batch()
        if self.bus_up:
            self.relay.run_once()

    def published_parts(self) -> set[str]:
        """The source events of the `Shipment Applied` parts the bus took (at least once each)."""
        return {e.detail["source_event_id"] for e in self.bus.published if e.detail_type == DetailType.SHIPMENT_APPLIED}

    def lines(self, count: int, *, late_below: int | None = None) -> None:
        """`count` lines in batches; one in 25 with a timestamp at or below `late_below` (arriving late)."""
        while count > 0:
            size = min(BATCH, count)
            timestamps = []
            for n in range(size):
                if late_below is not None and (len(self.events) + n) % 25 == 0:
                    timestamps.append(late_below - n % 7)
                else:
                    self.timestamp += 1
                    timestamps.append(self.timestamp)
            self.batch(timestamps)
            count -= size
            if len(self.events) % 200 == 0:
                self.redeliver(len(self.events) // 3)

    def redeliver(self, index: int) -> None:
        """An old event again (its entry long in a ledger page): nothing changes."""
        event_id, message = self.events[index]
        again = self.shipments.apply(parse_shipment(message))
        assert (again.lines, again.repeated) == (0, 1), event_id

    # ---- imports, with the worker's delayed settling
    def import_with_watermark(self, import_id: str, kind: ImportKind, quantity: int, below: int) -> None:
        """An import whose watermark falls `below` lines back in the history, accepted while a batch
        that read the location before its claim is still applying lines above that watermark."""
        through = self.timestamp - below
        early = [self.event(self.timestamp + n) for n in range(1, 4)]
        self.timestamp += 3
        self.shipments.read_ahead([shipment for _, shipment, _ in early])  # the batch read the location
        rows = [StockRow(product_id=PRODUCT, stock_location="main", quantity=quantity)]
        request = ImportRequest(import_id, kind, through, items=rows)
        self.clock.advance(seconds=1)
        _, created = self.imports.accept(self.location_id, request, "history")
        assert created
        assert self.model.accept_import(import_id, kind.value, {PRODUCT: quantity}, through) == "accepted"
        assert self.run_import() is ImportStatus.RUNNING  # rows written; it settles after SETTLE
        for event_id, shipment, body in early:  # the early batch goes on writing
            assert self.shipments.apply(shipment).lines == 1
            self.model.ship(event_id, body, shipment.logical_timestamp, [(PRODUCT, 1, None)])
        assert not self.shipments.end_batch()
        self.lines(BATCH * 2)  # batches that read the location after the claim
        self.clock.advance(seconds=SETTLE.total_seconds())
        assert self.run_import() is ImportStatus.COMPLETED
        self.model.complete_import(import_id, self.clock.now().timestamp())
        self.check(f"after import {import_id}")

    def run_import(self) -> ImportStatus:
        """The worker takes what the import queue holds now (a message it sends delayed waits for the next run)."""
        messages, self.queue.messages = self.queue.messages, []
        status = ImportStatus.RUNNING
        for message in messages:
            status = self.imports.run(self.location_id, str(message["import_id"]), lambda: 10**9)
        return status

    def start(self, quantity: int) -> None:
        rows = [StockRow(product_id=PRODUCT, stock_location="main", quantity=quantity)]
        self.imports.accept(self.location_id, ImportRequest("initial", ImportKind.INITIAL, 0, items=rows), "history")
        self.model.accept_import("initial", "initial", {PRODUCT: quantity}, 0)
        while self.run_import() is ImportStatus.RUNNING:
            self.clock.advance(seconds=SETTLE.total_seconds())
        self.model.complete_import("initial", self.clock.now().timestamp())

    # ---- checks
    def check(self, when: str) -> None:
        location = self.stock.location(self.location_id)
        with self.measured.reading() as touched:
            page = self.stock.availability_page(self.location_id, 1, None, product_id=PRODUCT)
        self.most_touched = max(self.most_touched, touched())
        (row,) = page.items
        expected = (self.model.stock_on_hand(PRODUCT), self.model.available(PRODUCT), self.model.uncounted(PRODUCT))
        assert (row.stock_on_hand, row.available, row.uncounted) == expected, when
        assert location.inventory_master is (
            InventoryMaster.PLATFORM if self.model.switched_at_order is not None else InventoryMaster.ERP
        )


@pytest.fixture
def history(fresh_table: str, dynamodb_client: DynamoDBClient) -> Iterator[History]:
    """On a table of its own: the relay publishes what this history leaves, and nothing else."""
    repo = DynamoDbRepository(fresh_table, dynamodb_client)
    measured = Measured(repo)
    try:
        yield History(repo, measured)
    finally:
        measured.close()


@pytest.mark.timeout(3600)
def test_a_long_history_keeps_every_item_small_and_every_read_bounded(history: History) -> None:
    h = history
    h.start(10**6)

    # Under the ERP: lines, and imports whose watermark falls deep inside the history.
    half = LINES // 2
    imports = 4
    for n in range(imports):
        h.lines(half // imports - BATCH * 2 - 3)
        kind = ImportKind.PARTIAL if n % 2 == 0 else ImportKind.FULL_COUNT
        h.import_with_watermark(f"i{n}", kind, 900_000 - n * 1000, below=min(300, h.timestamp // 2))
        h.check(f"ERP, after {len(h.events)} events")
    watermark = h.timestamp - 40
    h.import_with_watermark("last", ImportKind.FULL_COUNT, 800_000, below=40)

    bus_up = h.measured.phase()

    # The switch: its base keeps the last import's watermark.
    h.clock.advance(seconds=1)
    assert h.model.switch(h.clock.now().timestamp(), WINDOW_MINUTES * 60) == "switched"
    h.locations.switch(h.location_id, InventoryMaster.PLATFORM, "history")
    h.check("at the switch")

    # Platform master, no base after the switch: every line counts but those the import included.
    # The bus is down meanwhile, and recovers at the end.
    h.bus_up = False
    for _ in range(4):
        h.lines(half // 4, late_below=watermark)
        h.check(f"platform, after {len(h.events)} events")
    bus_down = h.measured.phase()
    while h.relay.run_once().published:
        pass
    assert h.published_parts() == {event_id for event_id, _ in h.events}

    counters = h.repo.counters_of(h.location_id, PRODUCT)
    explained, after, pages = 0, None, 0
    while True:
        page = h.stock.explain(h.location_id, PRODUCT, 1000, after)
        explained += len(page.entries)
        pages += 1
        if page.next_position is None:
            break
        after = page.next_position
    print(
        f"\nhistory of {len(h.events)} events: largest item written {bus_up[0]} bytes with the bus up "
        f"({bus_up[1]}), {bus_down[0]} bytes while it was down ({bus_down[1]}); most items one read of "
        f"the product touched: {h.most_touched}; hot item buffer {counters.buffered} entries, "
        f"{counters.pages} ledger pages; explain: {explained} entries since the base in {pages} pages"
    )
    assert bus_up[0] <= LARGEST_ITEM
    assert bus_down[0] <= LARGEST_ITEM_BUS_DOWN
    assert h.most_touched <= ITEMS_PER_READ
    assert counters.buffered <= 16 + BATCH
    # Explain lists every line since the base, wherever its entry is: those above its watermark.
    assert explained == sum(1 for s in h.model.shipments[PRODUCT] if s.logical_timestamp > watermark)
