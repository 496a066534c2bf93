"""GET /locations/{location_id}/stock, GET .../stock/{product_id} and GET .../availability."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from inventory import wiring
from inventory.api.http import errors_for
from inventory.api.locations import LocationId
from inventory.api.schemas import (
    AvailabilityList,
    AvailabilityOut,
    ProductStockExplained,
    ProductStockOut,
    StockList,
)
from inventory.errors import InvalidInput
from inventory.services.stock import StockService
from inventory.settings import TableSettings, settings_of

router = Router()


def stock_service() -> StockService:
    """Built once, from the settings of the stock function."""
    return wiring.stock_service(settings_of(TableSettings))


def check_product_id(product_id: str, field: str) -> None:
    if not 1 <= len(product_id) <= 128 or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in product_id):
        raise InvalidInput(
            "the product id is not valid",
            details=[
                {"field": field, "code": "invalid_product_id", "message": "1 to 128 characters, no control characters"}
            ],
        )


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
    check_product_id(decoded, "path.product_id")
    return ProductStockExplained.of(stock_service().product(location_id, decoded), limit, cursor)


@router.get(
    "/locations/<location_id>/availability",
    summary="What can be sold: stock on hand, allocated, safety stock, available, uncounted",
    description=(
        "One row per product with stock or allocations at the location, each from one consistent "
        "read of that product. available = max(0, stock_on_hand - safety_stock - allocated), and 0 "
        "while the product is uncounted. `version` grows with every change of the product's "
        "ledger or allocations. With `product_id`, only that product (no row when the location "
        "never knew it)."
    ),
    responses=errors_for(404),
    tags=["stock"],
)
def list_availability(
    location_id: LocationId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    product_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> AvailabilityList:
    if product_id is not None:
        check_product_id(product_id, "query.product_id")
    page = stock_service().availability_page(location_id, limit, cursor, product_id)
    return AvailabilityList(items=[AvailabilityOut.of(item) for item in page.items], next_cursor=page.next_cursor)
