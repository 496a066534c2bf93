"""GET /locations/{location_id}/stock, GET .../stock/{product_id} and GET .../availability."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from inventory import wiring
from inventory.api.http import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageCursor, PageLimit, answers, errors_for
from inventory.api.locations import LocationId
from inventory.api.schemas import (
    AvailabilityList,
    AvailabilityOut,
    ProductStockExplained,
    ProductStockOut,
    StockList,
    decode_ledger_cursor,
)
from inventory.services.stock import StockService
from inventory.settings import TableSettings, settings_of
from inventory.types import ProductId


def stock_service() -> StockService:
    """Built once, from the settings of the stock function."""
    return wiring.stock_service(settings_of(TableSettings))


router = Router()


@router.get(
    "/locations/<location_id>/stock",
    summary="Stock on hand of every product the location holds",
    responses={**answers(StockList), **errors_for(404)},
    tags=["stock"],
)
def list_stock(
    location_id: LocationId,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> StockList:
    page = stock_service().page(location_id, limit, cursor)
    return StockList(items=[ProductStockOut.of(item) for item in page.items], next_cursor=page.next_cursor)


@router.get(
    "/locations/<location_id>/stock/<product_id>",
    summary="One product's stock, explained: the base of each stock location and the ledger since",
    description=(
        "`product_id` is percent-encoded in the path. It may hold a `/`: the rest of the path is the "
        "product id, so `.../stock/A%2FP` and `.../stock/A/P` both name the product `A/P`."
    ),
    responses={**answers(ProductStockExplained), **errors_for(404)},
    tags=["stock"],
)
def get_product_stock(
    location_id: LocationId,
    product_id: Annotated[ProductId, Path(description="The product's id, percent-encoded")],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="ledger entries per page")] = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> ProductStockExplained:
    after = decode_ledger_cursor(cursor) if cursor is not None else None
    return ProductStockExplained.of(stock_service().explain(location_id, product_id, limit, after))


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
    responses={**answers(AvailabilityList), **errors_for(404)},
    tags=["stock"],
)
def list_availability(
    location_id: LocationId,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
    product_id: Annotated[ProductId | None, Query()] = None,
) -> AvailabilityList:
    page = stock_service().availability_page(location_id, limit, cursor, product_id)
    return AvailabilityList(items=[AvailabilityOut.of(item) for item in page.items], next_cursor=page.next_cursor)
