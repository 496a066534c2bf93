"""POST /locations/{location_id}/stock-imports and GET .../stock-imports/{import_id}."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from inventory import wiring
from inventory.api.http import answers, caller_identity, errors_for
from inventory.api.locations import LocationId
from inventory.api.schemas import ImportOut, PostImportBody
from inventory.services.imports import ImportService
from inventory.settings import StockImportsSettings, settings_of
from inventory.types import CLIENT_ID_PATTERN

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
