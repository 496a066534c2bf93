"""LocationService and MasterSwitchService: locations, readiness and the one-way switch, against in-memory ports."""

from __future__ import annotations

import pytest

from inventory.errors import LocationIsDc, LocationTypeImmutable, NotFound, NotReady, SwitchIrreversible
from inventory.messages import DetailType
from inventory.models import (
    CountReason,
    CountStatus,
    ImportKind,
    ImportStatus,
    InventoryMaster,
    LocationChanges,
    LocationType,
)
from inventory.models.counts import CycleCount
from inventory.models.imports import ImportCounts, ImportRecord
from inventory.services.locations import MasterSwitchService
from tests.unit.fakes import FixedClock, MemoryRepository

PLATFORM = InventoryMaster.PLATFORM
ERP = InventoryMaster.ERP


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def repo() -> MemoryRepository:
    return MemoryRepository()


@pytest.fixture
def service(repo: MemoryRepository, clock: FixedClock) -> MasterSwitchService:
    return MasterSwitchService(repo, clock, readiness_window_minutes=15)


def store(service: MasterSwitchService, location_id: str = "s1") -> None:
    service.put(location_id, LocationChanges(type=LocationType.STORE))


def completed_import(
    repo: MemoryRepository, clock: FixedClock, kind: ImportKind = ImportKind.INITIAL, import_id: str = "i1"
) -> None:
    record = ImportRecord(
        location_id="s1",
        import_id=import_id,
        kind=kind,
        status=ImportStatus.ACCEPTED,
        content_hash="h",
        accepted_at=clock.now(),
    )
    repo.begin_import(record)
    repo.complete_import("s1", import_id, completed_at=clock.now(), counts=ImportCounts(rows=1, applied=1))


def reason_codes(service: MasterSwitchService, location_id: str = "s1") -> list[str]:
    return [reason.code for reason in service.readiness(location_id).reasons]


def test_a_new_location_is_under_the_erp_with_defaults(service: MasterSwitchService) -> None:
    location, created = service.put("s1", LocationChanges(type=LocationType.STORE, name="Main street"))

    assert created
    assert location.inventory_master is ERP
    assert (location.enabled, location.allow_backorders, location.default_safety_stock) == (True, False, 0)


def test_an_update_keeps_fields_it_does_not_name(service: MasterSwitchService) -> None:
    service.put("s1", LocationChanges(type=LocationType.STORE, name="Main street", default_safety_stock=2))

    location, created = service.put("s1", LocationChanges(type=LocationType.STORE, enabled=False))

    assert not created
    assert (location.name, location.default_safety_stock, location.enabled) == ("Main street", 2, False)


def test_the_type_of_a_location_never_changes(service: MasterSwitchService) -> None:
    store(service)

    with pytest.raises(LocationTypeImmutable):
        service.put("s1", LocationChanges(type=LocationType.DC))
    assert service.get("s1").type is LocationType.STORE


def test_an_unknown_location_is_not_found(service: MasterSwitchService) -> None:
    with pytest.raises(NotFound):
        service.readiness("nope")
    with pytest.raises(NotFound):
        service.switch("nope", PLATFORM, "me")


def test_readiness_lists_every_reason_at_once(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    repo.begin_import(
        ImportRecord(
            location_id="s1",
            import_id="i1",
            kind=ImportKind.PARTIAL,
            status=ImportStatus.ACCEPTED,
            content_hash="h",
            accepted_at=clock.now(),
        )
    )
    repo.open_cycle_count(
        CycleCount(
            location_id="s1",
            count_id="c1",
            reason=CountReason.MISPICK,
            product_ids=["p"],
            content_hash="h",
            opened_at=clock.now(),
        )
    )

    assert reason_codes(service) == ["no_completed_import", "import_in_progress", "open_mispick_counts"]


def test_a_partial_import_does_not_make_a_store_ready(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    completed_import(repo, clock, ImportKind.PARTIAL)

    assert reason_codes(service) == ["no_completed_import"]


@pytest.mark.parametrize("kind", [ImportKind.INITIAL, ImportKind.FULL_COUNT])
def test_a_recent_baseline_import_makes_a_store_ready(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock, kind: ImportKind
) -> None:
    store(service)
    completed_import(repo, clock, kind)
    clock.advance(minutes=15)

    readiness = service.readiness("s1")

    assert readiness.ready
    assert readiness.reasons == []


def test_an_import_older_than_the_window_is_too_old(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    completed_import(repo, clock)
    clock.advance(minutes=15, seconds=1)

    assert reason_codes(service) == ["import_too_old"]
    with pytest.raises(NotReady) as refused:
        service.switch("s1", PLATFORM, "me")
    assert [d["code"] for d in refused.value.details] == ["import_too_old"]


def test_a_closed_mispick_count_no_longer_blocks(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    completed_import(repo, clock)
    repo.open_cycle_count(
        CycleCount(
            location_id="s1",
            count_id="c1",
            reason=CountReason.MISPICK,
            product_ids=["p"],
            content_hash="h",
            opened_at=clock.now(),
        )
    )
    assert reason_codes(service) == ["open_mispick_counts"]

    repo.close_cycle_count("s1", "c1", status=CountStatus.COMPLETED, closed_at=clock.now())

    assert service.readiness("s1").ready


def test_the_switch_records_one_event_and_a_repeat_answers_the_original(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    completed_import(repo, clock)

    first = service.switch("s1", PLATFORM, "arn:aws:iam::1:user/ops")
    clock.advance(minutes=5)
    again = service.switch("s1", PLATFORM, "arn:aws:iam::1:user/other")

    assert first.inventory_master is PLATFORM
    assert again.master_switched_at == first.master_switched_at
    assert again.master_switched_by == "arn:aws:iam::1:user/ops"
    events = repo.pending_events("s1")
    assert [e.detail_type for e in events] == [DetailType.MASTER_SWITCHED]
    assert events[0].detail["switched_by"] == "arn:aws:iam::1:user/ops"
    assert events[0].detail["schema_version"] == 1


def test_nothing_switches_a_platform_store_back(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    store(service)
    completed_import(repo, clock)
    service.switch("s1", PLATFORM, "me")

    with pytest.raises(SwitchIrreversible):
        service.switch("s1", ERP, "me")
    service.put("s1", LocationChanges(type=LocationType.STORE, name="renamed"))

    assert service.get("s1").inventory_master is PLATFORM


def test_erp_on_a_store_under_the_erp_changes_nothing(service: MasterSwitchService, repo: MemoryRepository) -> None:
    store(service)

    location = service.switch("s1", ERP, "me")

    assert location.inventory_master is ERP
    assert repo.outbox == {}


def test_a_dc_never_switches(service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock) -> None:
    service.put("dc1", LocationChanges(type=LocationType.DC))

    with pytest.raises(LocationIsDc):
        service.switch("dc1", PLATFORM, "me")
    assert reason_codes(service, "dc1")[0] == "location_is_dc"
    assert service.switch("dc1", ERP, "me").inventory_master is ERP


def test_a_location_that_changed_during_the_switch_is_refused_with_its_reason(
    service: MasterSwitchService, repo: MemoryRepository, clock: FixedClock
) -> None:
    """Given a store that was ready when read, when an import starts before the guarded write lands,
    then the write is refused and the answer says why."""
    store(service)
    completed_import(repo, clock)
    original = repo.switch_to_platform

    def import_sneaks_in(location_id: str, **kwargs: object) -> object:
        repo.begin_import(
            ImportRecord(
                location_id="s1",
                import_id="i2",
                kind=ImportKind.PARTIAL,
                status=ImportStatus.ACCEPTED,
                content_hash="h",
                accepted_at=clock.now(),
            )
        )
        return original(location_id, **kwargs)  # type: ignore[arg-type]

    repo.switch_to_platform = import_sneaks_in  # type: ignore[method-assign,assignment]

    with pytest.raises(NotReady) as refused:
        service.switch("s1", PLATFORM, "me")
    assert [d["code"] for d in refused.value.details] == ["import_in_progress"]
    assert service.get("s1").inventory_master is ERP


def test_listing_pages_through_every_location(service: MasterSwitchService) -> None:
    for n in range(5):
        store(service, f"s{n}")

    seen, cursor = [], None
    while True:
        page = service.list(2, cursor)
        seen += [location.location_id for location in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == ["s0", "s1", "s2", "s3", "s4"]
