"""POST /locations/{location_id}/stock-imports and GET .../stock-imports/{import_id}: the routes and
their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import Field, StrictBool, model_validator

from inventory import wiring
from inventory.api.http import LocationId, Reply, Request, UtcTime, answers, caller_identity, errors_for
from inventory.models import ImportKind, ImportStatus, LocationType
from inventory.models.imports import ImportCounts, ImportRecord, StockRow
from inventory.services.imports import ImportRequest, ImportService
from inventory.settings import settings_of
from inventory.settings.stock_imports import StockImportsSettings
from inventory.types import (
    CLIENT_ID_PATTERN,
    MAIN,
    MAX_INLINE_ITEMS,
    ClientId,
    LogicalTimestamp,
    ProductId,
    Quantity,
    S3Uri,
    StockLocation,
)


class ImportItemBody(Request):
    product_id: ProductId
    quantity: Quantity
    stock_location: StockLocation = MAIN


class PostImportBody(Request):
    import_id: ClientId
    kind: ImportKind
    shipments_included_through: LogicalTimestamp | None = None
    force: StrictBool = False
    items: Annotated[list[ImportItemBody], Field(min_length=1, max_length=MAX_INLINE_ITEMS)] | None = None
    source: S3Uri | None = None
    location_type: LocationType | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> PostImportBody:
        if (self.items is None) == (self.source is None):
            raise ValueError(
                f"give either items (inline, up to {MAX_INLINE_ITEMS:,}) or source (s3://<import bucket>/<key>)"
            )
        return self

    def request(self) -> ImportRequest:
        return ImportRequest(
            import_id=self.import_id,
            kind=self.kind,
            shipments_included_through=self.shipments_included_through,
            force=self.force,
            items=[StockRow(**item.model_dump()) for item in self.items] if self.items is not None else None,
            source=self.source,
            location_type=self.location_type,
        )


class ImportOut(Reply):
    location_id: str
    import_id: str
    kind: ImportKind
    status: ImportStatus
    shipments_included_through: int | None
    source: str | None
    accepted_at: UtcTime
    completed_at: UtcTime | None
    counts: ImportCounts
    written_through_line: int = Field(description="Progress: every valid row up to this line of the file is written")
    warnings: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @classmethod
    def of(cls, record: ImportRecord) -> ImportOut:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


router = Router()


def import_service() -> ImportService:
    """Built once, from the settings of the stock imports function."""
    return wiring.import_service(settings_of(StockImportsSettings))


ImportId = Annotated[str, Path(pattern=CLIENT_ID_PATTERN, description="The import's id, chosen by the client")]


@router.post(
    "/locations/<location_id>/stock-imports",
    summary="Import stock: inline items (up to 5,000) or a file in the import bucket",
    description=(
        "202 with the import's status; the work runs asynchronously. Inline items are validated "
        "before the answer (422 naming items[i]); files are validated while the import runs (status "
        "failed, with line numbers). A file with any invalid row is rejected whole and changes "
        "nothing. Repeating the same request answers 200 with the import as it is now; the same "
        "import_id with other content answers 409 import_id_reused. 409 also for "
        "import_kind_not_allowed (platform master: full_count only), open_mispick_counts (unless "
        "force), import_in_progress and watermark_regressed (shipments_included_through below that of "
        "the location's last completed import). An unknown location is created when location_type is given, "
        "else 404."
    ),
    responses={
        **answers(ImportOut, 200, description="The same import, repeated"),
        **answers(ImportOut, 202, description="Accepted"),
        **errors_for(409, 404),
    },
    tags=["stock imports"],
)
def post_stock_import(location_id: LocationId, body: Annotated[PostImportBody, Body()]) -> Response[Any]:
    record, created = import_service().accept(location_id, body.request(), caller_identity(router))
    return Response(
        status_code=202 if created else 200,
        content_type="application/json",
        body=ImportOut.of(record).model_dump_json(),
    )


@router.get(
    "/locations/<location_id>/stock-imports/<import_id>",
    summary="An import's status, counts, warnings and first 100 errors",
    responses={**answers(ImportOut), **errors_for(404)},
    tags=["stock imports"],
)
def get_stock_import(location_id: LocationId, import_id: ImportId) -> ImportOut:
    return ImportOut.of(import_service().status(location_id, import_id))
