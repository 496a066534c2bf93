"""PUT/GET /locations/{location_id}, GET /locations: the routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import StrictBool

from inventory import wiring
from inventory.api.http import (
    DEFAULT_PAGE_SIZE,
    LocationId,
    PageCursor,
    PageLimit,
    Reply,
    Request,
    UtcTime,
    answers,
    errors_for,
)
from inventory.models import ImportSummary, InventoryMaster, Location, LocationChanges, LocationType
from inventory.services.locations import LocationService
from inventory.settings import TableSettings, settings_of
from inventory.types import LocationName, Quantity


class PutLocationBody(Request):
    type: LocationType
    name: LocationName | None = None
    enabled: StrictBool | None = None
    trust_imported_stock: StrictBool | None = None
    default_safety_stock: Quantity | None = None
    allow_backorders: StrictBool | None = None

    def changes(self) -> LocationChanges:
        return LocationChanges.model_validate(self.model_dump())


class LastImport(Reply):
    import_id: str
    kind: str
    status: str
    completed_at: UtcTime | None = None


class LocationOut(Reply):
    location_id: str
    type: LocationType
    name: str | None
    enabled: bool
    trust_imported_stock: bool
    default_safety_stock: int
    allow_backorders: bool
    inventory_master: InventoryMaster
    master_switched_at: UtcTime | None
    master_switched_by: str | None
    last_import: LastImport | None
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, location: Location) -> LocationOut:
        last: ImportSummary | None = location.last_import
        return cls(
            **location.model_dump(include=set(cls.model_fields) - {"last_import"}),
            last_import=LastImport(**last.model_dump()) if last else None,
        )


class LocationList(Reply):
    items: list[LocationOut]
    next_cursor: str | None


router = Router()


def location_service() -> LocationService:
    """Built once, from the settings of the locations function."""
    return wiring.location_service(settings_of(TableSettings))


@router.put(
    "/locations/<location_id>",
    summary="Create (201) or update (200) a location",
    description=(
        "Fields left out keep their current value (their default on creation). `type` never changes "
        "once set, and `inventory_master` is only changed by PUT .../inventory-master."
    ),
    responses={
        **answers(LocationOut, 200, description="Updated"),
        **answers(LocationOut, 201, description="Created"),
        **errors_for(409),
    },
    tags=["locations"],
)
def put_location(location_id: LocationId, body: Annotated[PutLocationBody, Body()]) -> Response[Any]:
    location, created = location_service().put(location_id, body.changes())
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=LocationOut.of(location).model_dump_json(),
    )


@router.get(
    "/locations/<location_id>",
    summary="Read a location",
    responses={**answers(LocationOut), **errors_for(404)},
    tags=["locations"],
)
def get_location(location_id: LocationId) -> LocationOut:
    return LocationOut.of(location_service().get(location_id))


@router.get(
    "/locations", summary="List locations", responses={**answers(LocationList), **errors_for(422)}, tags=["locations"]
)
def list_locations(
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> LocationList:
    page = location_service().list(limit, cursor)
    return LocationList(items=[LocationOut.of(item) for item in page.items], next_cursor=page.next_cursor)
