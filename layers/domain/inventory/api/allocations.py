"""POST /locations/{location_id}/allocations, GET and DELETE .../allocations/{allocation_id}: the
routes and their bodies."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import Field

from inventory import wiring
from inventory.api.http import LocationId, Reply, Request, UtcTime, answers, caller_identity, errors_for
from inventory.models import AllocationStatus
from inventory.models.allocations import AllocationLine
from inventory.services.allocations import AllocationRequest, AllocationService, AllocationView
from inventory.settings import TableSettings, settings_of
from inventory.types import (
    CLIENT_ID_PATTERN,
    MAX_ALLOCATION_ITEMS,
    ClientId,
    EachProductOnce,
    ExternalId,
    PositiveQuantity,
    ProductId,
)


class AllocationItemBody(Request):
    product_id: ProductId
    quantity: PositiveQuantity


class PostAllocationBody(Request):
    allocation_id: ClientId
    order_id: ExternalId
    items: Annotated[list[AllocationItemBody], Field(min_length=1, max_length=MAX_ALLOCATION_ITEMS), EachProductOnce]

    def request(self) -> AllocationRequest:
        return AllocationRequest(
            allocation_id=self.allocation_id,
            order_id=self.order_id,
            items=tuple(AllocationLine(product_id=i.product_id, quantity=i.quantity) for i in self.items),
        )


class AllocationItemOut(Reply):
    product_id: str
    quantity: int  # requested
    open: int  # still held: shipments, handovers and releases lower it


class AllocationOut(Reply):
    location_id: str
    allocation_id: str
    order_id: str | None
    status: AllocationStatus
    items: list[AllocationItemOut]
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, view: AllocationView) -> AllocationOut:
        allocation = view.allocation
        return cls(
            location_id=allocation.location_id,
            allocation_id=allocation.allocation_id,
            order_id=allocation.order_id,
            status=allocation.status,
            items=[
                AllocationItemOut(product_id=i.product_id, quantity=i.quantity, open=view.open.get(i.product_id, 0))
                for i in allocation.items
            ],
            created_at=allocation.created_at,
            updated_at=allocation.updated_at,
        )


router = Router()


def allocation_service() -> AllocationService:
    """Built once, from the settings of the allocations function."""
    return wiring.allocation_service(settings_of(TableSettings))


AllocationId = Annotated[str, Path(pattern=CLIENT_ID_PATTERN, description="The allocation's id, chosen by the client")]


@router.post(
    "/locations/<location_id>/allocations",
    summary="Allocate units of products to an order, whole or not at all",
    description=(
        "201 with the allocation, open for every item. Each product's available figure (stock on "
        "hand minus safety stock minus open allocations, 0 while uncounted) must cover its "
        "quantity, else 409 insufficient_stock with the short products in details, and nothing "
        "is held; a location with allow_backorders takes any quantity. Allocations that race for "
        "the last units never both succeed. Repeating the same request answers 200 with the "
        "allocation as it is now; the same allocation_id with other content answers 409 "
        "allocation_id_reused. Each product may be listed once, up to 100 products."
    ),
    responses={
        **answers(AllocationOut, 201, description="Created"),
        **answers(AllocationOut, 200, description="The same allocation, repeated"),
        **errors_for(409, 404),
    },
    tags=["allocations"],
)
def post_allocation(location_id: LocationId, body: Annotated[PostAllocationBody, Body()]) -> Response[Any]:
    view, created = allocation_service().create(location_id, body.request(), caller_identity(router))
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=AllocationOut.of(view).model_dump_json(),
    )


@router.get(
    "/locations/<location_id>/allocations/<allocation_id>",
    summary="An allocation: what it asked for and what is still open per product",
    responses={**answers(AllocationOut), **errors_for(404)},
    tags=["allocations"],
)
def get_allocation(location_id: LocationId, allocation_id: AllocationId) -> AllocationOut:
    return AllocationOut.of(allocation_service().get(location_id, allocation_id))


@router.delete(
    "/locations/<location_id>/allocations/<allocation_id>",
    summary="Release what the allocation still holds",
    description="200 with the allocation, now released (repeating it changes nothing); unknown allocation: 404.",
    responses={**answers(AllocationOut), **errors_for(404)},
    tags=["allocations"],
)
def delete_allocation(location_id: LocationId, allocation_id: AllocationId) -> AllocationOut:
    return AllocationOut.of(allocation_service().release(location_id, allocation_id, caller_identity(router)))
