"""The sweep of abandoned requests: what a request left behind when it stopped half-way (the
function timed out, the client gave up) and was not repeated within ABANDONED_AFTER, undone or
ended. Run every five minutes by the schedule.

- An API allocation left `pending` holds units that no order will ship: it is released through
  the ordinary release (services/allocations.py).
- An import start that claimed its location but never handed the import to the worker keeps the
  location claimed, refusing every later import and the switch: the import is failed with the code
  `not_started`, which releases the location (services/imports.py, ImportSweep).

A late repeat of either request then finds the allocation released, or the import failed, and
answers it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inventory.models import Allocation, ImportRecord
from inventory.observability import logger
from inventory.services.allocations import AllocationService
from inventory.services.imports import ImportSweep

RELEASE_BATCH = 100  # allocations released per call; the run goes on while calls come back full


@dataclass(frozen=True)
class Swept:
    released: list[Allocation]  # API allocations that were left pending
    failed_imports: list[ImportRecord]  # imports whose start never handed them to the worker


class AbandonedRequests:
    def __init__(self, allocations: AllocationService, imports: ImportSweep) -> None:
        self._allocations = allocations
        self._imports = imports

    def sweep(self, more_time: Callable[[], bool]) -> Swept:
        """Both halves, while `more_time()`. Each runs even when the other failed, so that one
        record that keeps failing does not hold the other half's work back; the first failure is
        raised once both have run (the run is then recorded as failed, and the next one tries again)."""
        released: list[Allocation] = []
        failed: list[ImportRecord] = []
        errors: list[Exception] = []
        try:
            while more_time():
                batch = self._allocations.release_abandoned(RELEASE_BATCH)
                released += batch
                if len(batch) < RELEASE_BATCH:
                    break
        except Exception as error:  # raised below, once the imports are swept too
            errors.append(error)
        try:
            failed = self._imports.fail_abandoned(more_time)
        except Exception as error:
            errors.append(error)
        for later in errors[1:]:
            logger.error("the abandoned-imports sweep failed too", exc_info=later)
        if errors:
            raise errors[0]
        return Swept(released=released, failed_imports=failed)
