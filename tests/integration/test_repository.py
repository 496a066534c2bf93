"""What only the DynamoDB adapter has: where each item is (the keys module's layout, in the table
and its indexes) and DynamoDB's item size limit. What the ports promise is checked on both backends
by tests/integration/test_repository_contract.py. Each test has a table of its own, so that the
events it leaves waiting never reach the relay runs of other tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.keys import (
    LOCATIONS_PARTITION,
    Key,
    allocation_key,
    count_key,
    counters_key,
    event_key,
    import_key,
    import_row_key,
    location_key,
    outbox_pk_of,
    pending_index_keys,
)
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.errors import ImportIdReused, ItemTooLarge
from inventory.models import (
    AllocationStatus,
    CountReason,
    ImportKind,
    ImportStatus,
    LedgerKind,
    LocationChanges,
    LocationType,
    OutboxEvent,
)
from inventory.models.allocations import Allocation
from inventory.models.counters import LedgerEntry
from inventory.models.counts import CycleCount
from inventory.models.imports import ImportCounts, ImportRecord, StockRow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def repo(fresh_table: str, dynamodb_client: DynamoDBClient) -> DynamoDbRepository:
    return DynamoDbRepository(fresh_table, dynamodb_client)


def stored(repo: DynamoDbRepository, table: str, key: Key) -> dict[str, Any] | None:
    """The item at `key` as the table holds it."""
    item = repo.client.get_item(TableName=table, Key=to_ddb(key), ConsistentRead=True).get("Item")
    return from_ddb(item) if item else None


def test_every_item_is_where_the_keys_module_puts_it(repo: DynamoDbRepository, fresh_table: str) -> None:
    """Given a store with an import and its rows, a product's counters, a cycle count, a pending
    allocation and an applied event, when each is read by the key the keys module builds, then each
    item is there: the location listed in gsi1, the product's counters and rows in the partitions of
    its shard, the allocation listed in gsi1 by when it would be abandoned."""
    store = f"keys-{uuid.uuid4().hex[:8]}"
    repo.put_location(store, LocationChanges(type=LocationType.STORE), NOW)
    record = ImportRecord(
        location_id=store,
        import_id="i1",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=NOW,
    )
    seq = repo.begin_import(record).seq or 0
    repo.write_import_rows(store, seq, [StockRow(product_id="SKU 1/a", stock_location="main", quantity=4)])
    entry = LedgerEntry(
        entry_id="e1", kind=LedgerKind.SHIPMENT, quantity=-1, stock_location="main", applied_at=NOW, logical_timestamp=1
    )
    repo.append_entry(store, "SKU 1/a", entry, OutboxEvent.of("Shipment Applied", store, NOW, {}, key=f"{store}/e1"))
    repo.open_cycle_count(
        CycleCount(
            location_id=store,
            count_id="c1",
            reason=CountReason.SCHEDULED,
            product_ids=["SKU 1/a"],
            content_hash="h",
            opened_at=NOW,
        )
    )
    abandon_at = NOW + timedelta(minutes=15)
    allocation = Allocation(
        location_id=store,
        allocation_id="a1",
        status=AllocationStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
        abandon_at=abandon_at,
    )
    repo.put_allocation(allocation)
    repo.claim_event(store, "ev-1", "hash", NOW + timedelta(days=40))

    location = stored(repo, fresh_table, location_key(store))
    counters = stored(repo, fresh_table, counters_key(store, "SKU 1/a"))
    pending = stored(repo, fresh_table, allocation_key(store, "a1"))

    assert location is not None
    assert (location["gsi1pk"], location["gsi1sk"]) == (LOCATIONS_PARTITION, store)
    assert stored(repo, fresh_table, import_key(store, "i1")) is not None
    assert stored(repo, fresh_table, count_key(store, "c1")) is not None
    assert stored(repo, fresh_table, event_key(store, "ev-1")) is not None
    # Each item is where keys.py puts it; that keys.py builds the keys of the design's table is
    # test_product_keys.py's to check.
    assert counters is not None
    assert stored(repo, fresh_table, import_row_key(store, seq, "SKU 1/a", "main")) is not None
    assert pending is not None
    assert {k: pending[k] for k in ("gsi1pk", "gsi1sk")} == pending_index_keys(store, "a1", abandon_at)


def test_an_item_with_events_is_in_the_outbox_index_until_published_at_its_version(
    repo: DynamoDbRepository, fresh_table: str
) -> None:
    """Given a completed import that recorded an event on its location, when the event is published
    at the version read, then the location item carried the event attribute and the outbox index
    partition of its key, and afterwards carries neither."""
    store = f"outbox-{uuid.uuid4().hex[:8]}"
    repo.put_location(store, LocationChanges(type=LocationType.STORE), NOW)
    record = ImportRecord(
        location_id=store,
        import_id="i1",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=NOW,
    )
    repo.begin_import(record)
    event = OutboxEvent.of("Stock Imported", store, NOW, {}, key=f"{store}/i1")
    repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts(), event=event)
    key = location_key(store)
    before = stored(repo, fresh_table, key)

    repo.mark_published((key["pk"], key["sk"]), [event.event_id], 1)

    after = stored(repo, fresh_table, key)
    assert before is not None
    assert after is not None
    assert (before["outbox_pk"], before["version"], f"E#{event.event_id}" in before) == (
        outbox_pk_of(key["pk"]),
        1,
        True,
    )
    assert ("outbox_pk" in after, f"E#{event.event_id}" in after) == (False, False)


def test_a_write_past_the_item_size_limit_is_refused_whole(repo: DynamoDbRepository) -> None:
    """Given a product whose counters hold a 200 KB ledger entry, when another of 210 KB is appended,
    then DynamoDB's 400 KB item limit refuses it as ItemTooLarge, and the counters are unchanged."""
    store = f"size-{uuid.uuid4().hex[:8]}"

    def line(n: int, size: int) -> tuple[LedgerEntry, OutboxEvent]:
        entry = LedgerEntry(
            entry_id=f"e{n}",
            kind=LedgerKind.SHIPMENT,
            quantity=-1,
            stock_location="main",
            applied_at=NOW,
            reference="x" * size,
        )
        return entry, OutboxEvent.of("Shipment Applied", store, NOW, {}, key=f"{store}/e{n}")

    assert repo.append_entry(store, "p", *line(1, 200_000))
    before = repo.counters_of(store, "p")

    with pytest.raises(ItemTooLarge):
        repo.append_entry(store, "p", *line(2, 210_000))

    assert repo.counters_of(store, "p") == before


def test_a_claim_taken_over_from_its_own_import_is_left_to_that_imports_ending(
    repo: DynamoDbRepository, fresh_table: str, dynamodb_client: DynamoDBClient
) -> None:
    """Given a store claimed by import i1 with no record (its request stopped after the claim), when
    the request comes again and, between its claim (taking the claim over) and its record, the sweep
    of abandoned imports records i1 failed and stops before its release, then the repeat is
    ImportIdReused and leaves the claim to i1's ending; the sweep's next run releases it, with i1
    failed as the store's last import (a repeat that gave the store back itself would restore the
    `accepted` it had read). Only the adapter races: the in-memory repository runs one call at a time."""
    from tests.faults import ANY_WRITE, Crash, faults_on

    store = f"takeover-{uuid.uuid4().hex[:8]}"
    repo.put_location(store, LocationChanges(type=LocationType.STORE), NOW)
    record = ImportRecord(
        location_id=store,
        import_id="i1",
        kind=ImportKind.INITIAL,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=NOW,
    )
    with faults_on(repo.client) as faults:
        faults.inject(ANY_WRITE, "crash", when="after")  # the claim is written, the record never
        with pytest.raises(Crash):
            repo.begin_import(record)
    failed = record.model_copy(
        update={
            "status": ImportStatus.FAILED,
            "content_hash": None,
            "completed_at": NOW + timedelta(minutes=16),
            "errors": [{"line": 0, "code": "not_started"}],
        }
    )
    sweep = DynamoDbRepository(fresh_table, dynamodb_client)

    def record_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("sk") == {"S": import_key(store, "i1")["sk"]}:
            repo.client.meta.events.unregister("provide-client-params.dynamodb.PutItem", record_first)
            item = {**import_key(store, "i1"), "entity": "import", **failed.model_dump(mode="json")}
            sweep._table.put_new(item)  # the sweep's first write; it stops before the release

    repo.client.meta.events.register("provide-client-params.dynamodb.PutItem", record_first)
    try:
        with pytest.raises(ImportIdReused):
            repo.begin_import(record.model_copy(update={"accepted_at": NOW + timedelta(minutes=16)}))
    finally:
        repo.client.meta.events.unregister("provide-client-params.dynamodb.PutItem", record_first)
    between = repo.get_location(store)
    repo.fail_import(store, "i1", failed_at=NOW + timedelta(minutes=21), errors=[])  # the sweep's next run

    assert between is not None
    assert between.running_import_id == "i1"
    after = repo.get_location(store)
    assert after is not None
    assert after.last_import is not None
    assert (after.running_import_id, after.last_import.import_id, after.last_import.status) == (
        None,
        "i1",
        ImportStatus.FAILED,
    )
    assert repo.get_import(store, "i1") == failed


def test_a_products_item_of_the_earlier_shape_reads_as_before_and_its_next_line_folds_it(
    repo: DynamoDbRepository, fresh_table: str
) -> None:
    """Given a product's counters as the service wrote them before the ledger left them (its entries
    as `L#` attributes, no sums), after an import that includes the first of them, then its figures
    and explanation are those of before; its next line folds the item (sums, its entries as the
    buffer) and counts once; and once their events are past keeping, its old entries move to ledger
    pages like any other, the figures unchanged."""
    from inventory.services.import_runs import ImportRunner
    from inventory.services.imports import ImportRequest
    from inventory.services.locations import LocationService
    from inventory.services.shipment_events import ShipmentService
    from inventory.services.stock import StockService
    from tests.unit.fakes import FixedClock, MemoryFiles, MemoryQueue
    from tests.unit.test_shipments import bus_message, parse_shipment

    clock = FixedClock(NOW)
    store = f"upgrade-{uuid.uuid4().hex[:8]}"
    LocationService(repo, clock).put(store, LocationChanges(type=LocationType.STORE))
    queue = MemoryQueue()
    imports = ImportRunner(repo, MemoryFiles(), queue, clock)
    items = [StockRow(product_id="p", stock_location="main", quantity=100)]
    imports.accept(store, ImportRequest("i1", ImportKind.INITIAL, 10, items=items), "tester")
    while queue.messages:
        message = queue.messages.pop(0)
        imports.run(store, str(message["import_id"]), lambda: 10**9)
    old = {
        f"L#old-{n}:0#{'a' * 64}": {
            "kind": "shipment",
            "quantity": -1,
            "stock_location": "main",
            "logical_timestamp": 9 + n,  # the first included by the import (10), the others not
            "applied_at": (NOW - timedelta(days=1) + timedelta(minutes=n)).isoformat(),
            "reference": f"sh-{n}",
        }
        for n in range(1, 21)
    }
    repo.client.put_item(
        TableName=fresh_table,
        Item=to_ddb({**counters_key(store, "p"), "version": 20, "stock_version": 20, **old}),
    )
    for n in range(1, 21):  # their events' records, as they were written then (kept 35 days)
        repo.claim_event(store, f"old-{n}", "a" * 64, NOW + timedelta(days=34))
    stock = StockService(repo)
    before = stock.explain(store, "p", 100)

    shipments = ShipmentService(repo, StockService(repo), clock)
    detail = {
        "event_id": "new-1",
        "location_id": store,
        "shipment_id": "sh-new",
        "logical_timestamp": 40,
        "occurred_at": NOW.isoformat(),
        "items": [{"product_id": "p", "quantity": 2}],
    }
    shipments.apply(parse_shipment(bus_message(detail)))
    folded, folded_figure = repo.counters_of(store, "p"), stock.product(store, "p").stock_on_hand
    clock.advance(days=36)  # the old events' records are past keeping: their entries may move
    for n in range(2, 6):
        shipments.apply(
            parse_shipment(
                bus_message(
                    {
                        **detail,
                        "event_id": f"new-{n}",
                        "occurred_at": clock.now().isoformat(),
                        "logical_timestamp": 40 + n,
                    }
                )
            )
        )
    moved = repo.counters_of(store, "p")

    assert (before.stock.stock_on_hand, len(before.entries)) == (81, 19)
    assert (folded.legacy, folded.sums, folded.buffered) == (False, {0: -22, 1: -21}, 21)
    assert folded_figure == 79
    assert (moved.pages >= 1, moved.buffered <= 16) == (True, True)
    assert stock.product(store, "p").stock_on_hand == 71
    explained = stock.explain(store, "p", 100)
    assert [e.entry_id for e in explained.entries][:19] == [f"old-{n}:0" for n in range(2, 21)]
    assert len(explained.entries) == 19 + 5
