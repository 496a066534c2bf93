"""GET /locations/{location_id}/stock, GET .../stock/{product_id} and GET .../availability: the routes
and their bodies."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import Field

from inventory import wiring
from inventory.api.http import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    LocationId,
    PageCursor,
    PageLimit,
    Reply,
    UtcTime,
    answers,
    errors_for,
)
from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.figures import ProductAvailability, ProductStock
from inventory.models import ImportKind
from inventory.services.stock import LedgerPosition, ProductExplained, StockService
from inventory.settings import TableSettings, settings_of
from inventory.types import ProductId


class BaseOut(Reply):
    import_id: str
    kind: ImportKind
    quantity: int
    shipments_included_through: int | None


class StockLocationOut(Reply):
    stock_location: str
    quantity: int
    salable: bool


class StockLocationExplained(StockLocationOut):
    base: BaseOut | None


class ProductStockOut(Reply):
    product_id: str
    stock_on_hand: int
    stock_locations: list[StockLocationOut]

    @classmethod
    def of(cls, stock: ProductStock) -> ProductStockOut:
        return cls(
            product_id=stock.product_id,
            stock_on_hand=stock.stock_on_hand,
            stock_locations=[StockLocationOut(**asdict(f)) for f in stock.stock_locations],
        )


class LedgerEntryOut(Reply):
    entry_id: str
    kind: str
    quantity: int
    stock_location: str
    logical_timestamp: int | None
    applied_at: UtcTime
    reference: str | None
    to_stock_location: str | None = None  # a move between two stock locations: the end that gained
    # recorded under an ERP master: it changes stock on hand only when the ERP's next import brings it back
    pending_import: bool = False
    counted: int | None = None  # a cycle count's result: the figure counted (`quantity` is the variance)


class LedgerPage(Reply):
    items: list[LedgerEntryOut]
    next_cursor: str | None


class ProductStockExplained(Reply):
    product_id: str
    stock_on_hand: int
    stock_locations: list[StockLocationExplained]
    ledger: LedgerPage = Field(description="The entries since each stock location's base, in the order applied")

    @classmethod
    def of(cls, explained: ProductExplained) -> ProductStockExplained:
        stock = explained.stock
        return cls(
            product_id=stock.product_id,
            stock_on_hand=stock.stock_on_hand,
            stock_locations=[StockLocationExplained.model_validate(asdict(f)) for f in stock.stock_locations],
            ledger=LedgerPage(
                items=[LedgerEntryOut.model_validate(e.model_dump()) for e in explained.entries],
                next_cursor=encode_ledger_cursor(explained.next_position) if explained.next_position else None,
            ),
        )


def encode_ledger_cursor(position: LedgerPosition) -> str:
    return encode_cursor(list(position))


def decode_ledger_cursor(cursor: str) -> LedgerPosition:
    """The position a `next_cursor` of the ledger names (a cursor of the earlier form, without the
    page: from the first page)."""
    position = decode_cursor(cursor)
    if isinstance(position, list) and len(position) == 2:
        position = [0, *position]
    if isinstance(position, list) and len(position) == 3:
        page, applied_at, entry_id = position
        if isinstance(page, int) and page >= 0 and isinstance(applied_at, str) and isinstance(entry_id, str):
            return page, applied_at, entry_id
    raise invalid_cursor()


class StockList(Reply):
    items: list[ProductStockOut]
    next_cursor: str | None


class AvailabilityOut(Reply):
    product_id: str
    stock_on_hand: int
    allocated: int
    safety_stock: int
    available: int
    uncounted: bool
    version: int

    @classmethod
    def of(cls, figures: ProductAvailability) -> AvailabilityOut:
        return cls(**asdict(figures))


class AvailabilityList(Reply):
    items: list[AvailabilityOut]
    next_cursor: str | None


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
        "figures (its ledger, allocations and safety stock, the imports that touch it, the location's "
        "settings and the switch): keep the highest per product. With `product_id`, only that "
        "product (no row when the location never knew it)."
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
