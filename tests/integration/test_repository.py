"""The DynamoDB adapter's guards, on dynalite: the same rules the unit tests check on the fake."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings

from inventory.adapters.dynamodb import DynamoDbRepository
from inventory.adapters.dynamodb.keys import location_key
from inventory.adapters.dynamodb.table import encode_cursor
from inventory.errors import (
    Conflict,
    CountIdReused,
    ImportIdReused,
    ImportInProgress,
    InvalidInput,
    LocationTypeImmutable,
    NotFound,
)
from inventory.models import (
    CountReason,
    CountStatus,
    CycleCount,
    ImportCounts,
    ImportKind,
    ImportRecord,
    ImportStatus,
    InventoryMaster,
    LocationChanges,
    LocationType,
    OutboxEvent,
)
from tests.conftest import shipment_entry
from tests.faults import ANY_WRITE, Crash, faults_on
from tests.unit.switch_machine import SwitchMachine

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def new_store(repo: DynamoDbRepository, kind: LocationType = LocationType.STORE) -> str:
    location_id = f"s-{uuid.uuid4().hex[:12]}"
    repo.put_location(location_id, LocationChanges(type=kind), NOW)
    return location_id


def import_record(location_id: str, import_id: str = "i1", kind: ImportKind = ImportKind.INITIAL) -> ImportRecord:
    return ImportRecord(
        location_id=location_id,
        import_id=import_id,
        kind=kind,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=NOW,
    )


def switch_event() -> OutboxEvent:
    return OutboxEvent(event_id=str(uuid.uuid4()), detail_type="Inventory Master Switched", occurred_at=NOW, detail={})


def test_creation_then_update_keeps_unnamed_fields_and_the_type(repo: DynamoDbRepository) -> None:
    location, created = repo.put_location(
        "loc-a" + uuid.uuid4().hex[:6], LocationChanges(type=LocationType.STORE, name="A", default_safety_stock=3), NOW
    )
    updated, created_again = repo.put_location(
        location.location_id, LocationChanges(type=LocationType.STORE, enabled=False), NOW + timedelta(seconds=1)
    )

    assert (created, created_again) == (True, False)
    assert (updated.name, updated.default_safety_stock, updated.enabled) == ("A", 3, False)
    assert updated.created_at == location.created_at
    with pytest.raises(LocationTypeImmutable):
        repo.put_location(location.location_id, LocationChanges(type=LocationType.DC), NOW)


def test_the_switch_write_refuses_every_unready_state(repo: DynamoDbRepository) -> None:
    store = new_store(repo)
    cutoff = NOW - timedelta(minutes=15)
    assert repo.switch_to_platform(store, now=NOW, caller="me", baseline_cutoff=cutoff, event=switch_event()) is None

    repo.begin_import(import_record(store))
    assert repo.switch_to_platform(store, now=NOW, caller="me", baseline_cutoff=cutoff, event=switch_event()) is None
    repo.complete_import(store, "i1", completed_at=NOW - timedelta(minutes=16), counts=ImportCounts())
    assert repo.switch_to_platform(store, now=NOW, caller="me", baseline_cutoff=cutoff, event=switch_event()) is None

    dc = new_store(repo, LocationType.DC)
    repo.begin_import(import_record(dc))
    repo.complete_import(dc, "i1", completed_at=NOW, counts=ImportCounts())
    assert repo.switch_to_platform(dc, now=NOW, caller="me", baseline_cutoff=cutoff, event=switch_event()) is None
    assert repo.get_location(dc).inventory_master is InventoryMaster.ERP  # type: ignore[union-attr]


def test_a_switched_store_stays_platform_whatever_is_written_after(repo: DynamoDbRepository) -> None:
    store = new_store(repo)
    repo.begin_import(import_record(store))
    repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts(rows=2, applied=2))
    switched = repo.switch_to_platform(
        store, now=NOW, caller="me", baseline_cutoff=NOW - timedelta(minutes=15), event=switch_event()
    )
    assert switched is not None

    repo.put_location(store, LocationChanges(type=LocationType.STORE, name="renamed"), NOW)
    again = repo.switch_to_platform(store, now=NOW, caller="other", baseline_cutoff=NOW, event=switch_event())

    location = repo.get_location(store)
    assert again is None
    assert location is not None
    assert (location.inventory_master, location.master_switched_by, location.name) == (
        InventoryMaster.PLATFORM,
        "me",
        "renamed",
    )
    assert location.imports_before_switch == 1  # what makes imported stock uncounted after the switch
    key = (location_key(store)["pk"], location_key(store)["sk"])
    assert len(repo.read_pending([key])[key][0]) == 1


def test_imports_claim_the_location_one_at_a_time(repo: DynamoDbRepository) -> None:
    store = new_store(repo)
    repo.begin_import(import_record(store, "i1"))

    with pytest.raises(ImportInProgress):
        repo.begin_import(import_record(store, "i2"))
    repo.fail_import(store, "i1", failed_at=NOW, errors=[{"line": 3, "code": "invalid_quantity"}])
    with pytest.raises(ImportIdReused):
        repo.begin_import(import_record(store, "i1"))

    location = repo.get_location(store)
    assert location is not None
    assert location.running_import_id is None
    assert location.last_import is not None
    assert (location.last_import.import_id, location.last_import.status) == ("i1", ImportStatus.FAILED)
    assert location.last_baseline_import_at is None
    with pytest.raises(NotFound):
        repo.begin_import(import_record("no-such-location"))


def test_completing_an_import_twice_is_harmless_and_ending_it_otherwise_is_refused(repo: DynamoDbRepository) -> None:
    store = new_store(repo)
    repo.begin_import(import_record(store))
    first = repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts(rows=5, applied=5))
    again = repo.complete_import(
        store, "i1", completed_at=NOW + timedelta(minutes=1), counts=ImportCounts(rows=5, applied=5)
    )

    assert first.status is again.status is ImportStatus.COMPLETED
    assert repo.get_import(store, "i1") == first
    with pytest.raises(Conflict):
        repo.fail_import(store, "i1", failed_at=NOW, errors=[])


def test_mispick_counts_flag_the_location_until_closed(repo: DynamoDbRepository) -> None:
    store = new_store(repo)
    count = CycleCount(
        location_id=store,
        count_id="c1",
        reason=CountReason.MISPICK,
        product_ids=["p1"],
        content_hash="h",
        opened_at=NOW,
    )
    repo.open_cycle_count(count)
    repo.open_cycle_count(count)  # a retry

    assert repo.get_location(store).open_mispick_count_ids == {"c1"}  # type: ignore[union-attr]
    with pytest.raises(CountIdReused):
        repo.open_cycle_count(count.model_copy(update={"content_hash": "other"}))
    repo.close_cycle_count(store, "c1", status=CountStatus.CANCELLED, closed_at=NOW)
    assert repo.get_location(store).open_mispick_count_ids == frozenset()  # type: ignore[union-attr]
    assert repo.get_cycle_count(store, "c1").status is CountStatus.CANCELLED  # type: ignore[union-attr]


def test_a_count_needs_its_location_and_a_repeated_or_refused_open_leaves_no_flag(repo: DynamoDbRepository) -> None:
    """Given a store whose mispick count c1 is closed and whose scheduled count c2 is open,
    when c1 is opened again, and c2's id is used for a mispick count,
    then the location is flagged by neither, and a count at an unknown location is refused."""
    store = new_store(repo)

    def count(count_id: str, reason: CountReason, content: str = "h", location_id: str = store) -> CycleCount:
        return CycleCount(
            location_id=location_id,
            count_id=count_id,
            reason=reason,
            product_ids=["p1"],
            content_hash=content,
            opened_at=NOW,
        )

    repo.open_cycle_count(count("c1", CountReason.MISPICK))
    repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=NOW)
    repo.open_cycle_count(count("c2", CountReason.SCHEDULED))

    again = repo.open_cycle_count(count("c1", CountReason.MISPICK))
    with pytest.raises(CountIdReused):
        repo.open_cycle_count(count("c2", CountReason.MISPICK, content="other"))

    assert again.status is CountStatus.COMPLETED
    assert repo.get_location(store).open_mispick_count_ids == frozenset()  # type: ignore[union-attr]
    for reason in CountReason:
        with pytest.raises(NotFound):
            repo.open_cycle_count(count("c3", reason, location_id=f"nowhere-{uuid.uuid4().hex[:8]}"))


def test_a_cursor_that_the_list_did_not_return_is_refused(repo: DynamoDbRepository) -> None:
    forged = [
        {"pk": "LOC#a", "sk": "LOCATION", "gsi1pk": "OTHER", "gsi1sk": "a"},  # outside the query
        {"pk": "LOC#b", "sk": "LOCATION", "gsi1pk": "LOCATIONS", "gsi1sk": "a"},  # parts that disagree
    ]
    for cursor in ("not-base64!", "eyJhIjogMX0", "W10", *(encode_cursor(key) for key in forged)):
        with pytest.raises(InvalidInput):
            repo.list_locations(10, cursor)


def test_pages_cover_every_location_once(repo: DynamoDbRepository) -> None:
    created = {new_store(repo) for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        page = repo.list_locations(2, cursor)
        seen += [location.location_id for location in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert created <= set(seen)
    assert len(seen) == len(set(seen))


def location_events(repo: DynamoDbRepository, location_id: str) -> list[OutboxEvent]:
    key = (location_key(location_id)["pk"], location_key(location_id)["sk"])
    return repo.read_pending([key])[key][0]


class DynamoSwitchMachine(SwitchMachine):
    make_repository = None  # set by the test, once the environment points at dynalite
    pending_events = staticmethod(location_events)


def test_the_switch_state_machine_holds_through_the_real_adapter(handler_environment: dict[str, str]) -> None:
    DynamoSwitchMachine.make_repository = staticmethod(lambda: DynamoDbRepository(handler_environment["TABLE_NAME"]))  # type: ignore[assignment]
    DynamoSwitchMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
    DynamoSwitchMachine.TestCase().runTest()


def test_an_entry_is_its_id_and_the_body_that_caused_it(repo: DynamoDbRepository) -> None:
    """Written again, an entry is the same attribute; the same id from another body is another entry."""
    now, store = datetime.now(UTC), f"entry-{uuid.uuid4().hex[:8]}"
    first = shipment_entry("ev-1:0", 1, now, quantity=1).model_copy(update={"source_hash": "a" * 64})
    other = shipment_entry("ev-1:0", 1, now, quantity=2).model_copy(update={"source_hash": "b" * 64})

    def event(n: int) -> OutboxEvent:
        return OutboxEvent.of("Shipment Applied", store, now, {"n": n}, key=f"ev-{n}")

    for entry, n in ((first, 1), (first, 2), (other, 3)):
        assert repo.append_entry(store, "p", entry, event(n))

    ledger = repo.counters_of(store, "p").ledger
    assert sorted((e.entry_id, e.source_hash, e.quantity) for e in ledger) == [
        ("ev-1:0", "a" * 64, -1),
        ("ev-1:0", "b" * 64, -2),
    ]
    assert repo.counters_of(store, "p").entry("ev-1:0", "b" * 64) == other


def test_a_completion_retried_after_a_crash_between_its_writes_ends_as_if_uninterrupted(
    repo: DynamoDbRepository,
) -> None:
    """Given a running baseline import whose completion stopped after its first write (the import
    record), when the completion is retried later,
    then the location is released at the record's completion time and holds the event once."""
    store = new_store(repo)
    repo.begin_import(import_record(store))
    event = OutboxEvent.of("Stock Imported", store, NOW, {"import_id": "i1"}, key=f"{store}/i1")
    with faults_on(repo.client) as faults:
        faults.inject(ANY_WRITE, "crash", when="after")
        with pytest.raises(Crash):
            repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts(rows=1), event=event)
    assert repo.get_location(store).running_import_id == "i1"  # type: ignore[union-attr]

    retried = repo.complete_import(
        store, "i1", completed_at=NOW + timedelta(minutes=3), counts=ImportCounts(rows=1), event=event
    )
    repo.complete_import(store, "i1", completed_at=NOW + timedelta(minutes=4), counts=ImportCounts(rows=1), event=event)

    location = repo.get_location(store)
    assert location is not None
    assert retried.completed_at == NOW
    assert (location.running_import_id, location.last_baseline_import_at) == (None, NOW)
    assert location.last_import is not None
    assert location.last_import.completed_at == NOW
    assert [v.completed_at for v in location.visible_imports] == [NOW]
    assert [e.event_id for e in location_events(repo, store)] == [event.event_id]
