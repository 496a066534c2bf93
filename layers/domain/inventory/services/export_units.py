"""The export queue's work: an export's fan-out to one unit per location, each location's file,
and the export's finish (its manifest and `Availability Exported`). Every step, and what a crash
between two of them leaves, is in docs/data-design.md, "Availability exports"."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from inventory.errors import InventoryError, NotFound, TemporarilyUnavailable
from inventory.messages import DetailType
from inventory.messages.export_work import ExportFanOut, ExportWork, LocationUnit
from inventory.models import Location, OutboxEvent, iso
from inventory.models.exports import (
    AvailabilityExport,
    ExportMode,
    ExportPoint,
    ExportStatus,
    LocationExport,
    LocationFile,
    file_key,
    manifest_key,
)
from inventory.observability import logger, metrics
from inventory.services.export_rows import RowFile, products_of_new_layers, write_changed, write_full
from inventory.services.outcomes import APPLIED, Outcome, outcome_of, reason_of

if TYPE_CHECKING:
    from inventory.export_ports import ExportFiles, ExportRepositories
    from inventory.ports import Clock, WorkQueue

# A unit's lease of its location: longer than the worker's timeout (900 s), so that a lease runs out
# only after the run that took it has ended.
LEASE_SECONDS = 960
BUSY_RETRY_SECONDS = 60  # a unit whose location another export holds comes back this much later
FILE_METADATA = "file"  # the object's metadata: the LocationFile it is, as JSON
# Marks cleared at once: a full file after a busy interval holds thousands of marked products, and
# one write after another (a few ms each) took longer than reading the location.
CLEARERS = 8


class LocationBusy(TemporarilyUnavailable):
    """Another export of the location is running: its exports run one at a time."""


class ExportUnits:
    def __init__(self, repo: ExportRepositories, files: ExportFiles, queue: WorkQueue, clock: Clock) -> None:
        self._repo = repo
        self._files = files
        self._queue = queue
        self._clock = clock

    # ------------------------------------------------------------ fan-out
    def fan_out(self, export_id: str) -> None:
        """One message per location of the export, then the export is running. Sent again in full
        by a redelivery (a unit is safe to run twice)."""
        found = self._repo.get_export(export_id)
        if found is None:
            raise NotFound(f"export {export_id!r} does not exist")
        export, _ = found
        if export.status is not ExportStatus.ACCEPTED:
            return
        for location_id in export.location_ids:
            self._queue.send(LocationUnit(export_id=export_id, location_id=location_id).model_dump())
        self._repo.mark_export_running(export_id)

    # ------------------------------------------------------------ a location's file
    def run(self, export_id: str, location_id: str) -> LocationFile | None:
        """Write, commit and record the location's file of the export (None: recorded before)."""
        found = self._repo.get_export(export_id)
        if found is None:
            raise NotFound(f"export {export_id!r} does not exist")
        export, units = found
        if location_id not in export.location_ids:
            raise NotFound(f"export {export_id!r} has no location {location_id!r}")
        done = units.get(location_id)
        if done is not None and done.status in (ExportStatus.COMPLETED, ExportStatus.FAILED):
            self.finish(export_id)
            return None
        now = self._clock.now()
        state = self._repo.claim_export_state(location_id, export_id, now, now + timedelta(seconds=LEASE_SECONDS))
        if state is None:
            raise LocationBusy(f"another export of {location_id!r} is running")
        running = LocationExport(location_id=location_id, status=ExportStatus.RUNNING)
        self._repo.put_location_export(export_id, running, now)
        won = False
        if state.last is not None and state.last.export_id == export_id:
            # Committed before a stop: record it, and give back the lease this run's claim took again.
            file, versions = state.last, dict[str, int]()
            self._repo.release_export_state(location_id, export_id)
        else:
            previous = state.last
            file, versions, won = self._write(export, location_id, previous)
            if not self._repo.commit_export_state(file):
                logger.warning(
                    "the location's lease was taken over: its state is left to the export holding it",
                    extra={"export_id": export_id, "location_id": location_id},
                )
        self._repo.put_location_export(
            export_id, LocationExport(location_id=location_id, status=ExportStatus.COMPLETED, file=file), now
        )
        if won:
            cleared = self._clear_marks(location_id, versions)
            logger.info("change marks cleared", extra={"location_id": location_id, "cleared": cleared})
        self.finish(export_id)
        return file

    def _clear_marks(self, location_id: str, versions: dict[str, int]) -> int:
        """Each mark the file's reading saw removed, if its product's version is still the one read:
        one conditional write each, independent of the others, CLEARERS at a time; how many were
        removed. A failure is raised once every other write has been tried."""
        if not versions:
            return 0

        def clear(marked: tuple[str, int]) -> bool:
            return self._repo.clear_change(location_id, *marked)

        with ThreadPoolExecutor(max_workers=min(CLEARERS, len(versions))) as pool:
            return sum(pool.map(clear, versions.items()))

    def _write(
        self, export: AvailabilityExport, location_id: str, previous: LocationFile | None
    ) -> tuple[LocationFile, dict[str, int], bool]:
        """Read and upload the location's file; the file committed under its key (this run's, or the
        one a twin or an earlier run uploaded first), what was read of its marked products, and
        whether the file is this run's."""
        started = time.monotonic()
        location = self._repo.get_location(location_id)
        if location is None:
            raise NotFound(f"location {location_id!r} does not exist")
        types = self._repo.stock_locations()  # after the location (see StockService.read_many)
        point = _point(location, self._clock.now())
        full = (
            export.mode is ExportMode.FULL
            or previous is None
            or previous.point.baseline_seq != point.baseline_seq
            or previous.point.figures_version != point.figures_version
        )
        marked = {
            p for shard in range(self._repo.product_shards) for p in self._repo.changed_products(location_id, shard)
        }
        key = file_key(export.export_id, location_id)
        with tempfile.TemporaryDirectory() as scratch:
            rows = RowFile(Path(scratch) / "rows.jsonl.gz")
            try:
                if full:
                    written = write_full(self._repo, location, types, marked, rows)
                else:
                    assert previous is not None
                    changed = marked | products_of_new_layers(self._repo, location, previous.point.import_seq)
                    written = write_changed(self._repo, location, types, sorted(changed), rows)
            finally:
                sha256 = rows.close()
            file = LocationFile(
                location_id=location_id,
                export_id=export.export_id,
                full=full,
                rows=rows.rows,
                uri=self._files.uri(key),
                sha256=sha256,
                since_export_id=None if full else previous.export_id if previous else None,
                point=point,
            )
            won = self._files.upload_new(key, rows.path, {FILE_METADATA: file.model_dump_json(exclude_none=True)})
        seconds = time.monotonic() - started
        if not won:
            logger.info("the file was uploaded before: its metadata is committed", extra={"key": key})
            return LocationFile.model_validate_json(self._files.metadata(key)[FILE_METADATA]), {}, False
        metrics.add_metric(name="AvailabilityExportRows", unit=MetricUnit.Count, value=file.rows)
        metrics.add_metric(name="AvailabilityExportSeconds", unit=MetricUnit.Seconds, value=seconds)
        logger.info(
            "location exported",
            extra={"location_id": location_id, "rows": file.rows, "full": full, "seconds": round(seconds, 3)},
        )
        return file, written.versions, True

    def fail(self, export_id: str, location_id: str, reason: str) -> None:
        """The unit failed for good (its last delivery): recorded as failed, the location given back,
        and the export finished once every location is done."""
        now = self._clock.now()
        unit = LocationExport(location_id=location_id, status=ExportStatus.FAILED, error=reason)
        self._repo.put_location_export(export_id, unit, now)
        self._repo.release_export_state(location_id, export_id)
        self.finish(export_id)

    # ------------------------------------------------------------ the finish
    def finish(self, export_id: str) -> AvailabilityExport | None:
        """Once every location is done: the manifest, then the export completed (or failed) with its
        event, by whichever unit gets there (the manifest's bytes are the same from any)."""
        found = self._repo.get_export(export_id)
        if found is None:
            return None
        export, units = found
        if export.status in (ExportStatus.COMPLETED, ExportStatus.FAILED):
            return export
        ended = (ExportStatus.COMPLETED, ExportStatus.FAILED)
        if any(
            location_id not in units or units[location_id].status not in ended for location_id in export.location_ids
        ):
            return None
        ordered = [units[location_id] for location_id in sorted(export.location_ids)]
        files = [u.file for u in ordered if u.file is not None]
        failed = [u.location_id for u in ordered if u.status is ExportStatus.FAILED]
        manifest = {
            "export_id": export_id,
            "mode": export.mode.value,
            "requested_at": iso(export.requested_at),
            "locations": [_listed(u) for u in ordered],
        }
        body = json.dumps(manifest, separators=(",", ":"), indent=None).encode()
        manifest_uri = self._files.put(manifest_key(export_id), body, "application/json")
        now = self._clock.now()
        status = ExportStatus.FAILED if failed else ExportStatus.COMPLETED
        finished = export.model_copy(update={"status": status, "completed_at": now, "manifest_uri": manifest_uri})
        detail = {
            "export_id": export_id,
            "mode": export.mode.value,
            "status": status.value,
            "manifest_uri": manifest_uri,
            "failed_location_ids": failed,
            "locations": [_exported(f) for f in files],
        }
        single = export.location_ids[0] if len(export.location_ids) == 1 else None
        event = OutboxEvent.of(DetailType.AVAILABILITY_EXPORTED, single, now, detail, key=f"export/{export_id}")
        if self._repo.finish_export(finished, event):
            if failed:
                metrics.add_metric(name="AvailabilityExportsFailed", unit=MetricUnit.Count, value=1)
            logger.info("export finished", extra={"export_id": export_id, "status": status.value, "failed": failed})
        return finished


def _point(location: Location, at: object) -> ExportPoint:
    visible = location.visible_imports
    newest = max(visible, key=lambda v: v.seq, default=None)
    baseline = max((v.seq for v in visible if v.kind.is_baseline), default=0)
    return ExportPoint.model_validate(
        {
            "as_of": at,
            "import_seq": newest.seq if newest else 0,
            "baseline_seq": baseline,
            "figures_version": location.figures_version,
            "import_id": newest.import_id if newest else None,
        }
    )


def _exported(file: LocationFile) -> dict[str, object]:
    return {
        "location_id": file.location_id,
        "uri": file.uri,
        "rows": file.rows,
        "sha256": file.sha256,
        "as_of": iso(file.point.as_of),
        "since_export_id": file.since_export_id,
    }


def _listed(unit: LocationExport) -> dict[str, object]:
    """A location of the manifest (and of the export's answer)."""
    listed: dict[str, object] = {"location_id": unit.location_id, "status": unit.status.value}
    if unit.file is not None:
        listed |= _exported(unit.file) | {"full": unit.file.full, "import_id": unit.file.point.import_id}
    if unit.error is not None:
        listed["error"] = unit.error
    return listed


class ExportWorker:
    """The export queue's messages: what became of each (see outcomes.py)."""

    def __init__(self, units: ExportUnits, queue: WorkQueue) -> None:
        self._units = units
        self._queue = queue

    def process(
        self, work: ExportWork | Exception, remaining_ms: Callable[[], int], *, last_delivery: bool = False
    ) -> Outcome:
        if isinstance(work, Exception):
            return outcome_of(work)
        try:
            match work:
                case ExportFanOut():
                    self._units.fan_out(work.export_id)
                case LocationUnit():
                    self._units.run(work.export_id, work.location_id)
        except LocationBusy:
            # Not an error: the unit waits its turn, on a message of its own, and this one is done.
            self._queue.send(work.model_dump(), delay_seconds=BUSY_RETRY_SECONDS)
            return APPLIED
        except Exception as error:  # the message's outcome
            outcome = outcome_of(error)
            gone = isinstance(error, NotFound)  # of an export that does not exist: nothing to record
            if isinstance(work, LocationUnit) and (outcome.final or last_delivery) and not gone:
                self._give_up(work, error)
            return outcome
        return APPLIED

    def _give_up(self, work: LocationUnit, error: Exception) -> None:
        reason = reason_of(error).message if isinstance(error, InventoryError) else f"{type(error).__name__}: {error}"
        logger.error("location export failed", extra={"export_id": work.export_id, "location_id": work.location_id})
        try:
            self._units.fail(work.export_id, work.location_id, reason)
        except Exception:  # the message is dead-lettered with its reason in any case
            logger.exception("the failed location export could not be recorded")
