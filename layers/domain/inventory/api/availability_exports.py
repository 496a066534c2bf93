"""POST /availability-exports, GET /availability-exports and GET /availability-exports/{export_id}:
the routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import Field

from inventory import wiring
from inventory.api.http import (
    DEFAULT_PAGE_SIZE,
    PageCursor,
    PageLimit,
    Reply,
    Request,
    UtcTime,
    answers,
    caller_identity,
    errors_for,
)
from inventory.models.exports import AvailabilityExport, ExportMode, ExportStatus, LocationExport
from inventory.services.availability_exports import MAX_EXPORT_LOCATIONS, ExportRequest, ExportService, ExportView
from inventory.settings import settings_of
from inventory.settings.availability_exports import AvailabilityExportsSettings
from inventory.types import CLIENT_ID_PATTERN, ClientId
from inventory.types import LocationId as LocationIdField


class PostExportBody(Request):
    export_id: ClientId | None = None
    mode: ExportMode
    location_ids: Annotated[list[LocationIdField], Field(min_length=1, max_length=MAX_EXPORT_LOCATIONS)] | None = None

    def request(self) -> ExportRequest:
        return ExportRequest(mode=self.mode, location_ids=self.location_ids, export_id=self.export_id)


class LocationExportOut(Reply):
    location_id: str
    status: ExportStatus
    rows: int | None = None
    uri: str | None = None
    sha256: str | None = None
    as_of: UtcTime | None = None
    since_export_id: str | None = Field(default=None, description="The export a delta file is relative to; null: full")
    full: bool | None = Field(default=None, description="A full file: replace what you hold of the location")
    import_id: str | None = Field(default=None, description="The newest import the file reflects")
    error: str | None = None

    @classmethod
    def of(cls, unit: LocationExport) -> LocationExportOut:
        file = unit.file
        if file is None:
            return cls(location_id=unit.location_id, status=unit.status, error=unit.error)
        return cls(
            location_id=unit.location_id,
            status=unit.status,
            rows=file.rows,
            uri=file.uri,
            sha256=file.sha256,
            as_of=file.point.as_of,
            since_export_id=file.since_export_id,
            full=file.full,
            import_id=file.point.import_id,
        )


class ExportOut(Reply):
    export_id: str
    mode: ExportMode
    status: ExportStatus
    requested_at: UtcTime
    requested_by: str
    completed_at: UtcTime | None
    manifest_uri: str | None
    location_count: int
    locations: list[LocationExportOut] | None = Field(
        description="Each location's file; in a list of exports null (GET the export for them)"
    )

    @classmethod
    def of(cls, export: AvailabilityExport, units: list[LocationExport] | None) -> ExportOut:
        return cls(
            export_id=export.export_id,
            mode=export.mode,
            status=export.status,
            requested_at=export.requested_at,
            requested_by=export.requested_by,
            completed_at=export.completed_at,
            manifest_uri=export.manifest_uri,
            location_count=len(export.location_ids),
            locations=[LocationExportOut.of(u) for u in units] if units is not None else None,
        )

    @classmethod
    def of_view(cls, view: ExportView) -> ExportOut:
        return cls.of(view.export, view.locations)


class ExportList(Reply):
    items: list[ExportOut]
    next_cursor: str | None


router = Router()


def export_service() -> ExportService:
    """Built once, from the settings of the availability exports function."""
    return wiring.export_service(settings_of(AvailabilityExportsSettings))


ExportId = Annotated[str, Path(pattern=CLIENT_ID_PATTERN, description="The export's id")]


@router.post(
    "/availability-exports",
    summary="Export what each location can sell: a gzip JSON Lines file per location",
    description=(
        "mode full (a row for every product with stock or allocations) or delta (the products "
        "whose row changed since the location's previous export; a location's first delta, and a "
        "delta after a full import or a change of the location's settings, is a full file: "
        "since_export_id null). No location_ids: every enabled location. 202 with the export; "
        "it runs asynchronously, one unit of work per location, a location's exports one at a "
        "time. export_id is generated when absent; the same id and body again answers 200, "
        "another body 409 export_id_reused. An unknown location: 404. At most 1,000 locations "
        "an export (409 too_many_locations)."
    ),
    responses={
        **answers(ExportOut, 202, description="Accepted"),
        **answers(ExportOut, 200, description="The same export, repeated"),
        **errors_for(409, 404),
    },
    tags=["availability exports"],
)
def post_export(body: Annotated[PostExportBody, Body()]) -> Response[Any]:
    view, created = export_service().accept(body.request(), caller_identity(router))
    return Response(
        status_code=202 if created else 200,
        content_type="application/json",
        body=ExportOut.of_view(view).model_dump_json(),
    )


@router.get(
    "/availability-exports/<export_id>",
    summary="An export: its status, manifest and each location's file",
    responses={**answers(ExportOut), **errors_for(404)},
    tags=["availability exports"],
)
def get_export(export_id: ExportId) -> ExportOut:
    return ExportOut.of_view(export_service().get(export_id))


@router.get(
    "/availability-exports",
    summary="The exports, newest first (each without its locations' files)",
    responses={**answers(ExportList), **errors_for(422)},
    tags=["availability exports"],
)
def list_exports(limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None) -> ExportList:
    page = export_service().list(limit, cursor)
    return ExportList(items=[ExportOut.of(e, None) for e in page.items], next_cursor=page.next_cursor)
