"""PUT /stock-locations/{name} and GET /stock-locations: the routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import StrictBool

from inventory import wiring
from inventory.api.http import DEFAULT_PAGE_SIZE, PageCursor, PageLimit, Reply, Request, answers, errors_for
from inventory.cursor import invalid_cursor
from inventory.models.stock_locations import StockLocationType
from inventory.services.stock_locations import StockLocationService
from inventory.settings import TableSettings, settings_of
from inventory.types import MAX_STOCK_LOCATIONS, STOCK_LOCATION_PATTERN

StockLocationName = Annotated[str, Path(pattern=STOCK_LOCATION_PATTERN, description="The stock location type's name")]


class PutStockLocationBody(Request):
    salable: StrictBool


class StockLocationTypeOut(Reply):
    name: str
    salable: bool
    in_use: bool

    @classmethod
    def of(cls, stock_location: StockLocationType) -> StockLocationTypeOut:
        return cls(**stock_location.model_dump())


class StockLocationTypeList(Reply):
    items: list[StockLocationTypeOut]
    next_cursor: str | None


router = Router()


def stock_location_service() -> StockLocationService:
    """Built once, from the settings of the stock locations function."""
    return wiring.stock_location_service(settings_of(TableSettings))


@router.put(
    "/stock-locations/<name>",
    summary="Add a stock location type (201), or set whether it is salable (200)",
    description=(
        "The types are the same for every location. Only salable types count toward stock on hand. "
        f"At most {MAX_STOCK_LOCATIONS} types (409 too_many_stock_locations); `main` is always salable "
        "(409 main_always_salable); `salable` cannot change once a type has held a quantity other than 0 "
        "at any location (409 stock_location_in_use: the mark is never cleared). The same value again "
        "answers 200 and writes nothing."
    ),
    responses={
        **answers(StockLocationTypeOut, 200, description="Updated, or already so"),
        **answers(StockLocationTypeOut, 201, description="Created"),
        **errors_for(409),
    },
    tags=["stock locations"],
)
def put_stock_location(name: StockLocationName, body: Annotated[PutStockLocationBody, Body()]) -> Response[Any]:
    stock_location, created = stock_location_service().put(name, body.salable)
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=StockLocationTypeOut.of(stock_location).model_dump_json(),
    )


@router.get(
    "/stock-locations",
    summary="List the stock location types: `main` first, then by name",
    description=(
        "Every type in one page (there are at most "
        f"{MAX_STOCK_LOCATIONS}): `next_cursor` is always null; `limit` and `cursor` are taken as by every list."
    ),
    responses={**answers(StockLocationTypeList), **errors_for(422)},
    tags=["stock locations"],
)
def list_stock_locations(limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None) -> StockLocationTypeList:
    if cursor is not None:  # no page of this list has a next one: it never gave out a cursor
        raise invalid_cursor()
    types = stock_location_service().list().types[:limit]
    return StockLocationTypeList(items=[StockLocationTypeOut.of(t) for t in types], next_cursor=None)
