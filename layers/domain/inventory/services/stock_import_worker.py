"""The stock import's worker: the import queue's messages, dispatched on their type (an import's next
step, files dropped in the import bucket, and S3's test event), and what a message that failed on its
last delivery leaves behind."""

from __future__ import annotations

from collections.abc import Callable

from inventory.errors import ImportInProgress, TemporarilyUnavailable
from inventory.messages.import_work import FilesDropped, ImportStep, ImportWork, LayerPurge, S3TestEvent
from inventory.models import ImportStatus
from inventory.observability import logger
from inventory.services.import_runs import ImportRunner
from inventory.services.outcomes import APPLIED, Outcome, outcome_of

# A step waits for the location's running import to end: it may succeed when delivered again.
TRANSIENT = (TemporarilyUnavailable, ImportInProgress)


class StockImportWorker:
    def __init__(self, imports: ImportRunner) -> None:
        self._imports = imports

    def process(
        self, work: ImportWork | Exception, remaining_ms: Callable[[], int], *, last_delivery: bool = False
    ) -> Outcome:
        """One message; a message that could not be parsed comes as what parsing raised. A message
        that fails for now on its `last_delivery` gives its import up (`give_up`): then applied when
        nothing is lost (its import had ended), else the failure, which dead-letters it."""
        outcome = self._process(work, remaining_ms)
        if last_delivery and not outcome.applied and not outcome.final and not self.give_up(work, outcome):
            return APPLIED
        return outcome

    def _process(self, work: ImportWork | Exception, remaining_ms: Callable[[], int]) -> Outcome:
        if isinstance(work, Exception):
            return outcome_of(work, TRANSIENT)
        try:
            match work:
                case FilesDropped():
                    for bucket, key in work.files():
                        self._imports.file_dropped(bucket, key)
                case ImportStep():
                    status = self._imports.run(work.location_id, work.import_id, remaining_ms)
                    logger.info("import advanced", extra={"import_id": work.import_id, "status": status.value})
                case LayerPurge():
                    self._imports.purge(work, remaining_ms)
                case S3TestEvent():
                    logger.info("S3 test event ignored")
        except Exception as error:  # the message's outcome
            return outcome_of(error, TRANSIENT)
        return APPLIED

    def give_up(self, work: ImportWork | Exception, outcome: Outcome) -> bool:
        """After the last delivery of a message that failed for now: fail its import visibly (rather
        than leave the location claimed by an import that nothing will run again). Whether the
        message still goes to the dead-letter queue (not when the import had ended already, and
        giving up only finished its ending: nothing is lost)."""
        if isinstance(work, ImportStep):
            reason = outcome.reason.message
            if self._imports.abandon(work.location_id, work.import_id, reason) is ImportStatus.COMPLETED:
                return False
            logger.error("import abandoned", extra={"import_id": work.import_id, "reason": reason})
        return True
