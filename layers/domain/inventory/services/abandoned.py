"""The sweep of abandoned requests: what a request left behind when it stopped half-way (the
function timed out, the client gave up) and was not repeated within ABANDONED_AFTER, undone or
ended. Run every five minutes by the schedule.

- An API allocation left `pending` holds units that no order will ship: it is released through
  the ordinary release (services/allocations.py).
- An inventory transaction left `pending` is completed, or undone when it is short by now
  (services/transactions.py): its record says what it is, as a repeat of its request would.
- A cycle count left `submitting` (its results applied in part) is completed with them.
- An import start that claimed its location but never handed the import to the worker keeps the
  location claimed, refusing every later import and the switch: the import is failed with the code
  `not_started`, which releases the location (ImportSweep, below).

A late repeat of either request then finds the allocation released, or the import failed, and
answers it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from inventory.errors import Conflict
from inventory.models import IMPORT_START_ABANDONED_AFTER, ImportStatus, Location
from inventory.models.allocations import Allocation
from inventory.models.counts import CycleCount
from inventory.models.imports import ImportRecord
from inventory.models.transactions import InventoryTransaction
from inventory.observability import logger
from inventory.services.allocations import AllocationService
from inventory.services.cycle_counts import CycleCountService
from inventory.services.imports import ENDED, not_started, release_if_claimed
from inventory.services.transactions import TransactionService

if TYPE_CHECKING:
    from inventory.ports import Clock, ImportRepositories

T = TypeVar("T")
RELEASE_BATCH = 100  # allocations released per call; the run goes on while calls come back full
ABANDONED_START = (  # why the sweep failed an import: its start stopped before this step
    "the request that started the import stopped before it {step}, and was not repeated within "
    f"{int(IMPORT_START_ABANDONED_AFTER.total_seconds() // 60)} minutes"
)


@dataclass(frozen=True)
class Swept:
    released: list[Allocation]  # API allocations that were left pending
    failed_imports: list[ImportRecord]  # imports whose start never handed them to the worker
    ended_transactions: list[InventoryTransaction] = field(default_factory=list)  # completed (undone: not listed)
    completed_counts: list[CycleCount] = field(default_factory=list)  # cycle counts left submitting


class AbandonedRequests:
    def __init__(
        self,
        allocations: AllocationService,
        imports: ImportSweep,
        transactions: TransactionService | None = None,
        counts: CycleCountService | None = None,
    ) -> None:
        self._allocations = allocations
        self._imports = imports
        self._transactions = transactions
        self._counts = counts

    def sweep(self, more_time: Callable[[], bool]) -> Swept:
        """Each part, while `more_time()`. Each runs even when another failed, so that one record
        that keeps failing does not hold the others' work back; the first failure is raised once
        all have run (the run is then recorded as failed, and the next one tries again)."""
        errors: list[Exception] = []

        def part(sweep: Callable[[], list[T]]) -> list[T]:
            try:
                return sweep()
            except Exception as error:  # raised below, once the rest is swept too
                errors.append(error)
                return []

        transactions, counts = self._transactions, self._counts
        swept = Swept(
            released=part(lambda: _in_batches(self._allocations.release_abandoned, more_time)),
            failed_imports=part(lambda: self._imports.fail_abandoned(more_time)),
            ended_transactions=part(
                lambda: _in_batches(transactions.complete_abandoned, more_time) if transactions else []
            ),
            completed_counts=part(lambda: _in_batches(counts.complete_abandoned, more_time) if counts else []),
        )
        for later in errors[1:]:
            logger.error("another part of the abandoned-requests sweep failed too", exc_info=later)
        if errors:
            raise errors[0]
        return swept


def _in_batches(sweep: Callable[[int], list[T]], more_time: Callable[[], bool]) -> list[T]:
    """`sweep(RELEASE_BATCH)` again while time is left and it comes back full."""
    done: list[T] = []
    while more_time():
        batch = sweep(RELEASE_BATCH)
        done += batch
        if len(batch) < RELEASE_BATCH:
            break
    return done


class ImportSweep:
    """Fails the imports whose start stopped half-way and was never repeated, so that none keeps
    its location claimed for ever (every later import would be refused, and the switch with them).

    An import start claims the location, puts the record (`accepted`), writes the inline items'
    file, sends the worker's message and marks the record `queued`; a repeat of the request
    completes any of these, and the import queue repeats a dropped file's start after its visibility
    timeout. Once a claim is IMPORT_START_ABANDONED_AFTER old, its start is no longer repeated:

    - a claim with no record (stopped between the two): a failed record is put, on the condition
      that none exists, so that a late repeat of the request finds the import failed rather than
      racing the sweep; then the location is released, on the condition that this import still
      claims it;
    - a record still `accepted` and not `queued` (stopped before its message): failed, on the
      condition that it still is, then released, as the worker's failures are;
    - a record that has ended but still claims the location (an ending that stopped between its
      two writes, this sweep's own among them): its ending is repeated.

    Queued and running imports are the worker's: the queue delivers their steps again, and the
    worker's give-up on the last delivery fails them. Each step is one conditional write that a
    repeat finds done, so a stop between any two, or two sweeps at once, end in the same state
    (two at once may both report a recorded import they raced for: the one that lost finds it
    failed and finishes its release; the function runs one sweep at a time).
    """

    def __init__(self, repository: ImportRepositories, clock: Clock) -> None:
        self._repo = repository
        self._clock = clock

    def fail_abandoned(self, more_time: Callable[[], bool] = lambda: True) -> list[ImportRecord]:
        """Sweep every claimed location while `more_time()`; the imports this run failed."""
        now = self._clock.now()
        cutoff = now - IMPORT_START_ABANDONED_AFTER
        failed: list[ImportRecord] = []
        for location in self._repo.claimed_locations():
            if not more_time():
                break
            # A claim written before claims carried their time counts from the location's last
            # write, which is never earlier than the claim.
            claimed_at = location.running_import_claimed_at or location.updated_at
            if claimed_at > cutoff:
                continue  # its request may still be repeated
            record = self._sweep(location, claimed_at, now, cutoff)
            if record is not None:
                failed.append(record)
        return failed

    def _sweep(self, location: Location, claimed_at: datetime, now: datetime, cutoff: datetime) -> ImportRecord | None:
        import_id = location.running_import_id
        assert import_id is not None  # a claimed location
        record = self._repo.get_import(location.location_id, import_id)
        if record is None:
            summary = location.last_import  # the claim writes it: this import's id and kind
            if summary is None or summary.import_id != import_id:
                logger.error(
                    "claimed location without its import's summary: left",
                    extra={"location_id": location.location_id, "import_id": import_id},
                )
                return None
            unrecorded = ImportRecord(
                location_id=location.location_id,
                import_id=import_id,
                kind=summary.kind,
                status=ImportStatus.FAILED,
                accepted_at=claimed_at,
                completed_at=now,
                errors=[not_started(ABANDONED_START.format(step="recorded it"))],
            )
            record, put = self._repo.fail_unrecorded_import(unrecorded)
            if put:
                return record
            # recorded meanwhile: by a late repeat of its request, or by another sweep
        if record.status in ENDED:
            release_if_claimed(self._repo, record)
            return None
        if record.status is not ImportStatus.ACCEPTED or record.queued or record.accepted_at > cutoff:
            return None  # the worker's, or recorded by a repeat of its request just now
        try:
            return self._repo.fail_import(
                location.location_id,
                import_id,
                failed_at=now,
                errors=[not_started(ABANDONED_START.format(step="marked it queued for the worker"))],
                unstarted_only=True,
            )
        except Conflict:  # queued or running meanwhile: the worker's now
            return None
