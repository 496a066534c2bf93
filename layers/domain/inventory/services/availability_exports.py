"""Availability exports as the API and the schedule ask for them: accepted (the record, then its
fan-out message), read, listed. The work is the export queue's (`export_units`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from inventory.errors import ExportIdReused, NoLocationsToExport, NotFound, TooManyExportLocations
from inventory.messages.export_work import ExportFanOut
from inventory.models import Page, iso
from inventory.models.exports import AvailabilityExport, ExportMode, ExportStatus, LocationExport
from inventory.observability import logger

if TYPE_CHECKING:
    from inventory.export_ports import ExportRepository
    from inventory.ports import Clock, LocationRepository, WorkQueue

# `Availability Exported` lists every location's file and is written into the export's item:
# 1,000 entries are about 200 KB of its 400 KB (docs/data-design.md, "Availability exports").
MAX_EXPORT_LOCATIONS = 1_000
LOCATIONS_PAGE = 1_000
SCHEDULE_CALLER = "schedule"  # `requested_by` of the scheduled exports


@dataclass(frozen=True)
class ExportRequest:
    mode: ExportMode
    location_ids: Sequence[str] | None = None  # None: every enabled location
    export_id: str | None = None


@dataclass(frozen=True)
class ExportView:
    export: AvailabilityExport
    locations: list[LocationExport]


class ExportService:
    def __init__(
        self, exports: ExportRepository, locations: LocationRepository, queue: WorkQueue, clock: Clock
    ) -> None:
        self._exports = exports
        self._locations = locations
        self._queue = queue
        self._clock = clock

    def accept(self, request: ExportRequest, caller: str) -> tuple[ExportView, bool]:
        """The export (and whether this request created it). The same id with the same request again:
        the export as it is (its fan-out sent again while it waits for one); with another: 409."""
        export_id = request.export_id or str(uuid.uuid4())
        body_hash = _hash_of(request)
        found = self._exports.get_export(export_id)
        if found is not None:
            return self._repeated(found[0], found[1], body_hash), False
        location_ids = self._resolve(request.location_ids)
        export = AvailabilityExport(
            export_id=export_id,
            mode=request.mode,
            location_ids=tuple(location_ids),
            requested_at=self._clock.now(),
            requested_by=caller,
            body_hash=body_hash,
        )
        if not self._exports.put_export(export):  # a concurrent request with the same id won
            raced = self._exports.get_export(export_id)
            assert raced is not None
            return self._repeated(raced[0], raced[1], body_hash), False
        self._queue.send(ExportFanOut(export_id=export_id).model_dump())
        return ExportView(export, []), True

    def scheduled(self, at: datetime | None) -> ExportView | None:
        """The scheduled delta export of every enabled location, named by the minute it is for (a
        repeated run of the same minute asks for the same export); None when no location is enabled."""
        minute = iso(at or self._clock.now())[:16].replace(":", "").replace("-", "")
        request = ExportRequest(mode=ExportMode.DELTA, export_id=f"scheduled-{minute}")
        try:
            view, created = self.accept(request, SCHEDULE_CALLER)
        except NoLocationsToExport:
            logger.info("scheduled export skipped: no location is enabled")
            return None
        logger.info("scheduled export", extra={"export_id": view.export.export_id, "new": created})
        return view

    def _repeated(self, export: AvailabilityExport, units: dict[str, LocationExport], body_hash: str) -> ExportView:
        if export.body_hash != body_hash:
            raise ExportIdReused(f"export {export.export_id!r} exists with another request")
        if export.status is ExportStatus.ACCEPTED:  # its fan-out may never have been sent
            self._queue.send(ExportFanOut(export_id=export.export_id).model_dump())
        return _view(export, units)

    def _resolve(self, named: Sequence[str] | None) -> list[str]:
        known: dict[str, bool] = {}
        cursor: str | None = None
        while True:
            page = self._locations.list_locations(LOCATIONS_PAGE, cursor)
            known |= {location.location_id: location.enabled for location in page.items}
            cursor = page.next_cursor
            if cursor is None:
                break
        if named is not None:
            wanted = list(dict.fromkeys(named))
            unknown = [location_id for location_id in wanted if location_id not in known]
            if unknown:
                raise NotFound(
                    f"{len(unknown)} of the locations named do not exist",
                    details=[{"field": "body.location_ids", "code": "not_found", "message": u} for u in unknown[:100]],
                )
        else:
            wanted = sorted(location_id for location_id, enabled in known.items() if enabled)
            if not wanted:
                raise NoLocationsToExport("no location is enabled: there is nothing to export")
        if len(wanted) > MAX_EXPORT_LOCATIONS:
            raise TooManyExportLocations(
                f"{len(wanted):,} locations: an export covers at most {MAX_EXPORT_LOCATIONS:,}; "
                "export them in several requests naming location_ids"
            )
        return wanted

    def get(self, export_id: str) -> ExportView:
        found = self._exports.get_export(export_id)
        if found is None:
            raise NotFound(f"export {export_id!r} does not exist")
        return _view(*found)

    def list(self, limit: int, cursor: str | None) -> Page[AvailabilityExport]:
        return self._exports.list_exports(limit, cursor)


def _view(export: AvailabilityExport, units: dict[str, LocationExport]) -> ExportView:
    """The export with a line per location, in the order it names them (accepted: not begun yet)."""
    accepted = ExportStatus.ACCEPTED
    return ExportView(
        export, [units.get(i) or LocationExport(location_id=i, status=accepted) for i in export.location_ids]
    )


def _hash_of(request: ExportRequest) -> str:
    named = list(dict.fromkeys(request.location_ids)) if request.location_ids is not None else None
    body = json.dumps({"mode": request.mode.value, "location_ids": named}, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
