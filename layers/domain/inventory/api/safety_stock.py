"""PUT /locations/{location_id}/safety-stock: the route and its bodies."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import Field

from inventory import wiring
from inventory.api.http import LocationId, Reply, Request, answers, errors_for
from inventory.api.stock import AvailabilityOut
from inventory.services.safety_stock import SafetyStockLine, SafetyStockService
from inventory.settings import TableSettings, settings_of
from inventory.types import MAX_SAFETY_STOCK_ITEMS, EachProductOnce, ProductId, Quantity


class SafetyStockItemBody(Request):
    product_id: ProductId
    safety_stock: Quantity | None = Field(
        description="Units held back from sale; null: the location's default_safety_stock applies"
    )


class PutSafetyStockBody(Request):
    items: Annotated[list[SafetyStockItemBody], Field(min_length=1, max_length=MAX_SAFETY_STOCK_ITEMS), EachProductOnce]

    def lines(self) -> list[SafetyStockLine]:
        return [SafetyStockLine(product_id=i.product_id, safety_stock=i.safety_stock) for i in self.items]


class SafetyStockOut(Reply):
    items: list[AvailabilityOut] = Field(description="Each product's availability as its write left it, in order")


def safety_stock_service() -> SafetyStockService:
    """Built once, from the settings of the safety stock function."""
    return wiring.safety_stock_service(settings_of(TableSettings))


router = Router()


@router.put(
    "/locations/<location_id>/safety-stock",
    summary="Set each product's own safety stock, or let it fall back to the location's default",
    description=(
        f"Up to {MAX_SAFETY_STOCK_ITEMS:,} products, each listed once: `safety_stock` a whole number >= 0, or null to "
        "fall back to the location's `default_safety_stock`. 200 with each product's availability "
        "row as its write left it, as `GET .../availability` shows it. Every available figure "
        "(reads, allocation checks, published events) uses the product's own figure where one is "
        "set. A product set to the figure it has already is not written (its `version` stays). "
        "Products are written one at a time, not in one transaction: a request that fails "
        "half-way (a 503, a timeout) may have changed some of its products, and repeating it sets "
        "the same values, so a retry of the same request completes it (it is idempotent)."
    ),
    responses={**answers(SafetyStockOut), **errors_for(404)},
    tags=["stock"],
)
def put_safety_stock(location_id: LocationId, body: Annotated[PutSafetyStockBody, Body()]) -> SafetyStockOut:
    rows = safety_stock_service().set(location_id, body.lines())
    return SafetyStockOut(items=[AvailabilityOut.of(row) for row in rows])
