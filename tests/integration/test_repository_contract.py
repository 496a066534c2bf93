"""The storage ports' contract, checked on both backends: the in-memory repository that the unit
tests use, and the DynamoDB adapter on dynalite (a fresh table for each test, so that what a whole
table holds, every location or every item waiting in the outbox, is exactly what the test wrote).

Each check is a plain function of a repository, registered with `@check`: `test_the_port_holds`
runs every check on each backend, and `test_a_fake_with_one_rule_broken_fails_its_check` runs some
of them on in-memory repositories with one rule broken, which must fail them. A rule that holds on
one backend and not on the other fails here rather than in production.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from hypothesis import settings

from inventory.adapters.dynamodb.keys import (
    LOCATIONS_PARTITION,
    location_key,
    location_pk,
    outbox_shard,
    product_shard,
)
from inventory.adapters.dynamodb.repository import DynamoDbRepository
from inventory.cursor import encode_cursor
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
    AllocationStatus,
    CountReason,
    CountStatus,
    ImportKind,
    ImportStatus,
    InventoryMaster,
    LedgerKind,
    Location,
    LocationChanges,
    LocationType,
    OutboxEvent,
    Page,
)
from inventory.models.allocations import Allocation, AllocationLine
from inventory.models.counters import CountersChange, LedgerEntry, OpenAllocation, PageMove, ProductCounters
from inventory.models.counts import CycleCount
from inventory.models.events import EventClaim
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.ports import (
    AllocationRepository,
    AppliedEvents,
    CountersRepository,
    CycleCountRepository,
    ImportRepository,
    LocationRepository,
    OutboxStore,
    StockLocationRepository,
)
from inventory.types import DEFAULT_STOCK_LOCATIONS
from tests.conftest import shipment_entry
from tests.faults import ANY_WRITE, Crash, faults_on
from tests.unit.fakes import MemoryRepository, OutboxKey, allocation_item, counters_item, location_item
from tests.unit.switch_machine import SwitchMachine

pytestmark = [pytest.mark.integration, pytest.mark.long]

# examples of the switch's state machine on DynamoDB (each step a few requests; `make soak` runs more)
SWITCH_MACHINE_EXAMPLES = int(os.environ.get("SWITCH_MACHINE_EXAMPLES", "25"))

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # whole milliseconds: what DynamoDB keeps of a time
CUTOFF = NOW - timedelta(minutes=15)  # the switch's readiness window
STORE, DC = LocationType.STORE, LocationType.DC


class Repository(
    LocationRepository,
    ImportRepository,
    CountersRepository,
    AppliedEvents,
    AllocationRepository,
    CycleCountRepository,
    OutboxStore,
    StockLocationRepository,
    Protocol,
):
    """Every port of storage: what both backends implement."""


Check = Callable[[Repository], None]
CHECKS: dict[str, Check] = {}


def check(function: Check) -> Check:
    """A check of the contract: run on each backend, by name."""
    CHECKS[function.__name__.removeprefix("check_")] = function
    return function


# ------------------------------------------------------------------------------------------ helpers
def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


def new_location(repo: Repository, kind: LocationType = STORE, prefix: str = "loc") -> str:
    location_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    repo.put_location(location_id, LocationChanges(type=kind), NOW)
    return location_id


def import_record(
    location_id: str, import_id: str = "i1", kind: ImportKind = ImportKind.INITIAL, at: datetime = NOW
) -> ImportRecord:
    return ImportRecord(
        location_id=location_id,
        import_id=import_id,
        kind=kind,
        status=ImportStatus.ACCEPTED,
        content_hash=f"hash-{import_id}",
        accepted_at=at,
    )


def imported(
    repo: Repository,
    location_id: str,
    import_id: str = "i1",
    kind: ImportKind = ImportKind.INITIAL,
    at: datetime = NOW,
    event: OutboxEvent | None = None,
) -> ImportRecord:
    """An import claimed and completed at `at` (no rows)."""
    repo.begin_import(import_record(location_id, import_id, kind, at))
    return repo.complete_import(location_id, import_id, completed_at=at, counts=ImportCounts(), event=event)


def an_event(location_id: str, name: str, at: datetime = NOW) -> OutboxEvent:
    return OutboxEvent.of("Contract Checked", location_id, at, {"name": name}, key=f"{location_id}/{name}")


def switch(repo: Repository, location_id: str, caller: str = "me", at: datetime = NOW) -> Location | None:
    event = an_event(location_id, f"switch-{caller}-{at.isoformat()}", at)
    return repo.switch_to_platform(location_id, now=at, caller=caller, baseline_cutoff=at - (NOW - CUTOFF), event=event)


def location(repo: Repository, location_id: str) -> Location:
    found = repo.get_location(location_id)
    assert found is not None, f"no location {location_id}"
    return found


def count(location_id: str, count_id: str, reason: CountReason = CountReason.MISPICK, content: str = "h") -> CycleCount:
    return CycleCount(
        location_id=location_id,
        count_id=count_id,
        reason=reason,
        product_ids=["p1"],
        content_hash=content,
        opened_at=NOW,
    )


def pending(repo: Repository, key: OutboxKey) -> tuple[list[str], int]:
    """The ids of the item's unpublished events (sorted), and its version."""
    events, version = repo.read_pending([key])[key]
    return sorted(e.event_id for e in events), version


def listed(repo: Repository, limit: int = 1000) -> list[OutboxKey]:
    """Every key the outbox lists, shard after shard, page after page."""
    keys: list[OutboxKey] = []
    for shard in range(repo.shards):
        after: OutboxKey | None = None
        while True:
            page, after = repo.pending_keys(shard, limit, after)
            keys += page
            if after is None:
                break
    return keys


def entry(entry_id: str, at: datetime, quantity: int = 1, source_hash: str | None = None) -> LedgerEntry:
    return LedgerEntry(
        entry_id=entry_id,
        kind=LedgerKind.SHIPMENT,
        quantity=-quantity,
        stock_location="main",
        logical_timestamp=1,
        applied_at=at,
        source_hash=source_hash,
    )


def opened(allocation_id: str, quantity: int, received: int = 1) -> OpenAllocation:
    return OpenAllocation(
        allocation_id=allocation_id, order_id=f"order-{allocation_id}", quantity=quantity, received=received
    )


def allocation(
    location_id: str,
    allocation_id: str,
    status: AllocationStatus = AllocationStatus.PENDING,
    abandon_at: datetime | None = None,
) -> Allocation:
    return Allocation(
        location_id=location_id,
        allocation_id=allocation_id,
        order_id=f"order-{allocation_id}",
        items=(AllocationLine(product_id="p1", quantity=2),),
        status=status,
        content_hash=f"hash-{allocation_id}",
        created_at=NOW,
        updated_at=NOW,
        caller="me",
        abandon_at=abandon_at,
    )


def products_in_one_shard(n: int, shard: int = 0) -> list[str]:
    """`n` product ids of one shard, in product order."""
    return sorted(p for p in (f"p{i:03d}" for i in range(1000)) if product_shard(p) == shard)[:n]


@contextmanager
def stopped_after_its_first_write(repo: Repository, method: str) -> Iterator[None]:
    """The next call of `method` stops (Crash: no `except Exception` catches it) right after its first
    write: on the fake, by its own failure switch; on the adapter, at the DynamoDB client."""
    if isinstance(repo, MemoryRepository):
        repo.fail_next(method, Crash(f"stopped after the first write of {method}"), after_writes=1)
        yield
        return
    assert isinstance(repo, DynamoDbRepository)
    with faults_on(repo.client) as faults:
        faults.inject(ANY_WRITE, "crash", when="after")
        yield


# ------------------------------------------------------------------------------------------ locations
@check
def check_a_location_is_created_then_updated_field_by_field(repo: Repository) -> None:
    """Given no location, when one is put with a name and a safety stock, then put again with only
    `enabled`, then it was created once, keeps the fields left out, and its creation time."""
    changes = LocationChanges(type=STORE, name="A", default_safety_stock=3)

    created, was_created = repo.put_location("loc-a", changes, NOW)
    updated, created_again = repo.put_location("loc-a", LocationChanges(type=STORE, enabled=False), minutes(1))

    assert (was_created, created_again) == (True, False)
    assert (updated.name, updated.default_safety_stock, updated.enabled) == ("A", 3, False)
    assert (updated.created_at, updated.updated_at) == (NOW, minutes(1))
    assert (created.inventory_master, created.enabled, created.allow_backorders) == (InventoryMaster.ERP, True, False)
    assert repo.get_location("loc-a") == updated
    assert repo.get_location("loc-b") is None


@check
def check_a_location_never_changes_type(repo: Repository) -> None:
    """Given a store, when it is put as a DC, then LocationTypeImmutable names the field, and the
    store is as it was."""
    store = new_location(repo)
    before = location(repo, store)

    with pytest.raises(LocationTypeImmutable) as refused:
        repo.put_location(store, LocationChanges(type=DC, name="renamed"), minutes(1))

    assert [(d["field"], d["code"]) for d in refused.value.details] == [("body.type", "immutable")]
    assert location(repo, store) == before


@check
def check_pages_of_locations_cover_each_once_in_id_order(repo: Repository) -> None:
    """Given five locations, when they are listed two at a time, then the pages hold each once in id
    order; and a page that is exactly full has a cursor, whose page is empty and has none (as
    DynamoDB pages: a full page says that more may follow)."""
    ids = [f"loc-{letter}" for letter in "edcba"]
    for location_id in ids:
        repo.put_location(location_id, LocationChanges(type=STORE), NOW)

    pages, cursor = [], None
    while True:
        page = repo.list_locations(2, cursor)
        pages.append([loc.location_id for loc in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    whole = repo.list_locations(5, None)

    assert pages == [["loc-a", "loc-b"], ["loc-c", "loc-d"], ["loc-e"]]
    assert [loc.location_id for loc in whole.items] == sorted(ids)
    assert whole.next_cursor is not None
    after_whole = repo.list_locations(5, whole.next_cursor)
    assert (after_whole.items, after_whole.next_cursor) == ([], None)


@check
def check_a_cursor_the_list_did_not_return_is_refused(repo: Repository) -> None:
    """Given locations, when the list is asked with cursors it never returned (not base64, not a key,
    a key of another partition, a key whose parts disagree), then each is InvalidInput
    `invalid_cursor`, where the cursor it returned works."""
    for name in ("loc-a", "loc-b"):
        repo.put_location(name, LocationChanges(type=STORE), NOW)
    forged = [
        {**location_key("loc-a"), "gsi1pk": "OTHER", "gsi1sk": "loc-a"},
        {**location_key("loc-b"), "gsi1pk": LOCATIONS_PARTITION, "gsi1sk": "loc-a"},
    ]
    returned = repo.list_locations(1, None).next_cursor

    for cursor in ("not-base64!", "eyJhIjogMX0", "W10", "loc-a", *(encode_cursor(key) for key in forged)):
        with pytest.raises(InvalidInput) as refused:
            repo.list_locations(10, cursor)
        assert [d["code"] for d in refused.value.details] == ["invalid_cursor"], cursor
    assert [loc.location_id for loc in repo.list_locations(10, returned).items] == ["loc-b"]


@check
def check_a_figure_setting_change_adds_one_to_figures_version(repo: Repository) -> None:
    """Given a store created with a safety stock (figures_version 0, as a location a claim creates),
    when it is renamed, disabled, allowed backorders and put with the figures it has, then its
    figures_version stays; when its default_safety_stock changes, then trust_imported_stock, then
    each back to its default, alone or with the other, it adds 1 each time; an import's completion
    adds nothing (its products' versions move by their bases), and the switch adds 1."""
    store = f"store-{uuid.uuid4().hex[:8]}"

    def put(**changes: Any) -> Location:
        return repo.put_location(store, LocationChanges(type=STORE, **changes), minutes(1))[0]

    created, _ = repo.put_location(store, LocationChanges(type=STORE, default_safety_stock=2), NOW)
    claimed = f"dc-{uuid.uuid4().hex[:8]}"
    repo.begin_import(import_record(claimed, "i1"), create_as=DC)

    unchanged = [
        put(name="renamed").figures_version,
        put(enabled=False, allow_backorders=True).figures_version,
        put(default_safety_stock=2, trust_imported_stock=False).figures_version,
    ]
    changed = [
        put(default_safety_stock=3).figures_version,
        put(trust_imported_stock=True, name="again").figures_version,
        put(default_safety_stock=0).figures_version,  # back to the default: a change too
        put(default_safety_stock=1, trust_imported_stock=False).figures_version,
        put(default_safety_stock=0, trust_imported_stock=False).figures_version,
    ]
    imported(repo, store, "i1", at=minutes(2))
    after_import = location(repo, store).figures_version
    switched = switch(repo, store, at=minutes(3))

    assert (created.figures_version, location(repo, claimed).figures_version) == (0, 0)
    assert unchanged == [0, 0, 0]
    assert changed == [1, 2, 3, 4, 5]
    assert (location(repo, store).default_safety_stock, location(repo, store).name) == (0, "again")
    assert after_import == 5
    assert switched is not None
    assert switched.figures_version == 6
    assert location(repo, store).figures_version == 6


# ------------------------------------------------------------------------------------------ the switch
@check
def check_the_switch_refuses_every_unready_state_and_writes_nothing(repo: Repository) -> None:
    """Given a store with no import, then one running, then one too old, then a fresh one with an open
    mispick count, and a DC and a location that does not exist, when each is switched, then the write
    is refused each time and records no event; and once the count is closed, the store switches."""
    store, dc = new_location(repo), new_location(repo, DC)
    refusals = []

    refusals.append(switch(repo, store))  # no import
    repo.begin_import(import_record(store, "old"))
    refusals.append(switch(repo, store))  # an import runs
    repo.complete_import(store, "old", completed_at=minutes(-16), counts=ImportCounts())
    refusals.append(switch(repo, store))  # its baseline is too old
    imported(repo, store, "fresh")
    repo.open_cycle_count(count(store, "c1"))
    refusals.append(switch(repo, store))  # an open mispick count
    imported(repo, dc)
    refusals.append(switch(repo, dc))  # a DC
    refusals.append(switch(repo, "nowhere"))  # no location

    assert refusals == [None] * 6
    assert repo.get_location("nowhere") is None
    for location_id in (store, dc):
        assert location(repo, location_id).inventory_master is InventoryMaster.ERP
        assert pending(repo, location_item(location_id)) == ([], 0)
    repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=NOW)
    assert switch(repo, store) is not None


@check
def check_a_switched_store_stays_platform_whatever_is_written_after(repo: Repository) -> None:
    """Given a store switched by "me", when it is renamed, imported again and switched again by
    "other", then it is still platform as "me" switched it, with one event in its outbox."""
    store = new_location(repo)
    imported(repo, store)
    switched = switch(repo, store, "me")
    assert switched is not None

    repo.put_location(store, LocationChanges(type=STORE, name="renamed"), minutes(1))
    imported(repo, store, "i2", ImportKind.FULL_COUNT, at=minutes(2))
    again = switch(repo, store, "other", at=minutes(3))

    after = location(repo, store)
    assert again is None
    assert (after.inventory_master, after.master_switched_by, after.master_switched_at, after.name) == (
        InventoryMaster.PLATFORM,
        "me",
        NOW,
        "renamed",
    )
    assert switched.imports_before_switch == after.imports_before_switch == 1  # imports before the switch
    events, version = pending(repo, location_item(store))
    assert (len(events), version) == (1, 1)


# ------------------------------------------------------------------------------------------ imports
@check
def check_imports_claim_the_location_one_at_a_time(repo: Repository) -> None:
    """Given a store with an import running, when another begins, when the first fails, and when its
    id is used again, then the second is ImportInProgress, the location is released with the failed
    import as its last, and the reused id is ImportIdReused; an unknown location is NotFound."""
    store = new_location(repo)
    repo.begin_import(import_record(store, "i1"))

    with pytest.raises(ImportInProgress):
        repo.begin_import(import_record(store, "i2"))
    repo.fail_import(store, "i1", failed_at=NOW, errors=[{"line": 3, "code": "invalid_quantity"}])
    with pytest.raises(ImportIdReused):
        repo.begin_import(import_record(store, "i1"))
    with pytest.raises(NotFound):
        repo.begin_import(import_record("nowhere"))

    after = location(repo, store)
    assert after.running_import_id is None
    assert after.last_import is not None
    assert (after.last_import.import_id, after.last_import.status) == ("i1", ImportStatus.FAILED)
    assert after.last_baseline_import_at is None
    assert repo.get_location("nowhere") is None
    assert repo.get_import(store, "i2") is None


@check
def check_a_claim_can_create_its_location_and_a_refused_claim_changes_nothing(repo: Repository) -> None:
    """Given no location, when an import begins with create_as=dc, then the claim creates the DC at the
    import's time; and when another begins there with create_as=store, it is ImportInProgress and the
    location is unchanged."""
    dc = f"dc-{uuid.uuid4().hex[:8]}"

    record = repo.begin_import(import_record(dc, "i1", at=minutes(1)), create_as=DC)
    before = location(repo, dc)
    with pytest.raises(ImportInProgress):
        repo.begin_import(import_record(dc, "i2", at=minutes(2)), create_as=STORE)

    assert record.seq == 1
    assert (before.type, before.created_at, before.updated_at, before.running_import_id) == (
        DC,
        minutes(1),
        minutes(1),
        "i1",
    )
    assert location(repo, dc) == before


@check
def check_claims_and_releases_show_on_the_location(repo: Repository) -> None:
    """Given a store created at 9:00, when an import is claimed at 9:01 and completed at 9:02, and the
    next is claimed at 9:03, then each write stamps the location, its last import goes from accepted
    to completed, and the imports are numbered 1 and 2."""
    store = new_location(repo)

    first = repo.begin_import(import_record(store, "i1", at=minutes(1)))
    claimed = location(repo, store)
    repo.complete_import(store, "i1", completed_at=minutes(2), counts=ImportCounts(rows=1, applied=1))
    released = location(repo, store)
    second = repo.begin_import(import_record(store, "i2", ImportKind.PARTIAL, at=minutes(3)))

    assert (first.seq, second.seq) == (1, 2)
    assert claimed.last_import is not None
    assert released.last_import is not None
    assert (claimed.updated_at, claimed.running_import_id, claimed.last_import.status) == (
        minutes(1),
        "i1",
        ImportStatus.ACCEPTED,
    )
    assert (released.updated_at, released.running_import_id, released.last_import.status) == (
        minutes(2),
        None,
        ImportStatus.COMPLETED,
    )
    assert (released.last_import.completed_at, released.last_baseline_import_at) == (minutes(2), minutes(2))
    assert location(repo, store).created_at == NOW


@check
def check_progress_is_recorded_only_while_the_import_runs(repo: Repository) -> None:
    """Given a running import, when its progress is recorded, then it is running through that line;
    once it has completed, or for an import that does not exist, recording progress is a Conflict."""
    store = new_location(repo)
    repo.begin_import(import_record(store))

    repo.record_progress(store, "i1", written_through_line=10)
    running = repo.get_import(store, "i1")
    repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts())

    assert running is not None
    assert (running.status, running.written_through_line) == (ImportStatus.RUNNING, 10)
    for import_id in ("i1", "never"):
        with pytest.raises(Conflict):
            repo.record_progress(store, import_id, written_through_line=20)
    assert repo.get_import(store, "never") is None


@check
def check_a_completed_import_is_returned_unchanged_by_a_repeat_and_cannot_fail(repo: Repository) -> None:
    """Given an import completed at 9:00 with 5 rows and its event, when it is completed again at 9:01
    with 6 rows and another event, then the stored record comes back unchanged, no event is added,
    and failing it is a Conflict."""
    store = new_location(repo)
    repo.begin_import(import_record(store))
    first = repo.complete_import(
        store, "i1", completed_at=NOW, counts=ImportCounts(rows=5, applied=5), event=an_event(store, "first")
    )

    again = repo.complete_import(
        store, "i1", completed_at=minutes(1), counts=ImportCounts(rows=6, applied=6), event=an_event(store, "again")
    )

    assert again == first == repo.get_import(store, "i1")
    assert (again.completed_at, again.counts.rows) == (NOW, 5)
    assert pending(repo, location_item(store))[0] == [an_event(store, "first").event_id]
    with pytest.raises(Conflict):
        repo.fail_import(store, "i1", failed_at=NOW, errors=[])
    assert repo.get_import(store, "i1") == first


@check
def check_a_failed_import_is_returned_unchanged_by_a_repeat_and_cannot_complete(repo: Repository) -> None:
    """Given an import failed at 9:00 with one error, when it fails again at 9:01 with other errors and
    counts, then the stored record comes back unchanged, and completing it is a Conflict; nothing of
    it is visible on the location."""
    store = new_location(repo)
    repo.begin_import(import_record(store))
    first = repo.fail_import(store, "i1", failed_at=NOW, errors=[{"line": 3, "code": "invalid_quantity"}])

    again = repo.fail_import(
        store, "i1", failed_at=minutes(1), errors=[{"line": 9, "code": "abandoned"}], counts=ImportCounts(rows=9)
    )

    assert again == first == repo.get_import(store, "i1")
    assert (again.completed_at, again.errors, again.counts) == (
        NOW,
        [{"line": 3, "code": "invalid_quantity"}],
        ImportCounts(),
    )
    with pytest.raises(Conflict):
        repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts())
    after = location(repo, store)
    assert (after.visible_imports, after.last_baseline_import_at) == ((), None)


@check
def check_ending_an_import_that_does_not_exist_is_not_found(repo: Repository) -> None:
    """Given a store without imports, when an unknown import is completed or failed, then both are
    NotFound, and the store is unchanged."""
    store = new_location(repo)
    before = location(repo, store)

    with pytest.raises(NotFound):
        repo.complete_import(store, "never", completed_at=NOW, counts=ImportCounts())
    with pytest.raises(NotFound):
        repo.fail_import(store, "never", failed_at=NOW, errors=[])

    assert location(repo, store) == before


@check
def check_a_completion_retried_after_a_stop_between_its_writes_ends_as_if_uninterrupted(repo: Repository) -> None:
    """Given a running baseline import whose completion stopped after its first write (the import
    record), when the completion is retried at 9:03 and again at 9:04, then the location is released
    at the record's time (9:00) with the import visible, and its outbox holds the event once."""
    store = new_location(repo)
    repo.begin_import(import_record(store))
    event = an_event(store, "imported")
    with stopped_after_its_first_write(repo, "complete_import"), pytest.raises(Crash):
        repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts(rows=1), event=event)
    between = (location(repo, store).running_import_id, pending(repo, location_item(store)))

    retried = repo.complete_import(store, "i1", completed_at=minutes(3), counts=ImportCounts(rows=1), event=event)
    repo.complete_import(store, "i1", completed_at=minutes(4), counts=ImportCounts(rows=1), event=event)

    assert between == ("i1", ([], 0))  # the record is completed, the location not yet released
    after = location(repo, store)
    assert retried.completed_at == NOW
    assert after.last_import is not None
    assert (after.running_import_id, after.last_baseline_import_at, after.last_import.completed_at) == (None, NOW, NOW)
    assert [(v.import_id, v.completed_at) for v in after.visible_imports] == [("i1", NOW)]
    assert pending(repo, location_item(store))[0] == [event.event_id]


@check
def check_an_import_begun_again_after_a_stop_between_its_claim_and_its_record_takes_the_claim_over(
    repo: Repository,
) -> None:
    """Given a store whose import stopped after its first write (the claim of the location), when the
    same import begins again, then it takes the claim over and is recorded; another import is still
    ImportInProgress, and the same id once more is ImportIdReused."""
    store = new_location(repo)
    with stopped_after_its_first_write(repo, "begin_import"), pytest.raises(Crash):
        repo.begin_import(import_record(store, "i1"))
    between = (location(repo, store).running_import_id, repo.get_import(store, "i1"))

    record = repo.begin_import(import_record(store, "i1"))

    assert between == ("i1", None)
    assert repo.get_import(store, "i1") == record
    assert location(repo, store).running_import_id == "i1"
    with pytest.raises(ImportInProgress):
        repo.begin_import(import_record(store, "i2"))
    with pytest.raises(ImportIdReused):
        repo.begin_import(import_record(store, "i1"))


def unrecorded_failure(location_id: str, import_id: str = "i1", at: datetime = NOW) -> ImportRecord:
    """The failed record the sweep puts for an import that claimed its location and never recorded itself."""
    return ImportRecord(
        location_id=location_id,
        import_id=import_id,
        kind=ImportKind.INITIAL,
        status=ImportStatus.FAILED,
        accepted_at=at,
        completed_at=minutes(16),
        errors=[{"line": 0, "code": "not_started", "message": "stopped after its claim"}],
    )


def claimed_only(repo: Repository, location_id: str, import_id: str = "i1", at: datetime = NOW) -> None:
    """An import start that stopped after its first write: the claim, with no record."""
    with stopped_after_its_first_write(repo, "begin_import"), pytest.raises(Crash):
        repo.begin_import(import_record(location_id, import_id, at=at))


@check
def check_claims_are_listed_with_their_own_time_until_released(repo: Repository) -> None:
    """Given three stores: one claimed at 9:01 and never recorded, one whose import claimed it at 9:02
    and completed, and one never claimed, when the claims are listed, after the first is claimed again
    at 9:03 by the same import (a repeat of its request), and after it is released, then only the
    claimed store is listed, with the time of its latest claim, until it is released."""
    one, two, three = (new_location(repo, prefix=p) for p in ("a", "b", "c"))
    claimed_only(repo, one, at=minutes(1))
    imported(repo, two, "j1", at=minutes(2))

    listed = [(c.location_id, c.running_import_id, c.running_import_claimed_at) for c in repo.claimed_locations()]
    repo.begin_import(import_record(one, "i1", at=minutes(3)))
    again = [(loc.location_id, loc.running_import_claimed_at) for loc in repo.claimed_locations()]
    repo.fail_import(one, "i1", failed_at=minutes(4), errors=[])

    assert listed == [(one, "i1", minutes(1))]
    assert again == [(one, minutes(3))]
    assert list(repo.claimed_locations()) == []
    assert [location(repo, x).running_import_claimed_at for x in (one, two, three)] == [None, None, None]


@check
def check_an_unrecorded_import_is_failed_once_and_its_claim_released(repo: Repository) -> None:
    """Given a store claimed by an import that has no record, when its failed record is put, put
    again, and the import begins again, then the first put records it and releases the store with
    it as the last import, the second finds it and writes nothing, and the import is ImportIdReused."""
    store = new_location(repo)
    claimed_only(repo, store)
    failed = unrecorded_failure(store)

    first = repo.fail_unrecorded_import(failed)
    after = location(repo, store)
    second = repo.fail_unrecorded_import(failed.model_copy(update={"completed_at": minutes(20)}))
    with pytest.raises(ImportIdReused):
        repo.begin_import(import_record(store, "i1", at=minutes(21)))

    assert first == (failed, True)
    assert second == (failed, False)
    assert repo.get_import(store, "i1") == failed
    assert after.last_import is not None
    assert (after.running_import_id, after.running_import_claimed_at) == (None, None)
    assert (after.last_import.import_id, after.last_import.status, after.updated_at) == (
        "i1",
        ImportStatus.FAILED,
        minutes(16),
    )
    assert location(repo, store) == after


@check
def check_an_unrecorded_failure_overwrites_no_record_and_releases_no_other_claim(repo: Repository) -> None:
    """Given a store whose import i1 is recorded (accepted), and a store claimed by j1, when failed
    records are put for i1 and for an import that claims nothing, then i1's record stays as it was and
    its store claimed; the other is recorded failed, and j1 keeps its claim and its last import."""
    recorded, other = new_location(repo), new_location(repo)
    accepted = repo.begin_import(import_record(recorded, "i1"))
    repo.begin_import(import_record(other, "j1"))
    before = location(repo, other)

    kept = repo.fail_unrecorded_import(unrecorded_failure(recorded))
    ghost = repo.fail_unrecorded_import(unrecorded_failure(other, "ghost"))

    assert kept == (accepted, False)
    assert repo.get_import(recorded, "i1") == accepted
    assert location(repo, recorded).running_import_id == "i1"
    assert ghost == (unrecorded_failure(other, "ghost"), True)
    assert location(repo, other) == before


@check
def check_an_unrecorded_failure_stopped_before_its_release_is_released_by_the_failure_path(repo: Repository) -> None:
    """Given an unrecorded import whose failed record was put by a call that stopped before the
    release, when the record is put again, then nothing is written and the store is still claimed;
    and failing the import (the path every failure takes) releases it with the record as it is."""
    store = new_location(repo)
    claimed_only(repo, store)
    failed = unrecorded_failure(store)
    with stopped_after_its_first_write(repo, "fail_unrecorded_import"), pytest.raises(Crash):
        repo.fail_unrecorded_import(failed)

    again = repo.fail_unrecorded_import(failed)
    between = location(repo, store).running_import_id
    ended = repo.fail_import(store, "i1", failed_at=minutes(30), errors=[{"code": "other"}])

    assert (again, between) == ((failed, False), "i1")
    assert ended == failed
    after = location(repo, store)
    assert after.last_import is not None
    assert (after.running_import_id, after.last_import.status, after.updated_at) == (
        None,
        ImportStatus.FAILED,
        minutes(16),
    )


@check
def check_a_failure_of_unstarted_imports_only_fails_those_accepted_and_not_queued(repo: Repository) -> None:
    """Given four stores whose imports are accepted, accepted and queued, running, and completed,
    when each is failed as unstarted, then the first is failed and its store released; the others are
    each a Conflict, and stay as they were."""
    unstarted, queued, running, completed = (new_location(repo) for _ in range(4))
    for store in (unstarted, queued, running):
        repo.begin_import(import_record(store))
    repo.mark_queued(queued, "i1")
    repo.record_progress(running, "i1", written_through_line=0)
    imported(repo, completed)
    stored = {store: repo.get_import(store, "i1") for store in (queued, running, completed)}
    errors: list[dict[str, object]] = [{"line": 0, "code": "not_started"}]

    failed = repo.fail_import(unstarted, "i1", failed_at=minutes(16), errors=errors, unstarted_only=True)
    for store in (queued, running, completed):
        with pytest.raises(Conflict):
            repo.fail_import(store, "i1", failed_at=minutes(16), errors=errors, unstarted_only=True)

    assert (failed.status, failed.errors, failed.completed_at) == (ImportStatus.FAILED, errors, minutes(16))
    assert location(repo, unstarted).running_import_id is None
    assert {store: repo.get_import(store, "i1") for store in stored} == stored
    assert [location(repo, store).running_import_id for store in (queued, running, completed)] == ["i1", "i1", None]


@check
def check_an_unstarted_failure_retried_after_a_stop_between_its_writes_releases(repo: Repository) -> None:
    """Given an accepted import whose failure as unstarted stopped after the record's write, when it is
    failed as unstarted again, then the stored failure comes back and the store is released."""
    store = new_location(repo)
    repo.begin_import(import_record(store))
    errors: list[dict[str, object]] = [{"line": 0, "code": "not_started"}]
    with stopped_after_its_first_write(repo, "fail_import"), pytest.raises(Crash):
        repo.fail_import(store, "i1", failed_at=minutes(16), errors=errors, unstarted_only=True)
    between = location(repo, store).running_import_id

    retried = repo.fail_import(store, "i1", failed_at=minutes(21), errors=[], unstarted_only=True)

    assert between == "i1"
    assert (retried.status, retried.completed_at, retried.errors) == (ImportStatus.FAILED, minutes(16), errors)
    assert location(repo, store).running_import_id is None


@check
def check_a_baseline_import_supersedes_earlier_ones_and_a_partial_one_adds_to_them(repo: Repository) -> None:
    """Given a store, when an initial, a partial and a full_count import complete in turn, then the
    location sees the initial, then both, then only the full count; partial imports do not count as a
    baseline."""
    store = new_location(repo)

    imported(repo, store, "i1", ImportKind.INITIAL, at=minutes(1))
    first = location(repo, store)
    imported(repo, store, "i2", ImportKind.PARTIAL, at=minutes(2))
    second = location(repo, store)
    imported(repo, store, "i3", ImportKind.FULL_COUNT, at=minutes(3))
    third = location(repo, store)

    seen = [[(v.seq, v.import_id, v.kind) for v in loc.visible_imports] for loc in (first, second, third)]
    assert seen == [
        [(1, "i1", ImportKind.INITIAL)],
        [(1, "i1", ImportKind.INITIAL), (2, "i2", ImportKind.PARTIAL)],
        [(3, "i3", ImportKind.FULL_COUNT)],
    ]
    baselines = [loc.last_baseline_import_at for loc in (first, second, third)]
    assert baselines == [minutes(1), minutes(1), minutes(3)]


@check
def check_a_products_rows_and_counters_share_its_shard_and_products_spread_over_shards(repo: Repository) -> None:
    """Given rows of 40 products in two stock locations and counters for each, when every shard is
    read, then each row is read once, each product's rows and counters are in one shard (the keys
    module's), and the products are spread over several shards."""
    store = new_location(repo)
    record = repo.begin_import(import_record(store))
    products = [f"SKU {n}/{n % 3}" for n in range(40)]  # ids with characters that are percent-encoded
    rows = [
        StockRow(product_id=p, stock_location=s, quantity=n)
        for n, p in enumerate(products)
        for s in ("main", "damaged")
    ]
    repo.write_import_rows(store, record.seq or 0, rows)
    for n, product_id in enumerate(products):
        repo.append_entry(store, product_id, entry(f"e{n}", NOW), an_event(store, f"e{n}"))

    rows_in: dict[str, set[int]] = {}
    counters_in: dict[str, set[int]] = {}
    read: list[StockRow] = []
    for shard in range(repo.product_shards):
        for row in repo.import_rows_of_shard(store, record.seq or 0, shard):
            read.append(row)
            rows_in.setdefault(row.product_id, set()).add(shard)
        for counters in repo.counters_page(store, shard, None, 100)[0]:
            counters_in.setdefault(counters.product_id, set()).add(shard)

    assert sorted(read, key=repr) == sorted(rows, key=repr)
    assert rows_in == counters_in == {p: {product_shard(p)} for p in products}
    assert len({product_shard(p) for p in products}) > 1


@check
def check_import_rows_come_in_product_order_and_a_full_page_says_more_may_follow(repo: Repository) -> None:
    """Given five products of one shard with rows in two stock locations, when the shard's rows are
    paged, then they come by product and stock location, a page after a product starts at the next
    product, a full page says more may follow, and the page past the end is empty."""
    store = new_location(repo)
    seq = repo.begin_import(import_record(store)).seq or 0
    products = products_in_one_shard(5)
    shard = product_shard(products[0])
    repo.write_import_rows(
        store,
        seq,
        [StockRow(product_id=p, stock_location=s, quantity=1) for p in products for s in ("main", "damaged")],
    )

    def page(after: str | None, limit: int) -> tuple[list[tuple[str, str]], bool]:
        rows, more = repo.import_rows_page(store, seq, shard, after, limit)
        return [(r.product_id, r.stock_location) for r in rows], more

    p0, p1, p2, p3, p4 = products
    assert page(None, 3) == ([(p0, "damaged"), (p0, "main"), (p1, "damaged")], True)
    assert page(p0, 4) == ([(p1, "damaged"), (p1, "main"), (p2, "damaged"), (p2, "main")], True)
    assert page(p3, 2) == ([(p4, "damaged"), (p4, "main")], True)
    assert page(p3, 3) == ([(p4, "damaged"), (p4, "main")], False)
    assert page(p4, 2) == ([], False)
    assert repo.import_rows_page(store, seq, (shard + 1) % repo.product_shards, None, 10) == ([], False)


@check
def check_a_row_written_again_is_set_again(repo: Repository) -> None:
    """Given an import's row of a product, when the same row is written again with another quantity,
    then the import has one row of that product and stock location, with the last quantity."""
    store = new_location(repo)
    seq = repo.begin_import(import_record(store)).seq or 0

    repo.write_import_rows(store, seq, [StockRow(product_id="p1", stock_location="main", quantity=3)])
    repo.write_import_rows(store, seq, [StockRow(product_id="p1", stock_location="main", quantity=5)])

    rows = list(repo.import_rows_of_shard(store, seq, product_shard("p1")))
    assert rows == [StockRow(product_id="p1", stock_location="main", quantity=5)]


# ------------------------------------------------------------------------------------------ counters
@check
def check_counters_changes_are_guarded_by_existence_and_version(repo: Repository) -> None:
    """Given a product without counters, when its first change is written twice from the same read,
    and a change is written from a stale read, then the first creates the counters (version 1), the
    second and the stale one are refused and change nothing, and a change without an entry moves only
    the version."""
    store = new_location(repo)
    empty = repo.counters_of(store, "p1")

    created = repo.change_counters(store, CountersChange(expected=empty, entry=entry("e1", NOW)))
    created_again = repo.change_counters(store, CountersChange(expected=empty, entry=entry("e2", NOW)))
    first = repo.counters_of(store, "p1")
    changed = repo.change_counters(store, CountersChange(expected=first, entry=entry("e3", NOW)))
    stale = repo.change_counters(store, CountersChange(expected=first, entry=entry("e4", NOW)))
    second = repo.counters_of(store, "p1")
    no_entry = repo.change_counters(store, CountersChange(expected=second, allocations={"a1": None}))

    assert (empty.exists, empty.version, empty.stock_version, empty.ledger) == (False, 0, 0, ())
    assert (created, created_again, changed, stale, no_entry) == (True, False, True, False, True)
    assert (first.exists, first.version, first.stock_version) == (True, 1, 1)
    assert sorted(e.entry_id for e in second.ledger) == ["e1", "e3"]
    third = repo.counters_of(store, "p1")
    assert (third.version, third.stock_version, third.ledger) == (3, 2, second.ledger)


@check
def check_an_opening_is_guarded_by_the_stock_and_the_allocated_total_not_the_version(repo: Repository) -> None:
    """Given a product's counters read once, when two allocations open from that same read, then a
    third asks for a limit the total already passes, one opens again, and one opens after the stock
    changed, then the first two open (openings do not refuse each other), and the others are refused."""
    store = new_location(repo)
    repo.change_counters(store, CountersChange(expected=repo.counters_of(store, "p1"), entry=entry("e1", NOW)))
    read = repo.counters_of(store, "p1")

    def opening(expected: ProductCounters, allocation_id: str, quantity: int, limit: int) -> bool:
        new = {allocation_id: opened(allocation_id, quantity)}
        return repo.change_counters(store, CountersChange(expected=expected, allocations=new, open_limit=limit))

    first = opening(read, "a1", 2, 5)
    second = opening(read, "a2", 3, 5)  # the version moved, the stock did not
    over = opening(read, "a3", 1, 4)  # 5 are allocated, above the limit
    reopened = opening(read, "a1", 1, 10)
    repo.change_counters(store, CountersChange(expected=repo.counters_of(store, "p1"), entry=entry("e2", NOW)))
    after_stock = opening(read, "a4", 1, 10)

    assert (first, second, over, reopened, after_stock) == (True, True, False, False, False)
    counters = repo.counters_of(store, "p1")
    assert [(a.allocation_id, a.quantity) for a in counters.allocations] == [("a1", 2), ("a2", 3)]
    assert counters.allocated == 5
    closed = repo.change_counters(store, CountersChange(expected=counters, allocations={"a1": None}))
    assert closed
    assert [a.allocation_id for a in repo.counters_of(store, "p1").allocations] == ["a2"]


@check
def check_the_ledger_holds_one_entry_per_id_and_source_in_the_order_applied(repo: Repository) -> None:
    """Given entries applied at 9:02, 9:01 and 9:01, when one is written again and one is pruned, then
    the ledger holds each entry once, ordered by when it was applied (then by id)."""
    store = new_location(repo)

    def write(**change: Any) -> None:
        assert repo.change_counters(store, CountersChange(expected=repo.counters_of(store, "p1"), **change))

    write(entry=entry("e-b", minutes(2)))
    write(entry=entry("e-c", minutes(1)))
    write(entry=entry("e-a", minutes(1)))
    ordered = [e.entry_id for e in repo.counters_of(store, "p1").ledger]
    write(entry=entry("e-a", minutes(1)))  # written again
    again = [e.entry_id for e in repo.counters_of(store, "p1").ledger]
    write(pruned=(entry("e-b", minutes(2)),))

    assert ordered == again == ["e-a", "e-c", "e-b"]
    assert [e.entry_id for e in repo.counters_of(store, "p1").ledger] == ["e-a", "e-c"]


@check
def check_append_entry_creates_counters_and_waits_while_units_are_allocated(repo: Repository) -> None:
    """Given a product without counters, when an entry is appended blind, then while an allocation
    holds units of it another append is refused and changes nothing, and once it is closed the
    append applies."""
    store = new_location(repo)

    first = repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "e1"))
    created = repo.counters_of(store, "p1")
    repo.change_counters(store, CountersChange(expected=created, allocations={"a1": opened("a1", 1)}, open_limit=10))
    held = repo.append_entry(store, "p1", entry("e2", NOW), an_event(store, "e2"))
    holding = repo.counters_of(store, "p1")
    repo.change_counters(store, CountersChange(expected=holding, allocations={"a1": None}))
    after = repo.append_entry(store, "p1", entry("e3", NOW), an_event(store, "e3"))

    assert (first, held, after) == (1, None, 2)  # the buffer's entries after each write; None: refused
    assert (created.exists, created.version, created.stock_version) == (True, 1, 1)
    assert [e.entry_id for e in holding.ledger] == ["e1"]
    assert sorted(e.entry_id for e in repo.counters_of(store, "p1").ledger) == ["e1", "e3"]
    assert pending(repo, counters_item(store, "p1"))[0] == sorted(an_event(store, n).event_id for n in ("e1", "e3"))


@check
def check_an_entry_is_its_id_and_the_body_that_caused_it(repo: Repository) -> None:
    """Given a shipment line appended twice from one body and once from another body with the same
    id, then the second append is refused (the sums take a line once), and the ledger holds the two
    bodies' entries, each once, told apart by the first 16 hex digits of their source's hash."""
    store = new_location(repo)
    first = shipment_entry("ev-1:0", 1, NOW, quantity=1).model_copy(update={"source_hash": "a" * 64})
    other = shipment_entry("ev-1:0", 1, NOW, quantity=2).model_copy(update={"source_hash": "b" * 64})

    written = [
        repo.append_entry(store, "p", line, an_event(store, f"ev-{n}"), (0,))
        for line, n in ((first, 1), (first, 2), (other, 3))
    ]

    assert written == [1, None, 2]
    counters = repo.counters_of(store, "p")
    assert sorted((e.entry_id, e.source_hash, e.quantity) for e in counters.ledger) == [
        ("ev-1:0", "a" * 16, -1),
        ("ev-1:0", "b" * 16, -2),
    ]
    assert counters.entry("ev-1:0", "b" * 64) == other.model_copy(update={"source_hash": "b" * 16})
    assert counters.sums == {0: -3}


@check
def check_product_states_reads_counters_and_the_rows_of_the_imports_listed(repo: Repository) -> None:
    """Given two imports with rows of p1 and counters of p1, when the states of p1 (both imports), p2
    (the first) and p3 (none) are read, then each has its counters and its rows by import, ordered by
    stock location, and products with nothing have empty counters and empty lists."""
    store = new_location(repo)
    first = imported(repo, store, "i1").seq or 0
    second = imported(repo, store, "i2", ImportKind.PARTIAL).seq or 0
    repo.write_import_rows(
        store,
        first,
        [StockRow(product_id="p1", stock_location=s, quantity=q) for s, q in (("main", 5), ("damaged", 1))],
    )
    repo.write_import_rows(store, second, [StockRow(product_id="p1", stock_location="main", quantity=7)])
    repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "e1"))

    states = repo.product_states(store, {"p1": [first, second], "p2": [first], "p3": []}, DEFAULT_STOCK_LOCATIONS)

    p1, p1_rows = states["p1"]
    assert (p1.exists, [e.entry_id for e in p1.ledger]) == (True, ["e1"])
    assert {seq: [(r.stock_location, r.quantity) for r in rows] for seq, rows in p1_rows.items()} == {
        first: [("damaged", 1), ("main", 5)],
        second: [("main", 7)],
    }
    assert (states["p2"][0].exists, states["p2"][1]) == (False, {first: []})
    assert (states["p3"][0].exists, states["p3"][1]) == (False, {})


@check
def check_counters_come_in_product_order_by_shard(repo: Repository) -> None:
    """Given counters of five products of one shard, when the shard's counters are paged, then they
    come in product order after the product named, a full page says more may follow, and the page
    past the end is empty."""
    store = new_location(repo)
    products = products_in_one_shard(5, shard=3)
    for n, product_id in enumerate(reversed(products)):
        repo.append_entry(store, product_id, entry(f"e{n}", NOW), an_event(store, f"e{n}"))

    def page(after: str | None, limit: int) -> tuple[list[str], bool]:
        counters, more = repo.counters_page(store, 3, after, limit)
        return [c.product_id for c in counters], more

    assert page(None, 2) == (products[:2], True)
    assert page(products[1], 3) == (products[2:], True)
    assert page(products[1], 4) == (products[2:], False)
    assert page(products[4], 3) == ([], False)


# ------------------------------------------------------------------------------------------ the ledger's sums and pages
@check
def check_a_safety_stock_is_written_on_the_version_read_and_created_once(repo: Repository) -> None:
    """Given a product without counters, when its safety stock is set twice from that empty read (a
    racing first write), then set again from a stale read and from a fresh one after a shipment line,
    and removed; and a product without counters is set to None, then the first write creates the
    counters (version 1, the figure 4), the racing and the stale write are refused and change
    nothing, each write adds 1 to `version` and `stock_version` and keeps the rest of the counters
    (the entry, its sum, its unpublished event), and None on a product without counters creates none."""
    store = new_location(repo)
    empty = repo.counters_of(store, "p1")

    nothing = repo.set_safety_stock(store, repo.counters_of(store, "p0"), None)
    created = repo.set_safety_stock(store, empty, 4)
    racing = repo.set_safety_stock(store, empty, 7)
    first = repo.counters_of(store, "p1")
    repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "e1"), (0,))
    shipped = repo.counters_of(store, "p1")
    stale = repo.set_safety_stock(store, first, 9)
    zeroed = repo.set_safety_stock(store, shipped, 0)
    zero = repo.counters_of(store, "p1")
    removed = repo.set_safety_stock(store, zero, None)
    last = repo.counters_of(store, "p1")

    assert (nothing, created, racing, stale, zeroed, removed) == (True, True, False, False, True, True)
    assert repo.counters_of(store, "p0").exists is False
    assert (first.exists, first.version, first.stock_version, first.safety_stock) == (True, 1, 1, 4)
    assert (shipped.version, shipped.safety_stock) == (2, 4)
    assert (zero.version, zero.stock_version, zero.safety_stock) == (3, shipped.stock_version + 1, 0)
    assert (last.version, last.stock_version, last.safety_stock) == (4, shipped.stock_version + 2, None)
    assert ([e.entry_id for e in last.ledger], last.sums) == (["e1"], {0: -1})
    assert pending(repo, counters_item(store, "p1")) == ([an_event(store, "e1").event_id], 4)


@check
def check_an_opening_read_before_a_safety_stock_change_is_refused(repo: Repository) -> None:
    """Given a product with stock, when its safety stock changes between the read an opening's limit
    was computed from and the opening's write, then the opening is refused (it decides again on the
    new figure), and one read after the change opens."""
    store = new_location(repo)
    repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "e1"), (0,))
    read = repo.counters_of(store, "p1")
    assert repo.set_safety_stock(store, read, 3)
    after = repo.counters_of(store, "p1")

    def opening(expected: ProductCounters, allocation_id: str) -> bool:
        new = {allocation_id: opened(allocation_id, 1)}
        return repo.change_counters(store, CountersChange(expected=expected, allocations=new, open_limit=10))

    assert (opening(read, "a1"), opening(after, "a2")) == (False, True)
    assert [a.allocation_id for a in repo.counters_of(store, "p1").allocations] == ["a2"]


def line(entry_id: str, timestamp: int, at: datetime = NOW, quantity: int = 1, epoch: int = 0) -> LedgerEntry:
    return shipment_entry(entry_id, timestamp, at, quantity).model_copy(
        update={"source_hash": f"{entry_id:0<16}"[:16], "epoch": epoch}
    )


def buffered(repo: Repository, store: str, product: str, *lines: LedgerEntry) -> ProductCounters:
    """The lines appended blind, each into every line's sum (0) and layer 7's; the counters then."""
    for written in lines:
        assert repo.append_entry(store, product, written, an_event(store, written.entry_id), (0, 7)) is not None
    return repo.counters_of(store, product)


@check
def check_lines_add_themselves_to_the_sums_they_name_once(repo: Repository) -> None:
    """Given lines appended blind into sums 0 and 7, and one written after a read into sum 0 only,
    when a line is appended again, then each sum holds its lines once, the buffer counts them, and
    the item's unpublished events come with its read."""
    store = new_location(repo)
    counters = buffered(repo, store, "p", line("e1:0", 10, quantity=2), line("e2:0", 11))
    again = repo.append_entry(store, "p", line("e1:0", 10, quantity=2), an_event(store, "again"), (0, 7))
    read = repo.counters_of(store, "p")
    assert repo.change_counters(store, CountersChange(expected=read, entry=line("e3:0", 12, quantity=4), into=(0,)))

    after = repo.counters_of(store, "p")
    assert again is None
    assert (counters.sums, counters.buffered) == ({0: -3, 7: -3}, 2)
    assert (after.sums, after.buffered, after.pages, after.legacy) == ({0: -7, 7: -3}, 3, 0, False)
    assert [e.entry_id for e in after.ledger] == ["e1:0", "e2:0", "e3:0"]
    assert sorted(after.pending) == sorted(an_event(store, n).event_id for n in ("e1:0", "e2:0"))


@check
def check_entries_move_to_a_committed_page_with_their_events(repo: Repository) -> None:
    """Given three buffered lines of segments 0 and 1, when the two oldest move to a page with the
    event of one, then the page holds them in order, the buffer the third, the item points at the
    page from their segment and epoch, the sums are unchanged, the moved event left the item and the
    page waits in the outbox with it."""
    store = new_location(repo)
    first, second, third = line("e1:0", 4095, epoch=2), line("e2:0", 4096, epoch=3), line("e3:0", 4097, epoch=3)
    counters = buffered(repo, store, "p", first, second, third)
    moved_event = an_event(store, "e1:0")

    moved = repo.move_to_page(store, PageMove(expected=counters, entries=(first, second), events=(moved_event,)))

    after = repo.counters_of(store, "p")
    assert moved
    assert [e.entry_id for e in after.ledger] == ["e3:0"]
    assert (after.pages, after.buffered, after.sums) == (1, 1, counters.sums)
    assert (after.segments, after.epochs, after.version) == ({0: 1, 1: 1}, {2: 1, 3: 1}, counters.version + 1)
    assert moved_event.event_id not in after.pending
    page = repo.ledger_pages(store, "p", [1, 2])
    assert list(page) == [1]
    assert [(e.entry_id, e.logical_timestamp, e.epoch, e.quantity) for e in page[1]] == [
        ("e1:0", 4095, 2, -1),
        ("e2:0", 4096, 3, -1),
    ]
    waiting = [key for key in listed(repo) if key not in {counters_item(store, "p"), location_item(store)}]
    assert len(waiting) == 1
    assert pending(repo, waiting[0])[0] == [moved_event.event_id]
    assert after.first_page(segment=0) == 1
    assert after.first_page(segment=2) is None  # its entries are all in the buffer
    assert after.first_page(epoch=4) is None


@check
def check_a_move_from_a_stale_read_commits_nothing_and_its_page_is_put_again(repo: Repository) -> None:
    """Given a read of three buffered lines and a line written after it, when a move from that read
    is tried, then nothing moves and no page is committed; and a move from a fresh read puts page 1
    again with its own entries."""
    store = new_location(repo)
    stale = buffered(repo, store, "p", line("e1:0", 1), line("e2:0", 2), line("e3:0", 3))
    buffered(repo, store, "p", line("e4:0", 4))

    refused = repo.move_to_page(store, PageMove(expected=stale, entries=stale.ledger[:1]))
    between = repo.counters_of(store, "p")
    fresh = repo.move_to_page(store, PageMove(expected=between, entries=between.ledger[:2]))

    assert (refused, between.pages, len(between.ledger)) == (False, 0, 4)
    assert fresh
    assert [e.entry_id for e in repo.ledger_pages(store, "p", [1])[1]] == ["e1:0", "e2:0"]
    assert [e.entry_id for e in repo.counters_of(store, "p").ledger] == ["e3:0", "e4:0"]


@check
def check_a_move_stopped_after_its_page_is_completed_by_the_next_mover_of_the_same_state(repo: Repository) -> None:
    """Given a move that stopped after putting its page, when another mover of the same read moves
    other entries, then it commits the first page's entries (the page there), once."""
    store = new_location(repo)
    counters = buffered(repo, store, "p", line("e1:0", 1), line("e2:0", 2), line("e3:0", 3))

    with pytest.raises(Crash), stopped_after_its_first_write(repo, "move_to_page"):
        repo.move_to_page(store, PageMove(expected=counters, entries=counters.ledger[:1]))
    uncommitted = repo.counters_of(store, "p")
    second = repo.move_to_page(store, PageMove(expected=counters, entries=counters.ledger[:2]))
    third = repo.move_to_page(store, PageMove(expected=counters, entries=counters.ledger[:2]))

    assert (uncommitted.pages, len(uncommitted.ledger)) == (0, 3)
    assert (second, third) == (True, False)
    after = repo.counters_of(store, "p")
    assert (after.pages, [e.entry_id for e in after.ledger]) == (1, ["e2:0", "e3:0"])
    assert [e.entry_id for e in repo.ledger_pages(store, "p", [1])[1]] == ["e1:0"]


@check
def check_a_page_put_again_after_the_relay_read_it_stays_in_the_outbox(repo: Repository) -> None:
    """Given a move stopped after its page (with an event) was put, and the relay reading that page,
    when a later mover puts the page again with another event and the relay then marks what it read
    published, then the page stays in the outbox with the new event (nothing committed is lost)."""
    store = new_location(repo)
    first, second = line("e1:0", 1), line("e2:0", 2)
    counters = buffered(repo, store, "p", first, second)
    with pytest.raises(Crash), stopped_after_its_first_write(repo, "move_to_page"):
        repo.move_to_page(store, PageMove(expected=counters, entries=(first,), events=(an_event(store, "e1:0"),)))
    (page_key,) = [key for key in listed(repo) if key not in {counters_item(store, "p"), location_item(store)}]
    read_events, read_version = repo.read_pending([page_key])[page_key]
    later = buffered(repo, store, "p", line("e3:0", 3))

    assert repo.move_to_page(store, PageMove(expected=later, entries=(second,), events=(an_event(store, "e2:0"),)))
    repo.mark_published(page_key, [e.event_id for e in read_events], read_version)

    assert page_key in listed(repo)
    assert pending(repo, page_key)[0] == [an_event(store, "e2:0").event_id]
    assert [e.entry_id for e in repo.ledger_pages(store, "p", [1])[1]] == ["e2:0"]


@check
def check_a_move_drops_what_no_read_needs(repo: Repository) -> None:
    """Given pointers and sums a move is told to drop, when it moves, then they are gone, the
    segment and epoch cuts are raised, and a pointer its own entries set is kept."""
    store = new_location(repo)
    counters = buffered(repo, store, "p", line("e1:0", 1, epoch=1), line("e2:0", 9000, epoch=2))
    repo.move_to_page(store, PageMove(expected=counters, entries=counters.ledger[:1]))
    counters = buffered(repo, store, "p", line("e3:0", 9001, epoch=2))
    move = PageMove(
        expected=counters,
        entries=counters.ledger[:1],
        drop_sums=(7,),
        drop_segments=(0, 2),
        drop_epochs=(1, 2),
        segment_cut=1,
        epoch_cut=2,
    )

    assert repo.move_to_page(store, move)

    after = repo.counters_of(store, "p")
    assert (after.sums, after.segments, after.epochs, after.segment_cut) == ({0: -3}, {2: 2}, {2: 2}, 1)
    assert after.first_page(segment=0) == 1  # below the cut: from the first page
    assert (after.epoch_cut, after.first_page(epoch=1)) == (2, 1)


@check
def check_a_layers_sum_is_settled_on_the_state_read_and_changes_no_version(repo: Repository) -> None:
    """Given a product read, when its sum of layer 9 is settled from that read, and again from a
    read a line has outdated, then the first is set without a version change and the second refused."""
    store = new_location(repo)
    read = buffered(repo, store, "p", line("e1:0", 1))

    settled = repo.settle_layer(store, read, 9, -5)
    again = repo.settle_layer(store, repo.counters_of(store, "p"), 9, -6)
    buffered(repo, store, "p", line("e2:0", 2))
    stale = repo.settle_layer(store, read, 9, -7)

    after = repo.counters_of(store, "p")
    assert (settled, again, stale) == (True, True, False)
    assert (after.sums[9], repo.settle_layer(store, repo.counters_of(store, "nothing"), 9, 0)) == (-6, True)
    assert after.version == read.version + 1  # only the line moved it


@check
def check_an_events_record_says_when_its_lines_are_all_applied(repo: Repository) -> None:
    """Given two claimed events, when one is recorded done by its first delivery and the other by a
    later one, then the records say so, keep their body hash and keeping, and an unknown event has
    none."""
    keep = minutes(60 * 24 * 40)
    store = new_location(repo)
    repo.claim_event(store, "ev-1", "hash-1", keep)
    repo.claim_event(store, "ev-2", "hash-2", keep)
    before = repo.event_claims(store, ["ev-1", "ev-2", "ev-3"])

    repo.mark_events_done(
        store,
        {
            "ev-1": EventClaim(body_hash="hash-1", keep_until=keep, done=True, first=True, done_at=minutes(1)),
            "ev-2": EventClaim(body_hash="hash-2", keep_until=keep, done=True, first=False, done_at=minutes(2)),
        },
    )

    after = repo.event_claims(store, ["ev-1", "ev-2", "ev-3"])
    assert {e: (c.body_hash, c.done) for e, c in before.items()} == {
        "ev-1": ("hash-1", False),
        "ev-2": ("hash-2", False),
    }
    assert {e: (c.done, c.first, c.done_at, c.keep_until) for e, c in after.items()} == {
        "ev-1": (True, True, minutes(1), keep),
        "ev-2": (True, False, minutes(2), keep),
    }
    assert repo.claim_event(store, "ev-1", "hash-x", keep) == "hash-1"


@check
def check_the_running_import_is_announced_until_it_ends(repo: Repository) -> None:
    """Given a location, when an import naming a watermark claims it, completes, and one naming none
    claims it and fails, then each claim announces its sequence and watermark, its end stops
    announcing it as running, and the completed one is announced by being visible."""
    store = new_location(repo)
    first = repo.begin_import(import_record(store, "i1").model_copy(update={"shipments_included_through": 40}))
    claimed = location(repo, store)
    repo.complete_import(store, "i1", completed_at=NOW, counts=ImportCounts())
    completed = location(repo, store)
    second = repo.begin_import(import_record(store, "i2", ImportKind.PARTIAL))
    running = location(repo, store)
    repo.fail_import(store, "i2", failed_at=NOW, errors=[])

    assert (first.seq, claimed.running_import_seq, claimed.running_import_through) == (1, 1, 40)
    assert (claimed.import_seq, claimed.announced()) == (1, {1: 40})
    assert (completed.running_import_seq, completed.announced(), completed.watermark()) == (None, {1: 40}, 40)
    assert (second.seq, running.announced(), running.import_seq) == (2, {1: 40, 2: None}, 2)
    assert (location(repo, store).announced(), location(repo, store).import_seq) == ({1: 40}, 2)


@check
def check_an_imports_settling_is_checkpointed_while_it_runs(repo: Repository) -> None:
    """Given a running import, when its settling is recorded, then the record says its rows are
    written, with their counts and where the settling is; once the import ended it is refused."""
    store = new_location(repo)
    repo.begin_import(import_record(store, "i1"))
    counts = ImportCounts(rows=3, applied=3)

    repo.record_settling(store, "i1", counts=counts, settled_through=(4, "p/9"))
    record = repo.get_import(store, "i1")
    repo.complete_import(store, "i1", completed_at=NOW, counts=counts)

    assert record is not None
    assert (record.status, record.rows_written, record.counts, record.settled_through) == (
        ImportStatus.RUNNING,
        True,
        counts,
        (4, "p/9"),
    )
    with pytest.raises(Conflict):
        repo.record_settling(store, "i1", counts=counts, settled_through=(5, None))


# ------------------------------------------------------------------------------------------ applied events
@check
def check_an_event_is_claimed_once_per_location(repo: Repository) -> None:
    """Given an event claimed at a location with its body hash, when it is claimed again with another
    hash, and at another location, then the repeat answers the first hash, and the other location's
    claim is a claim of its own."""
    keep = minutes(60 * 24 * 40)

    first = repo.claim_event("s1", "ev-1", "hash-a", keep)
    again = repo.claim_event("s1", "ev-1", "hash-b", keep)
    elsewhere = repo.claim_event("s2", "ev-1", "hash-b", keep)

    assert (first, again, elsewhere) == (None, "hash-a", None)


# ------------------------------------------------------------------------------------------ allocations
@check
def check_an_allocation_is_recorded_once_and_settled_only_from_the_status_expected(repo: Repository) -> None:
    """Given a pending allocation, when it is recorded again, settled from open, settled to refused
    from pending with its figures and event, settled from pending again, then released from refused
    without figures, then only the first record, the settle from pending and the release apply; the
    refused figures stay, and the event is in the allocation's own outbox."""
    store = new_location(repo)
    pending_one = allocation(store, "a1")
    refused = pending_one.model_copy(update={"refused": ({"product_id": "p1", "requested": 2, "available": 1},)})
    event = an_event(store, "refused")

    recorded = repo.put_allocation(pending_one)
    recorded_again = repo.put_allocation(pending_one.model_copy(update={"order_id": "other"}))
    from_open = repo.settle_allocation(refused, status=AllocationStatus.REFUSED, expected=AllocationStatus.OPEN)
    settled = repo.settle_allocation(
        refused, status=AllocationStatus.REFUSED, expected=AllocationStatus.PENDING, event=event
    )
    settled_again = repo.settle_allocation(refused, status=AllocationStatus.REFUSED, expected=AllocationStatus.PENDING)
    released = repo.settle_allocation(
        pending_one.model_copy(update={"updated_at": minutes(1)}),
        status=AllocationStatus.RELEASED,
        expected=AllocationStatus.REFUSED,
    )

    assert (recorded, recorded_again, from_open, settled, settled_again, released) == (
        True,
        False,
        False,
        True,
        False,
        True,
    )
    stored = repo.get_allocation(store, "a1")
    assert stored is not None
    assert (stored.status, stored.order_id, stored.updated_at, stored.refused) == (
        AllocationStatus.RELEASED,
        "order-a1",
        minutes(1),
        refused.refused,
    )
    assert pending(repo, allocation_item(store, "a1")) == ([event.event_id], 1)
    assert repo.get_allocation(store, "a2") is None


@check
def check_an_allocation_is_forgotten_only_from_the_status_expected(repo: Repository) -> None:
    """Given a pending allocation, when it is forgotten as if open, then as pending, then again, then
    only the forget as pending applies, and leaves no record."""
    store = new_location(repo)
    repo.put_allocation(allocation(store, "a1"))

    as_open = repo.forget_allocation(allocation(store, "a1"), expected=AllocationStatus.OPEN)
    as_pending = repo.forget_allocation(allocation(store, "a1"), expected=AllocationStatus.PENDING)
    again = repo.forget_allocation(allocation(store, "a1"), expected=AllocationStatus.PENDING)

    assert (as_open, as_pending, again) == (False, True, False)
    assert repo.get_allocation(store, "a1") is None
    assert repo.put_allocation(allocation(store, "a1"))  # the id is free again


@check
def check_abandoned_allocations_are_the_pending_ones_past_their_time_oldest_first(repo: Repository) -> None:
    """Given pending allocations to abandon at 9:15 and 9:05 at two locations, a pending one from the
    bus (no time), and an open one, when the abandoned ones are listed at 9:20 and 9:10, and after one
    settled and one was forgotten, then only the pending ones past their time come, oldest first, up
    to the limit, until they settle or are forgotten."""
    one, two = new_location(repo), new_location(repo)
    repo.put_allocation(allocation(one, "api-1", abandon_at=minutes(15)))
    repo.put_allocation(allocation(two, "api-2", abandon_at=minutes(5)))
    repo.put_allocation(allocation(one, "bus-1"))
    repo.put_allocation(allocation(one, "open-1", AllocationStatus.OPEN, abandon_at=minutes(1)))

    def abandoned(at: datetime, limit: int = 10) -> list[str]:
        return [a.allocation_id for a in repo.abandoned_allocations(at, limit)]

    at_20, first_only, at_10 = abandoned(minutes(20)), abandoned(minutes(20), limit=1), abandoned(minutes(10))
    repo.settle_allocation(allocation(two, "api-2"), status=AllocationStatus.OPEN, expected=AllocationStatus.PENDING)
    after_settle = abandoned(minutes(20))
    repo.forget_allocation(allocation(one, "api-1"), expected=AllocationStatus.PENDING)

    assert (at_20, first_only, at_10, after_settle) == (["api-2", "api-1"], ["api-2"], ["api-2"], ["api-1"])
    assert abandoned(minutes(20)) == []


# ------------------------------------------------------------------------------------------ cycle counts
@check
def check_a_mispick_count_flags_its_location_until_closed(repo: Repository) -> None:
    """Given a store, when a mispick count is opened twice (a retry), opened with other content, then
    closed, then the retry answers the same count, the other content is CountIdReused, and the
    location is flagged until the count closes."""
    store = new_location(repo)
    c1 = count(store, "c1")

    opened_count = repo.open_cycle_count(c1)
    retried = repo.open_cycle_count(c1)
    flagged = location(repo, store).open_mispick_count_ids
    with pytest.raises(CountIdReused):
        repo.open_cycle_count(c1.model_copy(update={"content_hash": "other"}))
    closed = repo.close_cycle_count(store, "c1", status=CountStatus.CANCELLED, closed_at=minutes(1))

    assert opened_count == retried == c1
    assert flagged == {"c1"}
    assert (closed.status, closed.closed_at) == (CountStatus.CANCELLED, minutes(1))
    assert location(repo, store).open_mispick_count_ids == frozenset()
    assert repo.get_cycle_count(store, "c1") == closed


@check
def check_a_count_closed_again_keeps_its_first_close(repo: Repository) -> None:
    """Given a count completed at 9:01, when it is completed again at 9:05, cancelled, or an unknown
    count is closed, then the repeat answers the first close, the cancel is a Conflict, and the
    unknown count is NotFound."""
    store = new_location(repo)
    repo.open_cycle_count(count(store, "c1", CountReason.SCHEDULED))
    first = repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=minutes(1))

    again = repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=minutes(5))
    with pytest.raises(Conflict):
        repo.close_cycle_count(store, "c1", status=CountStatus.CANCELLED, closed_at=minutes(6))
    with pytest.raises(NotFound):
        repo.close_cycle_count(store, "never", status=CountStatus.COMPLETED, closed_at=minutes(6))

    assert again == first == repo.get_cycle_count(store, "c1")
    assert (again.status, again.closed_at) == (CountStatus.COMPLETED, minutes(1))
    assert repo.get_cycle_count(store, "never") is None


@check
def check_a_mispick_close_retried_after_a_stop_before_the_unflag_unflags(repo: Repository) -> None:
    """Given an open mispick count whose close stopped after its first write (the count), when the
    close is retried, then the count keeps its first close and the location is no longer flagged."""
    store = new_location(repo)
    repo.open_cycle_count(count(store, "c1"))
    with stopped_after_its_first_write(repo, "close_cycle_count"), pytest.raises(Crash):
        repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=minutes(1))
    between = location(repo, store).open_mispick_count_ids

    retried = repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=minutes(2))

    assert between == {"c1"}
    assert (retried.status, retried.closed_at) == (CountStatus.COMPLETED, minutes(1))
    assert location(repo, store).open_mispick_count_ids == frozenset()


@check
def check_a_count_needs_its_location_and_a_repeated_or_refused_open_leaves_no_flag(repo: Repository) -> None:
    """Given a store whose mispick count c1 is closed and whose scheduled count c2 is open, when c1 is
    opened again and c2's id is used for a mispick count, then neither flags the location; and a count
    of any reason at a location that does not exist is NotFound and creates nothing."""
    store = new_location(repo)
    repo.open_cycle_count(count(store, "c1"))
    repo.close_cycle_count(store, "c1", status=CountStatus.COMPLETED, closed_at=NOW)
    repo.open_cycle_count(count(store, "c2", CountReason.SCHEDULED))

    again = repo.open_cycle_count(count(store, "c1"))
    with pytest.raises(CountIdReused):
        repo.open_cycle_count(count(store, "c2", content="other"))

    assert again.status is CountStatus.COMPLETED
    assert location(repo, store).open_mispick_count_ids == frozenset()
    for reason in CountReason:
        with pytest.raises(NotFound):
            repo.open_cycle_count(count("nowhere", f"c-{reason.value}", reason))
        assert repo.get_cycle_count("nowhere", f"c-{reason.value}") is None
    assert repo.get_location("nowhere") is None


# ------------------------------------------------------------------------------------------ the outbox
@check
def check_each_item_keeps_its_own_events_and_version(repo: Repository) -> None:
    """Given a store whose import completion and switch record events, two products whose lines record
    events, and an allocation whose settle records one, then each item's outbox (the location's, each
    product's counters', the allocation's) holds its own events, at its own version (a counters item's
    is its counters' version), and the outbox lists exactly those items."""
    store = new_location(repo)
    imported(repo, store, event=an_event(store, "imported"))
    switch(repo, store)
    repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "line-1"))
    repo.append_entry(store, "p2", entry("e2", NOW), an_event(store, "line-2"))
    p1 = repo.counters_of(store, "p1")
    repo.change_counters(store, CountersChange(expected=p1, allocations={"a9": opened("a9", 1)}, open_limit=10))
    repo.put_allocation(allocation(store, "a1"))
    settled = an_event(store, "settled")
    repo.settle_allocation(
        allocation(store, "a1"), status=AllocationStatus.OPEN, expected=AllocationStatus.PENDING, event=settled
    )

    items = [location_item(store), counters_item(store, "p1"), counters_item(store, "p2"), allocation_item(store, "a1")]
    events = {key: pending(repo, key) for key in items}

    assert len(events[location_item(store)][0]) == 2
    assert events[location_item(store)][1] == 2
    assert events[counters_item(store, "p1")] == ([an_event(store, "line-1").event_id], 2)
    assert repo.counters_of(store, "p1").version == 2
    assert events[counters_item(store, "p2")] == ([an_event(store, "line-2").event_id], 1)
    assert events[allocation_item(store, "a1")] == ([settled.event_id], 1)
    assert sorted(listed(repo)) == sorted(items)
    assert pending(repo, location_item("nowhere")) == ([], 0)


@check
def check_an_item_leaves_the_outbox_only_when_published_at_the_version_read(repo: Repository) -> None:
    """Given a product's line whose event the relay read at version 1, when a second line records its
    event before the relay marks the first published at version 1, then the item stays listed with
    the second event at version 2, and leaves once that is published at version 2."""
    store = new_location(repo)
    key = counters_item(store, "p1")
    repo.append_entry(store, "p1", entry("e1", NOW), an_event(store, "e1"))
    (first,), version = repo.read_pending([key])[key]

    repo.append_entry(store, "p1", entry("e2", NOW), an_event(store, "e2"))
    repo.mark_published(key, [first.event_id], version)

    assert (pending(repo, key), key in listed(repo)) == (([an_event(store, "e2").event_id], 2), True)
    repo.mark_published(key, [an_event(store, "e2").event_id], 2)
    assert (pending(repo, key), key in listed(repo)) == (([], 2), False)
    assert [e.entry_id for e in repo.counters_of(store, "p1").ledger] == ["e1", "e2"]


@check
def check_dropping_some_events_keeps_the_item_listed_until_published_at_its_version(repo: Repository) -> None:
    """Given a location item with two events, when they are dropped one at a time without a version
    (the bus refused the others), then the item stays listed, with no events in the end, until it is
    marked published at its version."""
    store = new_location(repo)
    imported(repo, store, event=an_event(store, "imported"))
    switch(repo, store)
    key = location_item(store)
    events, version = repo.read_pending([key])[key]

    repo.mark_published(key, [events[0].event_id], None)
    after_one = pending(repo, key)
    repo.mark_published(key, [events[1].event_id], None)
    after_both = (pending(repo, key), key in listed(repo))
    repo.mark_published(key, [], version)

    assert after_one == ([events[1].event_id], version)
    assert after_both == (([], version), True)
    assert key not in listed(repo)


@check
def check_an_event_recorded_twice_on_an_item_is_one_event(repo: Repository) -> None:
    """Given two writes of a product that record the same event (the same line's entry is refused a
    second time, so two entries here), then the item's outbox holds the event once, at version 2."""
    store = new_location(repo)
    event = an_event(store, "line-1")

    for n in range(2):
        repo.append_entry(store, "p1", entry(f"e{n}", NOW), event)

    assert pending(repo, counters_item(store, "p1")) == ([event.event_id], 2)


@check
def check_pending_keys_page_through_a_shard_in_sort_key_order(repo: Repository) -> None:
    """Given two locations of one outbox shard with events on their location items and one allocation
    item with an event, when the shard is paged one key at a time and three at a time, then each key
    comes once, by sort key, a full page says more may follow, the page past the end is empty, and the
    other shards list nothing."""
    candidates = (f"out-{n}" for n in range(1000))
    one, two = [c for c in candidates if outbox_shard(location_pk(c)) == 0][:2]
    for location_id in (one, two):
        repo.put_location(location_id, LocationChanges(type=STORE), NOW)
        imported(repo, location_id, event=an_event(location_id, "imported"))
    repo.put_allocation(allocation(one, "a1"))
    repo.settle_allocation(
        allocation(one, "a1"),
        status=AllocationStatus.OPEN,
        expected=AllocationStatus.PENDING,
        event=an_event(one, "a1"),
    )
    expected = {location_item(one), location_item(two), allocation_item(one, "a1")}

    singles: list[OutboxKey] = []
    after: OutboxKey | None = None
    while True:
        page, after = repo.pending_keys(0, 1, after)
        singles += page
        if after is None:
            break
    full, next_after = repo.pending_keys(0, 3)

    assert sorted(singles) == sorted(expected)
    assert [key[1] for key in singles] == sorted(key[1] for key in expected)  # ALLOC#a1 before LOCATION
    assert sorted(full) == sorted(expected)
    assert next_after is not None
    assert repo.pending_keys(0, 3, next_after) == ([], None)
    assert all(repo.pending_keys(shard, 10) == ([], None) for shard in range(1, repo.shards))


# ------------------------------------------------------------------------------------------ stock location types
@check
def check_the_stock_location_types_are_the_defaults_until_a_type_is_added(repo: Repository) -> None:
    """Given nothing stored, when the types are read, a type is added, added again, and one more is
    added than the limit allows, then the defaults come first, the second add and the one past the
    limit are refused and change nothing, and the order is main, then by name."""
    defaults = repo.stock_locations()
    assert [(t.name, t.salable, t.in_use) for t in defaults.types] == [
        (name, salable, False) for name, salable in DEFAULT_STOCK_LOCATIONS.items()
    ]

    assert repo.add_stock_location("backroom", True, at_most=6)
    assert not repo.add_stock_location("backroom", False, at_most=6)
    assert repo.add_stock_location("attic", False, at_most=6)
    assert not repo.add_stock_location("cellar", False, at_most=6)

    stored = repo.stock_locations()
    assert stored.names == ("main", "attic", "backroom", "damaged", "display", "returns")
    assert (stored.salable("backroom"), stored.salable("attic"), stored.known("cellar")) == (True, False, False)


@check
def check_salable_changes_only_until_the_type_is_marked_in_use(repo: Repository) -> None:
    """Given the default types, when `display` is made salable, then `damaged` marked in use (twice),
    then both are asked to change, then `display` changed and `damaged` refused; marking a type that
    is not configured is a conflict, and marks nothing."""
    assert repo.set_stock_location_salable("display", True)
    repo.mark_stock_location_in_use("damaged")
    repo.mark_stock_location_in_use("damaged")

    assert not repo.set_stock_location_salable("damaged", True)
    assert repo.set_stock_location_salable("display", False)
    assert not repo.set_stock_location_salable("cellar", True)
    with pytest.raises(Conflict):
        repo.mark_stock_location_in_use("cellar")

    stored = repo.stock_locations()
    assert [(t.name, t.salable, t.in_use) for t in stored.types] == [
        ("main", True, False),
        ("damaged", False, True),
        ("display", False, False),
        ("returns", False, False),
    ]


@check
def check_a_default_type_marked_in_use_before_anything_is_stored_keeps_the_defaults(repo: Repository) -> None:
    repo.mark_stock_location_in_use("main")

    stored = repo.stock_locations()
    assert (stored.names, stored.in_use("main"), stored.in_use("returns")) == (
        tuple(DEFAULT_STOCK_LOCATIONS),
        True,
        False,
    )
    assert not repo.set_stock_location_salable("main", False)


# ------------------------------------------------------------------------------------------ the tests
@pytest.mark.parametrize("name", list(CHECKS))
def test_the_port_holds(repository: Repository, name: str) -> None:
    """Given an empty repository of each backend, when a check of the contract runs on it, then it holds."""
    CHECKS[name](repository)


def test_the_switch_state_machine_holds(repository: Repository) -> None:
    """Given generated histories of imports, mispick counts, time and switch requests, when they run
    against each backend, then the master always matches the switch's model (tests/unit/switch_machine.py)."""

    def events_of(repo: Any, location_id: str) -> list[OutboxEvent]:
        key = location_item(location_id)
        return list(repo.read_pending([key])[key][0])

    class Machine(SwitchMachine):
        make_repository = staticmethod(
            MemoryRepository if isinstance(repository, MemoryRepository) else (lambda: repository)
        )
        pending_events = staticmethod(events_of)

    examples = SWITCH_MACHINE_EXAMPLES if not isinstance(repository, MemoryRepository) else 4 * SWITCH_MACHINE_EXAMPLES
    Machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=30, deadline=None)
    Machine.TestCase().runTest()
    print(f"\nswitch state machine: {examples} examples of up to 30 steps")


# ------------------------------------------------------------------------------------------ the checks checked
class PublishesWhateverTheVersion(MemoryRepository):
    """mark_published takes the item out of the outbox whatever version it was read at."""

    def mark_published(self, key: tuple[str, str], event_ids: Sequence[str], version: int | None) -> None:
        super().mark_published(key, event_ids, None if version is None else self.versions.get(key))


class LetsAStoreGoBack(MemoryRepository):
    """Putting a location writes the ERP back as its master: a switched store goes back."""

    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        stored, created = super().put_location(location_id, changes, now)
        self.locations[location_id] = stored.model_copy(update={"inventory_master": InventoryMaster.ERP})
        return self.locations[location_id], created


class CountsEveryLocationWrite(MemoryRepository):
    """Every put of a location adds 1 to its figures_version, whatever it changes."""

    def put_location(self, location_id: str, changes: LocationChanges, now: datetime) -> tuple[Location, bool]:
        stored, created = super().put_location(location_id, changes, now)
        if not created:
            stored = stored.model_copy(update={"figures_version": stored.figures_version + 1})
            self.locations[location_id] = stored
        return stored, created


class SwitchesWithTheSameFigures(MemoryRepository):
    """The switch leaves figures_version as it was."""

    def switch_to_platform(self, location_id: str, **kwargs: Any) -> Location | None:
        before = self.locations.get(location_id)
        switched = super().switch_to_platform(location_id, **kwargs)
        if switched is not None and before is not None:
            switched = switched.model_copy(update={"figures_version": before.figures_version})
            self.locations[location_id] = switched
        return switched


class OverwritesTheClose(MemoryRepository):
    """A count closed again takes the later close time."""

    def close_cycle_count(
        self, location_id: str, count_id: str, *, status: CountStatus, closed_at: datetime
    ) -> CycleCount:
        closed = super().close_cycle_count(location_id, count_id, status=status, closed_at=closed_at)
        self.counts[(location_id, count_id)] = closed.model_copy(update={"closed_at": closed_at})
        return self.counts[(location_id, count_id)]


class TakesAnyCursor(MemoryRepository):
    """The list starts after whatever the cursor says."""

    def list_locations(self, limit: int, cursor: str | None) -> Page[Location]:
        page = [i for i in sorted(self.locations) if cursor is None or i > cursor][:limit]
        return Page(items=[self.locations[i] for i in page], next_cursor=page[-1] if len(page) == limit else None)


class OneShard(MemoryRepository):
    """Every product in one shard."""

    product_shards = 1

    def import_rows_of_shard(self, location_id: str, seq: int, shard: int) -> Iterator[StockRow]:
        return iter(self.rows.get((location_id, seq), {}).values() if shard == 0 else ())

    def counters_page(
        self, location_id: str, shard: int, after_product: str | None, limit: int
    ) -> tuple[list[ProductCounters], bool]:
        counters = [c for (loc, _), c in sorted(self.counters.items()) if loc == location_id and shard == 0]
        return counters[:limit], len(counters) > limit


class RecordsTheEventWithTheRecord(MemoryRepository):
    """complete_import records its event only when it completes the record, not with the release."""

    def complete_import(
        self,
        location_id: str,
        import_id: str,
        *,
        completed_at: datetime,
        counts: ImportCounts,
        event: OutboxEvent | None = None,
    ) -> ImportRecord:
        before = self.imports[(location_id, import_id)].status
        return super().complete_import(
            location_id,
            import_id,
            completed_at=completed_at,
            counts=counts,
            event=event if before is not ImportStatus.COMPLETED else None,
        )


class OverwritesAnyRecord(MemoryRepository):
    """The failed record of an unrecorded import is put whether or not the import has a record."""

    def fail_unrecorded_import(self, record: ImportRecord) -> tuple[ImportRecord, bool]:
        self.imports.pop((record.location_id, record.import_id), None)
        return super().fail_unrecorded_import(record)


class FailsQueuedImports(MemoryRepository):
    """A failure of unstarted imports fails queued and running ones too."""

    def fail_import(
        self,
        location_id: str,
        import_id: str,
        *,
        failed_at: datetime,
        errors: list[dict[str, object]],
        counts: ImportCounts | None = None,
        unstarted_only: bool = False,
    ) -> ImportRecord:
        return super().fail_import(location_id, import_id, failed_at=failed_at, errors=errors, counts=counts)


class ChangesSalableInUse(MemoryRepository):
    """`salable` changes whether or not the type is marked in use."""

    def set_stock_location_salable(self, name: str, salable: bool) -> bool:
        self.stock_locations_in_use.discard(name)
        return super().set_stock_location_salable(name, salable)


class CreatesOverARacingFirstWrite(MemoryRepository):
    """A product's first safety stock write replaces the counters a racing write created."""

    def set_safety_stock(self, location_id: str, expected: ProductCounters, safety_stock: int | None) -> bool:
        if not expected.exists:
            self.counters.pop((location_id, expected.product_id), None)
        return super().set_safety_stock(location_id, expected, safety_stock)


BROKEN: list[tuple[type[MemoryRepository], str]] = [
    (ChangesSalableInUse, "salable_changes_only_until_the_type_is_marked_in_use"),
    (PublishesWhateverTheVersion, "an_item_leaves_the_outbox_only_when_published_at_the_version_read"),
    (LetsAStoreGoBack, "a_switched_store_stays_platform_whatever_is_written_after"),
    (OverwritesTheClose, "a_count_closed_again_keeps_its_first_close"),
    (CountsEveryLocationWrite, "a_figure_setting_change_adds_one_to_figures_version"),
    (SwitchesWithTheSameFigures, "a_figure_setting_change_adds_one_to_figures_version"),
    (TakesAnyCursor, "a_cursor_the_list_did_not_return_is_refused"),
    (OneShard, "a_products_rows_and_counters_share_its_shard_and_products_spread_over_shards"),
    (RecordsTheEventWithTheRecord, "a_completion_retried_after_a_stop_between_its_writes_ends_as_if_uninterrupted"),
    (OverwritesAnyRecord, "an_unrecorded_failure_overwrites_no_record_and_releases_no_other_claim"),
    (FailsQueuedImports, "a_failure_of_unstarted_imports_only_fails_those_accepted_and_not_queued"),
    (CreatesOverARacingFirstWrite, "a_safety_stock_is_written_on_the_version_read_and_created_once"),
]


@pytest.mark.parametrize(("broken", "name"), BROKEN, ids=[b.__name__ for b, _ in BROKEN])
def test_a_fake_with_one_rule_broken_fails_its_check(broken: type[MemoryRepository], name: str) -> None:
    """Given the in-memory repository with one rule broken, when the contract's check of that rule runs
    on it, then the check fails, where it holds on the repository as it is."""
    CHECKS[name](MemoryRepository())

    with pytest.raises((AssertionError, pytest.fail.Exception)):
        CHECKS[name](broken())
