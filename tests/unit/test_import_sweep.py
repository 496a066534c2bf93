"""The sweep of import starts that stopped half-way and were never repeated (ImportSweep, and the
abandoned-requests sweep that runs it), against the in-memory ports.

An import start claims the location, puts the record, writes the inline items' file, sends the
worker's message and marks the record queued. Each test stops a start at one of these, lets time
pass, and sweeps; what a user then sees is the import's status, the location's last import, and
whether the location takes a new import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from inventory.errors import ImportInProgress, TemporarilyUnavailable
from inventory.models import (
    ABANDONED_AFTER,
    IMPORT_START_ABANDONED_AFTER,
    ImportKind,
    ImportStatus,
    Location,
    LocationChanges,
    LocationType,
)
from inventory.models.imports import StockRow
from inventory.services.abandoned import AbandonedRequests, ImportSweep
from inventory.services.allocations import AllocationService
from inventory.services.import_runs import ImportRunner
from inventory.services.imports import ImportRequest
from inventory.services.locations import MasterSwitchService
from inventory.services.stock import StockService
from tests.unit.fakes import FixedClock, MemoryFiles, MemoryQueue, MemoryRepository
from tests.unit.test_template import TEMPLATE

GRACE = int(IMPORT_START_ABANDONED_AFTER.total_seconds() // 60)  # minutes


class Stopped(BaseException):
    """The function stopped here (a timeout): no `except Exception` catches it, as in Lambda."""


class StoppingFiles(MemoryFiles):
    """The import bucket, where the next put stops the function before it is written."""

    stop = False

    def put(self, key: str, data: bytes) -> str:
        if self.stop:
            self.stop = False
            raise Stopped("stopped before the inline items' file")
        return super().put(key, data)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.repo = MemoryRepository()
        self.files = StoppingFiles()
        self.queue = MemoryQueue()
        self.imports = ImportRunner(self.repo, self.files, self.queue, self.clock)
        self.sweep = ImportSweep(self.repo, self.clock)
        self.switch = MasterSwitchService(self.repo, self.clock, 15)
        self.switch.put("s1", LocationChanges(type=LocationType.STORE))

    def request(self, import_id: str = "i1", quantity: int = 0) -> ImportRequest:
        items = [StockRow(product_id="p1", stock_location="main", quantity=quantity)]
        return ImportRequest(import_id=import_id, kind=ImportKind.INITIAL, items=items)

    def start(self, import_id: str = "i1", quantity: int = 0) -> Any:
        return self.imports.accept("s1", self.request(import_id, quantity), "erp")

    def stopped_start(self, at: str, import_id: str = "i1") -> None:
        """An import start that stops `at` one of its steps, and is not repeated."""
        if at == "after the claim":
            self.repo.fail_next("begin_import", Stopped(at), after_writes=1)
        elif at == "before the file":
            self.files.stop = True
        elif at == "after the message":
            self.repo.fail_next("mark_queued", Stopped(at))
        with pytest.raises(Stopped):
            self.start(import_id)

    def takes_a_new_import(self, import_id: str = "next") -> bool:
        try:
            _, created = self.start(import_id)
        except ImportInProgress:
            return False
        return created

    def location(self) -> Location:
        location = self.repo.get_location("s1")
        assert location is not None
        return location

    def seen(self, import_id: str = "i1") -> dict[str, Any]:
        record = self.imports.status("s1", import_id)
        last = self.location().last_import
        return {
            "status": record.status,
            "codes": [e["code"] for e in record.errors],
            "last_import": (last.import_id, last.status) if last else None,
            "claimed": self.location().running_import_id,
        }


@pytest.fixture
def world() -> World:
    return World()


FAILED_NOT_STARTED = {
    "status": ImportStatus.FAILED,
    "codes": ["not_started"],
    "last_import": ("i1", ImportStatus.FAILED),
    "claimed": None,
}


@pytest.mark.parametrize("at", ["after the claim", "before the file", "after the message"])
def test_a_start_never_repeated_is_failed_once_the_claim_is_abandoned_and_the_location_is_free(
    world: World, at: str
) -> None:
    """Given an import start that stopped after its claim (no record), before its file, or after
    its message (recorded, never marked queued), and was not repeated,
    when the sweep runs a minute before the grace, then just past it,
    then the first leaves it (its client may still repeat it), the second fails it with
    `not_started`, releases the location, and the location takes the next import."""
    world.stopped_start(at)
    world.clock.advance(minutes=GRACE - 1)

    early = world.sweep.fail_abandoned()
    blocked = not world.takes_a_new_import("too-early")
    world.clock.advance(minutes=1, seconds=1)
    (failed,) = world.sweep.fail_abandoned()

    assert (early, blocked) == ([], True)
    assert (failed.import_id, failed.status) == ("i1", ImportStatus.FAILED)
    assert world.seen() == FAILED_NOT_STARTED
    assert f"not repeated within {GRACE} minutes" in world.imports.status("s1", "i1").errors[0]["message"]
    assert not any(r.code == "import_in_progress" for r in world.switch.readiness("s1").reasons)
    assert world.takes_a_new_import()
    assert world.sweep.fail_abandoned() == []  # the next import is young, and i1 has ended


def test_the_fix_a_location_whose_start_stopped_after_its_claim_takes_imports_again(world: World) -> None:
    """Given an import start that stopped right after claiming the location (the defect: every later
    import answered import_in_progress for ever),
    when the abandoned-requests sweep runs just past the grace,
    then the location takes a new import."""
    world.stopped_start("after the claim")
    world.clock.advance(minutes=GRACE + 1)
    assert not world.takes_a_new_import("blocked")

    sweep = AbandonedRequests(AllocationService(world.repo, StockService(world.repo), world.clock), world.sweep)
    swept = sweep.sweep(lambda: True)

    assert ([r.import_id for r in swept.failed_imports], swept.released) == (["i1"], [])
    assert world.takes_a_new_import()


def test_a_late_repeat_of_the_request_answers_the_failed_import_and_claims_nothing(world: World) -> None:
    """Given a start that stopped after its claim, failed by the sweep,
    when the same request comes again, and a request with the same id and other content,
    then each answers the import as it is, failed, without a claim, a file or a message."""
    world.stopped_start("after the claim")
    world.clock.advance(minutes=GRACE + 1)
    world.sweep.fail_abandoned()

    again, created = world.start()
    other, other_created = world.start(quantity=7)  # its content was never recorded: nothing to tell apart

    assert (again.status, created) == (ImportStatus.FAILED, False)
    assert (other.status, other_created) == (ImportStatus.FAILED, False)
    assert world.seen() == FAILED_NOT_STARTED
    assert (world.queue.messages, world.files.objects) == ([], {})


def test_a_recorded_start_repeated_after_the_sweep_answers_it_failed_and_the_worker_stops(world: World) -> None:
    """Given a start that sent its message but stopped before marking the record queued, failed by
    the sweep (its message waited longer than the grace, behind other imports),
    when the worker gets the message, and the request is repeated,
    then the worker stops without writing, and the repeat answers the import failed."""
    world.stopped_start("after the message")
    world.clock.advance(minutes=GRACE + 1)
    world.sweep.fail_abandoned()

    (message,) = world.queue.messages
    status = world.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 10**9)
    again, created = world.start()

    assert (status, again.status, created) == (ImportStatus.FAILED, ImportStatus.FAILED, False)
    assert world.repo.rows == {}
    assert world.seen() == FAILED_NOT_STARTED


def test_queued_and_running_imports_are_the_workers_not_the_sweeps(world: World) -> None:
    """Given an import accepted and queued at one store, and one running at another,
    when the sweep runs an hour later,
    then both are left as they are, their locations claimed."""
    world.start()
    world.switch.put("s2", LocationChanges(type=LocationType.STORE))
    items = [StockRow(product_id="p1", stock_location="main", quantity=1)]
    world.imports.accept("s2", ImportRequest("r1", ImportKind.PARTIAL, items=items), "erp")
    world.repo.record_progress("s2", "r1", written_through_line=0)  # the worker's first step
    world.clock.advance(hours=1)

    assert world.sweep.fail_abandoned() == []

    assert world.imports.status("s1", "i1").status is ImportStatus.ACCEPTED
    assert world.imports.status("s2", "r1").status is ImportStatus.RUNNING
    assert (world.location().running_import_id, world.repo.get_location("s2").running_import_id) == ("i1", "r1")  # type: ignore[union-attr]


def test_the_grace_counts_from_the_claim_not_from_the_locations_last_write(world: World) -> None:
    """Given a start that stopped after its claim at 9:00, and the location updated at 9:10,
    when the sweep runs a minute past the grace after 9:00,
    then the import is failed: the claim's own time decides."""
    world.stopped_start("after the claim")
    world.clock.advance(minutes=10)
    world.switch.put("s1", LocationChanges(type=LocationType.STORE, name="renamed"))
    world.clock.advance(minutes=GRACE - 10 + 1)

    assert [r.import_id for r in world.sweep.fail_abandoned()] == ["i1"]


def test_a_claim_written_before_claims_carried_their_time_counts_from_the_locations_last_write(
    world: World,
) -> None:
    """Given a claim without its time (written before claims carried it) and the location last
    written at 9:10, when the sweep runs a minute before the grace after 9:10 and a minute past
    it, then the first leaves it and the second fails it."""
    world.stopped_start("after the claim")
    world.clock.advance(minutes=10)
    world.switch.put("s1", LocationChanges(type=LocationType.STORE, name="renamed"))
    world.repo.locations["s1"] = world.location().model_copy(update={"running_import_claimed_at": None})

    world.clock.advance(minutes=GRACE - 1)
    early = world.sweep.fail_abandoned()
    world.clock.advance(minutes=2)
    late = world.sweep.fail_abandoned()

    assert (early, [r.import_id for r in late]) == ([], ["i1"])
    assert world.seen() == FAILED_NOT_STARTED


@pytest.mark.parametrize(
    ("at", "method"),
    [("after the claim", "fail_unrecorded_import"), ("before the file", "fail_import")],
)
def test_a_sweep_stopped_between_its_writes_is_finished_by_the_next(world: World, at: str, method: str) -> None:
    """Given a sweep that stops after its first write (the failed record), before the release,
    when a late repeat of the request comes, and then the next sweep runs,
    then the repeat answers the import failed, and the next sweep releases the location: the
    state of a sweep that never stopped."""
    world.stopped_start(at)
    world.clock.advance(minutes=GRACE + 1)
    world.repo.fail_next(method, Stopped("stopped between the record and the release"), after_writes=1)
    with pytest.raises(Stopped):
        world.sweep.fail_abandoned()
    between = world.seen()

    again, created = world.start()
    world.clock.advance(minutes=5)
    finished = world.sweep.fail_abandoned()

    assert (between["status"], between["claimed"]) == (ImportStatus.FAILED, "i1")
    assert (again.status, created) == (ImportStatus.FAILED, False)
    assert finished == []  # the first run failed it; this one only gave the location back
    assert world.seen() == FAILED_NOT_STARTED
    assert world.takes_a_new_import()


class SweptMeanwhile(MemoryRepository):
    """A repository whose listing of claims lets another sweep run in full before it answers: two
    sweeps at once, the second acting on what the first read before it ran."""

    other: ImportSweep | None = None
    failed_by_other: tuple[Any, ...] = ()

    def claimed_locations(self) -> Iterator[Location]:
        listed = list(super().claimed_locations())
        other, self.other = self.other, None
        if other is not None:
            self.failed_by_other = tuple(other.fail_abandoned())
        return iter(listed)


@pytest.mark.parametrize("at", ["after the claim", "before the file"])
def test_two_sweeps_at_once_fail_the_import_once(at: str) -> None:
    """Given a start stopped `at` a step, and two sweeps, the second listing the claims before the
    first runs, when both run, then the import is failed once, by the first, and the second, finding
    it ended and released, writes nothing."""
    world = World()
    world.repo = repo = SweptMeanwhile()
    world.imports = ImportRunner(repo, world.files, world.queue, world.clock)
    world.switch = MasterSwitchService(repo, world.clock, 15)
    world.switch.put("s1", LocationChanges(type=LocationType.STORE))
    world.stopped_start(at)
    world.clock.advance(minutes=GRACE + 1)
    first = ImportSweep(repo, world.clock)
    repo.other = first

    second = ImportSweep(repo, world.clock).fail_abandoned()

    assert ([r.import_id for r in repo.failed_by_other], second) == (["i1"], [])
    assert world.seen() == FAILED_NOT_STARTED


def test_an_import_that_ended_but_kept_its_claim_is_given_back_not_failed(world: World) -> None:
    """Given an import completed by the worker whose location write (the release) failed on every
    delivery, when the sweep runs, then the completion is finished: the location is released with
    the import completed and visible, not failed."""
    world.start(quantity=4)
    world.repo.fail_next("complete_import", Stopped("stopped before the release"), after_writes=1)
    (message,) = world.queue.messages
    with pytest.raises(Stopped):
        world.imports.run(str(message["location_id"]), str(message["import_id"]), lambda: 10**9)
    world.clock.advance(minutes=GRACE + 1)

    assert world.sweep.fail_abandoned() == []

    assert world.seen() == {
        "status": ImportStatus.COMPLETED,
        "codes": [],
        "last_import": ("i1", ImportStatus.COMPLETED),
        "claimed": None,
    }
    assert [v.import_id for v in world.location().visible_imports] == ["i1"]


def test_a_claim_without_its_imports_summary_is_left_and_logged(world: World) -> None:
    """Given a claim whose location does not name the import in its last import (the claim writes
    both together, so this is damage, not a stopped request), when the sweep runs, then it invents
    nothing: the location is left claimed."""
    world.stopped_start("after the claim")
    world.repo.locations["s1"] = world.location().model_copy(update={"last_import": None})
    world.clock.advance(minutes=GRACE + 1)

    assert world.sweep.fail_abandoned() == []
    assert world.location().running_import_id == "i1"
    assert world.imports._repo.get_import("s1", "i1") is None  # type: ignore[attr-defined]


def test_the_sweep_stops_when_its_time_is_up(world: World) -> None:
    """Given two stores with abandoned claims, when the sweep has time for one, then one is failed
    and the next run fails the other."""
    world.switch.put("s2", LocationChanges(type=LocationType.STORE))
    world.stopped_start("after the claim")
    world.repo.fail_next("begin_import", Stopped(), after_writes=1)
    with pytest.raises(Stopped):
        world.imports.accept("s2", world.request("j1"), "erp")
    world.clock.advance(minutes=GRACE + 1)
    budget = iter([True, False])

    first = world.sweep.fail_abandoned(lambda: next(budget))
    second = world.sweep.fail_abandoned()

    assert ([r.import_id for r in first], [r.import_id for r in second]) == (["i1"], ["j1"])


class FailingAllocations(AllocationService):
    def release_abandoned(self, limit: int = 100) -> list[Any]:
        raise TemporarilyUnavailable("throttled")


def test_one_half_of_the_sweep_failing_does_not_hold_the_other_back(world: World) -> None:
    """Given the allocations' half throttled on every call, when the abandoned-requests sweep runs,
    then the imports are swept all the same, and the run fails (the schedule records it, and the
    next run tries again)."""
    world.stopped_start("after the claim")
    world.clock.advance(minutes=GRACE + 1)
    sweep = AbandonedRequests(FailingAllocations(world.repo, StockService(world.repo), world.clock), world.sweep)

    with pytest.raises(TemporarilyUnavailable):
        sweep.sweep(lambda: True)

    assert world.seen() == FAILED_NOT_STARTED


def test_the_grace_outlasts_two_deliveries_of_a_dropped_files_notification() -> None:
    """A dropped file's start is repeated by the import queue after its visibility timeout: the
    sweep waits for two of those, and never less than an API client's retries (15 minutes)."""
    visibility = TEMPLATE["Resources"]["ImportQueue"]["Properties"]["VisibilityTimeout"]
    assert 2 * timedelta(seconds=visibility) < IMPORT_START_ABANDONED_AFTER
    assert IMPORT_START_ABANDONED_AFTER >= ABANDONED_AFTER
