"""GET /locations/{location_id}/stock and GET .../stock/{product_id}."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from inventory.api.http import errors_for
from inventory.api.locations import LocationId
from inventory.api.schemas import ProductStockExplained, ProductStockOut, StockList
from inventory.errors import InvalidInput
from inventory.wiring import stock_service

router = Router()


@router.get(
    "/locations/<location_id>/stock",
    summary="Stock on hand of every product the location holds",
    responses=errors_for(404),
    tags=["stock"],
)
def list_stock(
    location_id: LocationId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> StockList:
    page = stock_service().page(location_id, limit, cursor)
    return StockList(items=[ProductStockOut.of(item) for item in page.items], next_cursor=page.next_cursor)


@router.get(
    "/locations/<location_id>/stock/<product_id>",
    summary="One product's stock, explained: the base of each stock location and the ledger since",
    description="`product_id` is percent-encoded in the path.",
    responses=errors_for(404),
    tags=["stock"],
)
def get_product_stock(
    location_id: LocationId,
    product_id: Annotated[str, Path(min_length=1, max_length=1024)],
    limit: Annotated[int, Query(ge=1, le=1000, description="ledger entries per page")] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ProductStockExplained:
    decoded = unquote(product_id)
    if not 1 <= len(decoded) <= 128 or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in decoded):
        raise InvalidInput(
            "the product id is not valid",
            details=[
                {
                    "field": "path.product_id",
                    "code": "invalid_product_id",
                    "message": "1 to 128 characters, no control characters",
                }
            ],
        )
    return ProductStockExplained.of(stock_service().product(location_id, decoded), limit, cursor)
