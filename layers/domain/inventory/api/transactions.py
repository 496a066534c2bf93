"""POST /locations/{location_id}/inventory-transactions, GET .../inventory-transactions and
GET .../inventory-transactions/{transaction_id}: the routes and their bodies."""

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
from inventory.models import InventoryMaster
from inventory.models.transactions import (
    InventoryTransaction,
    TransactionItem,
    TransactionRequest,
    TransactionStatus,
    TransactionType,
)
from inventory.services.transactions import TransactionService
from inventory.settings import TableSettings, settings_of
from inventory.types import (
    CLIENT_ID_PATTERN,
    MAX_TRANSACTION_ITEMS,
    ClientId,
    ExternalId,
    PositiveQuantity,
    ProductId,
    StockLocation,
)
from inventory.types import (
    LocationId as LocationIdField,
)


class TransactionItemBody(Request):
    product_id: ProductId
    quantity: PositiveQuantity
    from_stock_location: StockLocation | None = None
    to_stock_location: StockLocation | None = None


class PostTransactionBody(Request):
    transaction_id: ClientId
    type: TransactionType
    reason: ExternalId | None = None
    reference: ExternalId | None = None
    destination_location_id: LocationIdField | None = None
    source_location_id: LocationIdField | None = None
    items: Annotated[list[TransactionItemBody], Field(min_length=1, max_length=MAX_TRANSACTION_ITEMS)]

    def request(self) -> TransactionRequest:
        fields = self.model_dump(exclude={"items"})
        return TransactionRequest(**fields, items=tuple(TransactionItem(**i.model_dump()) for i in self.items))


class TransactionItemOut(Reply):
    product_id: str
    quantity: int
    from_stock_location: str | None
    to_stock_location: str | None
    # once completed: the product's figures right after it (under an ERP master, unchanged)
    stock_on_hand: int | None = None
    stock_locations: dict[str, int] | None = None
    available: int | None = None
    version: int | None = None


class TransactionOut(Reply):
    location_id: str
    transaction_id: str
    type: TransactionType
    status: TransactionStatus
    inventory_master: InventoryMaster
    pending_import: bool  # recorded under an ERP master: the ERP's next import brings it back
    reason: str | None
    reference: str | None
    destination_location_id: str | None
    source_location_id: str | None
    items: list[TransactionItemOut]
    recorded_by: str
    created_at: UtcTime
    completed_at: UtcTime | None

    @classmethod
    def of(cls, record: InventoryTransaction) -> TransactionOut:
        results = dict(enumerate(record.results))
        return cls(
            **record.model_dump(
                include={
                    "location_id",
                    "transaction_id",
                    "type",
                    "status",
                    "reason",
                    "reference",
                    "destination_location_id",
                    "source_location_id",
                    "created_at",
                    "completed_at",
                }
            ),
            inventory_master=record.master,
            pending_import=record.master is InventoryMaster.ERP,
            recorded_by=record.caller,
            items=[
                TransactionItemOut(
                    **item.model_dump(),
                    **(results[i].model_dump(exclude={"product_id"}) if i in results else {}),
                )
                for i, item in enumerate(record.items)
            ],
        )


class TransactionList(Reply):
    items: list[TransactionOut]
    next_cursor: str | None


router = Router()


def transaction_service() -> TransactionService:
    """Built once, from the settings of the inventory transactions function."""
    return wiring.transaction_service(settings_of(TableSettings))


TransactionId = Annotated[
    str, Path(pattern=CLIENT_ID_PATTERN, description="The transaction's id, chosen by the client")
]


@router.post(
    "/locations/<location_id>/inventory-transactions",
    summary="Record an inventory transaction: all its items or none",
    description=(
        "receiving (into main), transfer_out (names destination_location_id), transfer_in (may "
        "name source_location_id), adjustment (with a reason: from_stock_location, "
        "to_stock_location, or both for a move inside the store) or return (into main or "
        "to_stock_location). Under platform master stock on hand changes at once, and a "
        "transaction that would take a stock location below 0 is refused whole (409 "
        "insufficient_stock, nothing written). Under an ERP master it is recorded and published "
        "(pending_import: true) and changes nothing until the ERP's next import; the switch then "
        "waits for that import (transactions_since_import). 201 with the transaction and each "
        "item's new figures; the same request again answers 200 with the same; the same "
        "transaction_id with other content answers 409 transaction_id_reused. Up to 100 items."
    ),
    responses={
        **answers(TransactionOut, 201, description="Applied"),
        **answers(TransactionOut, 200, description="The same transaction, repeated"),
        **errors_for(409, 404),
    },
    tags=["inventory transactions"],
)
def post_transaction(location_id: LocationId, body: Annotated[PostTransactionBody, Body()]) -> Response[Any]:
    record, created = transaction_service().record(location_id, body.request(), caller_identity(router))
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=TransactionOut.of(record).model_dump_json(),
    )


@router.get(
    "/locations/<location_id>/inventory-transactions/<transaction_id>",
    summary="An inventory transaction",
    responses={**answers(TransactionOut), **errors_for(404)},
    tags=["inventory transactions"],
)
def get_transaction(location_id: LocationId, transaction_id: TransactionId) -> TransactionOut:
    return TransactionOut.of(transaction_service().get(location_id, transaction_id))


@router.get(
    "/locations/<location_id>/inventory-transactions",
    summary="The location's inventory transactions, by id",
    responses={**answers(TransactionList), **errors_for(404, 422)},
    tags=["inventory transactions"],
)
def list_transactions(
    location_id: LocationId, limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None
) -> TransactionList:
    page = transaction_service().page(location_id, limit, cursor)
    return TransactionList(items=[TransactionOut.of(t) for t in page.items], next_cursor=page.next_cursor)
