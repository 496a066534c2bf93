"""POST/GET /locations/{location_id}/cycle-counts, GET and DELETE .../cycle-counts/{count_id}, and
POST .../cycle-counts/{count_id}/results: the routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import Field

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
    caller_identity,
    errors_for,
)
from inventory.models import CountReason, CountStatus, InventoryMaster
from inventory.models.counts import CountResult, CycleCount
from inventory.services.cycle_counts import CycleCountService
from inventory.settings import TableSettings, settings_of
from inventory.types import (
    CLIENT_ID_PATTERN,
    MAIN,
    MAX_COUNT_PRODUCTS,
    ClientId,
    EachIdOnce,
    ProductId,
    Quantity,
    StockLocation,
)


class PostCountBody(Request):
    count_id: ClientId
    reason: CountReason
    product_ids: Annotated[list[ProductId], Field(min_length=1, max_length=MAX_COUNT_PRODUCTS), EachIdOnce]


class CountResultBody(Request):
    product_id: ProductId
    stock_location: StockLocation = MAIN
    counted: Quantity


class PostResultsBody(Request):
    items: Annotated[list[CountResultBody], Field(min_length=1, max_length=MAX_COUNT_PRODUCTS)]

    def results(self) -> tuple[CountResult, ...]:
        return tuple(CountResult(**item.model_dump()) for item in self.items)


class CountedOut(Reply):
    product_id: str
    stock_location: str
    counted: int
    system: int  # the figure the service held when the result was applied
    variance: int  # counted - system


class CountOut(Reply):
    location_id: str
    count_id: str
    reason: CountReason
    status: CountStatus
    product_ids: list[str]
    opened_at: UtcTime
    closed_at: UtcTime | None
    opened_by: str | None
    inventory_master: InventoryMaster | None  # the master its results applied under, once submitted
    pending_import: bool | None  # results recorded under an ERP master: they set no figure
    results: list[CountedOut]

    @classmethod
    def of(cls, count: CycleCount) -> CountOut:
        return cls(
            **count.model_dump(
                include={"location_id", "count_id", "reason", "status", "product_ids", "opened_at", "closed_at"}
            ),
            opened_by=count.caller,
            inventory_master=count.master,
            pending_import=None if count.master is None else count.master is InventoryMaster.ERP,
            results=[CountedOut(**r.model_dump()) for r in count.results],
        )


class CountList(Reply):
    items: list[CountOut]
    next_cursor: str | None


router = Router()


def cycle_count_service() -> CycleCountService:
    """Built once, from the settings of the cycle counts function."""
    return wiring.cycle_count_service(settings_of(TableSettings))


CountId = Annotated[str, Path(pattern=CLIENT_ID_PATTERN, description="The count's id, chosen by the client")]


@router.post(
    "/locations/<location_id>/cycle-counts",
    summary="Open a cycle count of up to 5,000 products",
    description=(
        "reason: scheduled, mispick or initial. An open mispick count refuses imports (unless they "
        "say force) and the switch until it is completed or cancelled. 201 with the count; the same "
        "request again answers 200; the same count_id with other content answers 409 count_id_reused. "
        "Product ids of more than 200,000 bytes in all: 413."
    ),
    responses={
        **answers(CountOut, 201, description="Opened"),
        **answers(CountOut, 200, description="The same count, repeated"),
        **errors_for(409, 404),
    },
    tags=["cycle counts"],
)
def post_count(location_id: LocationId, body: Annotated[PostCountBody, Body()]) -> Response[Any]:
    count, created = cycle_count_service().open(
        location_id, body.count_id, body.reason, body.product_ids, caller_identity(router)
    )
    return Response(
        status_code=201 if created else 200, content_type="application/json", body=CountOut.of(count).model_dump_json()
    )


@router.get(
    "/locations/<location_id>/cycle-counts",
    summary="The location's cycle counts, open and closed, by id",
    responses={**answers(CountList), **errors_for(404, 422)},
    tags=["cycle counts"],
)
def list_counts(location_id: LocationId, limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None) -> CountList:
    page = cycle_count_service().page(location_id, limit, cursor)
    return CountList(items=[CountOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get(
    "/locations/<location_id>/cycle-counts/<count_id>",
    summary="A cycle count, with its results once completed",
    responses={**answers(CountOut), **errors_for(404)},
    tags=["cycle counts"],
)
def get_count(location_id: LocationId, count_id: CountId) -> CountOut:
    return CountOut.of(cycle_count_service().get(location_id, count_id))


@router.delete(
    "/locations/<location_id>/cycle-counts/<count_id>",
    summary="Cancel an open cycle count",
    description="200 with the count, cancelled (again: the same); a count no longer open: 409 count_not_open.",
    responses={**answers(CountOut), **errors_for(409, 404)},
    tags=["cycle counts"],
)
def cancel_count(location_id: LocationId, count_id: CountId) -> CountOut:
    return CountOut.of(cycle_count_service().cancel(location_id, count_id))


@router.post(
    "/locations/<location_id>/cycle-counts/<count_id>/results",
    summary="Complete a cycle count with its results",
    description=(
        "items: [{product_id, stock_location (default main), counted}], products of the count only "
        "(else 422), each product and stock location once. The counted figure is the truth at "
        "submission: under platform master each becomes the stock location's figure at once, and "
        "the system figure of that moment and the variance are recorded and answered; a stock "
        "location reported is counted (no longer uncounted). Under an ERP master the results are "
        "recorded and published and change no figure. Listed products not reported keep their "
        "figures. 200 with the completed count; the same results again answer the same; a count "
        "completed or cancelled: 409 count_not_open. A request that stops half-way leaves the "
        "count submitting: repeat the same results (other results: 409 count_results_differ)."
    ),
    responses={**answers(CountOut), **errors_for(409, 404)},
    tags=["cycle counts"],
)
def post_results(location_id: LocationId, count_id: CountId, body: Annotated[PostResultsBody, Body()]) -> CountOut:
    return CountOut.of(cycle_count_service().submit(location_id, count_id, body.results()))
